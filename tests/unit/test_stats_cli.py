"""``sambus stats`` on a SQLite database of anonymous facts."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sambus.router.cli.main import app
from sambus.router.service.schema import upgrade
from sambus.router.stats.indicators import ProcessFact, ProcessKind, SqlStatsFacts

START = dt.date(2026, 9, 1)


@pytest.fixture
def runner(monkeypatch, tmp_path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    url = f"sqlite:///{tmp_path / 'stats.db'}"
    monkeypatch.setenv("SAMBUS_DATABASE_URL", url)
    engine = sa.create_engine(url)
    upgrade(engine)
    store = SqlStatsFacts(engine)
    completed = START + dt.timedelta(days=20)
    store.add([ProcessFact(ProcessKind.LVU_32, "girl", "13-17", "Norra", START, completed_on=completed)] * 6)
    store.add([ProcessFact(ProcessKind.LVU_32, "boy", "13-17", "Norra", START)] * 3)
    return CliRunner()


def test_json_for_the_second_half_year(runner):
    result = runner.invoke(app, ["stats", "--period", "2026H2", "--format", "json"])

    assert result.exit_code == 0, result.output
    cells = {(c["indicator"], c["dimension"], c["category"]): c for c in json.loads(result.output)["cells"]}
    assert cells["lvu32_total", "all", "total"]["value"] == 9
    # 6 of 9 within 4 weeks: the 3 boys without would be singled out, so it is not published.
    assert cells["lvu32_within_4_weeks", "all", "total"]["suppressed"] is True
    assert cells["lvu32_total", "sex", "boy"] == {
        "indicator": "lvu32_total", "dimension": "sex", "category": "boy", "value": None, "suppressed": True,
    }  # fmt: skip
    assert cells["lvu32_total", "sex", "girl"]["suppressed"] is True, "secondary suppression"


def test_csv_and_table(runner):
    as_csv = runner.invoke(app, ["stats", "--period", "2026", "--format", "csv"])
    as_table = runner.invoke(app, ["stats", "--period", "2026"])
    first_half = runner.invoke(app, ["stats", "--period", "2026H1", "--format", "csv"])

    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    [total] = [r for r in rows if (r["indicator"], r["dimension"]) == ("lvu32_total", "all")]
    assert total["value"] == "9"
    assert "lvu32_within_4_weeks" in as_table.output
    assert "Follow-up indicators 2026" in as_table.output
    assert "2026H1,lvu32_total,all,total,0,false" in first_half.output


def test_a_bad_period_or_format_is_refused(runner):
    bad_period = runner.invoke(app, ["stats", "--period", "2026Q3"])
    bad_format = runner.invoke(app, ["stats", "--period", "2026", "--format", "xml"])

    assert bad_period.exit_code == 2
    assert "is not a year (2026) or a half-year" in bad_period.output
    assert bad_format.exit_code == 2
