"""Which of many ids a table holds: the batch reads of the seen-events and applied-messages tables.

Both ask "which of these message ids are in the table" for a whole batch at once, in chunks with an
expanding ``IN``; the statement is built once per table (:func:`ids_in`) and run by :func:`ids_among`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

IDS_CHUNK = 500
"""Ids asked about in one statement (SQLite and PostgreSQL both take far more parameters)."""


def ids_in(column: sa.Column[str]) -> sa.Select[str]:
    """The statement :func:`ids_among` runs for ``column``: its values among the ids bound as ``p_ids``.

    Build it once (at import): building it per batch would cost more than running it.
    """
    return sa.select(column).where(column.in_(sa.bindparam("p_ids", expanding=True)))


def ids_among(
    connection: sa.Connection, statement: sa.Select[str] | sa.CompoundSelect[str], ids: Sequence[str]
) -> set[str]:
    """Which of ``ids`` ``statement`` (made by :func:`ids_in`) finds, asked :data:`IDS_CHUNK` at a time.

    Any statement of one column with an expanding ``p_ids`` parameter will do.
    """
    found: set[str] = set()
    for start in range(0, len(ids), IDS_CHUNK):
        found.update(connection.execute(statement, {"p_ids": list(ids[start : start + IDS_CHUNK])}).scalars())
    return found


def rows_among(connection: sa.Connection, statement: sa.Select[Any], ids: Sequence[str]) -> list[sa.Row[Any]]:
    """The rows ``statement`` (its expanding ``p_ids`` parameter bound to ``ids``) finds, in chunks."""
    found: list[sa.Row[Any]] = []
    for start in range(0, len(ids), IDS_CHUNK):
        found.extend(connection.execute(statement, {"p_ids": list(ids[start : start + IDS_CHUNK])}))
    return found
