"""``sambus db``: bring the database schema to the newest revision, show where it stands, check it."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console

from sambus.consent import compliance, registry
from sambus.contracts.errors import ConfigError, SambusError
from sambus.router.cli.common import command_database
from sambus.router.service.schema import (
    differences,
    head,
    revision,
    schema_state,
    upgrade,
)
from sambus.router.settings import Settings
from sambus.router.stages import deadlines, processes, seen_events
from sambus.router.stats import indicators
from sambus.router.web import audit

TABLES: tuple[sa.MetaData, ...] = (
    registry.metadata,
    compliance.queries.metadata,  # the ledger's tables and its query log
    processes.metadata,
    deadlines.metadata,
    seen_events.metadata,
    indicators.metadata,
    audit.metadata,
)
"""Every table the code describes; the migrations must end at exactly these (``sambus db check``)."""

db_app = typer.Typer(
    help="The database schema (Alembic migrations): upgrade it before `sambus run`, show it, check it.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)


def _fail(exc: SambusError) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2 if isinstance(exc, ConfigError) else 1)


def _engine() -> sa.Engine:
    return command_database(Settings(), checked=False)


@db_app.command("upgrade")
def upgrade_command(
    to: Annotated[str, typer.Option("--to", help="The revision to upgrade to.")] = "head",
) -> None:
    """Create or upgrade every table to the newest revision (adopts a database made before migrations)."""
    try:
        engine = _engine()
        done = upgrade(engine, to)
    except SambusError as exc:
        raise _fail(exc) from exc
    if done.adopted:
        console.print(
            "The database was made before schema migrations; its tables match the first schema and were kept"
            + (f" (created the missing {', '.join(done.created)})." if done.created else ".")
        )
    if done.before == done.after:
        console.print(f"The database schema is at revision {done.after}; nothing to do.")
    else:
        console.print(f"The database schema is at revision {done.after} (was {done.before or 'none'}).")


@db_app.command("current")
def current_command() -> None:
    """Show the database's revision and the newest this sambus knows."""
    try:
        state = schema_state(_engine())
    except SambusError as exc:
        raise _fail(exc) from exc
    console.print(f"revision: {state.revision or 'none'}; newest: {state.head}")
    problem = state.problem()
    console.print(problem or "The schema is current.", highlight=False)


@db_app.command("check")
def check_command() -> None:
    """Exit 0 only when the schema is at the newest revision and its tables are those the code describes."""
    try:
        engine = _engine()
        state = schema_state(engine)
        problem = state.problem()
        if problem is None:
            with engine.connect() as connection:
                found = differences(connection, TABLES)
            if found:
                problem = "the tables differ from those the code describes: " + "; ".join(found)
    except SambusError as exc:
        raise _fail(exc) from exc
    if problem is not None:
        errors.print(f"[bold red]error:[/] {problem}", highlight=False)
        raise typer.Exit(code=1)
    console.print(f"The schema is at revision {state.head}, the newest, and matches the code's tables.")


@db_app.command("revision")
def revision_command(
    message: Annotated[str, typer.Option("--message", "-m", help="What the revision changes.")],
) -> None:
    """For developers: write a new revision from how the code's tables differ from the (upgraded) database."""
    try:
        engine = _engine()
        if schema_state(engine).revision != head():
            raise ConfigError("run `sambus db upgrade` first: a new revision starts from the newest one")
        path = revision(engine, message, TABLES)
    except SambusError as exc:
        raise _fail(exc) from exc
    console.print(f"Wrote {path}; read it, then commit it.", highlight=False)
