"""Follow-up indicators of the regional agreements, by sex, age band and county part.

The facts are anonymous: a process kind, the child's sex, age band and county part, the dates of
its steps and how a SIP ended (its closure reason). No identity is stored, and small cells are suppressed
so no child can be singled out:
a count below :data:`MIN_CELL` is hidden, and so is a count whose complement is (those of the same
process and category it does not count); when a split then hides exactly one category, the next smallest
is hidden too (secondary suppression), so the total cannot give the hidden one back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa

from sambus.contracts.errors import map_errors
from sambus.contracts.events.sip import ClosureReason

MIN_CELL = 5
"""Counts below this (and above zero) are suppressed."""

SEXES = ("girl", "boy", "other", "not-stated")
"""``not-stated``: a child without personnummer or samordningsnummer whose sending system states no gender
(the sex is never guessed)."""
SEX_NOT_STATED = SEXES[3]
AGE_BANDS = ("0-5", "6-12", "13-17", "18-21")
"""The last band holds young people placed outside the home, whom both agreements follow past 18 (to 20 in
Västmanland, to 21 in Västerbotten)."""
OLDEST_FOLLOWED_UP = 21
"""The oldest age any agreement follows up (Västerbotten: placed before 18, up to 21)."""


class ProcessKind(StrEnum):
    """The processes the agreements follow up."""

    SIP = "sip"
    EXAM_2017_209 = "exam_2017_209"
    """Health examination of a child placed by social services (SOSFS/HSLF 2017:209)."""
    LVU_32 = "lvu_32"
    """Examination under LVU § 32."""
    ACUTE_PLACEMENT = "acute_placement"


@dataclass(frozen=True)
class ProcessFact:
    """One process about one child, without the child: who it concerns only as sex, age band, county part."""

    kind: ProcessKind
    sex: str
    age_band: str
    county_part: str
    started_on: dt.date
    """SIP initiated, examination requested, LVU placement decided, acute placement made."""
    held_on: dt.date | None = None
    """SIP meeting held."""
    plan_on: dt.date | None = None
    """SIP plan established."""
    completed_on: dt.date | None = None
    """Examination completed (both statements, for 2017:209), or joint planning held (acute placement)."""
    medical_on: dt.date | None = None
    """2017:209: health care's statement on mental and physical health came."""
    oral_on: dt.date | None = None
    """2017:209: dental care's statement on oral health came."""
    closed_on: dt.date | None = None
    """SIP closed."""
    closure_reason: str | None = None
    """Why the SIP closed (a :class:`~sambus.contracts.events.sip.ClosureReason`); ``declined``: the child
    or the guardians declined the SIP offered."""

    def days_to_completion(self) -> int | None:
        """Days from start to completion, when completed."""
        return None if self.completed_on is None else (self.completed_on - self.started_on).days


UNKNOWN_COUNTY_PART = "unknown"
"""The county part of a process whose organisations the routing directory places in none."""


def sex_of(person_number: str) -> str:
    """The sex a personnummer or samordningsnummer records: odd second-to-last digit a boy, even a girl.

    Anything that is not such a number (no digit there) is ``other``.
    """
    digit = person_number[-2:-1]
    if len(person_number) < 2 or not digit.isdigit():  # noqa: PLR2004
        return SEXES[2]
    return SEXES[1] if int(digit) % 2 else SEXES[0]


def age_on(birth: dt.date, day: dt.date) -> int:
    """The age in whole years on ``day`` of someone born on ``birth``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def age_band(age: int) -> str:
    """The age band of an age in whole years.

    Raises:
        ValueError: the age is below zero or above :data:`OLDEST_FOLLOWED_UP` (no agreement follows it up).
    """
    if age < 0 or age > OLDEST_FOLLOWED_UP:
        raise ValueError(f"age {age} is outside the ages the agreements follow up (0-{OLDEST_FOLLOWED_UP})")
    if age < 6:  # noqa: PLR2004
        return AGE_BANDS[0]
    if age < 13:  # noqa: PLR2004
        return AGE_BANDS[1]
    return AGE_BANDS[2] if age < 18 else AGE_BANDS[3]  # noqa: PLR2004


@dataclass(frozen=True)
class Period:
    """A half-year (``2026H1``) or a year (``2026``)."""

    year: int
    half: int | None = None

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse ``2026``, ``2026H1`` or ``2026-H2``.

        Raises:
            ValueError: the text is not a year or half-year.
        """
        match = re.fullmatch(r"(\d{4})(?:-?[Hh]([12]))?", text.strip())
        if match is None:
            raise ValueError(f"period {text!r} is not a year (2026) or a half-year (2026H1, 2026H2)")
        return cls(int(match.group(1)), int(match.group(2)) if match.group(2) else None)

    @classmethod
    def latest_half(cls, today: dt.date) -> Period:
        """The half-year ``today`` is in."""
        return cls(today.year, 1 if today.month <= 6 else 2)  # noqa: PLR2004

    @property
    def first_day(self) -> dt.date:
        """The period's first day."""
        return dt.date(self.year, 7 if self.half == 2 else 1, 1)  # noqa: PLR2004

    @property
    def last_day(self) -> dt.date:
        """The period's last day."""
        return dt.date(self.year, 6, 30) if self.half == 1 else dt.date(self.year, 12, 31)

    def __str__(self) -> str:
        """``2026H1`` or ``2026``."""
        return f"{self.year}H{self.half}" if self.half else str(self.year)


class StatsFacts(Protocol):
    """Where the anonymous process facts come from."""

    def facts(self, period: Period) -> Iterable[ProcessFact]:
        """The facts whose process started in ``period``."""
        ...


metadata = sa.MetaData()

followup_facts = sa.Table(
    "followup_facts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("process_id", sa.String(100), unique=True, nullable=True, comment="a UUID, not personal"),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("sex", sa.String(10), nullable=False),
    sa.Column("age_band", sa.String(10), nullable=False),
    sa.Column("county_part", sa.String(60), nullable=False),
    sa.Column("started_on", sa.Date, nullable=False, index=True),
    sa.Column("held_on", sa.Date),
    sa.Column("plan_on", sa.Date),
    sa.Column("completed_on", sa.Date),
    sa.Column("medical_on", sa.Date, comment="2017:209: the mental and physical health statement came"),
    sa.Column("oral_on", sa.Date, comment="2017:209: the oral health statement came"),
    sa.Column("closed_on", sa.Date, comment="SIP closed"),
    sa.Column("closure_reason", sa.String(40), comment="why the SIP closed"),
    comment="anonymous: no identity, no pseudonym",
)


class SqlStatsFacts:
    """Process facts in the ``followup_facts`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        """Keep the facts in ``engine``'s database."""
        self._engine = engine

    def add(self, facts: Iterable[ProcessFact]) -> int:
        """Store facts; returns how many.

        Raises:
            ValueError: a fact's sex or age band is not one of the known values.
            StoreUnavailableError: the database cannot be written.
        """
        rows = []
        for fact in facts:
            if fact.sex not in SEXES or fact.age_band not in AGE_BANDS:
                raise ValueError(f"sex must be one of {SEXES} and age band one of {AGE_BANDS}")
            if fact.closure_reason is not None and fact.closure_reason not in set(ClosureReason):
                raise ValueError(f"closure reason must be one of {sorted(ClosureReason)}")
            rows.append({**asdict(fact), "kind": str(fact.kind)})
        if not rows:
            return 0
        with map_errors("store follow-up facts"), self._engine.begin() as conn:
            conn.execute(followup_facts.insert(), rows)
        return len(rows)

    def facts(self, period: Period) -> Iterable[ProcessFact]:
        """The facts whose process started in ``period``.

        Raises:
            StoreUnavailableError: the database cannot be read.
        """
        c = followup_facts.c
        stmt = sa.select(followup_facts).where(c.started_on.between(period.first_day, period.last_day))
        with map_errors("read follow-up facts"), self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            ProcessFact(
                kind=ProcessKind(r.kind), sex=r.sex, age_band=r.age_band, county_part=r.county_part,
                started_on=r.started_on, held_on=r.held_on, plan_on=r.plan_on, completed_on=r.completed_on,
                medical_on=r.medical_on, oral_on=r.oral_on, closed_on=r.closed_on,
                closure_reason=r.closure_reason,
            )
            for r in rows
        ]  # fmt: skip


@dataclass(frozen=True)
class Indicator:
    """A count: facts of ``kind`` for which ``counts`` holds."""

    name: str
    label: str
    kind: ProcessKind
    counts: Callable[[ProcessFact], bool]


def _within(days: int) -> Callable[[ProcessFact], bool]:
    def check(fact: ProcessFact) -> bool:
        taken = fact.days_to_completion()
        return taken is not None and taken <= days

    return check


def _closed_with(reason: ClosureReason) -> Callable[[ProcessFact], bool]:
    return lambda fact: fact.closure_reason == reason


_CLOSURE_LABELS = {
    ClosureReason.GOALS_MET: "SIPs closed with their goals met",
    ClosureReason.WITHDRAWN: "SIPs withdrawn",
    ClosureReason.RENEWED: "SIPs closed and renewed",
    ClosureReason.TRANSITION_TO_ADULTHOOD: "SIPs closed at the transition to adulthood",
}
"""The result of a SIP, by closure reason (a declined offer is counted apart, as ``sip_declined``)."""

INDICATORS = (
    Indicator("sip_initiated", "SIPs offered (initiated)", ProcessKind.SIP, lambda _: True),
    Indicator(
        "sip_declined", "SIPs declined by the child or guardians", ProcessKind.SIP,
        _closed_with(ClosureReason.DECLINED),
    ),
    Indicator("sip_held", "SIPs held", ProcessKind.SIP, lambda f: f.held_on is not None),
    Indicator("sip_with_plan", "SIPs with a plan", ProcessKind.SIP, lambda f: f.plan_on is not None),
    Indicator("sip_closed", "SIPs closed", ProcessKind.SIP, lambda f: f.closure_reason is not None),
    *(
        Indicator(f"sip_closed_{reason}", label, ProcessKind.SIP, _closed_with(reason))
        for reason, label in _CLOSURE_LABELS.items()
    ),
    Indicator("exam_requested", "2017:209 examinations requested", ProcessKind.EXAM_2017_209, lambda _: True),
    Indicator(
        "exam_medical_completed", "2017:209 medical examinations (mental and physical health) completed",
        ProcessKind.EXAM_2017_209, lambda f: f.medical_on is not None,
    ),
    Indicator(
        "exam_oral_completed", "2017:209 oral examinations completed", ProcessKind.EXAM_2017_209,
        lambda f: f.oral_on is not None,
    ),
    Indicator(
        "exam_completed", "2017:209 examinations completed (both statements)", ProcessKind.EXAM_2017_209,
        lambda f: f.completed_on is not None,
    ),
    Indicator("lvu32_total", "LVU § 32 examinations", ProcessKind.LVU_32, lambda _: True),
    Indicator("lvu32_within_4_weeks", "LVU § 32 exams within 4 weeks", ProcessKind.LVU_32, _within(28)),
    Indicator("acute_total", "Acute placements", ProcessKind.ACUTE_PLACEMENT, lambda _: True),
    Indicator(
        "acute_joint_planning_2_weeks", "Acute placements with joint planning within 2 weeks",
        ProcessKind.ACUTE_PLACEMENT, _within(14),
    ),
)  # fmt: skip
MEDIAN_DAYS = "exam_median_days_to_completion"
DIMENSIONS = ("sex", "age_band", "county_part")


@dataclass(frozen=True)
class Cell:
    """One figure: an indicator for one category of one dimension (``all``/``total`` for the whole)."""

    indicator: str
    dimension: str
    category: str
    value: float | None
    """None when suppressed."""
    suppressed: bool = False


@dataclass(frozen=True)
class StatsTable:
    """Every indicator, in total and split by each dimension, small cells suppressed."""

    period: Period
    cells: tuple[Cell, ...]

    def value(self, indicator: str, dimension: str = "all", category: str = "total") -> float | None:
        """One cell's value (None when suppressed).

        Raises:
            KeyError: there is no such cell.
        """
        for cell in self.cells:
            if (cell.indicator, cell.dimension, cell.category) == (indicator, dimension, category):
                return cell.value
        raise KeyError((indicator, dimension, category))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "period": str(self.period),
            "min_cell": MIN_CELL,
            "cells": [asdict(c) for c in self.cells],
        }

    def to_csv(self) -> str:
        """CSV: period, indicator, dimension, category, value (blank when suppressed), suppressed."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("period", "indicator", "dimension", "category", "value", "suppressed"))
        for c in self.cells:
            value = "" if c.value is None else (int(c.value) if float(c.value).is_integer() else c.value)
            writer.writerow(
                (str(self.period), c.indicator, c.dimension, c.category, value, str(c.suppressed).lower())
            )
        return out.getvalue()

    def chart_series(self) -> list[tuple[str, list[tuple[str, float | None]]]]:
        """Per count indicator, its values by sex (for the bar charts)."""
        series = []
        for indicator in INDICATORS:
            cells = [
                (c.category, c.value)
                for c in self.cells
                if c.indicator == indicator.name and c.dimension == "sex"
            ]
            series.append((indicator.label, cells))
        return series


def _categories(dimension: str, facts: Sequence[ProcessFact]) -> list[str]:
    if dimension == "sex":
        return list(SEXES)
    if dimension == "age_band":
        return list(AGE_BANDS)
    return sorted({f.county_part for f in facts})


def _small(n: int) -> bool:
    return 0 < n < MIN_CELL


def _split_hidden(counts: dict[str, int], bases: dict[str, int]) -> tuple[set[str], bool]:
    """The categories to hide in one split, and whether the total must be hidden too.

    A category is hidden when its count is small, or when the rest of its base is (``base - count``:
    "2 of the 14 girls did not get a meeting" singles those 2 out as surely as a count of 2 would).
    A lone hidden category takes the smallest other category with children in it along; when there is
    none, only hiding the total keeps the lone one from being the total minus the rest.
    """
    hidden = {k for k, n in counts.items() if _small(n) or _small(bases[k] - n)}
    if len(hidden) != 1:
        return hidden, False
    others = sorted((n == 0, n, k) for k, n in counts.items() if k not in hidden and bases[k] > 0)
    if not others:
        return hidden, True
    hidden.add(others[0][2])
    return hidden, False


def _count_cells(indicator: Indicator, facts: Sequence[ProcessFact]) -> list[Cell]:
    base = [f for f in facts if f.kind is indicator.kind]
    mine = [f for f in base if indicator.counts(f)]
    total = len(mine)
    hide_total = _small(total) or _small(len(base) - total)
    splits: dict[str, tuple[dict[str, int], set[str]]] = {}
    for dimension in DIMENSIONS:
        counts = dict.fromkeys(_categories(dimension, base), 0)
        bases = dict(counts)
        for fact in base:
            category = getattr(fact, dimension)
            bases[category] += 1
            counts[category] += indicator.counts(fact)
        hidden, needs_total = _split_hidden(counts, bases)
        hide_total = hide_total or needs_total
        splits[dimension] = (counts, hidden)
    cells = [Cell(indicator.name, "all", "total", None if hide_total else total, hide_total)]
    for dimension, (counts, hidden) in splits.items():
        gone = set(counts) if hide_total else hidden
        cells += [
            Cell(indicator.name, dimension, k, None if k in gone else n, k in gone) for k, n in counts.items()
        ]
    return cells


def _median_cell(dimension: str, category: str, facts: Sequence[ProcessFact]) -> Cell:
    days = [d for f in facts if (d := f.days_to_completion()) is not None]
    if len(days) < MIN_CELL:
        return Cell(MEDIAN_DAYS, dimension, category, None, suppressed=bool(days))
    return Cell(MEDIAN_DAYS, dimension, category, float(statistics.median(days)))


def indicators(source: StatsFacts, period: Period) -> StatsTable:
    """Every indicator for ``period``, in total and by sex, age band and county part, suppressed."""
    facts = list(source.facts(period))
    cells: list[Cell] = []
    for indicator in INDICATORS:
        cells += _count_cells(indicator, facts)
    exams = [f for f in facts if f.kind is ProcessKind.EXAM_2017_209]
    cells.append(_median_cell("all", "total", exams))
    for dimension in DIMENSIONS:
        for category in _categories(dimension, exams):
            cells.append(
                _median_cell(dimension, category, [f for f in exams if getattr(f, dimension) == category])
            )
    return StatsTable(period=period, cells=tuple(cells))
