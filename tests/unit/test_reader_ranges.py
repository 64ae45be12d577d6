"""Reading offset ranges when a partition's position is already past its range's end.

In the fresh-clone CI run the scale-out run's queue monitor died with aiokafka's "`max_records` must be a
positive Integer": one partition was read past its end (a transaction marker) by more offsets than the other
had left, and the records left were summed with that negative count.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from sambus.router.kafka.reader import Clients

pytestmark = pytest.mark.asyncio

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


class Consumer:
    """A's position is 5 past its range's end; B has two records left."""

    def __init__(self) -> None:
        self.positions = {A: 15, B: 20}
        self.asked: list[int] = []

    def assign(self, _partitions: Any) -> None: ...
    def pause(self, *_partitions: Any) -> None: ...
    def resume(self, *_partitions: Any) -> None: ...
    def seek(self, _tp: TopicPartition, _offset: int) -> None: ...

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        assert timeout_ms > 0
        if max_records <= 0:
            raise ValueError("`max_records` must be a positive Integer")  # as aiokafka does
        self.asked.append(max_records)
        got = {
            B: [
                ConsumerRecord("t", 1, 20, 0, 0, b"k", b"v", None, 1, 1, ()),
                ConsumerRecord("t", 1, 21, 0, 0, b"k", b"v", None, 1, 1, ()),
            ]
        }
        self.positions[B] = 22
        return {tp: records for tp, records in got.items() if tp in partitions}


async def test_a_partition_read_past_its_end_does_not_make_the_count_of_records_left_negative() -> None:
    consumer = Consumer()
    clients = Clients(servers="127.0.0.1:1", admin=None, consumer=consumer)  # type: ignore[arg-type]
    records = await clients.read_ranges({A: (0, 10), B: (18, 22)})
    assert [r.offset for r in records] == [20, 21]
    assert consumer.asked == [2]
