"""The one list of topics (contracts.topics.TOPICS): names, creation, queues and AsyncAPI come from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.database import upgraded

from sambus.contracts.export import asyncapi
from sambus.contracts.topics import TOPICS, Topics, kind_of
from sambus.router.ops.metrics import topic_kind
from sambus.router.service.bootstrap import bootstrap
from sambus.router.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KEY = "k" * 32


def _settings(tmp_path: Path, **more: object) -> Settings:
    return Settings(
        pseudonym_key=KEY,
        topic_prefix="t.",
        database_url=upgraded(f"sqlite:///{tmp_path / 's.db'}"),
        _env_file=None,  # type: ignore[call-arg]
        **more,  # type: ignore[arg-type]
    )


@pytest.mark.asyncio
async def test_every_topic_a_stage_reads_or_dead_letters_to_is_created(tmp_path):
    sambus = bootstrap(_settings(tmp_path), bootstrap_servers="127.0.0.1:1")
    created = {spec.name for spec in sambus.topic_specs()}

    stages = sambus.build_stages()
    used = {topic for stage in stages for topic in (*stage.topics, stage.dlq_topic)}
    for stage in stages:
        await stage.stop()  # never started: closes the clients

    assert {stage.name for stage in stages} >= {
        "intake",
        "delivery",
        "retry-1",
        "retry-3",
        "parked",
        "processes",
    }
    assert used <= created
    assert {sambus.topics.retry(3), sambus.topics.parked_recheck} <= used
    for name in (sambus.topics.timers_fired, sambus.topics.dlq_replayed, sambus.topics.deliver("a-school")):
        assert sambus.topics.is_ours(name)
    assert {sambus.topics.timers_fired, sambus.topics.dlq_replayed} <= created
    sambus.engine.dispose()


def test_every_created_topic_is_one_of_ours_and_in_the_asyncapi_document():
    topics = Topics(prefix="t.")
    channels = asyncapi()["channels"]
    addresses = [channel["address"] for channel in channels.values()]

    specs = topics.specs(("a-school", "b-care"), retry_levels=2)

    assert len(specs) == len(TOPICS) - 2 + 2 + 2  # deliver and retry once per recipient and level
    for spec in specs:
        assert topics.is_ours(spec.name), spec.name
        assert any(re.fullmatch("t." + _as_regex(address), spec.name) for address in addresses), spec.name
    assert {kind.channel for kind in TOPICS} == set(channels)


def _as_regex(address: str) -> str:
    return re.sub(r"\\\{\w+\\\}", "[^.]+", re.escape(address))


def test_names_and_patterns_agree():
    topics = Topics(prefix="x.")

    assert topics.retry(2) == "x.sambus.retry.2"
    assert topics.parked_recheck == "x.sambus.parked.recheck"
    assert topics.timers_fired == "x.sambus.timers.fired"
    assert topics.dlq_replayed == "x.sambus.dlq.replayed"
    assert topics.deliver("skola-1") == "x.deliver.skola-1"
    assert not topics.is_ours("sambus.dlq"), "another prefix is another sambus"
    assert not topics.is_ours("x.sambus.unknown")
    assert not topics.is_ours("x.sambus.retry.0")
    assert [topic_kind(n) for n in ("x.sambus.retry.2", "y.agency.ehr.events", "x.deliver.a", "z")] == [
        "retry",
        "agency.ehr",
        "deliver",
        "other",
    ]
    assert kind_of("x.sambus.dlq.replayed") is not None
    with pytest.raises(ValueError, match="retry levels start at 1"):
        topics.retry(0)


def test_partitions_replication_and_min_insync_replicas_come_from_settings(tmp_path):
    settings = _settings(
        tmp_path, topic_partitions=6, topic_replication_factor=3, topic_min_insync_replicas=2
    )

    specs = {spec.name: spec for spec in settings.topics().specs(("a-school",), retry_levels=1)}

    assert {spec.replication_factor for spec in specs.values()} == {3}
    assert {spec.config["min.insync.replicas"] for spec in specs.values()} == {"2"}
    assert specs["t.sambus.intents"].partitions == 6
    assert specs["t.deliver.a-school"].partitions == 6
    assert specs["t.sambus.dlq"].partitions == 1
    assert specs["t.sambus.timers.fired"].config["cleanup.policy"] == "compact"


def test_defaults_fit_the_single_local_broker(tmp_path):
    specs = _settings(tmp_path).topics().specs()

    assert {(s.replication_factor, s.config["min.insync.replicas"]) for s in specs} == {(1, "1")}
    assert {s.partitions for s in specs} == {1, 3}


def test_more_insync_replicas_than_copies_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="MIN_INSYNC_REPLICAS cannot exceed"):
        _settings(tmp_path, topic_replication_factor=2, topic_min_insync_replicas=3)


def test_no_topic_name_is_written_outside_the_list():
    beginnings = sorted({re.escape(kind.address.split("{")[0]) for kind in TOPICS})
    written = re.compile(r"""(prefix\}|["'])(""" + "|".join(beginnings) + ")")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("contracts", "adapters", "consent", "router")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != ROOT / "contracts" / "topics.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if written.search(line)
    ]

    assert offenders == []


def test_a_delivery_topic_is_remembered_per_prefix_and_a_refused_id_is_refused_each_time() -> None:
    for prefix in ("t.", "other."):
        topics = Topics(prefix=prefix)
        for suffix in ("vasteras-skola-norra", "vastmanland-bu-halsan"):
            assert topics.deliver(suffix) == f"{prefix}deliver.{suffix}"
            assert topics.deliver(suffix) == f"{prefix}deliver.{suffix}"  # kept, the same
    for _ in range(2):  # a refused id is refused each time, not kept
        with pytest.raises(ValueError, match="lower-case"):
            Topics(prefix="t.").deliver("Not_A_Recipient")
