"""``sambus consent``: compliance queries over the decision ledger, its verification and exports."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sambus.consent import (
    PACKAGED_RULES,
    CheckpointSigner,
    ConsentRegistry,
    FieldCipher,
    Pseudonymizer,
    Rule,
    RuleSet,
    verify,
)
from sambus.consent.compliance import Compliance, LedgerEntry, LedgerQuery, audit_event, csv_text
from sambus.consent.decisions import Outcome
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.errors import ConfigError, SambusError
from sambus.contracts.identifiers import parse_personnummer, parse_samordningsnummer
from sambus.contracts.registry_facts import ConsentGiven, ConsentWithdrawn, GivenBy
from sambus.router.cli.common import command_database
from sambus.router.service.consent_wiring import county_policy, ledger_anchors, ledger_public_keys
from sambus.router.settings import Settings

consent_app = typer.Typer(
    help="The decision ledger: query, verify and export decisions (every query is logged).",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)


def _fail(exc: SambusError | ValueError) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code=2 if isinstance(exc, ConfigError | ValueError) else 1)


def _compliance(settings: Settings) -> Compliance:
    return Compliance(command_database(settings))


def _pseudonym(settings: Settings, number: str) -> str:
    try:
        digits = parse_personnummer(number)
    except ValueError:
        try:
            digits = parse_samordningsnummer(number)
        except ValueError as exc:
            raise ValueError("--personnummer: not a valid personnummer or samordningsnummer") from exc
    return Pseudonymizer(settings.require_pseudonym_key()).of(digits)


def _moment(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{option}: give a date or time like 2026-11-20 or 2026-11-20T09:00+01:00") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


Personnummer = Annotated[
    str | None, typer.Option("--personnummer", help="The child's personnummer (searched as its pseudonym).")
]
Since = Annotated[
    str | None, typer.Option(help="Decisions from this date or time (ISO 8601; UTC if no zone).")
]
Until = Annotated[str | None, typer.Option(help="Decisions before this date or time.")]
Recipient = Annotated[str | None, typer.Option(help="Only decisions for this recipient id.")]
OutcomeOption = Annotated[
    str | None, typer.Option(help="permit, permit_redacted, deny, await_consent or await_answer.")
]
Basis = Annotated[
    str | None,
    typer.Option(
        "--basis",
        help="Legal basis exactly as the ledger keeps it, e.g. 'OSL 10:28 with LVU 32 §; breaks OSL 26:1"
        " (socialtjänst)'.",
    ),
]
Officer = Annotated[str | None, typer.Option(help="Who asks (logged); default: the login name.")]
Limit = Annotated[int, typer.Option(min=1, help="At most this many entries.")]


def _query(
    settings: Settings,
    *,
    personnummer: str | None,
    since: str | None,
    until: str | None,
    recipient: str | None,
    outcome: str | None,
    basis: str | None,
    limit: int,
) -> LedgerQuery:
    if outcome is not None and outcome not in {str(o) for o in Outcome}:
        raise ValueError("--outcome: one of permit, permit_redacted, deny, await_consent, await_answer")
    return LedgerQuery(
        child=_pseudonym(settings, personnummer) if personnummer else None,
        since=_moment(since, "--since"),
        until=_moment(until, "--until"),
        recipient_id=recipient,
        outcome=outcome,
        legal_basis=basis,
        limit=limit,
    )


def _table(found: list[LedgerEntry]) -> Table:
    table = Table(title=f"{len(found)} decisions")
    for column in ("#", "decided at", "event", "recipient", "outcome", "rule", "legal basis", "reason"):
        table.add_column(column)
    for entry in found:
        table.add_row(
            str(entry.seq),
            entry.decided_at.strftime("%Y-%m-%dT%H:%M:%S"),
            entry.event,
            entry.recipient_id,
            entry.outcome,
            f"{entry.rule_id}@{entry.rule_version}",
            entry.legal_basis,
            entry.reason,
        )
    return table


@consent_app.command("query")
def query(  # noqa: PLR0917 - one option per filter
    personnummer: Personnummer = None,
    since: Since = None,
    until: Until = None,
    recipient: Recipient = None,
    outcome: OutcomeOption = None,
    basis: Basis = None,
    limit: Limit = 100,
    officer: Officer = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Find decisions by child, period, recipient, outcome and legal basis (the query is logged)."""
    try:
        settings = Settings()
        asked = _query(
            settings,
            personnummer=personnummer,
            since=since,
            until=until,
            recipient=recipient,
            outcome=outcome,
            basis=basis,
            limit=limit,
        )
        found = _compliance(settings).find(asked, officer=officer or getpass.getuser())
    except (SambusError, ValueError) as exc:
        raise _fail(exc) from exc
    if as_json:
        console.print_json(json.dumps([entry.to_json() for entry in found], ensure_ascii=False))
    else:
        console.print(_table(found))


@consent_app.command("verify")
def verify_command(
    officer: Officer = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the hash chain and signed checkpoints; name the first changed, removed, inserted or moved entry.

    Exits with 1 when the ledger has been tampered with.
    """
    try:
        settings = Settings()
        compliance = _compliance(settings)
        keys = ledger_public_keys(settings)
        anchors = ledger_anchors(settings)
        result = verify(compliance.engine, keys, anchors)
        compliance.log(
            officer=officer or getpass.getuser(), action="verify", filters={}, results=len(result.problems)
        )
    except (SambusError, ValueError) as exc:
        raise _fail(exc) from exc
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "ok": result.ok,
                    "entries": result.entries,
                    "checkpoints": result.checkpoints,
                    "checkpoints_checked": bool(keys),
                    "anchored_seq": None if result.anchored is None else result.anchored.seq,
                    "problems": [
                        {"kind": str(p.kind), "seq": p.seq, "detail": p.detail} for p in result.problems
                    ],
                }
            )
        )
    elif result.ok:
        checked = "" if keys else " (checkpoints not checked: SAMBUS_LEDGER_SIGNING_KEY is not set)"
        if anchors is None:
            anchored = " Not checked against an anchor: SAMBUS_LEDGER_ANCHOR_FILE is not set."
        elif result.anchored is None:
            anchored = " The anchor holds no checkpoint yet."
        else:
            anchored = f" It holds everything its anchor signed (up to entry {result.anchored.seq})."
        counts = f"{result.entries} entries, {result.checkpoints} checkpoints"
        console.print(f"The ledger is intact: {counts}{checked}.{anchored}")
    else:
        errors.print(f"[bold red]The ledger has been tampered with:[/] {result.first}", highlight=False)
        for problem in result.problems[1:]:
            errors.print(f"  also: {problem}", highlight=False)
    if not result.ok:
        raise typer.Exit(code=1)


@consent_app.command("export")
def export(  # noqa: PLR0917 - one option per filter
    export_format: Annotated[
        str, typer.Option("--format", help="fhir (AuditEvent Bundle, IHE BALP) or csv.")
    ] = "fhir",
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of standard output.")
    ] = None,
    personnummer: Personnummer = None,
    since: Since = None,
    until: Until = None,
    recipient: Recipient = None,
    outcome: OutcomeOption = None,
    basis: Basis = None,
    limit: Limit = 10_000,
    officer: Officer = None,
) -> None:
    """Export decisions as FHIR AuditEvents (shaped after IHE BALP AuthZconsent) or as CSV (logged)."""
    if export_format not in {"fhir", "csv"}:
        raise _fail(ValueError("--format: fhir or csv"))
    try:
        settings = Settings()
        asked = _query(
            settings,
            personnummer=personnummer,
            since=since,
            until=until,
            recipient=recipient,
            outcome=outcome,
            basis=basis,
            limit=limit,
        )
        found = _compliance(settings).find(
            asked, officer=officer or getpass.getuser(), action=f"export-{export_format}"
        )
    except (SambusError, ValueError) as exc:
        raise _fail(exc) from exc
    if export_format == "csv":
        text = csv_text(found)
    else:
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": audit_event(entry)} for entry in found],
        }
        text = json.dumps(bundle, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"Wrote {len(found)} decisions to {output}.")


@consent_app.command("rules")
def rules_command() -> None:
    """Validate the secrecy rule file (SAMBUS_RULES) and list its rules."""
    try:
        settings = Settings()
        rules = RuleSet.load(settings.rules)
    except SambusError as exc:
        raise _fail(exc) from exc
    where = settings.rules or f"the rules packaged with sambus ({PACKAGED_RULES})"
    table = Table(title=f"{len(rules.rules)} rules in {where}")
    for column in (
        "rule",
        "secrecy broken",
        "provision breaking it",
        "events",
        "senders",
        "recipients",
        "outcome",
    ):
        table.add_column(column)
    for rule in rules.rules:
        table.add_row(
            f"{rule.id}@{rule.version}",
            rules.broken_secrecy(rule),
            _provision(rule),
            ", ".join(sorted(rule.events)),
            ", ".join(sorted(rule.senders)) or "any",
            ", ".join(sorted(rule.recipients)) or "any",
            rule.outcome,
        )
    console.print(table)


def _provision(rule: Rule) -> str:
    """The provision that breaks the secrecy, and what it rests on."""
    basis = rule.basis
    if basis.kind == "consent":
        return f"{basis.provision}: consent for {basis.purpose}"
    if basis.kind == "provision":
        accepted = ", ".join(sorted(basis.assessed_provisions))
        return f"{basis.provision}; only with a professional's assessment ({accepted})"
    if basis.kind == "answer":
        return f"{basis.provision}; consent checked again where the request rested on it"
    return basis.provision


def _registry(settings: Settings) -> ConsentRegistry:
    return ConsentRegistry(
        command_database(settings),
        Pseudonymizer(settings.require_pseudonym_key()),
        county=county_policy(settings),
    )


def _person(number: str, option: str) -> str:
    try:
        return parse_personnummer(number)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from exc


@consent_app.command("record")
def record(  # noqa: PLR0917 - one option per field of a consent
    consent_id: Annotated[str, typer.Option("--id", help="The consent's id in the recording system.")],
    personnummer: Annotated[str, typer.Option("--personnummer", help="The child's personnummer.")],
    purpose: Annotated[Purpose, typer.Option(help="What the consent covers.")],
    agency: Annotated[list[AgencyKind], typer.Option(help="A kind of agency it covers (repeat for more).")],
    guardian: Annotated[
        list[str] | None, typer.Option(help="Personnummer of a guardian who consented (repeat for both).")
    ] = None,
    by_child: Annotated[
        bool, typer.Option("--by-child", help="The child or young person consented.")
    ] = False,
    valid_from: Annotated[str | None, typer.Option("--from", help="In force from (default: now).")] = None,
    valid_to: Annotated[
        str | None, typer.Option("--to", help="In force until (default: until withdrawn).")
    ] = None,
) -> None:
    """Record a consent given on paper or in another system (guardians', or the young person's own)."""
    if not by_child and not guardian:
        raise _fail(ValueError("--guardian: name the guardian(s) who consented, or give --by-child"))
    try:
        settings = Settings()
        now = dt.datetime.now(dt.UTC)
        start = _moment(valid_from, "--from") or now
        fact = ConsentGiven(
            consent_id=consent_id,
            child=_person(personnummer, "--personnummer"),
            purpose=purpose,
            agency_kinds=frozenset(agency),
            given_by=GivenBy.CHILD if by_child else GivenBy.GUARDIAN,
            guardians=tuple(_person(g, "--guardian") for g in guardian or ()),
            valid_from=start,
            valid_to=_moment(valid_to, "--to"),
            recorded_at=now,
        )
        _registry(settings).apply([fact])
    except (SambusError, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(f"Recorded consent {consent_id} for {purpose} with {', '.join(sorted(agency))}.")


@consent_app.command("withdraw")
def withdraw(
    consent_id: Annotated[str, typer.Option("--id", help="The consent's id.")],
    personnummer: Annotated[str, typer.Option("--personnummer", help="The child's personnummer.")],
    at: Annotated[str | None, typer.Option(help="Withdrawn from (default: now).")] = None,
) -> None:
    """Withdraw a consent: no delivery resting on it happens after that, retries and replays included."""
    try:
        settings = Settings()
        when = _moment(at, "--at") or dt.datetime.now(dt.UTC)
        registry = _registry(settings)
        registry.apply(
            [ConsentWithdrawn(consent_id=consent_id, child=_person(personnummer, "--personnummer"), at=when)]
        )
    except (SambusError, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(f"Withdrew consent {consent_id} from {when.isoformat()}.")


@consent_app.command("keygen")
def keygen() -> None:
    """Print new random ledger and dead-letter keys as .env lines (keep them secret, out of the repo)."""
    signer = CheckpointSigner.generate()
    typer.echo(f"SAMBUS_LEDGER_SIGNING_KEY={signer.seed_hex()}")
    typer.echo(f"SAMBUS_LEDGER_VERIFY_KEYS={signer.public_hex()}")
    typer.echo(f"SAMBUS_LEDGER_ENCRYPTION_KEYS=k1:{FieldCipher.new_key_hex()}")
    typer.echo(f"SAMBUS_DLQ_ENCRYPTION_KEYS=d1:{FieldCipher.new_key_hex()}")
