"""`sambus kafka up` as an operator uses it: data survives a crash, and `--brokers 3` replicates every topic.

These start brokers of their own (ports 29792-29793 and 29892-29897, in the test's temporary folder).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from sambus.contracts.errors import ConfigError
from sambus.contracts.topics import Topics, TopicSpec
from sambus.router.dev.local_kafka import LocalKafka
from sambus.router.kafka.admin import ensure_topics, read_topic, run_sync
from tests.ports import port_block

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(400)]

SINGLE_PORT = port_block("SAMBUS_TEST_SINGLE_KAFKA_PORT", 29792, 2)
CLUSTER_PORT = port_block("SAMBUS_TEST_CLUSTER_KAFKA_PORT", 29892, 6)


def _sambus(tmp: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp), "SAMBUS_LOCAL_KAFKA_PORT": str(port)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return subprocess.run(
        [str(Path(sys.executable).parent / "sambus"), "kafka", *args],
        capture_output=True, text=True, check=False, timeout=240, env=env,
    )  # fmt: skip


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A temporary folder for the brokers' data; whatever still runs there is reset afterwards."""
    yield tmp_path
    for port, brokers in ((SINGLE_PORT, 1), (CLUSTER_PORT, 3)):
        suffix = "" if brokers == 1 else f"x{brokers}"
        LocalKafka(port=port, brokers=brokers, state_dir=tmp_path / f"sambus-kafka-{port}{suffix}").reset()


def _up(tmp: Path, port: int, *args: str) -> None:
    result = _sambus(tmp, port, "up", *args)
    if result.returncode != 0 and "Java" in result.stdout + result.stderr:
        pytest.skip("no Java for a local broker")
    assert result.returncode == 0, result.stdout + result.stderr


async def _send(servers: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def test_kafka_up_after_a_broker_crash_starts_it_on_its_data_and_reset_deletes_it(state: Path) -> None:
    _up(state, SINGLE_PORT)
    local = LocalKafka(port=SINGLE_PORT, state_dir=state / f"sambus-kafka-{SINGLE_PORT}")
    run_sync(ensure_topics(local.bootstrap_servers, [TopicSpec("kept", partitions=1)]))
    run_sync(_send(local.bootstrap_servers, "kept", b"still here"))

    local.kill_node(local.nodes[0])  # a crash: SIGKILL, the pid file left behind
    _up(state, SINGLE_PORT)

    assert [r.value for r in run_sync(read_topic(local.bootstrap_servers, "kept"))] == [b"still here"]
    down = _sambus(state, SINGLE_PORT, "down")
    assert down.returncode == 0
    assert local.nodes[0].formatted, "`kafka down` keeps the data"
    reset = _sambus(state, SINGLE_PORT, "reset")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert not local.state_dir.exists()


async def _replication(servers: str, topic: str) -> tuple[set[int], str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        for _ in range(50):  # a topic just made may not list its partitions yet
            [described] = await admin.describe_topics([topic])
            if described["partitions"]:
                break
            await asyncio.sleep(0.2)
        for _ in range(50):  # nor, on the broker asked, its configuration
            [configs] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": None})]
            )
            entries = {entry[0]: entry[1] for entry in configs.resources[0][4]}
            if "min.insync.replicas" in entries:
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    return {len(p["replicas"]) for p in described["partitions"]}, entries.get("min.insync.replicas", "absent")


def test_a_three_broker_cluster_replicates_every_sambus_topic_and_survives_a_broker_crash(
    state: Path,
) -> None:
    _up(state, CLUSTER_PORT, "--brokers", "3")
    cluster = LocalKafka(port=CLUSTER_PORT, brokers=3, state_dir=state / f"sambus-kafka-{CLUSTER_PORT}x3")
    servers = cluster.bootstrap_servers
    topics = Topics(prefix="cluster.", replication_factor=3, min_insync_replicas=2)
    run_sync(ensure_topics(servers, topics.specs(("school-x",))))

    for spec in topics.specs(("school-x",)):
        assert run_sync(_replication(servers, spec.name)) == ({3}, "2"), spec.name

    cluster.kill_node(cluster.nodes[2])
    run_sync(asyncio.wait_for(_send(servers, topics.intents, b"with two of three"), 60))
    _up(state, CLUSTER_PORT, "--brokers", "3")  # starts the crashed broker again, on its data
    cluster.wait_ready()
    assert [r.value for r in run_sync(read_topic(servers, topics.intents))] == [b"with two of three"]


def test_a_cluster_of_more_than_five_brokers_is_refused() -> None:
    with pytest.raises(ConfigError, match="1 to 5 brokers"):
        LocalKafka(brokers=6)
