"""Databases for the migration tests: an empty one on SQLite or PostgreSQL, and main's (ad1bfd4) with data."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

SNAPSHOT = json.loads((Path(__file__).parent / "main_ad1bfd4.json").read_text(encoding="utf-8"))
"""What main at ad1bfd4 made: its DDL per dialect and rows written through its API (make_main_snapshot.py)."""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _postgres_url() -> Iterator[str]:
    """A URL whose connections see only a fresh schema of the tests' PostgreSQL server."""
    url = os.environ.get("SAMBUS_TEST_POSTGRES_URL")
    if not url:
        message = "no PostgreSQL: set SAMBUS_TEST_POSTGRES_URL (deploy/postgres/with-postgres.sh does)"
        if _in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> Iterator[str]:
    """The URL of an empty database: an SQLite file, or a fresh schema on the tests' PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sambus.db'}"
    else:
        yield from _postgres_url()


@pytest.fixture
def engine(database_url) -> Iterator[sa.Engine]:
    made = sa.create_engine(database_url)
    yield made
    made.dispose()


def _value(value: Any) -> Any:
    if isinstance(value, dict) and "datetime" in value:
        return dt.datetime.fromisoformat(value["datetime"])
    if isinstance(value, dict) and "date" in value:
        return dt.date.fromisoformat(value["date"])
    return value


def load_main_schema(engine: sa.Engine, *, ddl: list[str] | None = None, rows: bool = True) -> None:
    """Make in ``engine`` what main at ad1bfd4 made: its exact DDL, then (``rows``) the rows it wrote."""
    statements = SNAPSHOT["ddl"][engine.dialect.name] if ddl is None else ddl
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
        if not rows:
            return
        found = sa.MetaData()
        found.reflect(conn)
        for name, table_rows in SNAPSHOT["rows"].items():
            conn.execute(
                found.tables[name].insert(), [{k: _value(v) for k, v in r.items()} for r in table_rows]
            )
        if engine.dialect.name == "postgresql":  # as if the rows had been inserted one by one
            for table, column in (("ledger_queries", "id"), ("followup_facts", "id"), ("web_audit", "seq")):
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "  # noqa: S608 - our names
                        f"(SELECT max({column}) FROM {table}))"
                    )
                )


def table_rows(engine: sa.Engine) -> dict[str, int]:
    """How many rows each table has (``alembic_version`` left out)."""
    found = sa.MetaData()
    found.reflect(engine)
    with engine.connect() as conn:
        return {
            name: int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
            for name, table in sorted(found.tables.items())
            if name != "alembic_version"
        }
