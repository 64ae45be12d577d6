"""Write-behind: held inserts reach the database before any other statement of the transaction, in order."""

from __future__ import annotations

import sqlalchemy as sa

from sambus.router.stages.write_behind import WriteBehind, insert

_metadata = sa.MetaData()
_first = sa.Table("first", _metadata, sa.Column("n", sa.Integer, primary_key=True))
_second = sa.Table("second", _metadata, sa.Column("n", sa.Integer, primary_key=True))
_INTO_FIRST = _first.insert()
_INTO_SECOND = _second.insert()


def _engine() -> tuple[sa.Engine, list[tuple[str, int]]]:
    """An in-memory database and the statements run on it: (first word and table, rows)."""
    engine = sa.create_engine("sqlite://")
    _metadata.create_all(engine)
    ran: list[tuple[str, int]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        words = statement.split()
        table = words[2] if words[0] == "INSERT" else words[-1] if words[0] == "SELECT" else ""
        ran.append((f"{words[0]} {table}", len(parameters) if executemany else 1))

    return engine, ran


def test_held_inserts_run_together_before_the_next_other_statement_which_sees_them() -> None:
    engine, ran = _engine()
    with engine.begin() as conn:
        behind = WriteBehind(conn)
        insert(conn, _INTO_SECOND, {"n": 1})
        insert(conn, _INTO_FIRST, [{"n": 1}, {"n": 2}])
        insert(conn, _INTO_SECOND, {"n": 2})
        assert ran == []

        seen = conn.execute(sa.select(sa.func.count()).select_from(_first)).scalar()

        assert seen == 2
        assert ran == [("INSERT second", 2), ("INSERT first", 2), ("SELECT first", 1)]
        behind.close()
    with engine.connect() as conn:
        assert conn.execute(sa.select(_second.c.n)).scalars().all() == [1, 2]


def test_a_flush_runs_what_is_held_and_nothing_is_held_without_a_write_behind_or_after_close() -> None:
    engine, ran = _engine()
    with engine.begin() as conn:
        insert(conn, _INTO_FIRST, {"n": 1})  # none holds: at once
        assert ran == [("INSERT first", 1)]
        behind = WriteBehind(conn)
        insert(conn, _INTO_FIRST, {"n": 2})
        behind.flush()
        assert ran[-1] == ("INSERT first", 1)
        behind.close()
        insert(conn, _INTO_FIRST, {"n": 3})
        assert len(ran) == 3
    with engine.connect() as conn:
        assert conn.execute(sa.select(_first.c.n)).scalars().all() == [1, 2, 3]


def test_only_the_connection_held_for_holds() -> None:
    engine, ran = _engine()
    with engine.begin() as conn, engine.connect() as other:
        behind = WriteBehind(conn)
        insert(other, _INTO_SECOND, {"n": 1})
        assert ran == [("INSERT second", 1)]
        behind.close()


def test_a_row_with_other_columns_has_what_is_held_run_first() -> None:
    engine, ran = _engine()
    table = sa.Table(
        "pairs", sa.MetaData(), sa.Column("n", sa.Integer, primary_key=True), sa.Column("m", sa.Integer)
    )
    table.create(engine)
    into = table.insert()
    with engine.begin() as conn:
        behind = WriteBehind(conn)
        insert(conn, into, [{"n": 1, "m": 10}, {"n": 2, "m": 20}])
        insert(conn, into, {"n": 3})  # an executemany of the first rows' columns would need m
        insert(conn, into, {"n": 4})
        behind.flush()
        behind.close()
    with engine.connect() as conn:
        assert conn.execute(sa.select(table.c.n, table.c.m).order_by(table.c.n)).all() == [
            (1, 10),
            (2, 20),
            (3, None),
            (4, None),
        ]
    assert [rows for _statement, rows in ran if _statement.startswith("INSERT")] == [2, 2]
