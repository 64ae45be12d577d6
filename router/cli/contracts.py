"""``sambus contracts``: export and check the published contract (schemas, AsyncAPI, golden examples)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sambus import contracts
from sambus.adapters import translate_message
from sambus.contracts.export import documents
from sambus.router.dev.walk import walk

CONTRACTS_DIR = Path(contracts.__file__).parent
SCHEMAS_DIR = CONTRACTS_DIR / "schemas"
EXAMPLES_DIR = CONTRACTS_DIR / "examples"
GOLDEN_DIR = EXAMPLES_DIR / "golden"
WALKS_DIR = EXAMPLES_DIR / "walks"
"""Process walks: ``walks/<name>/NN-<step>.json`` agency events in order; ``golden/`` what each becomes."""

contracts_app = typer.Typer(
    help="The published contract: JSON Schemas, AsyncAPI, examples and their golden FHIR output.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)


GOLDEN_ASSEMBLY_TIME = dt.datetime(2027, 1, 1, 12, 0, tzinfo=dt.UTC)
"""``Bundle.timestamp`` of the golden messages (a fixed assembly time after every example's event), so the
golden files do not change with the clock; a running sambus stamps the time it assembles each message."""


def render_messages(event: bytes) -> str:
    """The FHIR messages an inbound event becomes, as ``sambus translate`` prints them (golden clock)."""
    intents = translate_message(event, clock=lambda: GOLDEN_ASSEMBLY_TIME)
    return json.dumps([i.bundle for i in intents], indent=2, ensure_ascii=False) + "\n"


def golden_documents() -> dict[str, str]:
    """The golden FHIR output of every example, by its path under ``contracts/examples/golden/``."""
    return {
        example.name: render_messages(example.read_bytes()) for example in sorted(EXAMPLES_DIR.glob("*.json"))
    }


def walk_documents(walk_dir: Path) -> dict[str, str]:
    """What each event of a process walk delivers, by its path under ``<walk>/golden/``.

    The events go through sambus's own stages in process (:func:`sambus.router.dev.walk.walk`): routed,
    decided and projected per recipient, with the ``destination`` each recipient gets.
    """
    events = sorted(walk_dir.glob("*.json"))
    steps = asyncio.run(walk([event.read_bytes() for event in events]))
    return {
        event.name: json.dumps([d.as_json() for d in step], indent=2, ensure_ascii=False) + "\n"
        for event, step in zip(events, steps, strict=True)
    }


def walk_dirs() -> list[Path]:
    """The process walks under ``contracts/examples/walks/``."""
    return sorted(p for p in WALKS_DIR.iterdir() if p.is_dir()) if WALKS_DIR.exists() else []


def _label(directory: Path) -> Path | str:
    return directory.relative_to(CONTRACTS_DIR) if directory.is_relative_to(CONTRACTS_DIR) else directory.name


def _drift(directory: Path, wanted: Mapping[str, str]) -> list[str]:
    present = (
        {str(p.relative_to(directory)) for p in directory.rglob("*.json")} if directory.exists() else set()
    )
    problems = [f"{name}: missing" for name in sorted(set(wanted) - present)]
    problems += [f"{name}: no longer generated" for name in sorted(present - set(wanted))]
    problems += [
        f"{name}: differs"
        for name in sorted(set(wanted) & present)
        if (directory / name).read_text(encoding="utf-8") != wanted[name]
    ]
    return problems


def _write(directory: Path, wanted: Mapping[str, str]) -> int:
    for stale in set(directory.rglob("*.json")) - {directory / name for name in wanted}:
        stale.unlink()
    for name, text in wanted.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return len(wanted)


@contracts_app.command("export")
def export(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if a checked-in file differs from the models."),
    ] = False,
    examples: Annotated[
        bool,
        typer.Option(
            "--examples", help="Also (re)generate the golden FHIR output of contracts/examples/*.json."
        ),
    ] = False,
) -> None:
    """Write the JSON Schema of every inbound event type and the AsyncAPI document to contracts/schemas/.

    With --examples, also translate every example and write the result to contracts/examples/golden/, and
    walk every process walk (contracts/examples/walks/<name>/) into its golden/ directory.
    """
    targets: list[tuple[Path, dict[str, str]]] = [(SCHEMAS_DIR, documents())]
    if examples or check:
        targets.append((GOLDEN_DIR, golden_documents()))
        targets += [(walk_dir / "golden", walk_documents(walk_dir)) for walk_dir in walk_dirs()]
    if check:
        problems = [
            f"{_label(directory)}/{p}" for directory, wanted in targets for p in _drift(directory, wanted)
        ]
        for problem in problems:
            errors.print(f"[bold red]drift:[/] {problem}", highlight=False)
        if problems:
            errors.print("Run `sambus contracts export --examples` and review the diff.")
            raise typer.Exit(code=1)
        console.print(f"The contract is up to date ({sum(len(w) for _, w in targets)} files).")
        return
    for directory, wanted in targets:
        count = _write(directory, wanted)
        console.print(f"Wrote {count} files to {directory}")
