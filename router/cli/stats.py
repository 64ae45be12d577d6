"""``sambus stats``: the agreements' follow-up indicators for a half-year or a year."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sambus.contracts.errors import SambusError
from sambus.router.cli.common import command_database
from sambus.router.settings import Settings
from sambus.router.stats.indicators import MIN_CELL, Period, SqlStatsFacts, StatsTable, indicators

stats_app = typer.Typer(help="Follow-up indicators (SIP, 2017:209, LVU § 32, acute placements).")
FORMATS = ("table", "csv", "json")

console = Console()
errors = Console(stderr=True)


def render(table: StatsTable) -> Table:
    """The indicators as a rich table; suppressed cells show as 'suppressed'."""
    out = Table(title=f"Follow-up indicators {table.period} (counts below {MIN_CELL} suppressed)")
    for column in ("indicator", "split", "category", "value"):
        out.add_column(column, justify="right" if column == "value" else "left")
    for cell in table.cells:
        value = "suppressed" if cell.value is None else f"{cell.value:g}"
        out.add_row(cell.indicator, cell.dimension, cell.category, value)
    return out


@stats_app.callback(invoke_without_command=True)
def stats(
    period: Annotated[str, typer.Option(help="A half-year (2026H1, 2026H2) or a year (2026).")],
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}.")] = "table",
) -> None:
    """Indicators by sex, age band and county part, from the anonymous facts in the database."""
    if fmt not in FORMATS:
        errors.print(f"[bold red]error:[/] unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        raise typer.Exit(code=2)
    try:
        chosen = Period.parse(period)
    except ValueError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from exc
    try:
        facts = SqlStatsFacts(command_database(Settings()))
        table = indicators(facts, chosen)
    except SambusError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    if fmt == "json":
        sys.stdout.write(json.dumps(table.to_json(), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        sys.stdout.write(table.to_csv())
    else:
        console.print(render(table))
