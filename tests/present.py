"""Dates relative to the day the tests run: a fixed date falls due (reminders come) as the calendar moves."""

from __future__ import annotations

import datetime as dt


def moment(*, days: float = 0, hours: float = 0) -> str:
    """Now moved by ``days`` and ``hours`` (negative: the past), an ISO 8601 time in UTC to the second."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(days=days, hours=hours)
    return at.isoformat(timespec="seconds")


def day(days: int = 0) -> str:
    """Today moved by ``days``, as an ISO 8601 date."""
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)).isoformat()
