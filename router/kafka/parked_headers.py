"""The headers of a record on ``sambus.parked``: since when it waits, when to look again, where it goes."""

from __future__ import annotations

import datetime as dt

PARKED_SINCE = "sambus-parked-since"
"""Header: when (epoch milliseconds) the message was first parked."""
PARKED_CHECK_AT = "sambus-parked-check-at"
"""Header: when (epoch milliseconds) consent is next decided again."""
PARKED_DELIVER_TO = "sambus-parked-deliver-to"
"""Header: the delivery topic suffix of the organisation that receives it once released (it or a relay)."""
PARKED_HEADERS = frozenset({PARKED_SINCE, PARKED_CHECK_AT, PARKED_DELIVER_TO})


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
        (PARKED_SINCE, epoch_ms(since)),
        (PARKED_CHECK_AT, epoch_ms(check_at)),
        (PARKED_DELIVER_TO, deliver_to.encode("ascii")),
    )
