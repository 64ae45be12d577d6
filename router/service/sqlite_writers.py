"""Writers of one SQLite file take turns promptly: a file lock beside the database orders them.

SQLite has one write lock per database file. A writer that finds it taken sleeps in SQLite's busy handler,
which looks again after 1, 2, 5, 10 … and then every 100 ms: a writer that frees the lock and takes it again
within a few milliseconds (the processes stage, transaction after transaction) keeps it for as long as it
has work, and the ledger's appends and intake's seen events waited seconds behind it (75 s in a run of 1,500
events).

Here every connection to the file takes a lock of its own first, on ``<database>-writers``, when it is about
to write (``INSERT``, ``UPDATE``, ``DELETE``, ``REPLACE``, ``BEGIN IMMEDIATE``/``EXCLUSIVE``), and gives it
back when its transaction ends (commit, rollback, close). Threads of one process wait on a lock in memory,
processes on an ``flock`` looked at every millisecond, so a writer that waited gets the lock within about a
millisecond of its release. SQLite itself still decides: the gate only orders who asks it. A writer that
cannot have the gate within the busy timeout goes on without it (SQLite then waits or refuses as before), and
a thread that already writes through another connection to the file does not wait for itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")
"""Statements that take SQLite's write lock (``WITH … INSERT`` is not used by sambus)."""

POLL_S = 0.001
"""How often a writer waiting for another process looks at the file lock again."""

LOOK_S = 0.5
"""How often a writer waiting for another thread looks whether that one's connection was dropped unclosed."""


class WriterGate:
    """The turn of one database file's writers, in this process and between processes."""

    def __init__(self, path: str, *, timeout_s: float) -> None:
        """Order the writers of the SQLite file ``path``; each waits at most ``timeout_s`` for its turn."""
        self._path = f"{path}-writers"
        self._timeout_s = timeout_s
        self._local = threading.Lock()
        self._reaping = threading.Lock()
        self._holder: int | None = None  # the thread whose connection holds the gate
        self._held_by: weakref.ref[GatedConnection] | None = None  # ... and that connection
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # opened again in a child process
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, connection: GatedConnection) -> bool:
        """Wait for ``connection``'s turn to write; whether it holds the gate (and must :meth:`release` it).

        ``False`` when this thread holds it already (through another connection), or after the timeout.
        """
        me = threading.get_ident()
        if self._holder == me:
            return False
        deadline = time.monotonic() + self._timeout_s
        while not self._local.acquire(timeout=min(LOOK_S, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return False
            held_by = self._held_by
            if held_by is not None and held_by() is None:  # dropped without closing: its turn is over
                with self._reaping:
                    if self._held_by is held_by:
                        self.release()
        try:
            fd = self._file()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        self._local.release()
                        return False
                    time.sleep(POLL_S)
        except BaseException:
            self._local.release()
            raise
        self._holder = me
        self._held_by = weakref.ref(connection)
        return True

    def release(self) -> None:
        """Let the next writer in."""
        self._holder = None
        self._held_by = None
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._local.release()


_GATES: dict[str, WriterGate] = {}
_GATES_LOCK = threading.Lock()


def gate_for(path: str, *, timeout_s: float) -> WriterGate:
    """The one gate of the file ``path`` in this process."""
    key = os.path.realpath(path)
    with _GATES_LOCK:
        if key not in _GATES:
            _GATES[key] = WriterGate(key, timeout_s=timeout_s)
        return _GATES[key]


def _writes(sql: str) -> bool:
    return sql.lstrip()[:16].upper().startswith(WRITES)


class GatedConnection(sqlite3.Connection):
    """An SQLite connection that waits for its gate's turn before it writes (see the module)."""

    gate: WriterGate | None = None
    _gated = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]  # noqa: ANN401
        """A cursor whose writes wait for the gate."""
        return super().cursor(factory or GatedCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # noqa: ANN401
        """As :meth:`sqlite3.Connection.execute`, through a gated cursor."""
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:  # noqa: ANN401
        """As :meth:`sqlite3.Connection.executemany`, through a gated cursor."""
        return self.cursor().executemany(sql, parameters)

    def before_write(self, sql: str) -> None:
        """Take the gate before a statement that writes, unless this connection has it."""
        if not self._gated and self.gate is not None and _writes(sql):
            self._gated = self.gate.acquire(self)

    def after_statement(self) -> None:
        """A statement outside a transaction (autocommit) has already committed: give the gate back."""
        if self._gated and not self.in_transaction:
            self._release()

    def _release(self) -> None:
        if self._gated and self.gate is not None:
            self._gated = False
            self.gate.release()

    def commit(self) -> None:
        """Commit, then let the next writer in."""
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._release()

    def rollback(self) -> None:
        """Roll back, then let the next writer in."""
        try:
            super().rollback()
        finally:
            if not self.in_transaction:
                self._release()

    def close(self) -> None:
        """Close (what was not committed is rolled back), then let the next writer in."""
        try:
            super().close()
        finally:
            self._release()


class GatedCursor(sqlite3.Cursor):
    """A cursor of a :class:`GatedConnection`."""

    def execute(self, sql: str, parameters: Any = (), /) -> GatedCursor:  # noqa: ANN401
        """Execute ``sql``, after the gate when it writes."""
        with self._turn(sql):
            super().execute(sql, parameters)
        return self

    def executemany(self, sql: str, parameters: Any, /) -> GatedCursor:  # noqa: ANN401
        """Execute ``sql`` for each of ``parameters``, after the gate when it writes."""
        with self._turn(sql):
            super().executemany(sql, parameters)
        return self

    @contextlib.contextmanager
    def _turn(self, sql: str) -> Iterator[None]:
        connection = self.connection
        if not isinstance(connection, GatedConnection):
            yield
            return
        connection.before_write(sql)
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile
                connection.after_statement()
