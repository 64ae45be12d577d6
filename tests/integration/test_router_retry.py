"""Retriable failures back off on retry topics, then sambus.dlq with their history; replay re-decides."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from sambus.adapters import translate_message
from sambus.consent import ConsentGrant, ConsentPolicy, Decision, DecisionRequest
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.errors import StoreUnavailableError
from sambus.contracts.registry_facts import Custody
from sambus.contracts.topics import Header, Topics
from sambus.router.kafka.dead_letters import open_sealed, read_dead_letters, replay
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from sambus.router.stages.intake import Intake
from tests.database import upgraded
from tests.integration.conftest import read_committed, sip_event

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CHILD = "201203150006"
SAMBUS = Path(sys.executable).with_name("sambus")


class FlakyPolicy:
    """The consent policy, but while ``failing`` its database is "down" (a retriable error)."""

    def __init__(self, policy: ConsentPolicy) -> None:
        self.policy = policy
        self.failing = True
        self.calls = 0

    def decide(self, request: DecisionRequest) -> Decision:
        self.calls += 1
        if self.failing:
            raise StoreUnavailableError("cannot read the consent registry")
        return self.policy.decide(request)


@dataclass
class Flaky:
    app: Sambus
    policy: FlakyPolicy


@pytest_asyncio.fixture
async def flaky(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> AsyncIterator[Flaky]:
    settings = Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'sambus.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        dlq_encryption_keys=SecretStr(f"test:{secrets.token_hex(32)}"),
        instance_id=secrets.token_hex(4),
        retry_delays_s=(0.2, 0.5, 1.0),
    )
    app = bootstrap(settings, bootstrap_servers=kafka_bootstrap)
    policy = FlakyPolicy(ConsentPolicy(app.registry))
    app.policy = policy
    await app.create_topics()
    stop = asyncio.Event()
    service = asyncio.create_task(app.run(stop, only=None))
    try:
        yield Flaky(app, policy)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(service, timeout=30)


async def _send_intent(app: Sambus) -> bytes:
    [intent] = translate_message(sip_event("retry-1", CHILD, {"hsaId": "SE2321000206-1001"}))
    record = Intake(topics=app.topics, pseudonymizer=app.pseudonymizer).intent_record(intent)
    producer = AIOKafkaProducer(bootstrap_servers=app.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(record.topic, record.value, key=record.key, headers=list(record.headers))
    finally:
        await producer.stop()
    assert record.key is not None
    return record.key


async def _cli(app: Sambus, *args: str) -> str:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": app.bootstrap_servers,
        "SAMBUS_TOPIC_PREFIX": app.topics.prefix,
        "COLUMNS": "200",
    }
    if app.settings.dlq_encryption_keys is not None:  # the operator's replay opens the sealed original
        env["SAMBUS_DLQ_ENCRYPTION_KEYS"] = app.settings.dlq_encryption_keys.get_secret_value()
    process = await asyncio.create_subprocess_exec(
        str(SAMBUS), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_retry_then_dead_letter_then_replay_decides_consent_again(flaky: Flaky) -> None:
    app = flaky.app
    key = await _send_intent(app)

    [dead] = await read_committed(app.bootstrap_servers, [app.topics.dlq], count=1, timeout=60)

    headers = dict(dead.headers)
    assert headers[Header.DLQ_ERROR] == b"store_unavailable"
    assert headers[Header.DLQ_SOURCE_TOPIC] == app.topics.intents.encode()
    assert Header.DLQ_PSEUDONYM not in headers, "the pseudonym is sealed with the original"
    original, original_headers = open_sealed(dead.value, tuple(dead.headers), app.dlq_cipher)
    assert dict(original_headers)[Header.DLQ_PSEUDONYM] == key
    assert dead.key is None
    history = json.loads(headers[Header.RETRY_HISTORY])
    assert [h["attempt"] for h in history] == [1, 2, 3, 4], "the first try and three retries"
    assert {h["error"] for h in history} == {"store_unavailable"}
    for level in (1, 2, 3):
        [retried] = await read_committed(app.bootstrap_servers, [app.topics.retry(level)], count=1, timeout=5)
        assert retried.value == original
    deliver = app.topics.deliver("vastmanland-bu-halsan")
    assert await read_committed(app.bootstrap_servers, [deliver], count=1, timeout=2) == []

    # The database is back, and meanwhile the guardians consented: the replay is decided anew.
    flaky.policy.failing = False
    now = dt.datetime.now(dt.UTC)
    app.registry.set_custody(key.decode(), Custody.SOLE, ("guardian",), at=now - dt.timedelta(days=2))
    app.registry.record(
        ConsentGrant(
            consent_id="c-1",
            child=key.decode(),
            purpose=Purpose.SIP,
            agency_kinds=frozenset({AgencyKind.BU_HALSAN}),
            given_by="guardian",
            guardians=("guardian",),
            valid_from=now - dt.timedelta(days=1),
        ),
        now=now,
    )
    listing = await _cli(app, "dlq", "list")
    assert "store_unavailable" in listing
    assert "0:0" in listing

    assert "Replayed 1 dead letter(s)" in await _cli(app, "dlq", "replay", "--error", "store_unavailable")

    [delivered] = await read_committed(app.bootstrap_servers, [deliver], count=1, timeout=60)
    assert dict(delivered.headers)[Header.DECISION] == b"permit"
    assert delivered.key == key
    # Replayed once only: a second replay finds nothing left, and the list says it was replayed.
    assert await replay(app.bootstrap_servers, app.topics, lambda _: True, transactional_id="t-replay") == []
    [letter] = await read_dead_letters(app.bootstrap_servers, app.topics)
    assert letter.replayed
    assert letter.attempts == 4
