"""``sambus demo``: a school initiates a SIP; see what each agency receives, what waits, what is refused."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

from sambus.consent import ConsentGrant
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.identifiers import PERSONNUMMER_SYSTEM
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import Header
from sambus.router.kafka.connection import client_kwargs
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings

DEMO_CHILD = "20120315-0006"
"""A made-up personnummer with a valid check digit; no real child."""
DEMO_GUARDIAN = "198004121235"
"""The demo child's one guardian (sole custody), who consented."""

_WRONG_CHECK_DIGIT = "20120315-0007"


def sip_event(event_id: str, civic_no: str) -> dict[str, object]:
    """A school's SIP initiation for ``civic_no``, inviting social services, BU-hälsan and dental care."""
    return {
        "type": "se.sambus.school.sip-initiated.v1",
        "id": event_id,
        "source": "demo-skolsystem",
        "time": dt.datetime.now(dt.UTC).isoformat(),  # present time: no deadline of it is already due
        "data": {
            "child": {"civicNo": civic_no},
            "schoolUnitCode": "19800002",
            "initiatedBy": "student_health",
            "reason": "mental_health",
            "invite": [
                {"organisationNumber": "212000-2080"},
                {"hsaId": "SE2321000206-1001"},
                {"hsaId": "SE2321000206-1003"},
            ],
        },
    }


@dataclass(frozen=True)
class Received:
    """One record the demo read back, as shown in its table."""

    topic: str
    recipient: str
    decision: str
    reason: str
    task_code: str
    owner: str
    subject: str
    key: str


DEMO_RECORDS = 5
"""What the demo must see: two deliveries, the parked message for dental care, the school told that it waits
(``delivery-waiting``), and the dead letter."""


def _mask(value: str) -> str:
    return f"{value[:8]}-****" if len(value) >= 12 else "****"  # noqa: PLR2004 - a 12-digit personnummer


def _describe(topic: str, key: bytes | None, value: bytes, headers: dict[str, str]) -> Received:
    if Header.DLQ_REASON in headers:
        return Received(topic, "-", "dead letter", headers[Header.DLQ_REASON], "-", "-", "-", "-")
    bundle = json.loads(value)
    resources = [entry["resource"] for entry in bundle["entry"]]
    by_type = {r["resourceType"]: r for r in reversed(resources)}  # the first of each type
    if "Task" in by_type:
        task = by_type["Task"]
        code, owner = task["code"]["coding"][0]["code"], task["owner"]["identifier"]["value"]
    else:  # a notice from sambus itself (e.g. "your message waits for consent"): a Communication
        code = by_type["MessageHeader"]["eventCoding"]["code"]
        owner = by_type["Communication"]["recipient"][0]["identifier"]["value"]
    patient = by_type.get("Patient", {"identifier": []})
    subject = next((i["value"] for i in patient["identifier"] if i["system"] == PERSONNUMMER_SYSTEM), "")
    return Received(
        topic=topic,
        recipient=headers.get(Header.RECIPIENT, "?"),
        decision=headers.get(Header.DECISION, "?" if "Task" in by_type else "notice"),
        reason=_short_reason(headers.get(Header.DECISION_REASON, "")),
        task_code=code,
        owner=owner,
        subject=_mask(subject) if subject else "-",
        key=f"{(key or b'').decode()[:12]}…",
    )


def _short_reason(reason: str) -> str:
    # "rule@version: reason [legal basis]" -> "reason [legal basis]"
    return reason.split(": ", 1)[-1]


async def _collect(app: Sambus, expected: int, timeout: float) -> list[Received]:
    topics = [app.topics.deliver(r.topic_suffix) for r in app.directory.recipients] + [
        app.topics.parked,
        app.topics.dlq,
    ]
    consumer = AIOKafkaConsumer(
        *topics,
        **client_kwargs(app.kafka),
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: list[Received] = []
    try:
        async with asyncio.timeout(timeout):
            while len(received) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        headers = {k: v.decode("utf-8") for k, v in r.headers or ()}
                        topic = r.topic.removeprefix(app.topics.prefix)
                        received.append(_describe(topic, r.key, r.value or b"", headers))
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return sorted(received, key=lambda r: (r.topic, r.recipient))


def demo_events() -> list[bytes]:
    """The demo's school events: a SIP for the demo child, and one whose personnummer is wrong."""
    return [
        json.dumps(sip_event("demo-1", DEMO_CHILD)).encode(),
        json.dumps(sip_event("demo-2", _WRONG_CHECK_DIGIT)).encode(),
    ]


def record_demo_consent(app: Sambus) -> None:
    """The demo child's guardian (sole custody) consents to SIP with social services and BU-hälsan only."""
    child = app.pseudonymizer.of(DEMO_CHILD.replace("-", ""))
    now = dt.datetime.now(dt.UTC)
    guardian = app.pseudonymizer.of(DEMO_GUARDIAN)
    app.registry.set_custody(child, Custody.SOLE, (guardian,), at=now - dt.timedelta(days=2))
    app.registry.record(
        ConsentGrant(
            consent_id="demo-consent-1",
            child=child,
            purpose=Purpose.SIP,
            agency_kinds=frozenset({AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN}),
            given_by="guardian",
            valid_from=now - dt.timedelta(days=1),
            guardians=(guardian,),
        ),
        now=now,
    )


async def run_demo(*, bootstrap_servers: str, timeout: float = 60.0) -> list[Received]:
    """Run sambus against ``bootstrap_servers`` on fresh topics and a fresh registry; return what arrived."""
    with tempfile.TemporaryDirectory(prefix="sambus-demo-") as workdir:
        settings = Settings(
            topic_prefix=f"demo-{secrets.token_hex(4)}.",
            database_url=f"sqlite:///{Path(workdir) / 'registry.db'}",
            pseudonym_key=SecretStr(secrets.token_hex(32)),  # an ephemeral key: the demo keeps nothing
            dlq_encryption_keys=SecretStr(f"demo:{secrets.token_hex(32)}"),  # ephemeral, like the demo
        )
        engine = create_engine(settings.database_url)
        upgrade(engine)  # what `sambus db upgrade` does
        engine.dispose()
        app = bootstrap(settings, bootstrap_servers=bootstrap_servers)
        record_demo_consent(app)
        await app.create_topics()
        stop = asyncio.Event()
        service = asyncio.create_task(app.run(stop))
        producer = AIOKafkaProducer(**client_kwargs(app.kafka))
        await producer.start()
        try:
            school = app.topics.agency_events("school")
            for event in demo_events():
                await producer.send_and_wait(school, event)
            return await _collect(app, expected=DEMO_RECORDS, timeout=timeout)
        finally:
            await producer.stop()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await service
