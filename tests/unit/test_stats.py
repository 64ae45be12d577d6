"""Follow-up indicators on a generated population whose counts are known, including suppression."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest
import sqlalchemy as sa

from sambus.router.service.schema import upgrade
from sambus.router.stats.indicators import (
    MEDIAN_DAYS,
    MIN_CELL,
    Period,
    ProcessFact,
    ProcessKind,
    SqlStatsFacts,
    StatsTable,
    age_band,
    indicators,
)

H1 = Period(2026, 1)
START = dt.date(2026, 2, 2)

# (sex, age band, county part) -> number of children with a SIP initiated in 2026H1
SIP_POPULATION = {
    ("girl", "6-12", "Västerås"): 30,
    ("girl", "13-17", "Norra"): 11,
    ("boy", "6-12", "Västerås"): 25,
    ("boy", "0-5", "Västra"): 3,
    ("other", "13-17", "Västerås"): 2,
}


def _sips(rng: random.Random) -> tuple[list[ProcessFact], Counter[str], Counter[str]]:
    facts, held, planned = [], Counter(), Counter()
    for (sex, band, part), n in SIP_POPULATION.items():
        for i in range(n):
            is_held = i % 3 != 0
            has_plan = is_held and i % 2 == 0
            held[sex] += is_held
            planned[sex] += has_plan
            started = START + dt.timedelta(days=rng.randrange(120))
            facts.append(
                ProcessFact(
                    ProcessKind.SIP, sex, band, part, started,
                    held_on=started + dt.timedelta(days=10) if is_held else None,
                    plan_on=started + dt.timedelta(days=20) if has_plan else None,
                )
            )  # fmt: skip
    return facts, held, planned


def _exams() -> list[ProcessFact]:
    """12 2017:209 exams for girls (10 completed after 10..19 days), 6 for boys (all after 30 days)."""
    facts = [
        ProcessFact(ProcessKind.EXAM_2017_209, "girl", "6-12", "Västerås", START,
                    completed_on=START + dt.timedelta(days=10 + i) if i < 10 else None)
        for i in range(12)
    ]  # fmt: skip
    facts += [
        ProcessFact(
            ProcessKind.EXAM_2017_209, "boy", "13-17", "Norra", START, completed_on=START + dt.timedelta(30)
        )
        for _ in range(6)
    ]
    return facts


def _lvu_and_acute() -> list[ProcessFact]:
    """LVU § 32: 8 within 4 weeks (28 days exactly counts), 3 later. Acute: 7 with planning within 14 days."""

    def lvu(days: int) -> ProcessFact:
        return ProcessFact(
            ProcessKind.LVU_32, "boy", "13-17", "Norra", START, completed_on=START + dt.timedelta(days)
        )

    def acute(days: int) -> ProcessFact:
        return ProcessFact(
            ProcessKind.ACUTE_PLACEMENT,
            "girl",
            "0-5",
            "Västra",
            START,
            completed_on=START + dt.timedelta(days),
        )

    return [lvu(28)] * 8 + [lvu(29)] * 3 + [acute(14)] * 7 + [acute(20)] * 2


class ListFacts:
    """The StatsFacts protocol over a list (the SQL implementation is tested below)."""

    def __init__(self, facts: list[ProcessFact]) -> None:
        self._facts = facts

    def facts(self, period: Period) -> list[ProcessFact]:
        return [f for f in self._facts if period.first_day <= f.started_on <= period.last_day]


@pytest.fixture
def population() -> tuple[list[ProcessFact], Counter[str], Counter[str]]:
    sips, held, planned = _sips(random.Random(7))  # noqa: S311 - a reproducible population
    return sips + _exams() + _lvu_and_acute(), held, planned


@pytest.fixture
def table(population) -> StatsTable:
    facts, _, _ = population
    return indicators(ListFacts(facts), H1)


def test_counts_in_total_and_by_sex(table, population):
    _, held, planned = population

    assert table.value("sip_initiated") == 71
    assert table.value("sip_initiated", "sex", "girl") == 41
    assert table.value("sip_held") == sum(held.values())
    assert table.value("sip_held", "sex", "girl") == held["girl"]
    assert table.value("sip_with_plan", "sex", "girl") == planned["girl"]
    assert table.value("exam_requested") == 18
    assert table.value("lvu32_total") == 11
    assert table.value("acute_total") == 9


def test_age_band_and_county_part_splits(table):
    assert table.value("sip_initiated", "age_band", "6-12") == 55
    assert table.value("sip_initiated", "county_part", "Västerås") == 57


def test_time_to_completion_is_a_median_in_days(table):
    assert table.value(MEDIAN_DAYS) == 17.5  # ten girls at 10..19 days, six boys at 30: (17 + 18) / 2
    assert table.value(MEDIAN_DAYS, "sex", "girl") == 14.5
    assert table.value(MEDIAN_DAYS, "sex", "boy") == 30.0


def test_small_cells_are_suppressed_with_a_second_cell_so_totals_do_not_reveal_them(table):
    # 2 "other" is below 5: hidden, and the smallest other non-zero sex (boy, 28) is hidden with it.
    assert table.value("sip_initiated", "sex", "other") is None
    assert table.value("sip_initiated", "sex", "boy") is None
    assert table.value("sip_initiated", "sex", "girl") == 41
    assert table.value("sip_initiated") == 71
    # Age bands: 0-5 has 3 (hidden); 13-17 has 13, the smallest other, hidden too; 6-12 shown.
    assert table.value("sip_initiated", "age_band", "0-5") is None
    assert table.value("sip_initiated", "age_band", "13-17") is None
    assert table.value("sip_initiated", "age_band", "6-12") == 55
    # County parts: Västra (3) is hidden, and Norra (11), the smallest other, with it.
    assert table.value("sip_initiated", "county_part", "Västra") is None
    assert table.value("sip_initiated", "county_part", "Norra") is None


def test_zero_is_shown_and_a_small_total_hides_its_whole_split(table):
    assert table.value("exam_requested", "sex", "other") == 0
    assert table.value("lvu32_total", "sex", "girl") == 0
    assert table.value("sip_initiated", "sex", "girl") == 41


def test_a_count_whose_complement_is_small_is_hidden(table, population):
    _, _, planned = population
    # 16 of 18 examinations completed: the 2 not completed would be singled out, so 16 is not shown.
    assert table.value("exam_completed") is None
    # 8 of 11 LVU § 32 examinations within 4 weeks (3 later); 7 of 9 acute placements planned in time.
    assert table.value("lvu32_within_4_weeks") is None
    assert table.value("lvu32_within_4_weeks", "sex", "boy") is None
    assert table.value("acute_joint_planning_2_weeks") is None
    # None of the 2 "other" children has a plan: 0 of 2 is hidden, and the boys' 9 with it.
    assert table.value("sip_with_plan", "sex", "other") is None
    assert table.value("sip_with_plan", "sex", "boy") is None
    assert table.value("sip_with_plan", "sex", "girl") == planned["girl"]


def test_a_lone_hidden_category_with_nothing_to_hide_beside_it_hides_the_total():
    start = START
    facts = [ProcessFact(ProcessKind.LVU_32, "girl", "13-17", "Norra", start, completed_on=start)] * 10
    facts += [ProcessFact(ProcessKind.LVU_32, "girl", "13-17", "Norra", start)] * 2

    table = indicators(ListFacts(facts), H1)

    # 10 of the 12 girls within 4 weeks; with no other sex to hide alongside, the total goes too.
    assert table.value("lvu32_within_4_weeks", "sex", "girl") is None
    assert table.value("lvu32_within_4_weeks") is None
    assert table.value("lvu32_total") == 12


def test_no_published_cell_or_complement_is_between_one_and_four(table):
    shown = [c.value for c in table.cells if c.value is not None and c.indicator != MEDIAN_DAYS]
    assert not [v for v in shown if 0 < v < MIN_CELL]
    parents = {
        "sip_held": "sip_initiated",
        "sip_with_plan": "sip_initiated",
        "exam_completed": "exam_requested",
        "lvu32_within_4_weeks": "lvu32_total",
        "acute_joint_planning_2_weeks": "acute_total",
    }
    checked = 0
    for cell in table.cells:
        if cell.indicator in parents and cell.value is not None:
            parent = table.value(parents[cell.indicator], cell.dimension, cell.category)
            if parent is not None:
                checked += 1
                assert not 0 < parent - cell.value < MIN_CELL, cell
    assert checked > 5
    hidden = [c for c in table.cells if c.suppressed]
    assert hidden, "the population has small cells"
    assert all(c.value is None for c in hidden)


def test_a_total_below_five_hides_everything():
    facts = [ProcessFact(ProcessKind.LVU_32, "girl", "0-5", "Norra", START) for _ in range(3)]

    table = indicators(ListFacts(facts), H1)

    assert table.value("lvu32_total") is None
    assert table.value("lvu32_total", "sex", "girl") is None
    assert table.value("lvu32_total", "sex", "boy") is None


def test_with_two_categories_a_small_one_hides_the_other_but_not_the_total():
    facts = [ProcessFact(ProcessKind.SIP, "girl", "6-12", "Norra", START) for _ in range(9)]
    facts += [ProcessFact(ProcessKind.SIP, "boy", "6-12", "Norra", START) for _ in range(2)]

    table = indicators(ListFacts(facts), H1)

    assert table.value("sip_initiated", "sex", "boy") is None
    assert table.value("sip_initiated", "sex", "girl") is None
    assert table.value("sip_initiated") == 11


def test_the_period_selects_the_facts():
    facts = [
        ProcessFact(ProcessKind.SIP, "girl", "6-12", "Norra", dt.date(2026, m, 1)) for m in (1, 6, 7, 12)
    ] * 5

    assert indicators(ListFacts(facts), Period(2026, 1)).value("sip_initiated") == 10
    assert indicators(ListFacts(facts), Period(2026, 2)).value("sip_initiated") == 10
    assert indicators(ListFacts(facts), Period.parse("2026")).value("sip_initiated") == 20


def test_periods_parse_and_refuse_nonsense():
    assert Period.parse("2026H2") == Period(2026, 2)
    assert Period.parse("2025-h1") == Period(2025, 1)
    assert str(Period.parse("2026")) == "2026"
    assert Period.latest_half(dt.date(2026, 11, 23)) == Period(2026, 2)
    with pytest.raises(ValueError, match="is not a year"):
        Period.parse("2026Q1")


def test_age_bands():
    assert [age_band(a) for a in (0, 5, 6, 12, 13, 17)] == ["0-5", "0-5", "6-12", "6-12", "13-17", "13-17"]


def test_placed_young_people_from_18_to_21_have_a_band_of_their_own():
    assert [age_band(a) for a in (18, 20, 21)] == ["18-21", "18-21", "18-21"]
    for outside in (-1, 22):
        with pytest.raises(ValueError, match="outside the ages the agreements follow up"):
            age_band(outside)


def _outcomes() -> list[ProcessFact]:
    """Placed young people (18-21) and children: 2017:209 statements apart, SIPs offered, declined, closed.

    Exams: 14 medical statements and 9 oral ones among 20 exams, 8 with both (completed). SIPs: 20 offered,
    6 declined, 8 closed with their goals met, 6 still open; 11 of the 20 are 18-21 years old.
    """
    exams = [
        ProcessFact(
            ProcessKind.EXAM_2017_209, "girl" if i % 2 else "boy", "18-21" if i < 8 else "13-17", "Norra",
            START,
            medical_on=START + dt.timedelta(days=9) if i < 14 else None,
            oral_on=START + dt.timedelta(days=12) if 6 <= i < 15 else None,
            completed_on=START + dt.timedelta(days=12) if 6 <= i < 14 else None,
        )
        for i in range(20)
    ]  # fmt: skip
    reasons = ["declined"] * 6 + ["goals_met"] * 8 + [None] * 6
    sips = [
        ProcessFact(
            ProcessKind.SIP, "girl" if i % 2 else "boy", "18-21" if i < 11 else "13-17", "Västerås", START,
            closed_on=START + dt.timedelta(days=40) if reason else None, closure_reason=reason,
        )
        for i, reason in enumerate(reasons)
    ]  # fmt: skip
    return exams + sips


def test_oral_and_medical_examinations_are_counted_apart():
    table = indicators(ListFacts(_outcomes()), H1)

    assert table.value("exam_requested") == 20
    assert table.value("exam_medical_completed") == 14
    assert table.value("exam_oral_completed") == 9
    assert table.value("exam_completed") == 8
    assert table.value("exam_requested", "age_band", "18-21") == 8
    assert table.value("exam_requested", "age_band", "13-17") == 12


def test_sips_offered_declined_and_their_results():
    table = indicators(ListFacts(_outcomes()), H1)

    assert table.value("sip_initiated") == 20
    assert table.value("sip_declined") == 6
    assert table.value("sip_closed") == 14
    assert table.value("sip_closed_goals_met") == 8
    assert table.value("sip_closed_withdrawn") == 0
    assert table.value("sip_initiated", "age_band", "18-21") == 11
    assert table.value("sip_initiated", "age_band", "13-17") == 9


def test_a_small_number_of_declined_sips_is_suppressed():
    facts = [f for f in _outcomes() if f.kind is ProcessKind.SIP][3:]  # 3 declined of 17

    table = indicators(ListFacts(facts), H1)

    assert table.value("sip_initiated") == 17
    assert table.value("sip_declined") is None
    assert table.value("sip_declined", "sex", "girl") is None


def test_an_unknown_closure_reason_is_not_stored(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'facts.db'}")
    upgrade(engine)

    with pytest.raises(ValueError, match="closure reason must be one of"):
        SqlStatsFacts(engine).add(
            [ProcessFact(ProcessKind.SIP, "girl", "6-12", "Norra", START, closure_reason="bored")]
        )


def test_csv_and_json_say_what_is_suppressed(table):
    rows = table.to_csv().splitlines()

    assert rows[0] == "period,indicator,dimension,category,value,suppressed"
    assert "2026H1,sip_initiated,sex,other,,true" in rows
    assert "2026H1,sip_initiated,sex,girl,41,false" in rows
    assert table.to_json()["min_cell"] == 5


def test_sql_facts_store_no_identity_and_round_trip(tmp_path, population):
    facts, _, _ = population
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'facts.db'}")
    upgrade(engine)
    store = SqlStatsFacts(engine)

    stored = store.add(facts)

    assert stored == len(facts)
    columns = {column["name"] for column in sa.inspect(engine).get_columns("followup_facts")}
    # process_id is the process's UUID (the processes stage's key), never a person's.
    assert columns == {"id", "process_id", "kind", "sex", "age_band", "county_part", "started_on", "held_on",
                       "plan_on", "completed_on", "medical_on", "oral_on", "closed_on",
                       "closure_reason"}  # fmt: skip
    assert indicators(store, H1) == indicators(ListFacts(facts), H1)
    with pytest.raises(ValueError, match="sex must be one of"):
        store.add([ProcessFact(ProcessKind.SIP, "unknown", "6-12", "Norra", START)])
