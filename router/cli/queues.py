"""``sambus queues``: end offsets, consumer lag, dead letters, parked messages and overdue deadlines."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from sambus.contracts.errors import SambusError
from sambus.router.cli.common import command_database, configured_broker
from sambus.router.kafka.admin import run_sync
from sambus.router.kafka.connection import KafkaConnection
from sambus.router.ops.queues import QueueMonitor, QueueSnapshot
from sambus.router.settings import Settings
from sambus.router.stages.deadlines import Deadlines

queues_app = typer.Typer(help="Queue depths, consumer lag, dead letters, parked messages, overdue deadlines.")

console = Console()
errors = Console(stderr=True)


def monitor_for(settings: Settings, bootstrap_servers: str) -> QueueMonitor:
    """The queue monitor of the sambus ``settings`` describe, on ``bootstrap_servers`` (TLS/SASL too)."""
    kafka = KafkaConnection.from_settings(settings, bootstrap_servers)
    topics = settings.topics()
    deadlines = Deadlines(command_database(settings))
    return QueueMonitor(
        bootstrap_servers=kafka,
        topics=topics,
        deadlines=deadlines,
    )


def render(snapshot: QueueSnapshot) -> Group:
    """The snapshot as rich tables."""
    topics = Table(title="Topics", title_justify="left")
    topics.add_column("topic")
    topics.add_column("end offset per partition")
    topics.add_column("total", justify="right")
    for depth in snapshot.topics:
        topics.add_row(depth.topic, " ".join(map(str, depth.end_offsets)), str(depth.end_offset_total))
    lags = Table(title="Consumer groups", title_justify="left")
    for column in ("group", "topic", "partition", "committed", "end", "lag"):
        lags.add_column(column, justify="left" if column in {"group", "topic"} else "right")
    for lag in snapshot.lags:
        committed = "-" if lag.committed is None else str(lag.committed)
        lags.add_row(lag.group, lag.topic, str(lag.partition), committed, str(lag.end_offset), str(lag.lag))
    members = Table(title="Group members (instances)", title_justify="left")
    for column in ("group", "member", "host", "partitions"):
        members.add_column(column)
    for member in snapshot.members:
        held = ", ".join(f"{topic}[{partition}]" for topic, partition in member.partitions) or "-"
        members.add_row(member.group, member.client_id, member.host, held)
    overdue = Table(title="Overdue deadlines", title_justify="left")
    for column in ("process", "step", "case", "due"):
        overdue.add_column(column)
    for item in snapshot.overdue:
        overdue.add_row(item.process, item.step, item.case, item.due.isoformat(timespec="minutes"))
    summary = (
        f"dead letters: [bold]{snapshot.dead_letters}[/]   parked: [bold]{snapshot.parked}[/]   "
        f"overdue deadlines: [bold]{len(snapshot.overdue)}[/]   "
        f"(at {snapshot.taken_at.isoformat(timespec='seconds')})"
    )
    return Group(topics, lags, members, overdue, summary)


@queues_app.callback(invoke_without_command=True)
def queues(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of tables.")
    ] = False,
    watch: Annotated[
        float | None,
        typer.Option("--watch", min=0.5, help="Refresh every this many seconds until interrupted."),
    ] = None,
) -> None:
    """Show every sambus topic's end offsets, each consumer group's lag, dead letters, parked and overdue."""
    try:
        settings = Settings()
        monitor = monitor_for(settings, configured_broker(settings))
        snapshot = run_sync(monitor.snapshot())
    except SambusError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    if watch is None:
        if as_json:
            sys.stdout.write(json.dumps(snapshot.to_json(), indent=2) + "\n")
        else:
            console.print(render(snapshot))
        return
    try:
        if as_json:  # one JSON document per line
            while True:
                sys.stdout.write(json.dumps(snapshot.to_json()) + "\n")
                sys.stdout.flush()
                time.sleep(watch)
                snapshot = run_sync(monitor.snapshot())
        with Live(render(snapshot), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(watch)
                live.update(render(run_sync(monitor.snapshot())), refresh=True)
    except SambusError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
