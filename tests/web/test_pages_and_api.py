"""What each role sees through the API and pages, over the real broker and a real SQLite database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiokafka import AIOKafkaConsumer
from fastapi.testclient import TestClient

from sambus.consent.compliance import CSV_COLUMNS
from sambus.router.web.auth import Role
from tests.web.conftest import CHILD, OTHER_CHILD, Site
from tests.web.kafka_seed import COMMITTED, DEAD_LETTERS, SCHOOL_RECORDS, Seeded

pytestmark = pytest.mark.kafka


@contextmanager
def live_member(servers: str, group: str, client_id: str, topic: str) -> Iterator[list[tuple[str, int]]]:
    """A consumer group member (in its own thread and loop) while the block runs; yields its assignment."""
    assigned: list[tuple[str, int]] = []
    joined, leave = threading.Event(), threading.Event()

    async def member() -> None:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, group_id=group, client_id=client_id)
        await consumer.start()
        try:
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=200)
            assigned.extend(sorted((tp.topic, tp.partition) for tp in consumer.assignment()))
            joined.set()
            while not leave.is_set():
                await consumer.getmany(timeout_ms=200)  # polls, so it stays a member
        finally:
            await consumer.stop()

    thread = threading.Thread(target=asyncio.run, args=(member(),), daemon=True)
    thread.start()
    assert joined.wait(60), "the consumer did not join its group within 60 s"
    try:
        yield assigned
    finally:
        leave.set()
        thread.join(30)


def client_get_until(client: TestClient, path: str, text: str, *, within: float = 30.0) -> str:
    """GET ``path`` until its page contains ``text`` (the broker reports a new member a little later)."""
    deadline = time.monotonic() + within
    while True:
        page = client.get(path).text
        if text in page or time.monotonic() > deadline:
            return page
        time.sleep(0.5)


def test_operators_see_queues_and_dead_letters_but_no_personal_data(site: Site, seeded: Seeded):
    client = site.client(Role.OPERATOR)

    queues = client.get("/api/queues").json()
    letters = client.get("/api/dead-letters").json()
    page = client.get("/operations")

    [lag] = [lag for lag in queues["lags"] if lag["group"] == seeded.group]
    assert lag["lag"] == SCHOOL_RECORDS - COMMITTED
    assert queues["dead_letters"] == DEAD_LETTERS
    assert sorted(d["id"] for d in letters) == ["0-0", "0-1"]
    assert page.status_code == 200
    assert seeded.group in page.text
    assert 'id="replay-0-0"' in page.text
    for text in (json.dumps(letters), page.text):
        assert CHILD not in text, "a dead letter's content (with a personnummer) is never shown"
        assert site.pseudonym(CHILD) not in text


def test_an_operator_replays_a_dead_letter(site: Site, seeded: Seeded):
    client = site.client(Role.OPERATOR)

    replayed = client.post("/api/dead-letters/0-1/replay")
    unknown = client.post("/api/dead-letters/0-7/replay")
    by_form = client.post("/operations/dead-letters/0-0/replay", follow_redirects=True)

    assert replayed.json() == {"replayed": "0-1", "to": seeded.school}
    assert unknown.status_code == 404
    assert f"Dead letter 0-0 was published again on {seeded.school}" in by_form.text
    queues = client.get("/api/queues").json()
    [school] = [t for t in queues["topics"] if t["topic"] == seeded.school]
    # Each replay is a transaction of its own (record + replay log): one record and one commit marker.
    assert school["end_offset_total"] == SCHOOL_RECORDS + 2 * 2


def test_compliance_searches_by_personnummer_and_every_search_is_audited(site: Site):
    client = site.client(Role.COMPLIANCE)

    found = client.post("/api/ledger/search", json={"personnummer": "20120315-0006"}).json()
    denied = client.post("/api/ledger/search", json={"personnummer": CHILD, "outcome": "deny"}).json()
    in_march = client.post("/compliance", data={"personnummer": CHILD, "until": "2026-03-31"})
    other = client.post("/api/ledger/search", json={"recipient": "vastmanland-bu-halsan"}).json()

    assert [(r["message_id"], r["recipient_id"]) for r in found] == [
        ("m-1", "vastmanland-bu-halsan"),
        ("m-1", "vastmanland-folktandvard"),
        ("m-3", "vasteras-socialtjanst"),
    ]
    assert all(r["child"] == site.pseudonym(CHILD) for r in found)
    assert found[0]["decided_at"] == "2026-03-02T10:00:00.000000+00:00", "as the ledger stores and hashes it"
    assert "identity" not in found[0]
    assert [(r["rule_id"], r["legal_basis"]) for r in denied] == [("no-consent-dental", "secrecy (OSL 26:1)")]
    assert "2 decision(s)" in in_march.text
    assert "consent (OSL 10:1)" in in_march.text
    assert {r["child"] for r in other} == {site.pseudonym(CHILD), site.pseudonym(OTHER_CHILD)}
    audit = site.client(Role.ADMIN).get("/api/audit").json()
    assert [(a["who"], a["action"], a["results"]) for a in audit] == [
        ("compliance-person", "search", 2),
        ("compliance-person", "search", 2),
        ("compliance-person", "search", 1),
        ("compliance-person", "search", 3),
    ]
    assert audit[-1]["criteria"] == {"child": site.pseudonym(CHILD)}
    assert CHILD not in json.dumps(audit), "the audit log keeps the pseudonym, not the personnummer"


def test_a_bad_personnummer_is_refused_without_repeating_it(site: Site):
    response = site.client(Role.COMPLIANCE).post("/api/ledger/search", json={"personnummer": "201203150007"})

    assert response.status_code == 422
    assert "wrong check digit" in response.json()["detail"]
    assert "201203150007" not in response.text


def test_compliance_exports_csv_and_verifies_and_both_are_audited(site: Site):
    client = site.client(Role.COMPLIANCE)

    export = client.post("/compliance/export", data={"outcome": "permit"})
    verified = client.post("/api/ledger/verify").json()

    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert export.headers["content-disposition"].startswith("attachment")
    assert [r["message_id"] for r in rows] == ["m-1", "m-2", "m-3"]
    assert tuple(rows[0]) == CSV_COLUMNS, "the same columns as `sambus consent export --format csv`"
    assert {r["legal_basis"] for r in rows} == {"consent (OSL 10:1)"}
    assert verified["intact"] is True
    assert verified["checked"] == 4
    actions = [a["action"] for a in site.client(Role.ADMIN).get("/api/audit").json()]
    assert actions == ["verify", "export"]


def test_operators_get_the_indicators_as_json_and_csv(site: Site):
    client = site.client(Role.OPERATOR)

    table = client.get("/api/stats", params={"period": "2026H1"}).json()
    as_csv = client.get("/api/stats", params={"period": "2026H1", "fmt": "csv"}).text
    bad = client.get("/api/stats", params={"period": "2026Q1"})

    cells = {(c["indicator"], c["dimension"], c["category"]): c["value"] for c in table["cells"]}
    assert cells["sip_initiated", "all", "total"] == 23
    assert cells["sip_initiated", "sex", "girl"] == 12
    assert cells["sip_initiated", "sex", "other"] is None
    assert "2026H1,sip_initiated,sex,girl,12,false" in as_csv
    assert bad.status_code == 422


def test_ready_without_a_token_when_broker_and_database_answer(site: Site):
    response = site.client().get("/ready")

    assert response.status_code == 200
    assert response.json() == {"ready": True, "checks": {"broker": True, "database": True}, "missing": []}


def test_operators_see_which_instance_holds_which_partitions(
    site: Site, seeded: Seeded, kafka_bootstrap: str
):
    client_id = f"{seeded.group}-instance-7"
    with live_member(kafka_bootstrap, seeded.group, client_id, seeded.school) as assigned:
        page = client_get_until(site.client(Role.OPERATOR), "/operations", client_id)

    [row] = [line for line in page.split("<tr>") if client_id in line]
    assert seeded.group in row
    for topic, partition in assigned:
        assert f"{topic}[{partition}]" in row
