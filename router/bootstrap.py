"""The one place where settings, stores, keys and the broker are put together."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from consent import ConsentPolicy, ConsentRegistry, Pseudonymizer
from contracts.topics import Topics
from router.delivery import Clock, Delivery, utc_now
from router.directory import RoutingDirectory
from router.intake import Intake
from router.kafka_admin import ensure_topics
from router.seen_events import SeenEvents
from router.settings import Settings
from router.stage import TransactionalStage

STAGES = ("intake", "delivery")
"""The stages ``sambus run --stage`` can run on their own."""


def create_engine(database_url: str) -> sa.Engine:
    """An engine for the registry; an SQLite file's folder is created when missing."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in {None, "", ":memory:"}:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url)


@dataclass
class Sambus:
    """A wired sambus: its stores, its policy and its stages, ready to start."""

    settings: Settings
    bootstrap_servers: str
    topics: Topics
    directory: RoutingDirectory
    registry: ConsentRegistry
    pseudonymizer: Pseudonymizer
    clock: Clock
    stages: list[TransactionalStage] = field(default_factory=list)

    async def create_topics(self) -> list[str]:
        """Create every topic sambus and the directory's recipients need."""
        recipients = tuple(r.id for r in self.directory.recipients)
        return await ensure_topics(self.bootstrap_servers, self.topics.specs(recipients))

    def build_stages(self, only: str | None = None) -> list[TransactionalStage]:
        """Make the stages (all, or only the one named), not yet connected."""
        prefix = f"{self.settings.topic_prefix}sambus"
        instance = self.settings.instance_id
        made: list[TransactionalStage] = []
        if only in {None, "intake"}:
            seen = SeenEvents(create_engine(self.settings.database_url))
            seen.create_schema()
            made.append(
                TransactionalStage(
                    name="intake",
                    bootstrap_servers=self.bootstrap_servers,
                    topics=[self.topics.agency_events(kind) for kind in ("school", "social", "ehr")],
                    group_id=f"{prefix}-intake",
                    transactional_id=f"{prefix}-intake-{instance}",
                    handler=Intake(topics=self.topics, pseudonymizer=self.pseudonymizer, seen=seen),
                    dlq_topic=self.topics.dlq,
                    hooks=[seen],
                )
            )
        if only in {None, "delivery"}:
            made.append(
                TransactionalStage(
                    name="delivery",
                    bootstrap_servers=self.bootstrap_servers,
                    topics=[self.topics.intents],
                    group_id=f"{prefix}-delivery",
                    transactional_id=f"{prefix}-delivery-{instance}",
                    handler=Delivery(
                        topics=self.topics,
                        directory=self.directory,
                        policy=ConsentPolicy(self.registry),
                        clock=self.clock,
                    ),
                    dlq_topic=self.topics.dlq,
                )
            )
        self.stages = made
        return made

    async def run(self, stop: asyncio.Event, *, only: str | None = None) -> None:
        """Create topics, start the stages and process until ``stop`` is set."""
        await self.create_topics()
        stages = self.build_stages(only)
        started: list[TransactionalStage] = []
        try:
            for stage in stages:
                await stage.start()
                started.append(stage)
            async with asyncio.TaskGroup() as group:
                for stage in stages:
                    group.create_task(stage.run(stop), name=f"stage-{stage.name}")
        finally:
            for stage in started:
                with contextlib.suppress(Exception):
                    await stage.stop()


def bootstrap(settings: Settings, *, bootstrap_servers: str, clock: Clock = utc_now) -> Sambus:
    """Wire sambus from ``settings``; opens the database and creates its tables, but connects no broker yet.

    Raises:
        ConfigError: the pseudonym key or the routing directory is missing or invalid.
    """
    directory = RoutingDirectory.load(settings.directory)
    pseudonymizer = Pseudonymizer(settings.require_pseudonym_key())
    registry = ConsentRegistry(create_engine(settings.database_url))
    registry.create_schema()
    return Sambus(
        settings=settings,
        bootstrap_servers=bootstrap_servers,
        topics=Topics(prefix=settings.topic_prefix),
        directory=directory,
        registry=registry,
        pseudonymizer=pseudonymizer,
        clock=clock,
    )
