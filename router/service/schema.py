"""The database schema under Alembic migrations: upgrade it, say where it stands, refuse an old one.

Every table sambus keeps (consent registry, ledger, process state, deadlines, seen events, follow-up facts,
the web audit log) is made and changed only by the revisions in ``migrations/versions``; nothing creates
tables at start-up. ``sambus db upgrade`` runs them; the service, the web service and the commands that
read or write the database first check that the schema is at the newest revision (:func:`require_current`).

A database made before there were migrations has the tables but no ``alembic_version``. :func:`upgrade` adopts
it: it compares the tables with the frozen first schema (:mod:`~sambus.router.service.migrations.baseline`),
creates those missing, marks it as revision ``0001`` and goes on from there; when a table differs it changes
nothing and says what differs.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.schema import ColumnCollectionConstraint

from sambus.contracts.errors import ConfigError, map_errors
from sambus.router.service.migrations import baseline
from sambus.router.service.sqlite_writers import GatedConnection, gate_for

MIGRATIONS = Path(__file__).with_name("migrations")
"""Alembic's script directory (inside the package, so it ships in the wheel)."""

BASELINE = "0001"
"""The revision of the schema sambus made before it had migrations."""

VERSION_TABLE = "alembic_version"

UPGRADE_HINT = "run `sambus db upgrade` (with the same SAMBUS_DATABASE_URL) first"

# Alembic logs which implementation it uses each time it looks at a database, which is every start-up here;
# `sambus db upgrade` says itself what it did.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


class SchemaNotCurrentError(ConfigError):
    """The database's schema is not the one this sambus needs (empty, unversioned, older or newer)."""


class SchemaAdoptionError(ConfigError):
    """A database made before migrations has tables unlike those that sambus made; nothing is changed."""


def create_engine(database_url: str, *, pooled: bool = True) -> sa.Engine:
    """An engine for sambus's database; an SQLite file's folder is created when missing.

    A command that runs once and ends asks for no pool (``pooled=False``): each connection closes when it is
    given back, so none is left open when the command is done.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in {None, "", ":memory:"}:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
    file = url.get_backend_name() == "sqlite" and url.database not in {None, "", ":memory:"}
    options: dict[str, Any] = {"connect_args": {"factory": GatedConnection}} if file else {}
    if not pooled:
        options["poolclass"] = NullPool
    engine = sa.create_engine(url, **options)
    if file:
        gate = gate_for(str(url.database), timeout_s=BUSY_TIMEOUT_MS / 1000)
        sa.event.listen(engine, "connect", _sqlite_write_ahead_log)
        sa.event.listen(engine, "connect", lambda connection, _record: setattr(connection, "gate", gate))
    return engine


BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite writer waits for the write lock (and for its turn, see :mod:`.sqlite_writers`)."""


def _sqlite_write_ahead_log(connection: Any, _record: object) -> None:  # noqa: ANN401 - a DB-API connection
    """SQLite in write-ahead-log mode: readers never wait for a writer, a commit appends to the log.

    sambus's stages (one process per group, see ``sambus run``) share the file; in the default
    rollback-journal mode every reader waits while any of them commits. ``synchronous`` stays FULL: a commit
    is on disk when it returns (the ledger is written before the Kafka transaction commits). Writers still
    take turns, waiting up to ``busy_timeout`` ms, in the order :mod:`.sqlite_writers` gives them.
    """
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:  # noqa: ANN401 - a DB-API cursor
    """Put the file in WAL mode, asking again while another connection holds its write lock.

    SQLite answers "database is locked" to a journal-mode switch at once, without its busy handler, while
    another connection writes (a new file that several processes open together, e.g. four upgrades at once).
    A file already in WAL mode needs no switch.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            return


def alembic_config(connection: sa.Connection | None = None, *, target: Sequence[sa.MetaData] = ()) -> Config:
    """Alembic's configuration: the packaged scripts, the open ``connection``, the tables to compare with."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = list(target) or None
    return config


def head() -> str:
    """The newest revision this sambus knows."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if found is None:  # pragma: no cover - the package ships its revisions
        raise ConfigError(f"no migrations in {MIGRATIONS}")
    return found


def _known() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands.

    Attributes:
        revision: the revision in ``alembic_version``, or ``None`` when there is none.
        head: the newest revision this sambus knows.
        tables: the tables the database has (besides ``alembic_version``).
        known: whether this sambus knows ``revision``.
    """

    revision: str | None
    head: str
    tables: frozenset[str]
    known: bool

    @property
    def current(self) -> bool:
        """Whether the schema is the one this sambus needs."""
        return self.revision == self.head

    def problem(self) -> str | None:
        """What is wrong and what to run, or ``None`` when the schema is current."""
        if self.current:
            return None
        if self.revision is None and not self.tables:
            return f"the database has no sambus tables yet: {UPGRADE_HINT}"
        if self.revision is None:
            return (
                "the database was made by a sambus without schema migrations (it has tables but no "
                f"alembic_version): {UPGRADE_HINT}; it checks the tables and adopts them"
            )
        if not self.known:
            return (
                f"the database schema is at revision {self.revision}, which this sambus does not know (the "
                f"newest it knows is {self.head}): a newer sambus has upgraded it; run that version"
            )
        return (
            f"the database schema is at revision {self.revision}; this sambus needs {self.head}: "
            + UPGRADE_HINT
        )


def _state(connection: sa.Connection) -> SchemaState:
    tables = frozenset(sa.inspect(connection).get_table_names()) - {VERSION_TABLE}
    revision = MigrationContext.configure(connection).get_current_revision()
    return SchemaState(
        revision=revision, head=head(), tables=tables, known=revision is None or revision in _known()
    )


def schema_state(engine: sa.Engine) -> SchemaState:
    """Where ``engine``'s schema stands.

    Raises:
        StoreUnavailableError: the database cannot be reached.
    """
    with map_errors("read the database's schema version"), engine.connect() as connection:
        return _state(connection)


def require_current(engine: sa.Engine) -> None:
    """Refuse a database whose schema is not at the newest revision.

    Raises:
        SchemaNotCurrentError: the schema is missing, unversioned, older or newer (the message says what
            to run).
        StoreUnavailableError: the database cannot be reached.
    """
    problem = schema_state(engine).problem()
    if problem is not None:
        raise SchemaNotCurrentError(problem)


def open_database(database_url: str, *, pooled: bool = True) -> sa.Engine:
    """An engine on ``database_url`` whose schema is current.

    Raises:
        SchemaNotCurrentError: the schema is not at the newest revision (the message says what to run).
        StoreUnavailableError: the database cannot be reached.
    """
    engine = create_engine(database_url, pooled=pooled)
    try:
        require_current(engine)
    except Exception:
        engine.dispose()
        raise
    return engine


def _columns(element: sa.Index | ColumnCollectionConstraint) -> tuple[str, ...]:
    return tuple(str(column.name) for column in element.columns)


def _table(element: sa.Index | ColumnCollectionConstraint) -> str:
    return "" if element.table is None else str(element.table.name)


def _flatten(diffs: Iterable[Any]) -> list[tuple[Any, ...]]:
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        flat.extend(_flatten(diff) if isinstance(diff, list) else [diff])
    return flat


def _describe(diff: tuple[Any, ...]) -> str:
    kind = diff[0]
    if kind in {"add_table", "remove_table"}:
        return f"{kind.replace('_', ' ')} {diff[1].name}"
    if kind in {"add_column", "remove_column"}:
        return f"{kind.replace('_', ' ')} {diff[2]}.{diff[3].name}"
    if kind.startswith("modify_"):
        return f"{diff[2]}.{diff[3]}: {kind.removeprefix('modify_')} is {diff[5]!r}, expected {diff[6]!r}"
    if kind in {"add_index", "remove_index", "add_constraint", "remove_constraint"}:
        element = diff[1]
        unique = (
            " unique" if isinstance(element, sa.UniqueConstraint) or getattr(element, "unique", False) else ""
        )
        what = "index" if kind.endswith("index") else "constraint"
        verb = "add" if kind.startswith("add") else "remove"
        return f"{verb}{unique} {what} on {_table(element)} ({', '.join(_columns(element))})"
    return " ".join(str(part) for part in diff)


def _equivalent_uniques(diffs: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Leave out a unique index the database has where a unique constraint on the same columns is expected.

    ``followup_facts`` made before process ids got its ``process_id`` as a unique index (SQLite cannot add a
    constraint to a table); both refuse a second row with the same value.
    """

    def key(element: sa.Index | ColumnCollectionConstraint) -> tuple[str, tuple[str, ...]]:
        return (_table(element), tuple(sorted(_columns(element))))

    indexes = {key(d[1]) for d in diffs if d[0] == "remove_index" and d[1].unique}
    constraints = {
        key(d[1]) for d in diffs if d[0] == "add_constraint" and isinstance(d[1], sa.UniqueConstraint)
    }
    same = indexes & constraints
    return [
        d
        for d in diffs
        if not (
            (d[0] == "remove_index" and d[1].unique and key(d[1]) in same)
            or (d[0] == "add_constraint" and isinstance(d[1], sa.UniqueConstraint) and key(d[1]) in same)
        )
    ]


def _primary_keys(connection: sa.Connection, metadata: sa.MetaData) -> list[str]:
    """Primary keys that differ (Alembic's comparison does not look at them)."""
    inspector = sa.inspect(connection)
    found: list[str] = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        have = sorted(inspector.get_pk_constraint(table.name)["constrained_columns"])
        want = sorted(column.name for column in table.primary_key.columns)
        if have != want:
            found.append(f"{table.name}: primary key is ({', '.join(have)}), expected ({', '.join(want)})")
    return found


def differences(connection: sa.Connection, metadata: sa.MetaData | Sequence[sa.MetaData]) -> list[str]:
    """How the database's tables differ from ``metadata`` (tables it does not describe are left out)."""
    described = sa.MetaData()
    for each in [metadata] if isinstance(metadata, sa.MetaData) else metadata:
        for table in each.tables.values():
            if table.name not in described.tables:
                table.to_metadata(described)

    def include_name(name: str | None, kind: str, _parent: object) -> bool:
        return kind != "table" or name in described.tables

    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    diffs = _equivalent_uniques(_flatten(compare_metadata(context, described)))
    missing = {d[1].name for d in diffs if d[0] == "add_table"}
    diffs = [
        d
        for d in diffs
        if not (d[0] in {"add_index", "add_constraint"} and _table(d[1]) in missing)  # part of its table
        and not (  # a primary key column is never null, whether or not its DDL said NOT NULL
            d[0] == "modify_nullable" and d[6] is False and d[3] in described.tables[d[2]].primary_key.columns
        )
    ]
    return [_describe(d) for d in diffs] + _primary_keys(connection, described)


_FACTS_BEFORE_PROCESS_IDS = frozenset(
    {"add column followup_facts.process_id", "add unique constraint on followup_facts (process_id)"}
)
"""How a ``followup_facts`` made before process ids differs (sambus at ad1bfd4 added the column)."""


def _adopt(connection: sa.Connection) -> list[str]:
    """Check an unversioned database against the first schema and create what it lacks; returns those.

    Raises:
        SchemaAdoptionError: a table differs (nothing is changed).
    """
    problems = [p for p in differences(connection, baseline.metadata) if not p.startswith("add table ")]
    facts_without_process_ids = set(problems) >= _FACTS_BEFORE_PROCESS_IDS
    if facts_without_process_ids:
        problems = [p for p in problems if p not in _FACTS_BEFORE_PROCESS_IDS]
    if problems:
        raise SchemaAdoptionError(
            "the database has tables from before schema migrations, but they differ from the schema that "
            f"sambus made ({'; '.join(problems)}); nothing was changed. Bring these tables to that schema "
            "(or restore them from a backup) and run `sambus db upgrade` again"
        )
    if facts_without_process_ids:  # as sambus at ad1bfd4 did at start-up (SQLite cannot add a constraint)
        connection.execute(sa.text("ALTER TABLE followup_facts ADD COLUMN process_id VARCHAR(100)"))
        connection.execute(
            sa.text("CREATE UNIQUE INDEX uq_followup_facts_process_id ON followup_facts (process_id)")
        )
    return baseline.create(connection)


@dataclass(frozen=True)
class Upgraded:
    """What :func:`upgrade` did.

    Attributes:
        before: the revision before, ``None`` for an empty or unversioned database.
        after: the revision now.
        adopted: the database had tables but no version; they matched the first schema and were kept.
        created: tables the adoption created because the database did not have them.
    """

    before: str | None
    after: str
    adopted: bool = False
    created: tuple[str, ...] = ()


UPGRADE_LOCK = 0x5A_B0_5D_B0
"""The PostgreSQL advisory lock that one ``sambus db upgrade`` holds while it runs (an arbitrary constant)."""


def _lock_for_upgrade(connection: sa.Connection) -> None:
    """Make a second upgrade of the same database wait for this one, so both see one consistent schema.

    Two upgrades at once (two instances starting, or a migration Job beside an operator) would otherwise both
    read an old revision and both run the same migrations. PostgreSQL takes an advisory lock held until the
    transaction ends; SQLite takes its write lock at once instead of at the first write.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(engine: sa.Engine, revision: str = "head") -> Upgraded:
    """Bring ``engine``'s schema to ``revision`` (the newest by default), in one transaction where it can.

    Raises:
        SchemaAdoptionError: an unversioned database's tables differ from the first schema.
        SchemaNotCurrentError: the database is at a revision this sambus does not know.
        StoreUnavailableError: the database cannot be reached or written.
    """
    with map_errors("upgrade the database schema"), engine.begin() as connection:
        _lock_for_upgrade(connection)
        state = _state(connection)
        if not state.known:
            raise SchemaNotCurrentError(state.problem())
        config = alembic_config(connection)
        adopted = state.revision is None and bool(state.tables)
        created: list[str] = []
        if adopted:
            created = _adopt(connection)
            command.stamp(config, BASELINE)
        command.upgrade(config, revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return Upgraded(before=state.revision, after=str(after), adopted=adopted, created=tuple(created))


def revision(engine: sa.Engine, message: str, target: Sequence[sa.MetaData]) -> Path:
    """Write a new revision from how ``target`` differs from ``engine``'s (current) schema; returns its path.

    For developers, on a database upgraded to the newest revision (an empty SQLite file will do).
    """
    with engine.begin() as connection:
        config = alembic_config(connection, target=target)
        made = command.revision(config, message=message, autogenerate=True, rev_id=f"{int(head()) + 1:04d}")
    scripts = made if isinstance(made, list) else [made]
    return Path(scripts[0].path) if scripts and scripts[0] is not None else MIGRATIONS


__all__ = [
    "BASELINE",
    "MIGRATIONS",
    "SchemaAdoptionError",
    "SchemaNotCurrentError",
    "SchemaState",
    "Upgraded",
    "create_engine",
    "differences",
    "head",
    "open_database",
    "require_current",
    "revision",
    "schema_state",
    "upgrade",
]
