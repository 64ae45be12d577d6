"""Inserts held back within a transaction and run as one ``executemany`` per statement.

The processes stage writes a batch of messages in one transaction without savepoints. Most of its
statements are inserts of new rows (a process, its follow-up fact, its Tasks, its deadlines) that nothing
reads before the next statement of another kind. Those are held here and run, one ``executemany`` per
statement in the order each was first held, right before the transaction's next other statement (an
``execute`` listener on the connection) or its commit. Every other statement, read or write, therefore
sees exactly the rows it saw when each insert ran at once: only when the inserts reach the database
changes. A failed held insert surfaces in a later statement: the batch's transaction is then rolled back
and written again with a savepoint per message (no rows held), as after any failure.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

_HOLDING: contextvars.ContextVar[WriteBehind | None] = contextvars.ContextVar("write-behind", default=None)


class WriteBehind:
    """The inserts held for one connection's transaction (in this thread or asyncio task)."""

    def __init__(self, connection: sa.Connection) -> None:
        """Hold inserts made through :func:`insert` on ``connection`` until its next other statement."""
        self.connection = connection
        self._rows: dict[sa.Executable, list[Mapping[str, Any]]] = {}
        self._flushing = False
        sa.event.listen(connection, "before_execute", self._before_execute)
        _HOLDING.set(self)

    def add(self, statement: sa.Executable, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        """Hold ``rows`` (one or several) for ``statement``, an ``INSERT`` built once.

        An ``executemany`` takes the columns of its first row for every row: a row with other columns than
        those held for the statement first has what is held run.
        """
        for row in [rows] if isinstance(rows, Mapping) else rows:
            held = self._rows.get(statement)
            if held is None:
                self._rows[statement] = [row]
                continue
            if held[0].keys() != row.keys():
                self.flush()
                self._rows[statement] = [row]
                continue
            held.append(row)

    def flush(self) -> None:
        """Run what is held, one ``executemany`` per statement in the order each was first held."""
        if not self._rows or self._flushing:
            return
        held, self._rows = self._rows, {}
        self._flushing = True
        try:
            for statement, rows in held.items():
                self.connection.execute(statement, rows)
        finally:
            self._flushing = False

    def _before_execute(self, *_args: object) -> None:
        self.flush()

    def close(self) -> None:
        """Stop holding (what is still held is dropped: call :meth:`flush` first to keep it)."""
        self._rows = {}
        if _HOLDING.get() is self:
            _HOLDING.set(None)
        sa.event.remove(self.connection, "before_execute", self._before_execute)


def insert(
    connection: sa.Connection, statement: sa.Executable, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` with ``statement``: held if a :class:`WriteBehind` holds ``connection``, else now."""
    holding = _HOLDING.get()
    if holding is not None and holding.connection is connection:
        holding.add(statement, rows)
    else:
        connection.execute(statement, rows)
