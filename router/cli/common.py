"""What several command groups share: which broker the settings point at."""

from __future__ import annotations

from sambus.contracts.errors import BrokerUnavailableError
from sambus.router.dev.local_kafka import LocalKafka
from sambus.router.settings import Settings


def local_kafka(settings: Settings) -> LocalKafka:
    """The local development broker on the configured port."""
    return LocalKafka(port=settings.local_kafka_port)


def broker_address(settings: Settings) -> str:
    """The configured broker, else the local one's address, whether or not anything answers there."""
    return settings.kafka_bootstrap_servers or local_kafka(settings).bootstrap_servers


def configured_broker(settings: Settings) -> str:
    """The configured broker, or the local one when it is running."""
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    local = local_kafka(settings)
    if local.running_pid() is None:
        raise BrokerUnavailableError(
            "no broker: set KAFKA_BOOTSTRAP_SERVERS, or start the local one with `sambus kafka up`"
        )
    return local.bootstrap_servers
