"""A record a stage produces, and how large Kafka will find it."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import ConsumerRecord

MAX_RECORD_BYTES = 1_048_576
"""The producers' ``max_request_size`` (Kafka's default): no record sambus produces may be larger."""

BATCH_BYTES = 262_144
"""The stages' producers' ``max_batch_size`` (bytes per partition in one batch).

aiokafka's default, 16 KB, holds three or four FHIR messages, and a send that finds its partition's batch
full waits until the sender has sent it (aiokafka keeps one produce request in flight per broker): the
delivery stage's handler waited ~0.4 ms per intent in those sends. Far below Kafka's default
``message.max.bytes`` (1 MB); a record larger than a batch still goes in a batch of its own."""


@dataclass(frozen=True)
class Outgoing:
    """One record to produce, inside the stage's transaction."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def size(self) -> int:
        """The record's size in a batch of its own, as the producer measures it against its limit."""
        size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(self.key, self.value, list(self.headers))
        return size

    def as_consumed(
        self, *, offset: int = 0, partition: int = 0, timestamp: int = 0
    ) -> ConsumerRecord[bytes, bytes]:
        """The record a consumer of ``topic`` reads once this one is produced (for the walks and tests)."""
        return ConsumerRecord(
            topic=self.topic,
            partition=partition,
            offset=offset,
            timestamp=timestamp,
            timestamp_type=0,
            key=self.key,
            value=self.value,
            checksum=None,
            serialized_key_size=len(self.key or b""),
            serialized_value_size=len(self.value),
            headers=self.headers,
        )
