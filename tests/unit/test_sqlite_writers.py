"""SQLite writers take turns through a gate: the next writer gets in as soon as a transaction ends.

Real SQLite files and real threads and processes; each test waits for a condition (bounded), never a fixed
sleep.
"""

from __future__ import annotations

import gc
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sambus.router.service.schema import create_engine
from sambus.router.service.sqlite_writers import GatedConnection, gate_for

WAIT_S = 20.0


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


@pytest.fixture
def engine(tmp_path) -> Iterator[sa.Engine]:
    made = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with made.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    yield made
    made.dispose()


def _held(engine: sa.Engine) -> bool:
    gate = gate_for(str(engine.url.database), timeout_s=1)
    return gate._holder is not None  # noqa: SLF001 - the test looks at the gate's state


def test_a_connection_holds_the_gate_from_its_first_write_until_its_transaction_ends(engine) -> None:
    with engine.connect() as conn:
        assert isinstance(conn.connection.dbapi_connection, GatedConnection)
        conn.execute(sa.text("SELECT count(*) FROM t"))
        assert not _held(engine)  # reading takes no turn
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert _held(engine)
        conn.commit()
        assert not _held(engine)
        conn.execute(sa.text("UPDATE t SET n = 2"))
        assert _held(engine)
        conn.rollback()
        assert not _held(engine)


def test_a_writer_waits_for_the_transaction_in_hand_and_goes_on_when_it_ends(engine) -> None:
    done: list[str] = []

    def second() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (2)"))
        done.append("second")

    with engine.connect() as first:
        first.execute(sa.text("INSERT INTO t VALUES (1)"))
        other = threading.Thread(target=second)
        other.start()
        _until(other.is_alive, "the second writer started")
        time.sleep(0.05)  # it had its chance to write: it must still wait
        assert done == []
        first.commit()
        other.join(WAIT_S)
    assert done == ["second"]
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT n FROM t")).scalars()) == [1, 2]


def test_a_thread_writing_through_two_connections_does_not_wait_for_itself(engine) -> None:
    with engine.connect() as first, engine.connect() as second:
        first.execute(sa.text("INSERT INTO t VALUES (1)"))
        first.commit()
        second.execute(sa.text("INSERT INTO t VALUES (2)"))  # no turn held by another: no wait
        assert _held(engine)
        second.commit()
    assert not _held(engine)


def _hold_in_child(path: str, holding, release) -> None:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (10)"))
        holding.set()
        release.wait(WAIT_S)
        conn.commit()
    engine.dispose()


def test_a_writer_in_another_process_waits_for_its_turn(engine, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    holding, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(str(tmp_path / "w.db"), holding, release))
    child.start()
    try:
        assert holding.wait(WAIT_S)
        done: list[float] = []

        def write() -> None:
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO t VALUES (11)"))
            done.append(time.monotonic())

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.05)
        assert done == []  # the other process has the turn
        released_at = time.monotonic()
        release.set()
        writer.join(WAIT_S)
        assert done
        assert done[0] >= released_at
    finally:
        release.set()
        child.join(WAIT_S)
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT n FROM t")).scalars()) == [10, 11]


def test_a_waiting_writer_gets_in_between_two_transactions_of_a_busy_writer(engine) -> None:
    """A writer that frees the lock and takes it again after a few milliseconds (the processes stage, part
    after part of its batch) lets a writer that waited in at once.

    With SQLite's busy handler alone a writer that has waited a while looks again only every 100 ms, and
    missed gap after gap (the ledger waited seconds in the pipeline).
    """
    waiting = threading.Event()
    written: list[str] = []

    def waiter() -> None:
        waiting.set()
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (-1)"))
        written.append("waiter")

    other = threading.Thread(target=waiter)
    with engine.connect() as busy:
        for n in range(200):
            busy.execute(sa.text("INSERT INTO t VALUES (:n)"), {"n": n})
            if n == 0:
                other.start()
                assert waiting.wait(WAIT_S)
            time.sleep(0.5 if n == 0 else 0.03)  # work under the lock (the first long: the waiter waits)
            busy.commit()
            time.sleep(0.003)  # the pause between two transactions
            if written:
                break
    other.join(WAIT_S)
    assert written == ["waiter"]
    assert n < 5, f"the waiting writer got in only after {n + 1} transactions of the busy one"


def test_a_connection_dropped_without_closing_does_not_keep_the_turn(engine, tmp_path: Path) -> None:
    """A writer whose connection was dropped in a transaction (never closed, rolled back by SQLite) gives
    its turn up: the next writer gets in well before the busy timeout."""
    path = str(tmp_path / "w.db")
    dropped = sqlite3.connect(path, factory=GatedConnection, check_same_thread=False)
    dropped.gate = gate_for(path, timeout_s=30)
    dropped.execute("INSERT INTO t VALUES (1)")
    assert _held(engine)
    del dropped
    gc.collect()
    took: list[float] = []

    def write() -> None:  # another thread: this one's own turn would not be waited for
        started = time.monotonic()
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (2)"))
        took.append(time.monotonic() - started)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(60)
    assert took
    assert took[0] < 10  # the busy timeout is 30 s
    with engine.connect() as conn:
        assert list(conn.execute(sa.text("SELECT n FROM t")).scalars()) == [2]
