"""``sambus dlq``: list the dead letters and replay them (consent is decided again at replay)."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sambus.contracts.errors import SambusError
from sambus.router.cli.common import configured_broker
from sambus.router.kafka.admin import run_sync
from sambus.router.kafka.connection import KafkaConnection
from sambus.router.kafka.dead_letters import DeadLetter, read_dead_letters, replay
from sambus.router.service.consent_wiring import dead_letter_cipher
from sambus.router.settings import Settings

dlq_app = typer.Typer(help="Dead letters on sambus.dlq: list them, replay them.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _broker(settings: Settings) -> KafkaConnection:
    return KafkaConnection.from_settings(settings, configured_broker(settings))


def matches(letter: DeadLetter, *, refs: list[str], error: str | None, source: str | None) -> bool:
    """Whether a dead letter is named (``refs``) or fits the filters (error code, source topic substring)."""
    if refs and letter.ref not in refs:
        return False
    if error is not None and letter.error != error:
        return False
    return source is None or source in letter.source_topic


RefOption = Annotated[
    list[str] | None, typer.Option("--ref", help="A dead letter as <partition>:<offset> (repeatable).")
]
ErrorOption = Annotated[str | None, typer.Option(help="Only dead letters with this error code.")]
SourceOption = Annotated[str | None, typer.Option(help="Only dead letters whose source topic contains this.")]


@dlq_app.command("list")
def dlq_list(ref: RefOption = None, error: ErrorOption = None, source: SourceOption = None) -> None:
    """Show the dead letters: where from, why, how many attempts, and whether they were replayed."""
    settings = Settings()
    try:
        letters = run_sync(read_dead_letters(_broker(settings), settings.topics()))
    except SambusError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    shown = [d for d in letters if matches(d, refs=ref or [], error=error, source=source)]
    table = Table(title=f"Dead letters ({len(shown)} of {len(letters)})")
    for column in ("ref", "error", "source topic", "size", "attempts", "replayed", "reason"):
        table.add_column(column, overflow="fold")
    for d in shown:
        replayed = "yes" if d.replayed else "no" if d.kept else "not kept"
        table.add_row(d.ref, d.error, d.source_topic, str(d.size), str(d.attempts), replayed, d.reason)
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    ref: RefOption = None,
    error: ErrorOption = None,
    source: SourceOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter not yet replayed.")] = False,
) -> None:
    """Put dead letters back on their source topics: one (--ref), a filter (--error, --source) or --all.

    A dead letter already replayed is never replayed again. With --ref only the named dead letters are read
    (each at its partition and offset), not the whole dead-letter topic.
    """
    if not (ref or error or source or all_):
        errors.print("[bold red]error:[/] say what to replay: --ref, --error, --source or --all")
        raise typer.Exit(code=2)
    settings = Settings()
    try:
        done = run_sync(
            replay(
                _broker(settings),
                settings.topics(),
                lambda d: matches(d, refs=ref or [], error=error, source=source),
                transactional_id=f"{settings.topic_prefix}sambus-dlq-replay-{secrets.token_hex(4)}",
                cipher=dead_letter_cipher(settings),
                refs=ref or None,  # named letters are read at their offsets; filters alone read them all
            )
        )
    except SambusError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    console.print(
        f"Replayed {len(done)} dead letter(s)." + "".join(f"\n  {d.ref} → {d.source_topic}" for d in done)
    )
