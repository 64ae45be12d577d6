"""Kafka's default partitioner for keyed records, with a bounded cache of its answers.

Every record sambus produces with a key (a child's pseudonym) must land on the partition Kafka's default
partitioner gives that key: murmur2 of the key bytes, as the Java client computes it, made positive and
taken modulo the partition count. Other clients reading or writing the same topics, and the ordering of a
child's messages across stages, rely on it. aiokafka's own :class:`aiokafka.partitioner.DefaultPartitioner`
computes it in pure Python byte by byte for every record (about 5 % of the delivery stage's CPU);
:class:`KeyPartitioner` computes the same function a word at a time and remembers the answer per key and
partition count, so a child's later records cost a dictionary look-up.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from aiokafka.partitioner import DefaultPartitioner

if TYPE_CHECKING:
    from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")

_UNKEYED = DefaultPartitioner()
"""aiokafka's answer for a record without a key (a random available partition)."""


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (Java's ``org.apache.kafka.common.utils.Utils.murmur2``), unsigned.

    The same value as :func:`aiokafka.partitioner.murmur2` (the Java client's, read as unsigned).
    """
    length = len(data)
    h = _SEED ^ length
    body = length & ~3
    for (word,) in _WORDS.iter_unpack(data[:body]):
        k = (word * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail == 3:  # noqa: PLR2004 - the three tail bytes of Kafka's murmur2
        h ^= data[body + 2] << 16
    if tail >= 2:  # noqa: PLR2004
        h ^= data[body + 1] << 8
    if tail >= 1:
        h = ((h ^ data[body]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, count: int) -> int:
    """The index of the partition Kafka's default partitioner gives ``key`` among ``count`` partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % count


class KeyPartitioner:
    """A producer's ``partitioner=``: Kafka's default for keyed records, answers cached per key and count.

    A record without a key goes where aiokafka's default puts it (a random available partition). The cache
    holds at most ``max_keys`` answers; when it is full it starts again empty (a cache miss costs one
    :func:`murmur2`, never a wrong partition).
    """

    def __init__(self, max_keys: int = 65_536) -> None:
        """Remember at most ``max_keys`` answers."""
        self._max_keys = max_keys
        self._cache: dict[tuple[bytes, int], int] = {}

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        """The partition of ``key`` among ``all_partitions`` (sorted by id), as aiokafka's default says."""
        if key is None:
            chosen: int = _UNKEYED(key, all_partitions, available)
            return chosen
        count = len(all_partitions)
        index = self._cache.get((key, count))
        if index is None:
            index = partition_of(key, count)
            if len(self._cache) >= self._max_keys:
                self._cache = {}  # replaced, not cleared: a look-up elsewhere never sees it half-emptied
            self._cache[key, count] = index
        return all_partitions[index]

    def __len__(self) -> int:
        """How many answers are cached."""
        return len(self._cache)


PARTITIONER = KeyPartitioner()
"""The partitioner of every producer sambus makes for its stages."""
