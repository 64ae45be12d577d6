"""How every Kafka client sambus makes connects: the brokers' addresses and the security (TLS, SASL).

One place builds the keyword arguments of aiokafka's producers, consumers, admin clients and bare clients
(:func:`client_kwargs`), so that a client made anywhere in sambus speaks to a TLS or SASL listener the same
way. A plain ``"host:port"`` string still means a PLAINTEXT broker (development, tests); production passes a
:class:`KafkaConnection` built from the settings (:meth:`KafkaConnection.from_settings`).
"""

from __future__ import annotations

import ssl
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context

from sambus.contracts.errors import BrokerUnavailableError, ConfigError, map_errors

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from pydantic import SecretStr

    from sambus.router.settings import Settings


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to reach them; the secrets are left out of ``repr`` and ``str``."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        """The brokers' addresses (what error messages name)."""
        return self.bootstrap_servers

    @classmethod
    def from_settings(cls, settings: Settings, bootstrap_servers: str) -> KafkaConnection:
        """The connection ``settings`` describe to the brokers at ``bootstrap_servers``."""
        return cls(
            bootstrap_servers=bootstrap_servers,
            security_protocol=settings.kafka_security_protocol,
            ssl_cafile=settings.kafka_ssl_cafile,
            ssl_certfile=settings.kafka_ssl_certfile,
            ssl_keyfile=settings.kafka_ssl_keyfile,
            ssl_key_password=_secret(settings.kafka_ssl_key_password),
            ssl_check_hostname=settings.kafka_ssl_check_hostname,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=_secret(settings.kafka_sasl_password),
        )

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is encrypted (``SSL`` or ``SASL_SSL``)."""
        return self.security_protocol in {"SSL", "SASL_SSL"}

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of this connection (its CA, its client certificate), ``None`` without TLS.

        Raises:
            ConfigError: a CA, certificate or key file cannot be read or does not fit (names the file, never
                the key's password).
        """
        if not self.uses_tls:
            return None
        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
                certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
                keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
                password=self.ssl_key_password,
            )
        except (OSError, ssl.SSLError) as exc:
            named = ", ".join(
                str(p) for p in (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile) if p is not None
            )
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ConfigError(
                f"the Kafka TLS files ({named or 'system CAs'}) cannot be used: {reason}; check "
                "SAMBUS_KAFKA_SSL_CAFILE, SAMBUS_KAFKA_SSL_CERTFILE, SAMBUS_KAFKA_SSL_KEYFILE and the key's "
                "password"
            ) from None
        context.check_hostname = self.ssl_check_hostname
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client of this connection is made with."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context
        if self.security_protocol.startswith("SASL_"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


Broker = str | KafkaConnection
"""Brokers as functions take them: a ``"host:port,..."`` string (PLAINTEXT) or a :class:`KafkaConnection`."""


def connection_of(broker: Broker) -> KafkaConnection:
    """``broker`` as a connection (a string is a PLAINTEXT one)."""
    return broker if isinstance(broker, KafkaConnection) else KafkaConnection(bootstrap_servers=broker)


def client_kwargs(broker: Broker) -> dict[str, Any]:
    """The connection keyword arguments of an aiokafka client (producer, consumer, admin) to ``broker``."""
    return connection_of(broker).client_kwargs()


class KafkaRefusedError(ConfigError):
    """The broker answers but refuses sambus: wrong SASL credentials, or a TLS handshake that fails."""

    code = "kafka_refused"


async def refusal(broker: Broker, *, timeout_ms: int = 5000) -> str | None:
    """Why the first broker of ``broker`` refuses a connection (authentication, TLS), else ``None``.

    aiokafka only logs why a bootstrap failed and raises "Unable to bootstrap"; this connects once more to
    learn the reason. The reason never holds a password.
    """
    connection = connection_of(broker)
    if connection.security_protocol == "PLAINTEXT":
        return None
    host, _, port = connection.bootstrap_servers.split(",", 1)[0].strip().rpartition(":")
    kwargs = connection.client_kwargs()
    del kwargs["bootstrap_servers"]
    try:
        conn = await create_conn(host, int(port), request_timeout_ms=timeout_ms, **kwargs)
    except SaslAuthenticationFailed:
        return (
            f"SASL authentication as {connection.sasl_username!r} with {connection.sasl_mechanism} failed "
            "(invalid credentials); check SAMBUS_KAFKA_SASL_USERNAME and SAMBUS_KAFKA_SASL_PASSWORD"
        )
    except ssl.SSLError as exc:
        return (
            f"the TLS handshake failed ({exc.reason or type(exc).__name__}); check SAMBUS_KAFKA_SSL_CAFILE, "
            "the client certificate and SAMBUS_KAFKA_SSL_CHECK_HOSTNAME"
        )
    except (KafkaError, OSError, TimeoutError, ValueError):
        return None
    conn.close()
    return None


@asynccontextmanager
async def kafka_errors(doing: str, broker: Broker) -> AsyncIterator[None]:
    """:func:`map_errors` for a broker: a refused login or TLS handshake says so (:class:`KafkaRefusedError`).

    Raises:
        KafkaRefusedError: the broker refused the credentials or the TLS handshake.
        BrokerUnavailableError: the broker cannot be reached otherwise.
    """
    try:
        with map_errors(doing):
            yield
    except BrokerUnavailableError as exc:
        reason = await refusal(broker)
        if reason is None:
            raise
        raise KafkaRefusedError(f"cannot {doing}: the broker refused sambus: {reason}") from exc
