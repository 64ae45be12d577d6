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
