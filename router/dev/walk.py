"""A process walk: agency events through sambus's own stages, in process, to what each recipient gets.

Used for the golden process walks (``contracts/examples/walks/``): each event is translated as the intake
stage translates it, applied to the process state as the ``processes`` stage applies it, and routed,
decided and projected as the delivery stage does, with the real routing directory, consent registry and
secrecy rules, on a fresh SQLite database. No broker is involved: the records the stages would produce are
handed on directly, in order (the ``processes`` stage sees each intent before delivery routes it, as it
must for an answer to find who asked).

Every message is assembled ``ASSEMBLY_DELAY`` after its event's ``time`` and decided at that instant, so
the walk's output is the same on every run.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from sambus.adapters import translate_message
from sambus.contracts.envelope import open_envelope
from sambus.contracts.topics import Header
from sambus.router.routing.rules import RoutingRules
from sambus.router.service.bootstrap import bootstrap
from sambus.router.service.schema import create_engine, upgrade
from sambus.router.settings import Settings
from sambus.router.stages.intake import Intake
from sambus.router.stages.processes import ProcessTracker

ASSEMBLY_DELAY = dt.timedelta(seconds=5)
"""How long after its event a walk's message is assembled and decided."""


@dataclass(frozen=True)
class Delivered:
    """One record the delivery stage produced for one event: where it went, the decision, the message."""

    topic: str
    recipient: str
    decision: str
    message: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The record as the golden walk files show it."""
        return {
            "topic": self.topic,
            "recipient": self.recipient,
            "decision": self.decision,
            "message": self.message,
        }


class _Clock:
    """The walk's clock: set to each event's assembly time before the event is handled."""

    def __init__(self) -> None:
        self.now = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def walk(events: Sequence[bytes]) -> list[list[Delivered]]:
    """What each event of ``events`` (agency events, in order) becomes: the records delivery produces.

    Raises:
        sambus.contracts.errors.InvalidEventError: an event is not valid.
    """
    clock = _Clock()
    with tempfile.TemporaryDirectory(prefix="sambus-walk-") as workdir:
        settings = Settings(
            topic_prefix="walk.",
            database_url=f"sqlite:///{Path(workdir) / 'walk.db'}",
            pseudonym_key=SecretStr(secrets.token_hex(32)),
            dlq_encryption_keys=SecretStr(f"walk:{secrets.token_hex(32)}"),
        )
        engine = create_engine(settings.database_url)
        upgrade(engine)
        engine.dispose()
        app = bootstrap(settings, bootstrap_servers="127.0.0.1:1", clock=clock)
        try:
            intake = Intake(topics=app.topics, pseudonymizer=app.pseudonymizer)
            tracker = ProcessTracker(
                store=app.processes,
                deadlines=app.deadlines,
                rules=RoutingRules(app.directory, care_contacts=app.processes),
            )
            delivery = app.delivery()
            steps: list[list[Delivered]] = []
            for offset, event in enumerate(events):
                clock.now = open_envelope(event).time + ASSEMBLY_DELAY
                delivered: list[Delivered] = []
                for intent in translate_message(event, clock=clock):
                    record = intake.intent_record(intent).as_consumed(offset=offset)
                    await tracker(record)
                    for out in await delivery(record):
                        headers = {key: value.decode("utf-8") for key, value in out.headers}
                        delivered.append(
                            Delivered(
                                topic=out.topic.removeprefix(app.topics.prefix),
                                recipient=headers.get(Header.RECIPIENT, "-"),
                                decision=headers.get(Header.DECISION, "-"),
                                message=json.loads(out.value),
                            )
                        )
                delivery.after_commit()
                steps.append(delivered)
            return steps
        finally:
            app.engine.dispose()
