"""Committed offsets that no transaction in flight can still move: OffsetFetch with ``require_stable``.

A transactional offset commit (``send_offsets_to_transaction``) is *pending* from the moment it is sent until
the transaction's commit marker reaches the group's offsets partition and the group coordinator applies it.
``EndTxn`` answers before that, and so may a new producer's ``InitProducerId``. An ordinary OffsetFetch
(aiokafka asks with versions 1 to 3) leaves a pending commit out and answers the offset before it: whoever
reads the partition from that answer handles records again whose output is already committed. KIP-447
(Kafka 2.5) added ``require_stable`` to OffsetFetch: the coordinator then answers ``UNSTABLE_OFFSET_COMMIT``
for a partition with a pending commit, and the client asks again. aiokafka does not send it, so this module
does (OffsetFetch version 7, the first with the flag) over the consumer's own connection to its coordinator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer
from aiokafka import errors as kafka_errors
from aiokafka.client import ConnectionGroup
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)
from aiokafka.structs import TopicPartition

logger = logging.getLogger(__name__)

UNSTABLE_OFFSET_COMMIT = 88
"""The coordinator's answer for a partition with a transactional offset commit not yet applied."""


class UnstableOffsetsError(kafka_errors.KafkaError):  # type: ignore[misc]
    """A partition's committed offset stayed pending for longer than the caller would wait."""

    retriable = True


class _OffsetFetchResponseV7(Response):  # type: ignore[misc]
    API_KEY = 9
    API_VERSION = 7
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "topics",
            CompactArray(
                ("name", CompactString("utf-8")),
                (
                    "partitions",
                    CompactArray(
                        ("partition_index", Int32),
                        ("committed_offset", Int64),
                        ("committed_leader_epoch", Int32),
                        ("metadata", CompactString("utf-8")),
                        ("error_code", Int16),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("error_code", Int16),
        ("tags", TaggedFields),
    )


class _OffsetFetchRequestV7(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 9
    API_VERSION = 7
    RESPONSE_TYPE = _OffsetFetchResponseV7
    SCHEMA = Schema(
        ("group_id", CompactString("utf-8")),
        (
            "topics",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("partition_indexes", CompactArray(Int32)),
                ("tags", TaggedFields),
            ),
        ),
        ("require_stable", Boolean),
        ("tags", TaggedFields),
    )


class _StableOffsetFetch(Request[_OffsetFetchRequestV7]):  # type: ignore[misc]
    API_KEY = 9
    _CLASSES: ClassVar[tuple[type[RequestStruct]]] = (_OffsetFetchRequestV7,)

    def __init__(self, group_id: str, partitions: Iterable[TopicPartition]) -> None:
        by_topic: dict[str, list[int]] = {}
        for tp in partitions:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        self._group_id = group_id
        self._topics: list[tuple[str, list[int], dict[int, bytes]]] = [
            (topic, sorted(numbers), {}) for topic, numbers in sorted(by_topic.items())
        ]

    def build(self, request_struct_class: type[_OffsetFetchRequestV7]) -> _OffsetFetchRequestV7:
        return request_struct_class(self._group_id, self._topics, True, {})  # noqa: FBT003 - require_stable


_ASK_AGAIN: tuple[type[kafka_errors.KafkaError], ...] = (
    kafka_errors.GroupLoadInProgressError,
    kafka_errors.NotCoordinatorForGroupError,
    kafka_errors.GroupCoordinatorNotAvailableError,
    kafka_errors.KafkaConnectionError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError,
)


async def stable_committed(
    consumer: AIOKafkaConsumer,
    group_id: str,
    partitions: Iterable[TopicPartition],
    *,
    wait_s: float = 90.0,
    pause_s: float = 0.05,
) -> dict[TopicPartition, int | None]:
    """The committed offset of each partition (``None``: none committed), once no commit of it is pending.

    Asks the group's coordinator again while a partition's commit is pending or the coordinator moves, for up
    to ``wait_s`` (longer than a transaction may stay open, 60 s, so a pending commit ends meanwhile).

    Raises:
        UnstableOffsetsError: a commit stayed pending, or the coordinator kept failing, for ``wait_s``.
        kafka_errors.KafkaError: the coordinator refused for good (e.g. authorization).
    """
    wanted = set(partitions)
    if not wanted:
        return {}
    coordinator: Any = consumer._coordinator  # noqa: SLF001 - aiokafka has no public OffsetFetch with the flag
    client: Any = consumer._client  # noqa: SLF001
    started = time.monotonic()
    deadline = started + wait_s
    last: str = "nothing"
    pending = 0  # answers "a commit is still being applied"
    while True:
        try:
            await coordinator.ensure_coordinator_known()
            node = coordinator.coordinator_id
            request = _StableOffsetFetch(group_id, wanted)
            response = await client.send(node, request, group=ConnectionGroup.COORDINATION)
            offsets = _offsets(response, wanted)
        except _ASK_AGAIN as exc:
            if isinstance(exc, kafka_errors.NotCoordinatorForGroupError | kafka_errors.KafkaConnectionError):
                coordinator.coordinator_dead()
            last = type(exc).__name__
        except UnstableOffsetsError:
            last = "a pending transactional commit"
            pending += 1
        else:
            if pending:
                logger.info(
                    "group %s: a committed offset was still being applied; asked again %d times over %.0f ms",
                    group_id, pending, (time.monotonic() - started) * 1000,
                )  # fmt: skip
            return offsets
        if time.monotonic() > deadline:
            raise UnstableOffsetsError(f"committed offsets not stable after {wait_s:.0f} s ({last})")
        await asyncio.sleep(pause_s)


def _offsets(
    response: _OffsetFetchResponseV7, wanted: set[TopicPartition]
) -> dict[TopicPartition, int | None]:
    if response.error_code:
        raise kafka_errors.for_code(response.error_code)
    found: dict[TopicPartition, int | None] = {}
    for topic, partitions, _tags in response.topics:
        for number, offset, _epoch, _metadata, error_code, _ptags in partitions:
            if error_code == UNSTABLE_OFFSET_COMMIT:
                raise UnstableOffsetsError
            if error_code:
                raise kafka_errors.for_code(error_code)
            found[TopicPartition(topic, number)] = None if offset < 0 else offset
    return {tp: found.get(tp) for tp in wanted}
