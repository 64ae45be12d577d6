"""One mapping from database and broker errors to sambus errors: ``contracts.errors.map_errors``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from aiokafka.errors import KafkaConnectionError

from sambus.contracts.errors import (
    BrokerUnavailableError,
    InvalidEventError,
    StoreUnavailableError,
    cause_chain,
    map_errors,
)

PERSONNUMMER = "20120315-0006"


def test_a_database_error_becomes_store_unavailable_without_the_statement_or_its_values():
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (pnr TEXT PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO t VALUES (:p)"), {"p": PERSONNUMMER})

    with (
        pytest.raises(StoreUnavailableError) as caught,
        map_errors("record the child"),
        engine.begin() as conn,
    ):
        conn.execute(sa.text("INSERT INTO t VALUES (:p)"), {"p": PERSONNUMMER})

    assert str(caught.value) == "cannot record the child"
    assert PERSONNUMMER in str(caught.value.__cause__), "the original (kept as the cause) does quote it"
    assert caught.value.retriable


@pytest.mark.asyncio
async def test_a_broker_error_becomes_broker_unavailable_with_its_reason_across_an_await():
    async def connect() -> None:
        raise KafkaConnectionError("no route to host")

    with (
        pytest.raises(BrokerUnavailableError, match=r"^cannot connect stage intake: .*no route to host"),
        map_errors("connect stage intake"),
    ):
        await connect()


def test_sambus_errors_and_other_exceptions_pass_unchanged():
    with pytest.raises(InvalidEventError, match="bad"), map_errors("read"):
        raise InvalidEventError("bad")
    with pytest.raises(KeyError), map_errors("read"):
        raise KeyError("x")


def test_importing_the_mapping_imports_neither_library():
    probe = (
        "import sys, sambus.contracts.errors; print('aiokafka' in sys.modules, 'sqlalchemy' in sys.modules)"
    )

    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert result.stdout.split() == ["False", "False"]


def test_a_cause_chain_names_each_type_and_database_code_but_no_message():
    engine = sa.create_engine("sqlite://")
    with pytest.raises(StoreUnavailableError) as caught, map_errors("read"), engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM children WHERE pnr = :p"), {"p": PERSONNUMMER})
    engine.dispose()

    chain = cause_chain(caught.value)

    assert chain == "StoreUnavailableError <- OperationalError <- OperationalError [SQLITE_ERROR]"
    assert PERSONNUMMER in str(caught.value.__cause__), "the cause's text quotes it; the chain does not"


def test_a_cause_chain_follows_implicit_context_and_stops_at_a_cycle():
    first = ValueError(PERSONNUMMER)
    second = KeyError("x")
    second.__context__ = first
    first.__context__ = second

    assert cause_chain(second) == "KeyError <- ValueError"
