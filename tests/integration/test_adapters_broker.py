"""Every adapter on the real broker: topics read, bad input dead-lettered, duplicates make no intent."""

from __future__ import annotations

import json

import pytest

from sambus.contracts.topics import Header
from sambus.router.cli.contracts import EXAMPLES_DIR
from sambus.router.kafka.dead_letters import open_sealed
from tests.integration.conftest import Running

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


def _example(name: str, **envelope: str) -> bytes:
    event = json.loads((EXAMPLES_DIR / f"se.sambus.{name}.v1.json").read_text(encoding="utf-8"))
    event.update(envelope)
    return json.dumps(event).encode()


def _headers(record) -> dict[str, bytes]:
    return dict(record.headers)


async def test_each_agency_topic_is_translated_onto_the_intents_topic(running: Running) -> None:
    sent = {
        "social": ("social.health-exam-requested", b"health-exam-requested"),
        "ehr": ("ehr.concern-reported", b"concern-reported"),
        "school": ("school.newly-arrived-referral", b"newly-arrived-health-referral"),
    }
    for kind, (name, _) in sent.items():
        await running.send(running.topics.agency_events(kind), _example(name))

    intents = await running.read(running.topics.intents, count=3)

    assert sorted(_headers(r)[Header.EVENT_CODE] for r in intents) == sorted(
        code for _, code in sent.values()
    )
    for record in intents:
        assert b"201203150006" not in record.key
        assert all(b"201203150006" not in value for value in _headers(record).values())


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("social", b'{"a": "\xc3\x28"}', "not UTF-8"),
        ("ehr", b"[1, 2]", "must be a JSON object"),
    ],
)
async def test_bad_bytes_on_social_and_ehr_topics_are_dead_lettered(
    running: Running, kind: str, value: bytes, reason: str
) -> None:
    topic = running.topics.agency_events(kind)
    await running.send(topic, value)

    [dead] = await running.read(running.topics.dlq, count=1)

    headers = _headers(dead)
    assert dead.value != value, "the original is kept only sealed"
    assert open_sealed(dead.value, tuple(dead.headers), running.app.dlq_cipher)[0] == value
    assert reason in headers[Header.DLQ_REASON].decode()
    assert headers[Header.DLQ_SOURCE_TOPIC] == topic.encode()
    assert int(headers[Header.DLQ_SOURCE_PARTITION]) >= 0
    assert int(headers[Header.DLQ_SOURCE_OFFSET]) >= 0


async def test_invalid_social_and_ehr_events_are_dead_lettered_with_the_field_and_problem(
    running: Running,
) -> None:
    late = json.loads(_example("social.lvu32-exam-ordered"))
    late["data"]["due"] = "2027-01-31"
    bad_hsa = json.loads(_example("ehr.task-status"))
    bad_hsa["data"]["hsaId"] = "SE-not-an-hsa-id"
    bad = {
        json.dumps(late).encode(): ("social", "data.due: must fall within four weeks"),
        json.dumps(bad_hsa).encode(): ("ehr", "data.hsaId: an HSA-id looks like"),
    }
    for value, (kind, _) in bad.items():
        await running.send(running.topics.agency_events(kind), value)

    dead = await running.read(running.topics.dlq, count=2)

    assert len(dead) == 2
    for record in dead:
        kind, reason = bad[open_sealed(record.value, tuple(record.headers), running.app.dlq_cipher)[0]]
        assert reason in _headers(record)[Header.DLQ_REASON].decode()
        assert _headers(record)[Header.DLQ_SOURCE_TOPIC] == running.topics.agency_events(kind).encode()
        assert _headers(record)[Header.DLQ_ERROR] == b"invalid_event"


async def test_a_re_sent_event_produces_no_second_intent(running: Running) -> None:
    topic = running.topics.agency_events("social")
    event = _example("social.suicide-risk-assessment-requested", id="dup-1")
    after = _example("social.suicide-risk-assessment-requested", id="after-1")
    await running.producer.send_and_wait(topic, event, key=b"same-partition")
    await running.producer.send_and_wait(topic, event, key=b"same-partition")
    [first] = await running.read(running.topics.intents, count=1)
    await running.producer.send_and_wait(topic, event, key=b"same-partition")
    await running.producer.send_and_wait(topic, after, key=b"same-partition")

    intents = await running.read(running.topics.intents, count=3, timeout=20)

    ids = [_headers(r)[Header.MESSAGE_ID] for r in intents]
    assert len(intents) == 2, "two distinct events, three copies of one: two intents"
    assert ids.count(_headers(first)[Header.MESSAGE_ID]) == 1
