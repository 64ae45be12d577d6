"""The headers of a record on ``sambus.parked``: since when it waits, when to look again, where it goes."""

from __future__ import annotations

import datetime as dt

from sambus.contracts.topics import Header

PARKED_HEADERS = frozenset({Header.PARKED_SINCE, Header.PARKED_CHECK_AT, Header.PARKED_DELIVER_TO})


def epoch_ms(moment: dt.datetime) -> bytes:
    """A time as epoch milliseconds, as header bytes."""
    return str(int(moment.timestamp() * 1000)).encode("ascii")


def from_epoch_ms(value: bytes | None) -> dt.datetime:
    """The time in an epoch-milliseconds header.

    Raises:
        ValueError: there is no value, or it is not a number of milliseconds.
    """
    if value is None:
        raise ValueError("no time")
    return dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.UTC)


def park_headers(
    *, since: dt.datetime, check_at: dt.datetime, deliver_to: str
) -> tuple[tuple[str, bytes], ...]:
    """The parked-state headers of a record."""
    return (
        (Header.PARKED_SINCE, epoch_ms(since)),
        (Header.PARKED_CHECK_AT, epoch_ms(check_at)),
        (Header.PARKED_DELIVER_TO, deliver_to.encode("ascii")),
    )
