"""Fixtures shared by every test: a real Kafka broker, per-test topic names, a wired sambus."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from sambus.contracts.errors import BrokerUnavailableError
from sambus.contracts.fhir import set_validation
from sambus.contracts.fhir._validated import ENVIRONMENT_VARIABLE
from sambus.contracts.topics import Topics
from sambus.router.dev.local_kafka import LocalKafka
from sambus.router.kafka.admin import metadata_answers, run_sync
from tests.ports import port_block

# The service does not validate the builders' output at run time; the tests do, for every builder (and in
# every subprocess they start), which is what lets the service skip it.
os.environ[ENVIRONMENT_VARIABLE] = "1"
set_validation(enabled=True)

# A port of its own, so a broker started by `make kafka-up` (19092) is never stopped by the tests. The test
# broker already running there is reused; a port held by another program is passed over (tests/ports.py).
_DEFAULT_TEST_KAFKA_PORT = 19192
TEST_KAFKA_PORT = (
    _DEFAULT_TEST_KAFKA_PORT
    if LocalKafka(port=_DEFAULT_TEST_KAFKA_PORT).running_pid() is not None
    else port_block("SAMBUS_TEST_KAFKA_PORT", _DEFAULT_TEST_KAFKA_PORT, 2)
)


def _no_broker(reason: str) -> None:
    message = f"no Kafka broker for the tests: {reason}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _from_docker() -> Iterator[str] | None:
    """A broker from testcontainers, when the optional extra is installed and Docker answers."""
    try:
        from testcontainers.kafka import KafkaContainer  # noqa: PLC0415 - optional extra
    except ImportError:
        return None

    def run() -> Iterator[str]:
        with KafkaContainer() as container:
            yield container.get_bootstrap_server()

    return run()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real broker: KAFKA_BOOTSTRAP_SERVERS, else the local one from deploy/kafka/.

    Fails in CI (CI=true) and skips elsewhere, with the reason, when no broker can be had.
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        if not run_sync(metadata_answers(configured)):
            _no_broker(f"KAFKA_BOOTSTRAP_SERVERS={configured} does not answer a metadata request")
        yield configured
        return
    local = LocalKafka(port=TEST_KAFKA_PORT)
    try:
        started = local.ensure_running()
    except BrokerUnavailableError as exc:
        docker = _from_docker()
        if docker is None:
            _no_broker(str(exc))
            return
        yield from docker
        return
    try:
        yield local.bootstrap_servers
    finally:
        if started:
            local.stop()


@pytest.fixture
def topics() -> Topics:
    """Topic names of this test alone."""
    return Topics(prefix=f"t{secrets.token_hex(4)}.")
