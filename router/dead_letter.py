"""Dead letters: the original bytes and headers, with why and where from in ``sambus-dlq-*`` headers."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from contracts.errors import SambusError
from contracts.topics import Header
from router.outgoing import Outgoing

_SAMBUS_DLQ_HEADERS = {
    Header.DLQ_REASON,
    Header.DLQ_ERROR,
    Header.DLQ_SOURCE_TOPIC,
    Header.DLQ_SOURCE_PARTITION,
    Header.DLQ_SOURCE_OFFSET,
}


def dead_letter(record: ConsumerRecord[bytes, bytes], error: SambusError, *, dlq_topic: str) -> Outgoing:
    """A dead letter for ``record``: its value and headers unchanged, plus the reason and its origin.

    The original key is not copied: a source system may have keyed by a personal identity number.
    """
    original = tuple((k, v) for k, v in (record.headers or ()) if k not in _SAMBUS_DLQ_HEADERS)
    return Outgoing(
        topic=dlq_topic,
        key=None,
        value=record.value if record.value is not None else b"",
        headers=(
            *original,
            (Header.DLQ_REASON, str(error).encode("utf-8")),
            (Header.DLQ_ERROR, error.code.encode("ascii")),
            (Header.DLQ_SOURCE_TOPIC, record.topic.encode("utf-8")),
            (Header.DLQ_SOURCE_PARTITION, str(record.partition).encode("ascii")),
            (Header.DLQ_SOURCE_OFFSET, str(record.offset).encode("ascii")),
        ),
    )
