"""Made-up children whose age is the same on any day the tests run: a personnummer born so long ago."""

from __future__ import annotations

import datetime as dt

from sambus.contracts.identifiers import luhn_valid


def personnummer_aged(years: int, *, serial: str = "000", today: dt.date | None = None) -> str:
    """A valid made-up 12-digit personnummer of a child ``years`` old today, born half a year ago in the year.

    Fixed birth dates turn a test's young child into a 15-year-old (who consents on its own) as the calendar
    moves; this child is ``years`` old, at least three months from either birthday, whenever it is made.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    born = today - dt.timedelta(days=round(365.25 * years) + 182)
    first_eleven = f"{born:%Y%m%d}{serial}"
    return next(first_eleven + d for d in "0123456789" if luhn_valid(first_eleven[2:] + d))
