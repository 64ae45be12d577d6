"""Records as a consumer reads them, for tests that call a stage's handler without a broker."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from sambus.router.kafka.records import Outgoing


def consumed(
    outgoing: Outgoing, *, offset: int = 0, partition: int = 0, timestamp: int = 0
) -> ConsumerRecord[bytes, bytes]:
    """The record a consumer of ``outgoing.topic`` reads after a stage produced ``outgoing``."""
    return ConsumerRecord(
        topic=outgoing.topic,
        partition=partition,
        offset=offset,
        timestamp=timestamp,
        timestamp_type=0,
        key=outgoing.key,
        value=outgoing.value,
        checksum=None,
        serialized_key_size=len(outgoing.key or b""),
        serialized_value_size=len(outgoing.value),
        headers=outgoing.headers,
    )
