"""A single-node Apache Kafka (KRaft) for development, tests and the demo, started without Docker.

The broker's jars come from Maven Central through ``deploy/kafka/pom.xml`` and are cached in
``deploy/kafka/lib/`` (ignored by git). Its data, logs and pid file live in a temporary folder,
which :meth:`LocalKafka.stop` deletes: this broker is disposable.

This is a development tool of the source checkout: ``deploy/kafka/`` is not in the wheel, so an installed
sambus says so (:class:`DevelopmentOnlyError`) instead of fetching or starting a broker.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sambus.contracts.errors import BrokerUnavailableError, ConfigError
from sambus.router.kafka.admin import metadata_answers, run_sync


def _source_kafka_home() -> Path | None:
    # router/dev/local_kafka.py, symlinks resolved: the checkout is two folders above router/.
    home = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
    return home if (home / "pom.xml").is_file() else None


KAFKA_HOME: Path | None = _source_kafka_home()
"""``deploy/kafka/`` of the source checkout sambus runs from; ``None`` when it is installed from a wheel."""
_COMPLETE = ".complete"


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


class LocalKafka:
    """Fetch, start, wait for and stop the local broker on ``127.0.0.1:<port>``."""

    def __init__(
        self,
        *,
        port: int = 19092,
        home: Path | None = KAFKA_HOME,
        state_dir: Path | None = None,
        heap_mb: int = 1024,
    ) -> None:
        """Describe a broker on ``port`` (controller: ``port + 1``); ``home`` holds its ``pom.xml``."""
        self.port = port
        self.controller_port = port + 1
        self._home = home
        self.state_dir = state_dir or Path(tempfile.gettempdir()) / f"sambus-kafka-{port}"
        self.heap_mb = heap_mb
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's own log."""
        return self.state_dir / "logs" / "server.log"

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / "kafka.pid"

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

    def running_pid(self) -> int | None:
        """The pid of this broker when it is running, else ``None``."""
        try:
            pid = int(self._pid_file.read_text(encoding="ascii").strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"kafka.Kafka" in cmdline and str(self.state_dir).encode() in cmdline else None

    def _pid_alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        return self.running_pid() == pid

    def _alive(self) -> bool:
        # Right after Popen, /proc/<pid>/cmdline may still be the forking Python's: ask our handle first.
        if self._process is not None:
            return self._process.poll() is None
        return self.running_pid() is not None

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

    def _write_config(self) -> Path:
        template = (self.home / "server.properties.template").read_text(encoding="utf-8")
        config = (
            template.replace("@BROKER_PORT@", str(self.port))
            .replace("@CONTROLLER_PORT@", str(self.controller_port))
            .replace("@DATA_DIR@", str(self.state_dir / "data"))
        )
        path = self.state_dir / "server.properties"
        path.write_text(config, encoding="utf-8")
        return path

    def _jvm(self, main: str, *args: str) -> list[str]:
        return [
            self._java(),
            f"-Xms{min(256, self.heap_mb)}m",
            f"-Xmx{self.heap_mb}m",
            "-cp",
            str(self._lib / "*"),
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.state_dir / 'logs'}",
            main,
            *args,
        ]

    def start(self) -> bool:
        """Start the broker unless it is running; returns whether this call started it.

        Raises:
            DevelopmentOnlyError: sambus runs from a wheel, without the source checkout.
            BrokerUnavailableError: Java or Maven is missing, the ports are taken, or the broker died.
        """
        if self.running_pid() is not None:
            return False
        self.fetch()
        for port in (self.port, self.controller_port):
            if self._port_in_use(port):
                raise BrokerUnavailableError(
                    f"port {port} is in use by another program; stop it or choose another port "
                    "(SAMBUS_LOCAL_KAFKA_PORT)"
                )
        shutil.rmtree(self.state_dir, ignore_errors=True)
        (self.state_dir / "logs").mkdir(parents=True)
        config = self._write_config()
        cid = new_cluster_id()
        formatted = subprocess.run(  # noqa: S603
            self._jvm("kafka.tools.StorageTool", "format", f"--cluster-id={cid}", f"--config={config}"),
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        if formatted.returncode != 0:
            raise BrokerUnavailableError(f"formatting Kafka storage failed:\n{formatted.stderr[-2000:]}")
        with (self.state_dir / "logs" / "stdout.log").open("wb") as out:
            process = subprocess.Popen(  # noqa: S603
                self._jvm("kafka.Kafka", str(config)),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._process = process  # kept so that stop() reaps it
        self._pid_file.write_text(str(process.pid), encoding="ascii")
        return True

    def wait_ready(self, *, timeout: float = 90.0) -> None:
        """Wait until the broker answers a metadata request.

        Raises:
            BrokerUnavailableError: the broker died or did not answer in time; the message has its log's tail.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive():
                raise BrokerUnavailableError(
                    f"the local Kafka broker exited while starting; its log ({self.log_file}) ends:\n"
                    f"{_tail(self.state_dir / 'logs' / 'stdout.log')}\n{_tail(self.log_file)}"
                )
            if self._port_in_use(self.port) and run_sync(metadata_answers(self.bootstrap_servers)):
                return
            time.sleep(0.5)
        raise BrokerUnavailableError(
            f"the local Kafka broker did not answer within {timeout:.0f}s; its log ({self.log_file}) ends:\n"
            f"{_tail(self.log_file)}"
        )

    def ensure_running(self, *, timeout: float = 90.0) -> bool:
        """Start the broker if needed and wait until it is ready; returns whether it was started here."""
        started = self.start()
        try:
            self.wait_ready(timeout=timeout)
        except BrokerUnavailableError:
            if started:
                self.stop()
            raise
        return started

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the broker and delete its data; returns whether it was running."""
        pid = self.running_pid()
        if pid is None and self._process is not None and self._process.poll() is None:
            pid = self._process.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self._pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            if self._process is not None and self._process.pid == pid:
                self._process.wait(timeout=timeout)
                self._process = None
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return pid is not None


def new_cluster_id() -> str:
    """Return a fresh Kafka cluster id: a UUID in URL-safe base64, as ``kafka-storage random-uuid`` prints.

    An id that begins with ``-`` reads as an option to the storage tool's argument parser, so such ids are
    drawn again (Kafka's own generator avoids them the same way).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
