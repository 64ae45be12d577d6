"""Per-recipient decisions: may this message reach this recipient, and on what legal basis.

The router asks a :class:`Decider` once per (message, recipient), at delivery time, and again at every
retry or replay, so a withdrawn consent stops later deliveries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from sambus.consent.county import ADULT_AGE
from sambus.consent.labels import Label, labelled_protections, security_for
from sambus.consent.registry import IDENTITY_PROTECTIONS, ConsentRegistry, Protection, Scope
from sambus.consent.residence import guardian_secret_paths, residence_paths
from sambus.consent.rules import Rule, RuleSet, first_rule
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.fhir.assessment import SecrecyAssessment, secrecy_assessment
from sambus.contracts.fhir.codes import (
    HIDDEN_RESIDENCE_ANSWER,
    PLACEMENT_SYSTEM,
    TASK_INPUT_SYSTEM,
    EventCode,
)

CONSENT_BASIS = "OSL 12:2 (samtycke)"


@dataclass(frozen=True)
class AnsweredRequest:
    """The request an answer answers, as the process state recorded it.

    Attributes:
        event: the request's event (e.g. ``sip-initiated``): the process's first message.
        assessed: the provision a professional assessed for the request (its ``secrecyAssessment``), if any.
    """

    event: EventCode
    assessed: str | None = None


class Outcome(StrEnum):
    """What happens to one message for one recipient."""

    PERMIT = "permit"
    PERMIT_REDACTED = "permit_redacted"
    DENY = "deny"
    AWAIT_CONSENT = "await_consent"
    AWAIT_ANSWER = "await_answer"
    """The message waits for social services' answer to a question the rules need (hidden residence)."""

    @property
    def waits(self) -> bool:
        """Whether the message is parked until something arrives (a consent, an answer)."""
        return self in {Outcome.AWAIT_CONSENT, Outcome.AWAIT_ANSWER}


@dataclass(frozen=True)
class DecisionRequest:
    """One message for one recipient, as the router sees it.

    Attributes:
        message_id: the intent's message id (the ledger is idempotent on it and ``recipient_id``).
        event: the message's event code.
        child: the child's keyed pseudonym.
        sender_kind: the kind of agency that sent the message, when known.
        recipient_id: the recipient's id in the routing directory.
        recipient_kind: the recipient's kind of agency.
        at: when the decision is made.
        bundle: the message Bundle as this recipient would receive it (plain JSON data).
        guardian_facing: the recipient shows what it receives to the guardians (e.g. a guardian portal).
        recipient_identifiers: the recipient's own identifiers (system, value), as a release names them.
        sender_private: the sender is a private provider (independent school, private care): professional
            confidentiality binds it, not OSL, and the ledger says so.
        answers: for an answer (a Task status), the request it answers: an answer rule decides on that
            request's basis (``None``: not an answer, or the request is not known).
    """

    message_id: str
    event: EventCode
    child: str
    recipient_id: str
    recipient_kind: AgencyKind
    at: dt.datetime
    bundle: Mapping[str, Any]
    sender_kind: AgencyKind | None = None
    guardian_facing: bool = False
    recipient_identifiers: tuple[tuple[str, str], ...] = ()
    sender_private: bool = False
    answers: AnsweredRequest | None = None


@dataclass(frozen=True)
class Decision:
    """A decision with its reason, legal basis and the rule (id and version) that made it.

    Attributes:
        removed: for ``permit_redacted``, the JSON paths removed from the Bundle (see :func:`redact`).
        security: ``meta.security`` labels (system, code) the delivered Bundle must carry (see
            :func:`sambus.consent.labels.labelled`): every protection in force, whatever the sender put.
        waiting_for: for ``await_consent`` and ``await_answer``, what the message waits for, as the
            initiator may be told it (which consent: purpose and kind of recipient; or which answer; no
            custody, consent ids or other personal data).
        lapsed: for a ``deny`` because the consent the sharing rested on no longer holds, how it lapsed
            (``withdrawn`` or ``objected``): for a denied answer, the requester is told that its request
            will not be answered through sambus (see :mod:`sambus.router.stages.delivery`).
    """

    outcome: Outcome
    reason: str
    legal_basis: str
    rule_id: str
    rule_version: int
    removed: tuple[str, ...] = ()
    security: tuple[Label, ...] = ()
    waiting_for: str | None = None
    lapsed: str | None = None


class Decider(Protocol):
    """Anything that decides per recipient."""

    def decide(self, request: DecisionRequest) -> Decision:
        """Decide one message for one recipient."""
        ...


def _decision(
    rule: Rule,
    outcome: Outcome,
    reason: str,
    removed: tuple[str, ...] = (),
    security: tuple[Label, ...] = (),
) -> Decision:
    return Decision(
        outcome=outcome,
        reason=reason,
        legal_basis=rule.basis.provision,
        rule_id=rule.id,
        rule_version=rule.version,
        removed=removed,
        security=security,
    )


_RESIDENCE_EVENTS = frozenset({EventCode.PLACEMENT_STARTED, EventCode.PLACEMENT_CHANGED})


def _tasks(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = bundle.get("entry")
    return [
        resource
        for entry in (entries if isinstance(entries, list) else ())
        if isinstance(entry, Mapping)
        and isinstance(resource := entry.get("resource"), Mapping)
        and resource.get("resourceType") == "Task"
    ]


def _has_coding(element: Any, system: str, code: str) -> bool:  # noqa: ANN401 - JSON data
    codings = element.get("coding") if isinstance(element, Mapping) else None
    return isinstance(codings, list) and any(
        isinstance(c, Mapping) and c.get("system") == system and c.get("code") == code for c in codings
    )


def _carried_answer(bundle: Mapping[str, Any]) -> bool | None:
    """The hidden-residence answer a placement notice carries (``Task.input``), if it carries one."""
    for task in _tasks(bundle):
        for item in task.get("input") or ():
            if (
                isinstance(item, Mapping)
                and _has_coding(item.get("type"), TASK_INPUT_SYSTEM, HIDDEN_RESIDENCE_ANSWER)
                and isinstance(item.get("valueBoolean"), bool)
            ):
                return bool(item["valueBoolean"])
    return None


def _lvu_residence(request: DecisionRequest) -> bool:
    """An LVU placement notice (start or change) with residence-revealing data in it."""
    if request.event not in _RESIDENCE_EVENTS or not residence_paths(request.bundle):
        return False
    tasks = _tasks(request.bundle)
    return any(_has_coding(task.get("reasonCode"), PLACEMENT_SYSTEM, "lvu") for task in tasks)


class ConsentPolicy:
    """Decides per recipient by the rules, the consents in the registry and the protection decisions."""

    def __init__(self, registry: ConsentRegistry, rules: RuleSet | None = None) -> None:
        """Decide with ``registry`` by ``rules`` (by default the rule file of the checkout)."""
        self._registry = registry
        self._rules = rules if rules is not None else RuleSet.load()
        self._applying: dict[tuple[EventCode, AgencyKind | None, AgencyKind], tuple[Rule, ...]] = {}
        """The rules that apply to each (event, sender, recipient) asked about, in file order: found once
        in the rule set, which a policy keeps for its life (at most as many triples as the enumerations)."""
        self._organisations: dict[tuple[tuple[str, str], ...], frozenset[str]] = {}
        """``Scope.organisations`` of each recipient's identifiers asked about (one entry per organisation
        of the routing directory asked about)."""

    def _find(
        self, event: EventCode, sender: AgencyKind | None, recipient: AgencyKind, *, assessed: str | None
    ) -> Rule:
        """``RuleSet.find``, with the rules that apply to the triple found once."""
        key = (event, sender, recipient)
        applying = self._applying.get(key)
        if applying is None:
            applying = self._applying[key] = self._rules.applying(event, sender, recipient)
        return first_rule(applying, assessed=assessed)

    def _scope(self, request: DecisionRequest) -> Scope:
        """``Scope.of`` the request's recipient and process, the recipient's part worked out once."""
        identifiers = request.recipient_identifiers
        organisations = self._organisations.get(identifiers)
        if organisations is None:
            organisations = self._organisations[identifiers] = Scope.of(identifiers, None).organisations
        return Scope(organisations, process_of(request.bundle))

    def decide(self, request: DecisionRequest) -> Decision:
        """Decide whether a message may reach a recipient.

        The first rule that applies to the event, sender and recipient kind decides: a duty permits, a
        "får"-provision permits when the message carries a professional's assessment naming it, a consent
        basis permits while a consent is in force (else the message awaits consent), ``deny`` and no rule at
        all deny. A permitted message loses its residence-revealing data while hidden residence or
        protected personal data applies (see :meth:`_protect`). The legal basis names the provision and the
        secrecy it breaks: a private sender's tystnadsplikt in place of OSL.
        """
        assessment = secrecy_assessment(request.bundle)
        rule = self._find(
            request.event,
            request.sender_kind,
            request.recipient_kind,
            assessed=assessment.provision if assessment is not None else None,
        )
        secrecy = self._rules.secrecy_of(request.sender_kind, private=request.sender_private)
        if rule.basis.kind == "answer":
            return self._answer(request, rule, secrecy)
        decision = self._by_rule(request, rule, assessment)
        return replace(decision, legal_basis=rule.legal_basis(secrecy))

    def _answer(self, request: DecisionRequest, rule: Rule, secrecy: str) -> Decision:
        """An answer goes on the basis of the request it answers, under the answer rule's id and version.

        The request's rule is found as the request was decided: its event, from the asker (this answer's
        recipient) to the answerer (this answer's sender), with the assessment it carried. Where it rested
        on consent, the consent is checked again now: after a withdrawal the answer is denied (withdrawn).
        An answer to a request that is not known, or that no rule allowed, is denied.
        """
        asked = request.answers
        if asked is None or request.sender_kind is None:
            return _decision(
                rule,
                Outcome.DENY,
                f"the request this {request.event} answers is not known, and an answer goes only on its "
                "request's basis",
            )
        origin = self._find(asked.event, request.recipient_kind, request.sender_kind, assessed=asked.assessed)
        if origin.outcome == "deny" or origin.basis.kind in {"none", "answer"}:
            return _decision(
                rule,
                Outcome.DENY,
                f"the {asked.event} request it answers had no basis ({origin.id}), so neither has the answer",
            )
        decided = self._by_rule(request, origin, None)
        return replace(
            decided,
            reason=f"answers a {asked.event} request made on {origin.id}@{origin.version}: {decided.reason}",
            legal_basis=origin.legal_basis(secrecy),
            rule_id=rule.id,
            rule_version=rule.version,
        )

    def _by_rule(
        self, request: DecisionRequest, rule: Rule, assessment: SecrecyAssessment | None
    ) -> Decision:
        route = f"{request.event} to {request.recipient_kind}"
        if rule.outcome == "deny":
            return _decision(rule, Outcome.DENY, f"no rule allows {route}")
        county = self._registry.county
        consent_basis = rule.basis.kind == "consent" and rule.basis.purpose is not None
        known = self._registry.assess(
            child=request.child,
            at=request.at,
            purpose=rule.basis.purpose if consent_basis else None,
            agency_kind=request.recipient_kind,
            scope=self._scope(request),
        )
        age = known.age
        if age is not None and age > county.placed_upper_age:
            return _decision(
                rule, Outcome.DENY, f"the person is {age}, outside {county.county}'s target group"
            )
        if known.consent is not None:
            if known.consent.consent_id is None and (known.consent.withdrawn or known.consent.objected):
                return replace(
                    _decision(rule, Outcome.DENY, known.consent.reason),
                    lapsed="objected" if known.consent.objected else "withdrawn",
                )
            if known.consent.consent_id is None:
                return replace(
                    _decision(rule, Outcome.AWAIT_CONSENT, known.consent.reason),
                    waiting_for=f"a consent for {rule.basis.purpose} covering {request.recipient_kind}",
                )
            reason = f"{known.consent.reason} covers {rule.basis.purpose} with {request.recipient_kind}"
        elif rule.basis.kind == "provision" and assessment is not None:
            reason = (
                f"{assessment.provision} allows {route}, as {assessment.assessed_by} assessed "
                "(a professional's assessment, not consent)"
            )
        else:
            reason = f"{rule.basis.provision} allows {route}"
        if age is not None and age >= ADULT_AGE:
            reason += f" (the young person is {age})"
        protections = known.protections | labelled_protections(request.bundle)
        carried = _carried_answer(request.bundle)
        if carried is True:
            protections |= {Protection.HIDDEN_RESIDENCE}
        if (
            Protection.HIDDEN_RESIDENCE not in protections
            and not known.residence_answered
            and carried is None
            and _lvu_residence(request)
        ):
            return replace(
                _decision(
                    rule,
                    Outcome.AWAIT_ANSWER,
                    f"{reason}; waits: an LVU placement's residence goes out only when social services has "
                    "answered whether it is hidden from the guardians (LVU 14 § second paragraph point 2)",
                ),
                waiting_for="social services' answer whether the residence is hidden (LVU 14 §)",
            )
        return self._protect(request, rule, reason, protections)

    def _protect(
        self, request: DecisionRequest, rule: Rule, reason: str, protections: frozenset[Protection]
    ) -> Decision:
        """Protect residence data (:meth:`_residence`), then the content under secrecy against the guardians.

        While secrecy applies against the guardians (OSL 12:3), a recipient that faces the guardians gets
        the message without its content (:func:`~sambus.consent.residence.guardian_secret_paths`), and the
        reason says so.
        """
        decision = self._residence(request, rule, reason, protections)
        if Protection.SECRET_FROM_GUARDIANS not in protections or not request.guardian_facing:
            return decision
        removed = tuple(dict.fromkeys((*decision.removed, *guardian_secret_paths(request.bundle))))
        return replace(
            decision,
            outcome=Outcome.PERMIT_REDACTED,
            reason=f"{decision.reason}; content removed ({Protection.SECRET_FROM_GUARDIANS.shown}: the "
            "recipient faces the guardians)",
            removed=removed,
        )

    def _residence(
        self, request: DecisionRequest, rule: Rule, reason: str, protections: frozenset[Protection]
    ) -> Decision:
        """Remove residence-revealing data where a protection demands it, and label what is delivered.

        Protected identity (any level): nobody gets residence data unless a named person at social services
        released this message to this recipient. Hidden residence: a guardian-facing recipient never gets
        it, and a recipient whose rule states no need for it does not either.
        """
        if not protections:
            return _decision(rule, Outcome.PERMIT, reason)
        security = security_for(protections)
        paths = residence_paths(request.bundle)
        if not paths:
            return _decision(rule, Outcome.PERMIT, reason, security=security)
        identity = protections & IDENTITY_PROTECTIONS
        if identity:
            shown = ", ".join(p.shown for p in sorted(identity))
            release = self._registry.release_for(
                child=request.child,
                message_id=request.message_id,
                recipient_id=request.recipient_id,
                identifiers=request.recipient_identifiers,
            )
            if release is None:
                return _decision(
                    rule,
                    Outcome.PERMIT_REDACTED,
                    f"{reason}; residence data removed ({shown}: nobody gets it unless social services "
                    "releases it)",
                    removed=paths,
                    security=security,
                )
            reason = (
                f"{reason}; residence data released ({shown}) by {release.released_by} "
                f"in release {release.release_id}"
            )
        if Protection.HIDDEN_RESIDENCE in protections and (
            request.guardian_facing or not rule.residence_need
        ):
            why = (
                "the recipient faces the guardians"
                if request.guardian_facing
                else "the recipient has no need"
            )
            return _decision(
                rule,
                Outcome.PERMIT_REDACTED,
                f"{reason}; residence data removed ({Protection.HIDDEN_RESIDENCE.shown}: {why})",
                removed=paths,
                security=security,
            )
        return _decision(rule, Outcome.PERMIT, reason, security=security)


def process_of(bundle: Mapping[str, Any]) -> str | None:
    """The message's process: its Task's ``groupIdentifier`` value, when it has one."""
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and resource.get("resourceType") == "Task":
            group = resource.get("groupIdentifier")
            value = group.get("value") if isinstance(group, Mapping) else None
            if isinstance(value, str) and value:
                return value
    return None


REASON_MAX = 1000
"""The ledger's ``reason`` column holds this many characters."""
_SEVERITY = (
    Outcome.PERMIT,
    Outcome.PERMIT_REDACTED,
    Outcome.AWAIT_CONSENT,
    Outcome.AWAIT_ANSWER,
    Outcome.DENY,
)


def through_relay(decision: Decision, relay: Decision, relay_id: str) -> Decision:
    """What reaches a recipient through a relay that was decided for itself.

    E.g. a school without Cosmic Link, whose SIP messages social services carries. The relay reads what it
    carries, so it needs a basis of its own: the stricter outcome of the two decides, the fields either
    removes are removed, the labels of both are carried, and the reason names the relay's decision. The
    recipient's rule and basis stay those of the recipient (the relay's decision is in the ledger under
    its own).
    """
    outcome = max(decision.outcome, relay.outcome, key=_SEVERITY.index)
    if outcome is Outcome.PERMIT and (decision.removed or relay.removed):
        outcome = Outcome.PERMIT_REDACTED
    return replace(
        decision,
        outcome=outcome,
        reason=f"{decision.reason}; through relay {relay_id}: {relay.outcome} ({relay.reason})"[:REASON_MAX],
        removed=tuple(dict.fromkeys((*decision.removed, *relay.removed))),
        security=tuple(dict.fromkeys((*decision.security, *relay.security))),
        waiting_for=decision.waiting_for or relay.waiting_for,
    )
