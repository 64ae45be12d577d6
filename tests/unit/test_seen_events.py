"""Seen events: an id counts as seen only once its batch committed; an aborted batch forgets it."""

from __future__ import annotations

import sqlalchemy as sa

from sambus.router.service.schema import upgrade
from sambus.router.stages.seen_events import SeenEvents


def _seen(tmp_path) -> SeenEvents:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'seen.db'}")
    upgrade(engine)
    return SeenEvents(engine)


def test_a_new_id_is_claimed_once_per_batch(tmp_path):
    seen = _seen(tmp_path)

    assert seen.claim("m-1") is True
    assert seen.claim("m-1") is False
    assert seen.claim("m-2") is True


def test_a_committed_id_stays_seen_for_later_batches_and_other_instances(tmp_path):
    seen = _seen(tmp_path)
    seen.claim("m-1")
    seen.after_commit()

    assert seen.claim("m-1") is False
    assert _seen(tmp_path).claim("m-1") is False


def test_an_aborted_batch_forgets_its_ids(tmp_path):
    seen = _seen(tmp_path)
    seen.claim("m-1")
    seen.after_abort()

    assert seen.claim("m-1") is True


def test_an_id_another_instance_committed_first_does_not_lose_the_rest(tmp_path):
    first, second = _seen(tmp_path), _seen(tmp_path)
    first.claim("m-1")
    second.claim("m-1")
    second.claim("m-2")
    first.after_commit()

    second.after_commit()

    third = _seen(tmp_path)
    assert third.claim("m-1") is False
    assert third.claim("m-2") is False


def _reads(engine: sa.Engine) -> list[str]:
    """Every statement that reads the seen-events table from now on."""
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "sambus_seen_events" in statement:
            statements.append(statement)

    return statements


def test_a_batch_looked_up_at_once_is_answered_as_one_read_per_id_would_be(tmp_path):
    earlier = _seen(tmp_path)
    earlier.claim("m-1")
    earlier.after_commit()
    seen = _seen(tmp_path)
    reads = _reads(seen._engine)  # noqa: SLF001 - the engine it reads through

    seen.look_up([f"m-{n}" for n in range(1, 1201)])  # more than one chunk
    claims = [seen.claim(f"m-{n}") for n in (1, 2, 2, 1200)]

    assert claims == [False, True, False, True]
    assert len(reads) == 3  # 1,200 ids in chunks of 500; no read per claim
    assert seen.claim("m-9999") is True  # not looked up: read on its own
    assert len(reads) == 4


def test_a_look_up_is_forgotten_with_its_batch(tmp_path):
    seen, other = _seen(tmp_path), _seen(tmp_path)
    seen.look_up(["m-1"])
    seen.after_abort()
    other.claim("m-1")
    other.after_commit()  # another instance committed it since

    seen.look_up(["m-1"])
    assert seen.claim("m-1") is False
    seen.after_commit()
    assert seen.claim("m-2") is True
