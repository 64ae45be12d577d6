"""The Kafka security settings: what they accept and refuse, and that every client sambus makes uses them."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from sambus.router.kafka.connection import KafkaConnection, client_kwargs
from sambus.router.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("router", "adapters", "consent", "contracts")
CLIENT = re.compile(r"\b(AIOKafka(?:Producer|Consumer|AdminClient|Client))\(")


def _calls(source: str) -> list[tuple[str, str]]:
    """Each aiokafka client construction in ``source``: (class, its argument text up to the closing paren)."""
    found = []
    for match in CLIENT.finditer(source):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            end += 1
        found.append((match.group(1), source[match.end() : end - 1]))
    return found


def test_every_kafka_client_sambus_makes_goes_through_the_one_factory():
    calls = {
        f"{path.relative_to(ROOT)}: {kind}": arguments
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for kind, arguments in _calls(path.read_text(encoding="utf-8"))
    }
    assert len(calls) >= 10  # producers, consumers, admin clients, the bare client of metadata_answers
    bypassing = [where for where, arguments in calls.items() if "**client_kwargs(" not in arguments]
    assert bypassing == []


def test_plaintext_by_default():
    assert client_kwargs("127.0.0.1:9092") == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_the_settings_become_the_clients_arguments():
    password = secrets.token_hex(8)
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="sambus",
        kafka_sasl_password=password,
    )
    connection = KafkaConnection.from_settings(settings, "kafka-0:9093,kafka-1:9093")
    kwargs = connection.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "sambus"
    assert kwargs["sasl_plain_password"] == password
    assert kwargs["ssl_context"] is not None
    assert kwargs["ssl_context"].check_hostname
    assert password not in repr(connection)
    assert password not in str(connection)


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs SAMBUS_KAFKA_SASL_MECHANISM"),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": "p",
            },
            "only over TLS",
        ),
        ({"kafka_sasl_mechanism": "SCRAM-SHA-512"}, "uses no SASL"),
        ({"kafka_ssl_cafile": "/ca.pem"}, "uses no TLS"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/c.pem"}, "go together"),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
    ],
)
def test_settings_that_do_not_fit_are_refused(values: dict[str, str], says: str):
    with pytest.raises(ValidationError, match=says):
        Settings(**values)  # type: ignore[arg-type]
