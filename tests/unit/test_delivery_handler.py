"""The delivery stage's handler: one intent in, deliveries, parked records and dead letters out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from sambus.adapters import translate_message
from sambus.consent import ConsentGrant, ConsentPolicy, ConsentRegistry, Pseudonymizer
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.errors import InvalidIntentError
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import Header, Topics
from sambus.router.kafka.records import Outgoing
from sambus.router.ops.metrics import METRICS
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.service.schema import upgrade
from sambus.router.stages.delivery import Delivery
from sambus.router.stages.intake import Intake

CHILD = "201203150006"
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
TOPICS = Topics(prefix="t.")
PSEUDONYMIZER = Pseudonymizer(b"unit-test-pseudonym-key-0123456789abcdef")

CONSENTED = {"vasteras-socialtjanst", "vastmanland-bu-halsan"}
NOT_CONSENTED = "vastmanland-folktandvarden"


@pytest.fixture
def sip_event(sip_event):
    """The shared SIP event, from Södra skolan: a school with Cosmic Link, which invites directly."""

    def make(*, data=None, **envelope):
        return sip_event(data={"schoolUnitCode": "19800002", **(data or {})}, **envelope)

    return make


@pytest.fixture
def registry(tmp_path):
    engine = sa.create_engine("sqlite:///" + str(tmp_path / "r.db"))
    upgrade(engine)
    registry = ConsentRegistry(engine)
    registry.record(
        ConsentGrant(
            consent_id="consent-1",
            child=PSEUDONYMIZER.of(CHILD),
            purpose=Purpose.SIP,
            agency_kinds=frozenset({AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN}),
            given_by="guardian",
            valid_from=NOW - dt.timedelta(days=1),
            guardians=("guardian-pseudonym",),
        ),
        now=NOW,
    )
    registry.set_custody(
        PSEUDONYMIZER.of(CHILD), Custody.SOLE, ("guardian-pseudonym",), at=NOW - dt.timedelta(days=2)
    )
    yield registry
    engine.dispose()


@pytest.fixture
def handler(registry) -> Delivery:
    return Delivery(
        topics=TOPICS,
        directory=RoutingDirectory.load(),
        policy=ConsentPolicy(registry),
        clock=lambda: NOW,
    )


class _WithoutWaitingNotices:
    """The handler, less the notices telling the initiator a message waits (tested on their own below)."""

    def __init__(self, handler: Delivery) -> None:
        self.handler = handler

    async def __call__(self, record: ConsumerRecord) -> list[Outgoing]:
        out = await self.handler(record)
        return [o for o in out if _headers(o).get(Header.EVENT_CODE) != "delivery-waiting"]

    def __getattr__(self, name: str) -> object:
        return getattr(self.handler, name)


@pytest.fixture
def delivery(handler) -> _WithoutWaitingNotices:
    return _WithoutWaitingNotices(handler)


@pytest.mark.asyncio
async def test_the_initiator_is_told_at_once_which_consent_a_parked_message_waits_for(handler, sip_event):
    out = await handler(_intent_record(sip_event()))

    [notice] = [o for o in out if _headers(o)[Header.EVENT_CODE] == "delivery-waiting"]
    assert notice.topic == "t.deliver.vasteras-skola-sodra", "the school that initiated the SIP is told"
    text = json.loads(notice.value)["entry"][1]["resource"]["payload"][0]["contentString"]
    assert "Folktandvården" in text
    assert "a consent for sip covering dental" in text
    assert CHILD not in notice.value.decode()
    assert "guardian" not in text, "no custody or signer is named to the initiator"


def _consumer_record(outgoing: Outgoing, *, offset: int = 7) -> ConsumerRecord:
    return outgoing.as_consumed(offset=offset, partition=1, timestamp=1_763_629_200_000)


def _intent_record(event: dict) -> ConsumerRecord:
    [intent] = translate_message(json.dumps(event).encode("utf-8"))
    outgoing = Intake(topics=TOPICS, pseudonymizer=PSEUDONYMIZER).intent_record(intent)
    return _consumer_record(outgoing)


def _headers(outgoing: Outgoing) -> dict[str, str]:
    return {k: v.decode("utf-8") for k, v in outgoing.headers}


def _headers_of(record: ConsumerRecord) -> dict[str, str]:
    return {k: v.decode("utf-8") for k, v in record.headers}


def _by_topic(out: list[Outgoing]) -> dict[str, list[Outgoing]]:
    result: dict[str, list[Outgoing]] = {}
    for record in out:
        result.setdefault(record.topic, []).append(record)
    return result


def test_intent_record_is_keyed_by_pseudonym_on_the_intents_topic(sip_event):
    record = _intent_record(sip_event())

    assert record.topic == "t.sambus.intents"
    assert record.key == PSEUDONYMIZER.of(CHILD).encode("ascii")
    assert _headers_of(record)[Header.EVENT_CODE] == "sip-initiated"


@pytest.mark.asyncio
async def test_consented_recipients_get_a_delivery_and_the_other_is_parked(delivery, sip_event):
    out = await delivery(_intent_record(sip_event()))

    by_topic = _by_topic(out)
    assert sorted(by_topic) == [
        "t.deliver.vasteras-socialtjanst",
        "t.deliver.vastmanland-bu-halsan",
        "t.sambus.parked",
    ]
    assert all(len(records) == 1 for records in by_topic.values())
    [parked] = by_topic["t.sambus.parked"]
    assert _headers(parked)[Header.RECIPIENT] == NOT_CONSENTED


@pytest.mark.asyncio
async def test_decision_headers_say_what_was_decided_and_why(delivery, sip_event):
    out = await delivery(_intent_record(sip_event()))

    for record in out:
        headers = _headers(record)
        recipient = headers[Header.RECIPIENT]
        if recipient in CONSENTED:
            assert record.topic == f"t.deliver.{recipient}"
            assert headers[Header.DECISION] == "permit"
        else:
            assert recipient == NOT_CONSENTED
            assert headers[Header.DECISION] == "await_consent"
        assert headers[Header.DECISION_REASON].startswith("sip-consent@2: ")
        assert "OSL 12:2" in headers[Header.DECISION_REASON]


@pytest.mark.asyncio
async def test_routing_headers_are_kept_and_the_message_id_is_per_recipient(delivery, sip_event):
    record = _intent_record(sip_event())
    intent_headers = _headers_of(record)

    out = await delivery(record)

    message_ids = set()
    for outgoing in out:
        headers = _headers(outgoing)
        assert [k for k, _ in outgoing.headers].count(Header.MESSAGE_ID) == 1
        assert headers[Header.EVENT_CODE] == "sip-initiated"
        assert headers[Header.CORRELATION_ID] == intent_headers[Header.CORRELATION_ID]
        assert headers[Header.SCHEMA_VERSION] == "1"
        assert headers[Header.MESSAGE_ID] == json.loads(outgoing.value)["id"]
        message_ids.add(headers[Header.MESSAGE_ID])
    assert len(message_ids) == 3
    assert intent_headers[Header.MESSAGE_ID] not in message_ids


@pytest.mark.asyncio
async def test_each_recipient_receives_only_its_own_task(delivery, sip_event):
    owners = {
        "vasteras-socialtjanst": "212000-2080",
        "vastmanland-bu-halsan": "SE2321000206-1001",
        NOT_CONSENTED: "SE2321000206-1003",
    }

    out = await delivery(_intent_record(sip_event()))

    for record in out:
        bundle = json.loads(record.value)
        task_owners = [
            e["resource"]["owner"]["identifier"]["value"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Task"
        ]
        assert task_owners == [owners[_headers(record)[Header.RECIPIENT]]]


@pytest.mark.asyncio
async def test_deliveries_keep_the_pseudonym_key(delivery, sip_event):
    out = await delivery(_intent_record(sip_event()))

    assert {record.key for record in out} == {PSEUDONYMIZER.of(CHILD).encode("ascii")}


@pytest.mark.asyncio
async def test_unknown_invitee_is_dead_lettered_while_the_others_go_out(delivery, sip_event):
    invite = [
        {"organisationNumber": "212000-2080"},
        {"hsaId": "SE2321000206-9999"},
        {"hsaId": "SE2321000206-1001"},
        {"hsaId": "SE2321000206-1003"},
    ]
    record = _intent_record(sip_event(data={"invite": invite}))

    out = await delivery(record)

    by_topic = _by_topic(out)
    assert sorted(by_topic) == [
        "t.deliver.vasteras-socialtjanst",
        "t.deliver.vastmanland-bu-halsan",
        "t.sambus.dlq",
        "t.sambus.parked",
    ]
    [dead] = by_topic["t.sambus.dlq"]
    headers = _headers(dead)
    assert "organisation identifier" in headers[Header.DLQ_REASON]
    assert "9999" not in headers[Header.DLQ_REASON]
    assert headers[Header.DLQ_ERROR] == "unknown_recipient"
    assert headers[Header.DLQ_SOURCE_TOPIC] == "t.sambus.intents"
    assert headers[Header.DLQ_SOURCE_PARTITION] == "1"
    assert headers[Header.DLQ_SOURCE_OFFSET] == "7"
    assert dead.key is None
    assert dead.value == record.value


@pytest.mark.asyncio
async def test_no_consent_at_all_parks_every_recipient(delivery, sip_event):
    record = _intent_record(sip_event(data={"child": {"civicNo": "20120315-0014"}}))

    out = await delivery(record)

    assert [r.topic for r in out] == ["t.sambus.parked"] * 3
    assert {_headers(r)[Header.DECISION] for r in out} == {"await_consent"}


@pytest.mark.asyncio
async def test_the_same_intent_twice_gives_the_same_records(delivery, sip_event):
    record = _intent_record(sip_event())

    assert await delivery(record) == await delivery(record)


@pytest.mark.asyncio
async def test_no_key_and_no_header_value_carries_the_personnummer(delivery, sip_event):
    invite = [{"hsaId": "SE2321000206-9999"}, {"hsaId": "SE2321000206-1001"}, {"hsaId": "SE2321000206-1003"}]

    out = await delivery(_intent_record(sip_event(data={"invite": invite})))

    assert len(out) == 3
    for record in out:
        assert CHILD not in (record.key or b"").decode("ascii")
        for _, value in record.headers:
            assert CHILD.encode() not in value
            assert CHILD[2:].encode() not in value
            assert b"20120315-0006" not in value


def _replace(record: ConsumerRecord, **changes) -> ConsumerRecord:
    fields = {name: getattr(record, name) for name in record.__dataclass_fields__}
    fields.update(changes)
    return ConsumerRecord(**fields)


@pytest.mark.asyncio
@pytest.mark.parametrize("key", [None, b""])
async def test_intent_without_key_is_invalid(delivery, sip_event, key):
    record = _replace(_intent_record(sip_event()), key=key)

    with pytest.raises(InvalidIntentError, match="no key"):
        await delivery(record)


@pytest.mark.asyncio
async def test_intent_without_event_code_header_is_invalid(delivery, sip_event):
    record = _intent_record(sip_event())
    record = _replace(record, headers=tuple((k, v) for k, v in record.headers if k != Header.EVENT_CODE))

    with pytest.raises(InvalidIntentError, match=Header.EVENT_CODE):
        await delivery(record)


@pytest.mark.asyncio
async def test_intent_with_unknown_event_code_is_invalid(delivery, sip_event):
    record = _intent_record(sip_event())
    headers = tuple((k, b"no-such-event" if k == Header.EVENT_CODE else v) for k, v in record.headers)

    with pytest.raises(InvalidIntentError, match="event code is unknown"):
        await delivery(_replace(record, headers=headers))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"{not json", "not JSON"),
        (b"", "not JSON"),
        (None, "not JSON"),
        (b"\xff\xfe\xfd", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"resourceType": "Bundle", "type": "collection", "entry": []}', "message Bundle"),
    ],
)
async def test_intent_that_is_not_a_message_bundle_is_invalid(delivery, sip_event, value, problem):
    record = _replace(_intent_record(sip_event()), value=value)

    with pytest.raises(InvalidIntentError, match=problem):
        await delivery(record)


def _decisions_counted() -> float:
    return sum(
        sample.value
        for family in METRICS.registry.collect()
        if family.name == "sambus_decisions"
        for sample in family.samples
        if sample.name == "sambus_decisions_total"
    )


@pytest.mark.asyncio
async def test_each_decision_is_counted_once_in_the_metrics_when_its_batch_commits(delivery, sip_event):
    before = _decisions_counted()

    out = await delivery(_intent_record(sip_event()))
    assert _decisions_counted() == before, "nothing is counted while the batch's transaction is open"
    delivery.after_abort()  # the batch is read again
    again = await delivery(_intent_record(sip_event()))
    delivery.before_commit()
    delivery.after_commit()

    assert len(out) == len(again) == 3, "three recipients: two deliveries and one parked record"
    assert _decisions_counted() - before == 3, "three decisions, counted once though handled twice"


@pytest.mark.asyncio
async def test_decisions_are_not_logged_at_info(delivery, sip_event, caplog):
    caplog.set_level(logging.INFO, logger="sambus")

    await delivery(_intent_record(sip_event()))

    assert [r.getMessage() for r in caplog.records if r.name == "sambus.router.stages.delivery"] == []


@pytest.mark.asyncio
async def test_delivered_bytes_are_what_the_standard_json_encoder_writes_floats_included(handler, sip_event):
    """Messages are written by orjson when the intent holds no float: the bytes stay the standard ones.

    A float (``1e-05``, which orjson would write ``0.00001``) keeps the standard writing for the whole intent.
    """

    def standard(value: bytes) -> bytes:
        return json.dumps(json.loads(value), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    plain = _intent_record(sip_event())
    bundle = json.loads(plain.value)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Task":
            entry["resource"]["extension"] = [{"url": "https://example.org/weight", "valueDecimal": 1e-05}]
    with_float = dataclasses.replace(plain, value=json.dumps(bundle, ensure_ascii=False).encode("utf-8"))

    for record, floats in ((plain, False), (with_float, True)):
        out = await handler(record)
        assert len(out) == 4
        for outgoing in out:
            assert outgoing.value == standard(outgoing.value)
        delivered = [o for o in out if _headers(o).get(Header.DECISION) is not None]
        assert len(delivered) == 3
        for outgoing in delivered:
            assert (b'"valueDecimal":1e-05' in outgoing.value) is floats
