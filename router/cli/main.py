"""The ``sambus`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sambus.adapters import translate_message
from sambus.consent import PACKAGED_RULES, RuleSet
from sambus.contracts.errors import ConfigError, SambusError
from sambus.contracts.fhir import set_validation
from sambus.router.cli.common import configured_broker, local_kafka
from sambus.router.cli.consent import consent_app
from sambus.router.cli.contracts import contracts_app
from sambus.router.cli.db import db_app
from sambus.router.cli.dlq import dlq_app
from sambus.router.cli.queues import queues_app
from sambus.router.cli.serve import run_with_web, serve_app
from sambus.router.cli.stats import stats_app
from sambus.router.cli.workers import start_groups, supervise
from sambus.router.dev.local_kafka import LocalKafka
from sambus.router.kafka.admin import ensure_topics, metadata_answers, run_sync
from sambus.router.ops.logs import LOG_FORMATS, configure_logging
from sambus.router.routing.directory import PACKAGED_DIRECTORY, RoutingDirectory
from sambus.router.service.bootstrap import STAGES, bootstrap
from sambus.router.settings import Settings

app = typer.Typer(
    help="sambus: messages between schools, social services and health and dental care, with consent checks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
kafka_app = typer.Typer(
    help="The local Kafka broker, or a three-broker cluster (for development, tests and the demo).",
    no_args_is_help=True,
)
BrokersOption = Annotated[
    int | None,
    typer.Option(
        "--brokers",
        min=1,
        max=5,
        help="How many brokers (3: replicated); default SAMBUS_LOCAL_KAFKA_BROKERS.",
    ),
]
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(topics_app, name="topics")
app.add_typer(config_app, name="config")
app.add_typer(dlq_app, name="dlq")
app.add_typer(contracts_app, name="contracts")
app.add_typer(consent_app, name="consent")
app.add_typer(queues_app, name="queues")
app.add_typer(serve_app, name="serve")
app.add_typer(stats_app, name="stats")
app.add_typer(db_app, name="db")

console = Console()
errors = Console(stderr=True)


def _fail(exc: SambusError) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2 if isinstance(exc, ConfigError) else 1)


@app.command()
def run(
    stage: Annotated[str | None, typer.Option(help=f"Run only this stage: {', '.join(STAGES)}.")] = None,
    web: Annotated[
        bool, typer.Option("--web", help="Serve the HTTP service too (see `sambus serve`).")
    ] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help=f"One of {', '.join(LOG_FORMATS)}.")
    ] = "text",
    one_process: Annotated[
        bool,
        typer.Option(
            "--one-process",
            help="Run every stage in this one process (with --web this is always so: one /metrics).",
        ),
    ] = False,
) -> None:
    """Run the service until interrupted, by default as one process per group of stages.

    The groups: intake | delivery and retries | parked and processes. --one-process (and --web) run every
    stage in this process; --stage runs one.
    """
    if log_format not in LOG_FORMATS:
        errors.print(
            f"[bold red]error:[/] unknown log format {log_format!r}; expected one of {', '.join(LOG_FORMATS)}"
        )
        raise typer.Exit(code=2)
    configure_logging(log_format)
    if stage is not None and stage not in STAGES:
        errors.print(f"[bold red]error:[/] unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        raise typer.Exit(code=2)
    try:
        settings = Settings()
        sambus = bootstrap(settings, bootstrap_servers=configured_broker(settings))
    except SambusError as exc:
        raise _fail(exc) from exc

    groups = stage is None and not web and not one_process

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if groups:
            await sambus.create_topics()
            return await supervise(start_groups(log_format), stop)
        await (run_with_web(sambus, stop, only=stage) if web else sambus.run(stop, only=stage))
        return 0

    try:
        status = asyncio.run(serve())
    except SambusError as exc:
        raise _fail(exc) from exc
    if status:
        raise typer.Exit(code=status)


@app.command()
def demo(
    keep_broker: Annotated[
        bool, typer.Option("--keep-broker", help="Leave the local broker running afterwards.")
    ] = False,
) -> None:
    """Start what is needed, run a small SIP scenario and show what each agency received."""
    from sambus.router.dev.demo import DEMO_RECORDS, run_demo  # noqa: PLC0415 - keeps `sambus --help` fast

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # start-up chatter while topics appear
    settings = Settings()
    local: LocalKafka | None = None
    started = False
    try:
        if settings.kafka_bootstrap_servers:
            servers = settings.kafka_bootstrap_servers
        else:
            local = local_kafka(settings)
            with console.status("Starting the local Kafka broker (the first run downloads it with Maven)…"):
                started = local.ensure_running()
            servers = local.bootstrap_servers
        console.print(
            f"Kafka at [bold]{servers}[/]. A school initiates a SIP for a child and invites three agencies;"
        )
        console.print(
            "the guardians have consented to SIP with social services and BU-hälsan, not with dental care."
        )
        console.print("A second event carries a personnummer with a wrong check digit.\n")
        with console.status("Running sambus…"):
            received = asyncio.run(run_demo(bootstrap_servers=servers))
    except SambusError as exc:
        raise _fail(exc) from exc
    finally:
        if local is not None and started and not keep_broker:
            local.stop()
    table = Table(title="What arrived where", show_lines=True)
    for column in ("topic", "decision", "to (Task owner, or notice recipient)", "child", "why"):
        table.add_column(column, overflow="fold")
    for r in received:
        table.add_row(r.topic, r.decision, r.owner, r.subject, r.reason)
    console.print(table)
    keys = sorted({r.key for r in received if r.key != "-"})
    console.print(f"Kafka key of every record about the child: {', '.join(keys)}")
    console.print("The Kafka key is a keyed pseudonym of the child, never the personnummer.")
    if len(received) < DEMO_RECORDS:
        errors.print(f"[bold red]error:[/] expected {DEMO_RECORDS} records, saw {len(received)}")
        raise typer.Exit(code=1)
    if local is not None and keep_broker:
        console.print(f"The local broker keeps running at {servers}; stop it with `sambus kafka down`.")


@app.command()
def translate(
    file: Annotated[
        Path, typer.Argument(help="An inbound event as JSON (envelope with type, id, source, time, data).")
    ],
) -> None:
    """Print the FHIR messages an inbound event becomes (offline: no Kafka, no database)."""
    set_validation(enabled=True)  # offline, so every resource is also checked with fhir.resources
    try:
        data = file.read_bytes()
    except OSError as exc:
        errors.print(f"[bold red]error:[/] cannot read {file}: {exc.strerror}")
        raise typer.Exit(code=2) from exc
    try:
        intents = translate_message(data)
    except SambusError as exc:
        errors.print(f"[bold red]invalid event:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    sys.stdout.write(json.dumps([i.bundle for i in intents], indent=2, ensure_ascii=False) + "\n")


@kafka_app.command("up")
def kafka_up(brokers: BrokersOption = None) -> None:
    """Start the local broker(s) (downloading Kafka with Maven the first time) and wait until they answer.

    Data already there (a broker that crashed, or was stopped with `kafka down`) is kept and started on;
    `sambus kafka reset` deletes it.
    """
    settings = Settings()
    local = local_kafka(settings, brokers=brokers)
    try:
        started = local.ensure_running()
    except SambusError as exc:
        raise _fail(exc) from exc
    state = "started" if started else "already running"
    console.print(f"Kafka {state} at {local.bootstrap_servers} (logs: {local.log_file})")
    if local.brokers > 1:
        console.print(
            f"Point sambus at it with KAFKA_BOOTSTRAP_SERVERS={local.bootstrap_servers} "
            f"(or SAMBUS_LOCAL_KAFKA_BROKERS={local.brokers}), SAMBUS_TOPIC_REPLICATION_FACTOR=3 and "
            "SAMBUS_TOPIC_MIN_INSYNC_REPLICAS=2."
        )


@kafka_app.command("down")
def kafka_down(brokers: BrokersOption = None) -> None:
    """Stop the local broker(s); their data stays for the next `kafka up` (`kafka reset` deletes it)."""
    local = local_kafka(Settings(), brokers=brokers)
    console.print("Kafka stopped." if local.stop() else "Kafka was not running.")


@kafka_app.command("reset")
def kafka_reset(brokers: BrokersOption = None) -> None:
    """Stop the local broker(s) and delete all their data: every topic and message is gone."""
    local = local_kafka(Settings(), brokers=brokers)
    running = local.reset()
    console.print(f"Kafka {'stopped and ' if running else ''}reset: deleted {local.state_dir}.")


@kafka_app.command("status")
def kafka_status(brokers: BrokersOption = None) -> None:
    """Say whether the local broker is running and answering."""
    local = local_kafka(Settings(), brokers=brokers)
    if local.running_pid() is None:
        console.print("Kafka is not running.")
        raise typer.Exit(code=1)
    answering = run_sync(metadata_answers(local.bootstrap_servers))
    console.print(
        f"Kafka is running at {local.bootstrap_servers}; {'answering' if answering else 'not answering yet'}."
    )


@kafka_app.command("fetch")
def kafka_fetch() -> None:
    """Download the broker's jars from Maven Central (once)."""
    local = local_kafka(Settings())
    try:
        local.fetch()
        lib = local.home / "lib"
    except SambusError as exc:
        raise _fail(exc) from exc
    console.print(f"Kafka jars are in {lib}.")


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic sambus needs (idempotent)."""
    try:
        settings = Settings()
        sambus = bootstrap(settings, bootstrap_servers=configured_broker(settings))
        created = run_sync(
            ensure_topics(
                sambus.kafka,
                sambus.topic_specs(),
            )
        )
    except SambusError as exc:
        raise _fail(exc) from exc
    console.print(f"Created {len(created)} topic(s)." + ("" if not created else " " + ", ".join(created)))


@config_app.command("check")
def config_check() -> None:
    """Validate the settings, the routing directory and the secrecy rules."""
    try:
        settings = Settings()
        directory = RoutingDirectory.load(settings.directory)
        directory.check_county(settings.county)
        directory.check_care_providers()
        settings.require_pseudonym_key()
        rules = RuleSet.load(settings.rules)
    except SambusError as exc:
        raise _fail(exc) from exc
    where_directory = settings.directory or f"the example packaged with sambus ({PACKAGED_DIRECTORY})"
    where_rules = settings.rules or f"the rules packaged with sambus ({PACKAGED_RULES})"
    counties = ", ".join(sorted(directory.counties))
    console.print(
        f"Configuration is valid: {len(directory.recipients)} recipients in {where_directory} "
        f"(län {counties}), county {settings.county}."
    )
    console.print(f"Secrecy rules are valid: {len(rules.rules)} rules in {where_rules}.")


def main() -> None:
    """Entry point of the ``sambus`` console script."""
    with contextlib.suppress(KeyboardInterrupt):
        app()
