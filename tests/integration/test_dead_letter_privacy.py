"""A personnummer, a name and an address planted in invalid events never reach what operators see.

They are planted in the event ``type`` (plain JSON and a CloudEvents header), in key names the contracts do
not declare and in values. None of them may appear in any dead-letter header, in ``sambus dlq list``, on
``/operations`` for an operator, or in the logs; the dead letter's stored bytes hold the original only
sealed (AES-GCM), and a replay puts the original bytes back on the source topic.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging

import httpx2
import pytest
from typer.testing import CliRunner

from sambus.contracts.topics import Header
from sambus.router.cli.main import app as cli
from sambus.router.kafka.dead_letters import KafkaDeadLetters, read_dead_letters
from sambus.router.ops.logs import configure_logging
from sambus.router.web.app import create_app
from sambus.router.web.auth import Role, TokenAuthenticator, mint_token
from sambus.router.web.wiring import web_services
from tests.integration.conftest import Running, sip_event

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

PERSONNUMMER = "20090412-2389"  # valid: a real date and check digit
NAME = "Astrid Lindqvist"
ADDRESS = "Storgatan 12"
PLANTED = (
    PERSONNUMMER,
    PERSONNUMMER.replace("-", ""),
    PERSONNUMMER[2:],
    NAME,
    "Lindqvist",
    ADDRESS,
    "Storgatan",
)
SECRET = f"{PERSONNUMMER} {NAME}, {ADDRESS}"
BU_HALSAN = {"hsaId": "SE2321000206-1001"}


def _event(**changes: object) -> bytes:
    event = json.loads(sip_event("leak-1", "201203150006", BU_HALSAN))
    event.update(changes)
    return json.dumps(event, ensure_ascii=False).encode("utf-8")


def _with_data(**data: object) -> bytes:
    event = json.loads(sip_event("leak-2", "201203150006", BU_HALSAN))
    event["data"].update(data)
    return json.dumps(event, ensure_ascii=False).encode("utf-8")


def _invalid_events() -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    cloud_headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", SECRET.encode()),
        ("ce_id", b"leak-3"),
        ("ce_source", b"skolsystem-test"),
        ("ce_time", b"2026-11-20T09:00:00+01:00"),
    ]
    return [
        (_event(type=SECRET), []),  # an unknown type that is personal data
        (_with_data(**{PERSONNUMMER: NAME, NAME: ADDRESS}), []),  # undeclared keys named by the sender
        (_with_data(child={"civicNo": PERSONNUMMER[:-1] + "0", ADDRESS: SECRET}), []),  # bad values and a key
        (json.dumps({"child": SECRET}).encode(), cloud_headers),  # the type in a CloudEvents header
        (_with_data(reason=SECRET), []),  # a value that is not one of the categories
    ]


def _assert_clean(text: str, where: str) -> None:
    for planted in PLANTED:
        assert planted not in text, f"{planted!r} appeared in {where}"


async def test_planted_personal_data_reaches_no_header_list_page_or_log(
    running: Running, monkeypatch
) -> None:
    logs = io.StringIO()
    configure_logging("text", level=logging.DEBUG, stream=logs)
    school = running.topics.agency_events("school")
    sent = _invalid_events()
    try:
        for value, headers in sent:
            await running.send(school, value, headers=headers)
        dead = await running.read(running.topics.dlq, count=len(sent))

        # Every dead letter's headers, and its stored bytes: nothing planted in clear.
        assert len(dead) == len(sent)
        for record in dead:
            for name, value in record.headers:
                _assert_clean(
                    f"{name}={value.decode('utf-8', errors='replace')}", f"dead-letter header {name}"
                )
            assert dict(record.headers)[Header.DLQ_SEALED] == b"aes-256-gcm"
            _assert_clean(record.value.decode("utf-8", errors="replace"), "a dead letter's stored bytes")
            assert int(dict(record.headers)["sambus-dlq-size"]) > 0
        reasons = {dict(r.headers)[Header.DLQ_REASON].decode() for r in dead}
        assert "type: unknown event type (not one of the contracts' types)" in reasons
        assert any("<key>" in reason for reason in reasons), reasons

        # sambus dlq list
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", running.app.bootstrap_servers)
        monkeypatch.setenv("SAMBUS_TOPIC_PREFIX", running.topics.prefix)
        monkeypatch.setenv("COLUMNS", "300")
        listed = CliRunner().invoke(cli, ["dlq", "list"])
        assert listed.exit_code == 0, listed.output
        assert f"Dead letters ({len(sent)} of {len(sent)})" in listed.output
        _assert_clean(listed.output, "sambus dlq list")

        # /operations and the dead-letter API, for an operator
        token, digest = mint_token()
        services = web_services(
            running.app, authenticator=TokenAuthenticator.from_setting(f"olle:operator:{digest}")
        )
        web = create_app(services)
        try:
            async with httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=web),
                base_url="http://sambus.test",
                headers={"Authorization": f"Bearer {token}"},
            ) as client:
                page = await client.get("/operations", headers={"Accept": "text/html"})
                api = await client.get("/api/dead-letters")
        finally:
            await asyncio.to_thread(services.close)
        assert page.status_code == 200, page.text[:2000]
        assert "unknown event type" in page.text
        _assert_clean(page.text, "/operations")
        assert api.status_code == 200
        assert len(api.json()) == len(sent)
        _assert_clean(api.text, "/api/dead-letters")
        assert all(letter["size"] > 0 for letter in api.json())
        assert Role.OPERATOR  # the operator's view is what was read
    finally:
        logging.getLogger().handlers = []
    _assert_clean(logs.getvalue(), "the logs")


async def test_only_a_replay_opens_the_original(running: Running) -> None:
    school = running.topics.agency_events("school")
    original = _event(type=SECRET)
    await running.send(school, original, headers=[("origin", NAME.encode())])
    [dead] = await running.read(running.topics.dlq, count=1)
    assert original not in dead.value
    assert "origin" not in dict(dead.headers), "the original headers are sealed with the value"

    [letter] = await read_dead_letters(running.app.bootstrap_servers, running.topics)
    letters = KafkaDeadLetters(
        bootstrap_servers=running.app.bootstrap_servers, topics=running.topics, cipher=running.app.dlq_cipher
    )
    assert await letters.replay(letter.id) == school

    back = await running.read(school, count=2)
    assert back[-1].value == original
    assert dict(back[-1].headers)["origin"] == NAME.encode()
