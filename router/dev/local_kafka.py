"""A local Apache Kafka (KRaft) for development, tests and the demo, started without Docker.

One node by default; ``brokers=3`` makes a three-node cluster (each node broker and controller) whose
internal topics have three replicas and ``min.insync.replicas=2``, so a node can be killed and restarted.
The broker's jars come from Maven Central through ``deploy/kafka/pom.xml`` and are cached in
``deploy/kafka/lib/`` (ignored by git). Each node's data, logs and pid file live in a temporary folder.

Starting never deletes data: a node whose storage is already formatted (after a crash, or after
:meth:`LocalKafka.stop`) starts again on it. :meth:`LocalKafka.stop` deletes only the storage that same
object formatted; :meth:`LocalKafka.reset` (``sambus kafka reset``) deletes it all.

This is a development tool of the source checkout: ``deploy/kafka/`` is not in the wheel, so an installed
sambus says so (:class:`DevelopmentOnlyError`) instead of fetching or starting a broker.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import KafkaError
from aiokafka.protocol.transaction import InitProducerIdRequest

from sambus.contracts.errors import BrokerUnavailableError, ConfigError
from sambus.router.kafka.admin import metadata_answers, run_sync
from sambus.router.kafka.connection import client_kwargs


def _source_kafka_home() -> Path | None:
    # router/dev/local_kafka.py, symlinks resolved: the checkout is two folders above router/.
    home = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
    return home if (home / "pom.xml").is_file() else None


KAFKA_HOME: Path | None = _source_kafka_home()
"""``deploy/kafka/`` of the source checkout sambus runs from; ``None`` when it is installed from a wheel."""
_COMPLETE = ".complete"
MAX_BROKERS = 5


class DevelopmentOnlyError(ConfigError):
    """A development command was run from an installed sambus, which has no source checkout."""

    code = "development_only"

    def __init__(self) -> None:
        """Say what the command needs and what to do instead."""
        super().__init__(
            "the local Kafka broker (`sambus kafka fetch`, `sambus kafka up`, and `sambus demo` without "
            "KAFKA_BOOTSTRAP_SERVERS) is a development tool: it needs the source checkout's deploy/kafka/, "
            "which an installed sambus does not have. Set KAFKA_BOOTSTRAP_SERVERS to your Kafka broker, "
            "or run these commands from a clone of the sambus repository (`make kafka-up`)"
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclasses.dataclass(frozen=True)
class KafkaNode:
    """One node of the local cluster: broker and controller in one process."""

    node_id: int
    port: int
    controller_port: int
    state_dir: Path

    @property
    def data_dir(self) -> Path:
        """Where its log segments and metadata live."""
        return self.state_dir / "data"

    @property
    def log_file(self) -> Path:
        """The broker's own log."""
        return self.state_dir / "logs" / "server.log"

    @property
    def pid_file(self) -> Path:
        """Its process id, while it runs."""
        return self.state_dir / "kafka.pid"

    @property
    def formatted(self) -> bool:
        """Whether its storage has been formatted (and so holds a cluster's data)."""
        return (self.data_dir / "meta.properties").is_file()

    def cluster_id(self) -> str | None:
        """The cluster id its storage was formatted with, if it was."""
        try:
            lines = (self.data_dir / "meta.properties").read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        ids = [line.split("=", 1)[1].strip() for line in lines if line.startswith("cluster.id=")]
        return ids[0] if ids else None


class LocalKafka:
    """Fetch, start, wait for and stop the local broker (or cluster of ``brokers`` nodes) on ``127.0.0.1``.

    Node ``i`` (1-based) listens on ``port + i - 1`` and its controller on ``port + brokers + i - 1``: one
    node uses ``port`` and ``port + 1``, three use ``port`` … ``port + 5``.
    """

    def __init__(
        self,
        *,
        port: int = 19092,
        brokers: int = 1,
        home: Path | None = KAFKA_HOME,
        state_dir: Path | None = None,
        heap_mb: int | None = None,
    ) -> None:
        """Describe the broker(s); ``home`` holds the ``pom.xml``."""
        if not 1 <= brokers <= MAX_BROKERS:
            raise ConfigError(f"the local Kafka has 1 to {MAX_BROKERS} brokers, not {brokers}")
        self.port = port
        self.brokers = brokers
        self.controller_port = port + brokers
        self._home = home
        self.state_dir = state_dir or Path(tempfile.gettempdir()) / (
            f"sambus-kafka-{port}" if brokers == 1 else f"sambus-kafka-{port}x{brokers}"
        )
        self.heap_mb = heap_mb or (1024 if brokers == 1 else 512)
        self.nodes = tuple(
            KafkaNode(
                node_id=i,
                port=port + i - 1,
                controller_port=port + brokers + i - 1,
                state_dir=self.state_dir if brokers == 1 else self.state_dir / f"node-{i}",
            )
            for i in range(1, brokers + 1)
        )
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._formatted_here = False

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    @property
    def log_file(self) -> Path:
        """The (first) broker's own log."""
        return self.nodes[0].log_file

    @property
    def home(self) -> Path:
        """The folder with the broker's pom.xml, configuration template and downloaded jars.

        Raises:
            DevelopmentOnlyError: sambus runs from a wheel, without the source checkout.
        """
        if self._home is None:
            raise DevelopmentOnlyError
        return self._home

    @property
    def _lib(self) -> Path:
        return self.home / "lib"

    def fetch(self) -> None:
        """Download the broker's jars from Maven Central once.

        Raises:
            DevelopmentOnlyError: sambus runs from a wheel, without the source checkout.
            BrokerUnavailableError: Maven is missing or the download failed.
        """
        if (self._lib / _COMPLETE).exists():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerUnavailableError(
                "Maven (mvn) is needed to fetch the Kafka broker from Maven Central; install it "
                "(e.g. `apt-get install maven`) or set KAFKA_BOOTSTRAP_SERVERS to a running broker"
            )
        command = [mvn, "-q", "-B", "-f", str(self.home / "pom.xml"), "dependency:copy-dependencies",
                   f"-DoutputDirectory={self._lib}", "-DincludeScope=runtime"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)  # noqa: S603
        if result.returncode != 0:
            raise BrokerUnavailableError(
                f"fetching Kafka with Maven failed:\n{(result.stdout + result.stderr)[-2000:]}"
            )
        (self._lib / _COMPLETE).touch()

    def node_pid(self, node: KafkaNode) -> int | None:
        """The pid of ``node`` when it is running, else ``None``."""
        try:
            pid = int(node.pid_file.read_text(encoding="ascii").strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        config = str(node.state_dir / "server.properties").encode()
        return pid if b"kafka.Kafka" in cmdline and config in cmdline else None

    def running_pid(self) -> int | None:
        """The pid of a running node, else ``None`` (no node runs)."""
        return next((pid for node in self.nodes if (pid := self.node_pid(node)) is not None), None)

    def _alive(self, node: KafkaNode) -> bool:
        # Right after Popen, /proc/<pid>/cmdline may still be the forking Python's: ask our handle first.
        process = self._processes.get(node.node_id)
        if process is not None:
            return process.poll() is None
        return self.node_pid(node) is not None

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise BrokerUnavailableError(
                "Java 17+ is needed to run the local Kafka broker; install a JDK or JRE"
            )
        return java

    def _port_in_use(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    def _write_config(self, node: KafkaNode) -> Path:
        replicas = min(3, self.brokers)
        template = (self.home / "server.properties.template").read_text(encoding="utf-8")
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        config = (
            template.replace("@NODE_ID@", str(node.node_id))
            .replace("@VOTERS@", voters)
            .replace("@BROKER_PORT@", str(node.port))
            .replace("@CONTROLLER_PORT@", str(node.controller_port))
            .replace("@DATA_DIR@", str(node.data_dir))
            .replace("@REPLICAS@", str(replicas))
            .replace("@MIN_ISR@", str(min_insync_replicas(replicas)))
        )
        path = node.state_dir / "server.properties"
        path.write_text(config, encoding="utf-8")
        return path

    def _jvm(self, node: KafkaNode, main: str, *args: str) -> list[str]:
        return [
            self._java(),
            f"-Xms{min(256, self.heap_mb)}m",
            f"-Xmx{self.heap_mb}m",
            # A broker out of memory keeps answering with dead threads (UnknownServerError, coordinators that
            # never sync, stale leaders): exiting lets the cluster go on without it and says why.
            "-XX:+ExitOnOutOfMemoryError",
            "-cp",
            str(self._lib / "*"),
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
            f"-Dkafka.logs.dir={node.state_dir / 'logs'}",
            main,
            *args,
        ]

    def _format(self, node: KafkaNode, config: Path, cluster_id: str) -> None:
        formatted = subprocess.run(  # noqa: S603
            self._jvm(node, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                      f"--config={config}"),
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        if formatted.returncode != 0:
            raise BrokerUnavailableError(f"formatting Kafka storage failed:\n{formatted.stderr[-2000:]}")
        self._formatted_here = True

    def start(self) -> bool:
        """Start every node that is not running; returns whether this call started one.

        A node whose storage is formatted starts on its data; one without is formatted first (with the
        cluster id of the others). Nothing is ever deleted here.

        Raises:
            DevelopmentOnlyError: sambus runs from a wheel, without the source checkout.
            BrokerUnavailableError: Java or Maven is missing, the ports are taken, or the broker died.
        """
        stopped = [node for node in self.nodes if self.node_pid(node) is None]
        if not stopped:
            return False
        self.fetch()
        for node in stopped:
            for port in (node.port, node.controller_port):
                if self._port_in_use(port):
                    raise BrokerUnavailableError(
                        f"port {port} is in use by another program; stop it or choose another port "
                        "(SAMBUS_LOCAL_KAFKA_PORT)"
                    )
        cluster_id = next((cid for n in self.nodes if (cid := n.cluster_id())), None) or new_cluster_id()
        for node in stopped:
            self.start_node(node, cluster_id=cluster_id)
        return True

    def start_node(self, node: KafkaNode, *, cluster_id: str | None = None) -> None:
        """Start one node on its data (formatting its storage first if it has none)."""
        (node.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        config = self._write_config(node)
        if not node.formatted:
            self._format(node, config, cluster_id or node.cluster_id() or new_cluster_id())
        with (node.state_dir / "logs" / "stdout.log").open("ab") as out:
            process = subprocess.Popen(  # noqa: S603
                self._jvm(node, "kafka.Kafka", str(config)),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._processes[node.node_id] = process  # kept so that stop() reaps it
        node.pid_file.write_text(str(process.pid), encoding="ascii")

    def kill_node(self, node: KafkaNode) -> None:
        """SIGKILL one node, as a crash would (its data stays); :meth:`start_node` brings it back."""
        pid = self.node_pid(node)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        process = self._processes.pop(node.node_id, None)
        if process is not None:
            process.wait(timeout=30)

    def wait_ready(self, *, timeout: float = 90.0) -> None:
        """Wait until every node answers and the cluster serves consumer groups and transactions.

        Every node must answer a metadata request that lists every broker, then :func:`coordinators_answer`.

        Raises:
            BrokerUnavailableError: a node died or did not answer in time; the message has its log's tail.
        """
        deadline = time.monotonic() + timeout
        waiting = list(self.nodes)
        while time.monotonic() < deadline:
            for node in waiting:
                if not self._alive(node):
                    raise BrokerUnavailableError(
                        f"the local Kafka broker exited while starting; its log ({node.log_file}) ends:\n"
                        f"{_tail(node.state_dir / 'logs' / 'stdout.log')}\n{_tail(node.log_file)}"
                    )
            waiting = [
                node
                for node in waiting
                if not (
                    self._port_in_use(node.port)
                    and run_sync(metadata_answers(f"127.0.0.1:{node.port}", brokers=self.brokers))
                )
            ]
            if not waiting and run_sync(coordinators_answer(self.bootstrap_servers)):
                return
            time.sleep(0.5)
        unready = waiting[0] if waiting else self.nodes[0]
        what = "did not answer" if waiting else "did not serve consumer groups and transactions"
        raise BrokerUnavailableError(
            f"the local Kafka broker {what} within {timeout:.0f}s; its log ({unready.log_file}) "
            f"ends:\n{_tail(unready.log_file)}"
        )

    def ensure_running(self, *, timeout: float = 90.0) -> bool:
        """Start the broker(s) if needed and wait until ready; returns whether one was started here."""
        started = self.start()
        try:
            self.wait_ready(timeout=timeout)
        except BrokerUnavailableError:
            if started:
                self.stop()
            raise
        return started

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop every node; returns whether one was running.

        Deletes the storage only when this object formatted it (a broker it made for itself, e.g. a
        test's); data that was there before stays for the next start.
        """
        was_running = False
        for node in self.nodes:
            was_running |= self._stop_node(node, timeout=timeout)
        if self._formatted_here:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self._formatted_here = False
        return was_running

    def reset(self, *, timeout: float = 30.0) -> bool:
        """Stop every node and delete all of its data and logs; returns whether one was running."""
        was_running = self.stop(timeout=timeout)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return was_running

    def _stop_node(self, node: KafkaNode, *, timeout: float) -> bool:
        process = self._processes.pop(node.node_id, None)
        pid = self.node_pid(node)
        if pid is None and process is not None and process.poll() is None:
            pid = process.pid
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._pid_running(pid, process) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._pid_running(pid, process):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if process is not None and process.pid == pid:
            process.wait(timeout=timeout)
        node.pid_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _pid_running(pid: int, process: subprocess.Popen[bytes] | None) -> bool:
        if process is not None and process.pid == pid:
            return process.poll() is None
        try:
            return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False


async def coordinators_answer(bootstrap_servers: str, *, timeout_s: float = 5.0) -> bool:
    """Whether the cluster has a group coordinator and a transaction coordinator that serve requests.

    A broker started again on data it holds answers metadata before it has loaded
    ``__consumer_offsets`` and ``__transaction_state``: with thousands of partitions that took a minute
    (measured after a restart on 6,000 partitions), in which every group join and transactional
    producer waits. The transaction coordinator is asked for a producer id, as a transactional
    producer's start does.

    Each request is bounded by ``timeout_s`` on its own; nothing here is cancelled from outside, as
    aiokafka leaves a connection open when a bootstrap is cancelled between its connect and its
    metadata answer (the leaked connections of a readiness probe that kept timing out during a
    broker's restart once failed an unrelated test when the garbage collector found them).
    """
    probe = f"sambus-ready-{uuid.uuid4()}"
    timeout_ms = max(1, int(timeout_s * 1000))
    client = AIOKafkaClient(**client_kwargs(bootstrap_servers), request_timeout_ms=timeout_ms)
    try:
        await client.bootstrap()
        await client.coordinator_lookup(CoordinationType.GROUP, probe)
        node = await client.coordinator_lookup(CoordinationType.TRANSACTION, probe)
        answer = await client.send(node, InitProducerIdRequest(probe, transaction_timeout_ms=60_000))
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()
    return bool(answer.error_code == 0)


def min_insync_replicas(replicas: int) -> int:
    """How many replicas must have a write before it counts: 2 of 3 (one node may be down), else 1."""
    return 2 if replicas >= 3 else 1  # noqa: PLR2004 - the rule said in the docstring


def new_cluster_id() -> str:
    """Return a fresh Kafka cluster id: a UUID in URL-safe base64, as ``kafka-storage random-uuid`` prints.

    An id that begins with ``-`` reads as an option to the storage tool's argument parser, so such ids are
    drawn again (Kafka's own generator avoids them the same way).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
