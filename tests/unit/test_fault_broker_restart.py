"""The cluster fault test restarts a broker that logged Kafka's metadata fault, as an operator would.

A Kafka 3.9 broker whose metadata change threw halfway serves a partial metadata image until restarted (see
``tests/fault/test_exactly_once_cluster.METADATA_FAULT``); the test looks for it in each broker's log written
since the broker crash began, and restarts only the brokers that logged it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from tests.fault.test_exactly_once_cluster import METADATA_FAULT, _log_size, _restart_faulted


@dataclass
class Node:
    state_dir: Path

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / "server.log"


@dataclass
class Cluster:
    nodes: list[Node]
    done: list[str] = field(default_factory=list)

    def kill_node(self, node: Node) -> None:
        self.done.append(f"kill {node.state_dir.name}")

    def start_node(self, node: Node) -> None:
        self.done.append(f"start {node.state_dir.name}")

    def wait_ready(self, *, timeout: float) -> None:
        self.done.append(f"ready within {timeout:.0f} s")


def _cluster(tmp_path: Path) -> Cluster:
    nodes = [Node(tmp_path / f"node-{n}") for n in (1, 2, 3)]
    for node in nodes:
        node.log_file.parent.mkdir(parents=True)
        node.log_file.write_text("[2026-11-30 19:19:33] INFO started\n")
    return Cluster(nodes)


def test_only_a_broker_that_logged_the_fault_since_the_crash_is_restarted(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path)
    node_1, _, node_3 = cluster.nodes
    node_1.log_file.write_text(f"[2026-11-30 19:00:00] ERROR {METADATA_FAULT}: earlier, already restarted\n")
    logged = {node.state_dir: _log_size(node.log_file) for node in cluster.nodes}
    with node_3.log_file.open("a") as log:
        log.write(f"[2026-11-30 19:21:08,442] ERROR {METADATA_FAULT}: Error applying topics delta\n")

    restarted = asyncio.run(_restart_faulted(cluster, logged))  # type: ignore[arg-type]

    assert restarted == 1
    assert cluster.done == ["kill node-3", "start node-3", "ready within 120 s"]


def test_no_fault_restarts_nothing(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path)
    logged = {node.state_dir: _log_size(node.log_file) for node in cluster.nodes}

    assert asyncio.run(_restart_faulted(cluster, logged)) == 0  # type: ignore[arg-type]
    assert cluster.done == []
