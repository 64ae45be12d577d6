"""What several command groups share: which broker the settings point at, the database for one command."""

from __future__ import annotations

import sqlalchemy as sa

from sambus.contracts.errors import BrokerUnavailableError
from sambus.router.dev.local_kafka import LocalKafka
from sambus.router.service.schema import create_engine, open_database
from sambus.router.settings import Settings


def command_database(settings: Settings, *, checked: bool = True) -> sa.Engine:
    """The database of ``settings`` for a command that runs once (no pool: no connection stays open).

    Raises:
        SchemaNotCurrentError: ``checked`` and the schema is not at the newest revision (says what to run).
        StoreUnavailableError: ``checked`` and the database cannot be reached.
    """
    if checked:
        return open_database(settings.database_url, pooled=False)
    return create_engine(settings.database_url, pooled=False)


def local_kafka(settings: Settings, *, brokers: int | None = None) -> LocalKafka:
    """The local development broker (or cluster of ``brokers``) on the configured port."""
    return LocalKafka(port=settings.local_kafka_port, brokers=brokers or settings.local_kafka_brokers)


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
