"""Kafka over TLS and SASL: a broker of its own with an SSL listener and SCRAM/PLAIN users, reached through
sambus's one client factory (admin client, producer, consumer).

The certificates (a CA, the broker's, sambus's client certificate) are made with ``openssl`` in a temporary
folder; the broker runs from the same Maven jars as ``deploy/kafka/`` on ports 28192-28195 (below Linux's
ephemeral range, 32768-60999: at 39192 a client's own connection to another broker held the port and the
broker could not bind it); the SCRAM user is created with ``kafka-storage format --add-scram`` (KRaft).
Without Java, openssl or the jars the tests skip — and fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from sambus.contracts.errors import BrokerUnavailableError, ConfigError
from sambus.contracts.topics import TopicSpec
from sambus.router.dev.local_kafka import KAFKA_HOME, LocalKafka, new_cluster_id
from sambus.router.kafka.admin import ensure_topics, metadata_answers, read_topic, run_sync
from sambus.router.kafka.connection import KafkaConnection, KafkaRefusedError, client_kwargs
from sambus.router.settings import Settings
from tests.ports import port_block

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]

SASL_PORT = port_block("SAMBUS_TEST_SECURE_KAFKA_PORT", 28192, 4)
CONTROLLER_PORT = SASL_PORT + 1
SSL_PORT = SASL_PORT + 2
INTERNAL_PORT = SASL_PORT + 3
SCRAM_USER, SCRAM_PASSWORD = "sambus-scram", "scram-" + secrets.token_hex(8)
PLAIN_USER, PLAIN_PASSWORD = "sambus-plain", "plain-" + secrets.token_hex(8)


def _cannot_run(reason: str) -> None:
    message = f"no TLS/SASL Kafka broker for the tests: {reason}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class SecureBroker:
    """Where the broker listens and the files a client needs."""

    sasl_ssl: str
    ssl: str
    ca: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificate(name: str, subject: str, folder: Path, extensions: str) -> None:
    """``name.key`` (PKCS#8, unencrypted) and ``name.pem`` signed by the test CA."""
    (folder / f"{name}.ext").write_text(extensions, encoding="ascii")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject, cwd=folder)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)  # fmt: skip


def _make_certificates(folder: Path) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=sambus test CA", cwd=folder)  # fmt: skip
    _certificate("broker", "/CN=localhost", folder, "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _certificate("client", "/CN=sambus", folder, "extendedKeyUsage=clientAuth\n")
    keystore = (folder / "broker.key").read_text(encoding="ascii") + (folder / "broker.pem").read_text(
        encoding="ascii"
    )
    (folder / "broker-keystore.pem").write_text(keystore, encoding="ascii")


def _config(folder: Path) -> Path:
    listeners = (
        f"SASL_SSL://127.0.0.1:{SASL_PORT},SSL://127.0.0.1:{SSL_PORT},INTERNAL://127.0.0.1:{INTERNAL_PORT}"
    )
    scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    plain_login = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{PLAIN_USER}="{PLAIN_PASSWORD}";'
    )
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{CONTROLLER_PORT}",
        f"listeners={listeners},CONTROLLER://127.0.0.1:{CONTROLLER_PORT}",
        f"advertised.listeners={listeners}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=INTERNAL",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram_login}",
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={plain_login}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={folder / 'broker-keystore.pem'}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={folder / 'ca.pem'}",
        "listener.name.ssl.ssl.client.auth=required",
        f"log.dirs={folder / 'data'}",
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=1",
        "group.initial.rebalance.delay.ms=0",
    ]
    path = folder / "server.properties"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _scram(broker: SecureBroker, password: str = SCRAM_PASSWORD) -> KafkaConnection:
    return KafkaConnection(
        bootstrap_servers=broker.sasl_ssl,
        security_protocol="SASL_SSL",
        ssl_cafile=broker.ca,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=SCRAM_USER,
        sasl_password=password,
    )


STALLED_S = 180.0
"""A starting broker whose output has not grown for this long is stuck (a loaded machine is only slow)."""
STARTING_AT_MOST_S = 900.0


def _wait_until_up(process: subprocess.Popen[bytes], broker: SecureBroker, log: Path) -> None:
    """Wait until the broker answers a SCRAM client, as long as it runs and its output keeps growing.

    Two runs on one machine with the default ports race for them: the one that loses says so and skips
    (fails under ``CI=true``) instead of erroring in every test's setup.
    """
    started = last_growth = time.monotonic()
    size = 0
    while not run_sync(metadata_answers(_scram(broker), timeout_ms=10_000)):
        output = log.read_text(encoding="utf-8", errors="replace")
        now = time.monotonic()
        if len(output) != size:
            size, last_growth = len(output), now
        if process.poll() is not None and "Address already in use" in output:
            _cannot_run(
                f"another broker took port {SASL_PORT}-{INTERNAL_PORT} (set SAMBUS_TEST_SECURE_KAFKA_PORT)"
            )
        if process.poll() is not None or now - last_growth > STALLED_S or now - started > STARTING_AT_MOST_S:
            state = "exited" if process.poll() is not None else f"still starting after {now - started:.0f} s"
            pytest.fail(f"the TLS/SASL broker did not come up ({state}); its output ends:\n{output[-3000:]}")
        time.sleep(1)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A KRaft broker with a SASL_SSL listener (SCRAM-SHA-512, PLAIN) and an SSL listener wanting a client
    certificate; stopped and deleted afterwards."""
    java = shutil.which("java")
    if java is None or shutil.which("openssl") is None or KAFKA_HOME is None:
        _cannot_run("java, openssl and the source checkout's deploy/kafka/ are needed")
        return
    try:
        LocalKafka(port=SASL_PORT).fetch()
    except BrokerUnavailableError as exc:
        _cannot_run(str(exc))
        return
    for port in (SASL_PORT, CONTROLLER_PORT, SSL_PORT, INTERNAL_PORT):
        if _port_in_use(port):
            _cannot_run(f"port {port} is taken (set SAMBUS_TEST_SECURE_KAFKA_PORT)")
    folder = tmp_path_factory.mktemp("secure-kafka")
    _make_certificates(folder)
    config = _config(folder)
    (folder / "logs").mkdir()

    def jvm(main: str, *args: str) -> list[str]:
        return [java, "-Xms128m", "-Xmx512m", "-cp", str(KAFKA_HOME / "lib" / "*"),
                f"-Dlog4j.configuration=file:{KAFKA_HOME / 'log4j.properties'}",
                f"-Dkafka.logs.dir={folder / 'logs'}", main, *args]  # fmt: skip

    formatted = subprocess.run(
        jvm("kafka.tools.StorageTool", "format", f"--cluster-id={new_cluster_id()}", f"--config={config}",
            "--add-scram", f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"),
        capture_output=True, text=True, check=False, timeout=600,  # a JVM starts slowly on a loaded machine
    )  # fmt: skip
    if formatted.returncode != 0:
        pytest.fail(f"kafka-storage format --add-scram failed:\n{formatted.stdout}{formatted.stderr}")
    with (folder / "logs" / "stdout.log").open("wb") as out:
        process = subprocess.Popen(jvm("kafka.Kafka", str(config)), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    broker = SecureBroker(
        sasl_ssl=f"127.0.0.1:{SASL_PORT}",
        ssl=f"127.0.0.1:{SSL_PORT}",
        ca=folder / "ca.pem",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
    )
    try:
        _wait_until_up(process, broker, folder / "logs" / "stdout.log")
        yield broker
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


async def _round_trip(connection: KafkaConnection) -> list[bytes]:
    """Create a topic (admin client), write two records (producer), read them back (consumer)."""
    topic = f"secure.{secrets.token_hex(4)}"
    assert await ensure_topics(connection, [TopicSpec(topic, partitions=1)]) == [topic]
    producer = AIOKafkaProducer(**client_kwargs(connection), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"first", key=b"k")
        await producer.send_and_wait(topic, b"second", key=b"k")
    finally:
        await producer.stop()
    return [r.value for r in await read_topic(connection, topic) if r.value is not None]


def test_scram_sha_512_over_tls_from_the_settings(secure_broker: SecureBroker) -> None:
    settings = Settings(
        kafka_bootstrap_servers=secure_broker.sasl_ssl,
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=secure_broker.ca,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=SCRAM_USER,
        kafka_sasl_password=SCRAM_PASSWORD,
    )
    connection = KafkaConnection.from_settings(settings, secure_broker.sasl_ssl)
    assert asyncio.run(_round_trip(connection)) == [b"first", b"second"]


def test_plain_over_tls(secure_broker: SecureBroker) -> None:
    connection = KafkaConnection(
        bootstrap_servers=secure_broker.sasl_ssl,
        security_protocol="SASL_SSL",
        ssl_cafile=secure_broker.ca,
        sasl_mechanism="PLAIN",
        sasl_username=PLAIN_USER,
        sasl_password=PLAIN_PASSWORD,
    )
    assert asyncio.run(_round_trip(connection)) == [b"first", b"second"]


def test_tls_with_a_client_certificate(secure_broker: SecureBroker) -> None:
    connection = KafkaConnection(
        bootstrap_servers=secure_broker.ssl,
        security_protocol="SSL",
        ssl_cafile=secure_broker.ca,
        ssl_certfile=secure_broker.client_cert,
        ssl_keyfile=secure_broker.client_key,
    )
    assert asyncio.run(_round_trip(connection)) == [b"first", b"second"]


def test_a_wrong_password_is_refused_clearly_and_the_password_is_not_told(
    secure_broker: SecureBroker,
) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    connection = _scram(secure_broker, password=wrong)
    with pytest.raises(KafkaRefusedError) as refused:
        asyncio.run(ensure_topics(connection, [TopicSpec(f"secure.{secrets.token_hex(4)}", partitions=1)]))
    message = str(refused.value)
    assert "authentication" in message.lower()
    assert SCRAM_USER in message
    assert wrong not in message
    assert SCRAM_PASSWORD not in message
    assert wrong not in repr(connection)
    assert not run_sync(metadata_answers(connection))


def test_plaintext_to_the_tls_listener_gets_nothing(secure_broker: SecureBroker) -> None:
    assert not run_sync(metadata_answers(KafkaConnection(bootstrap_servers=secure_broker.sasl_ssl)))


def test_an_unknown_ca_fails_with_the_file_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    connection = KafkaConnection(bootstrap_servers="127.0.0.1:9", security_protocol="SSL", ssl_cafile=missing)
    with pytest.raises(ConfigError, match=r"no-such-ca\.pem"):
        client_kwargs(connection)
