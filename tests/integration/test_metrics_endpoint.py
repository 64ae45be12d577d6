"""``/metrics`` on the real broker: known consumer lag, dead letters and parked records."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from sambus.router.kafka.admin import run_sync
from sambus.router.web.auth import Role
from tests.web.conftest import Site, seeded, site  # noqa: F401 - fixtures shared with tests/web
from tests.web.kafka_seed import COMMITTED, DEAD_LETTERS, PARKED, SCHOOL_RECORDS, Seeded, seed_dead_letters

pytestmark = pytest.mark.kafka


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_show_lag_dead_letters_and_parked(site: Site, seeded: Seeded):  # noqa: F811
    response = site.client(Role.OPERATOR).get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    lag_key = ("sambus_consumer_lag", (("group", seeded.group), ("topic", seeded.school)))
    assert samples[lag_key] == SCHOOL_RECORDS - COMMITTED
    assert samples["sambus_dead_letters", ()] == DEAD_LETTERS
    assert samples["sambus_parked", ()] == PARKED
    for family in ("sambus_messages_in", "sambus_messages_out", "sambus_decisions"):
        assert f"# TYPE {family}_total counter" in response.text
    assert "# TYPE sambus_end_to_end_latency_seconds histogram" in response.text


def test_scrapes_share_one_kept_consumer_and_see_new_dead_letters(
    site: Site,  # noqa: F811
    seeded: Seeded,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    starts: list[AIOKafkaConsumer] = []
    start = AIOKafkaConsumer.start

    async def counting(self: AIOKafkaConsumer) -> None:
        starts.append(self)
        await start(self)

    monkeypatch.setattr(AIOKafkaConsumer, "start", counting)
    client = site.client(Role.OPERATOR)  # each request on an event loop of its own

    first = [_samples(client.get("/metrics").text)["sambus_dead_letters", ()] for _ in range(3)]
    run_sync(seed_dead_letters(site.sambus.bootstrap_servers, seeded.topics, 4))
    after = _samples(client.get("/metrics").text)["sambus_dead_letters", ()]

    assert first == [DEAD_LETTERS] * 3
    assert after == DEAD_LETTERS + 4
    assert len(starts) == 1, "one consumer for every scrape, kept between them"
