"""Answers flow back on the real broker: a recipient's Task status reaches the requester as a FHIR message,
and the process state records it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from sambus.consent import Decision, DecisionRequest, Outcome
from sambus.contracts.fhir import EventCode
from sambus.contracts.topics import Header, Topics
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from tests.database import upgraded
from tests.integration.conftest import read_committed
from tests.unit.test_routing_processes import BU_HALSAN, bundle

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


class PermitAll:
    """Consent rules are another part's concern; here every message may go."""

    def decide(self, request: DecisionRequest) -> Decision:
        return Decision(Outcome.PERMIT, f"test permits {request.event}", "test", "test-permit-all", 1)


@pytest_asyncio.fixture
async def app(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> AsyncIterator[Sambus]:
    settings = Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'sambus.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        dlq_encryption_keys=SecretStr(f"test:{secrets.token_hex(32)}"),
        instance_id=secrets.token_hex(4),
    )
    sambus = bootstrap(settings, bootstrap_servers=kafka_bootstrap)
    sambus.policy = PermitAll()
    await sambus.create_topics()
    stop = asyncio.Event()
    service = asyncio.create_task(sambus.run(stop))
    try:
        yield sambus
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(service, timeout=30)


async def _send(app: Sambus, event: EventCode, data: dict[str, object]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=app.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            app.topics.intents,
            json.dumps(data).encode(),
            key=b"child-pseudonym",
            headers=[(Header.EVENT_CODE, str(event).encode()), (Header.CORRELATION_ID, b"sip-1")],
        )
    finally:
        await producer.stop()


async def test_an_accepted_invitation_reaches_the_requester_and_the_process_state(app: Sambus) -> None:
    await _send(app, EventCode.SIP_INITIATED, bundle("m1", BU_HALSAN))
    [invitation] = await read_committed(
        app.bootstrap_servers, [app.topics.deliver("vastmanland-bu-halsan")], count=1, timeout=30
    )
    assert dict(invitation.headers)[Header.EVENT_CODE] == b"sip-initiated"

    answer = bundle("m2", BU_HALSAN, status="accepted", groupIdentifier={"value": "sip-1"})
    await _send(app, EventCode.SIP_INVITATION_ANSWERED, answer)

    [answer] = await read_committed(
        app.bootstrap_servers, [app.topics.deliver("vasteras-socialtjanst")], count=1, timeout=30
    )
    message = json.loads(answer.value)  # the test's hand-made message is FHIR-shaped, not a full profile
    [task] = [e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Task"]
    assert task["status"] == "accepted"
    assert task["owner"]["identifier"]["value"] == BU_HALSAN[1]
    destination = message["entry"][0]["resource"]["destination"][0]
    assert destination["endpoint"] == "urn:sambus:recipient:vasteras-socialtjanst"
    for _ in range(100):
        process = app.processes.get("sip-1")
        if process is not None and process.parties == {"vastmanland-bu-halsan": "accepted"}:
            break
        await asyncio.sleep(0.1)
    assert process is not None
    assert (process.state, process.parties) == ("invited", {"vastmanland-bu-halsan": "accepted"})
