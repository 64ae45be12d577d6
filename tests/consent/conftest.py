"""Fixtures for the consent tests: a database on SQLite and on PostgreSQL, people with valid numbers."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sambus.consent import ConsentRegistry, Pseudonymizer
from sambus.contracts.identifiers import luhn_valid
from sambus.router.service.schema import upgrade

KEY = b"p" * 32


def person_number(born: dt.date, serial: int = 0) -> str:
    """A valid 12-digit personnummer for someone born on ``born`` (serial 0..99 picks a different one)."""
    stem = f"{born:%Y%m%d}{serial:03d}"
    for check in range(10):
        if luhn_valid(stem[2:] + str(check)):
            return stem + str(check)
    raise AssertionError("unreachable: some check digit always fits")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _postgres_engine() -> Iterator[sa.Engine]:
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
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    """An empty database: an SQLite file, or a fresh schema on the PostgreSQL server of the tests."""
    if request.param == "sqlite":
        made = sa.create_engine("sqlite:///" + str(tmp_path / "consent.db"))
        yield made
        made.dispose()
    else:
        yield from _postgres_engine()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[sa.Engine]:
    """An SQLite file database, for tests that need no second run on PostgreSQL."""
    made = sa.create_engine("sqlite:///" + str(tmp_path / "consent.db"))
    yield made
    made.dispose()


@pytest.fixture
def pseudonymizer() -> Pseudonymizer:
    return Pseudonymizer(KEY)


@pytest.fixture
def registry(engine, pseudonymizer) -> ConsentRegistry:
    upgrade(engine)
    return ConsentRegistry(engine, pseudonymizer)
