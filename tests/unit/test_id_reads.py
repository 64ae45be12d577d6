"""ids_among: which of many ids a table holds, asked in chunks (the seen-events and applied-ids reads)."""

from __future__ import annotations

import sqlalchemy as sa

from sambus.router.stages.id_reads import IDS_CHUNK, ids_among, ids_in

_metadata = sa.MetaData()
_table = sa.Table("ids", _metadata, sa.Column("message_id", sa.String(64), primary_key=True))
_AMONG = ids_in(_table.c.message_id)


def test_every_chunk_is_asked_and_only_the_held_ids_are_found() -> None:
    engine = sa.create_engine("sqlite://")
    _metadata.create_all(engine)
    held = {f"m-{n:04}" for n in range(0, 3 * IDS_CHUNK, 7)} | {f"m-{2 * IDS_CHUNK + 1:04}"}
    asked = [f"m-{n:04}" for n in range(2 * IDS_CHUNK + 2)] + ["absent"]  # three chunks, the last short
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with engine.begin() as conn:
        conn.execute(_table.insert(), [{"message_id": m} for m in sorted(held)])
        statements.clear()

        found = ids_among(conn, _AMONG, asked)

    assert found == held & set(asked)
    assert f"m-{2 * IDS_CHUNK + 1:04}" in found  # in the third chunk
    assert len(statements) == 3


def test_no_ids_ask_nothing() -> None:
    engine = sa.create_engine("sqlite://")
    _metadata.create_all(engine)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with engine.connect() as conn:
        assert ids_among(conn, _AMONG, []) == set()
    assert statements == []
