"""Every compliance filter seeks its entries in an index of the compliance projection in the queries' order:
no scan, no sort."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.router.service.schema import upgrade

DAY = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)

BASIS = "OSL 10:28 with LVU 32 §; breaks OSL 26:1 (socialtjänst)"
FILTERS = {
    "none": LedgerQuery(),
    "child": LedgerQuery(child="a-pseudonym"),
    "recipient": LedgerQuery(recipient_id="vastmanland-folktandvarden"),
    "outcome": LedgerQuery(outcome="deny"),
    "legal basis": LedgerQuery(legal_basis="OSL 10:28 with LVU 32 §; breaks OSL 26:1 (socialtjänst)"),
    "since": LedgerQuery(since=DAY),
    "until": LedgerQuery(until=DAY),
    "period": LedgerQuery(since=DAY, until=DAY + dt.timedelta(days=1)),
    "recipient and period": LedgerQuery(recipient_id="vastmanland-bup", since=DAY, until=DAY),
    "child and outcome": LedgerQuery(child="a-pseudonym", outcome="permit"),
    "recipient and outcome": LedgerQuery(recipient_id="vastmanland-bup", outcome="deny"),
    "legal basis and outcome": LedgerQuery(legal_basis=BASIS, outcome="deny"),
    "recipient and legal basis": LedgerQuery(recipient_id="vastmanland-bup", legal_basis=BASIS),
    "everything": LedgerQuery(
        child="a-pseudonym",
        recipient_id="vastmanland-bup",
        outcome="permit",
        legal_basis=BASIS,
        since=DAY,
        until=DAY,
    ),
}
SOUGHT_IN = {
    "none": "decided",
    "child": "child_decided",
    "recipient": "recipient_decided",
    "outcome": "outcome_decided",
    "legal basis": "legal_basis_decided",
    "since": "decided",
    "until": "decided",
    "period": "decided",
    "recipient and period": "recipient_decided",
    "child and outcome": "child_decided",  # not the outcome's: every permit would be read for one child's
    "recipient and outcome": "recipient_outcome_decided",
    "legal basis and outcome": "legal_basis_outcome_decided",
    "recipient and legal basis": "recipient_legal_basis_decided",
    "everything": "child_decided",
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = sa.create_engine("sqlite:///" + str(tmp_path_factory.mktemp("ledger") / "sambus.db"))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("query", "index"), [(FILTERS[k], SOUGHT_IN[k]) for k in FILTERS], ids=FILTERS.keys()
)
def test_each_filter_reads_an_index_in_order(engine, query, index):
    sql = str(Compliance.statement(query, "sqlite").compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]

    assert len(plan) == 1, plan  # the projection alone: not the ledger too
    assert " ledger_search USING " in plan[0], plan
    assert f"INDEX ix_ledger_search_{index} " in plan[0] + " ", plan
    if query != LedgerQuery():
        assert plan[0].startswith("SEARCH"), f"a filter seeks its entries, it does not scan the index: {plan}"
    assert "TEMP B-TREE" not in " ".join(plan), plan
