"""The one place where settings, stores, keys and the broker are put together."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from sambus.consent import (
    ConsentPolicy,
    ConsentRegistry,
    Decider,
    DecisionLedger,
    FieldCipher,
    Pseudonymizer,
    RuleSet,
)
from sambus.contracts.errors import ConfigError
from sambus.contracts.fhir.registry import registry_facts
from sambus.contracts.topics import Topics, TopicSpec
from sambus.router.kafka.admin import ensure_topics
from sambus.router.kafka.connection import KafkaConnection
from sambus.router.kafka.retry import Retries, RetryHandler, RetryPolicy
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.routing.rules import RoutingRules
from sambus.router.service.consent_wiring import county_policy, dead_letter_cipher, decision_ledger
from sambus.router.service.schema import open_database
from sambus.router.settings import Settings
from sambus.router.stages.deadlines import DeadlineRules, Deadlines, DeadlineTimers
from sambus.router.stages.delivery import Clock, Delivery, utc_now
from sambus.router.stages.intake import Intake
from sambus.router.stages.parked import ParkedHandler
from sambus.router.stages.processes import ProcessStore, ProcessTracker
from sambus.router.stages.seen_events import SeenEvents
from sambus.router.stages.transactional import TransactionalStage

STAGES = ("intake", "delivery", "retry", "parked", "processes")
"""The stages ``sambus run --stage`` can run on their own (``retry`` runs every retry level; ``processes``
tracks process state and fires deadline timers)."""

STAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "intake": ("intake",),
    "delivery": ("delivery", "retry"),
    "state": ("parked", "processes"),
}
"""The processes ``sambus run`` starts, each running these stages on its own core and event loop."""

Only = str | Collection[str] | None
"""Which stages: all (``None``), one by name, or several."""


def _wanted(only: Only) -> frozenset[str]:
    if only is None:
        return frozenset(STAGES)
    return frozenset({only} if isinstance(only, str) else only)


@dataclass
class Sambus:
    """A wired sambus: its stores, its policy and its stages, ready to start."""

    settings: Settings
    bootstrap_servers: str
    engine: sa.Engine
    """The one database engine of the registry, the ledger, process state and every other table."""
    topics: Topics
    directory: RoutingDirectory
    registry: ConsentRegistry
    ledger: DecisionLedger
    pseudonymizer: Pseudonymizer
    processes: ProcessStore
    deadlines: Deadlines
    clock: Clock
    rules: RuleSet
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    dlq_cipher: FieldCipher | None = None
    """Seals dead letters' originals (``SAMBUS_DLQ_ENCRYPTION_KEYS``); without it they are not kept."""
    policy: Decider | None = None
    """Who decides per recipient; ``None`` means :class:`sambus.consent.ConsentPolicy` on the registry and
    rules."""
    stages: list[TransactionalStage] = field(default_factory=list)

    @cached_property
    def kafka(self) -> KafkaConnection:
        """How this sambus's Kafka clients connect: :attr:`bootstrap_servers`, the settings' TLS/SASL."""
        return KafkaConnection.from_settings(self.settings, self.bootstrap_servers)

    def topic_specs(self) -> list[TopicSpec]:
        """Every topic sambus, its retries and the directory's recipients need."""
        recipients = tuple(r.topic_suffix for r in self.directory.recipients)
        return self.topics.specs(recipients, retry_levels=len(self.retry_policy.levels))

    def group_id(self, stage: str) -> str:
        """The consumer group of one of this sambus's stages (``intake``, ``retry-1``...)."""
        return f"{self.settings.topic_prefix}sambus-{stage}"

    def group_ids(self) -> list[str]:
        """The consumer groups of every stage this sambus runs."""
        retries = [f"retry-{level}" for level in self.retry_policy.levels]
        return [self.group_id(stage) for stage in ("intake", "delivery", *retries, "parked", "processes")]

    async def create_topics(self) -> list[str]:
        """Create every topic sambus and the directory's recipients need."""
        return await ensure_topics(self.kafka, self.topic_specs())

    def decider(self) -> Decider:
        """The policy that decides per recipient: :attr:`policy`, else the rules over the registry."""
        return self.policy or ConsentPolicy(self.registry, self.rules)

    def feed_registry(self, bundle: Mapping[str, Any]) -> None:
        """Record the consent, custody and hidden-residence facts a message carries, before it is routed.

        Raises:
            InvalidIntentError: a registry message is malformed (the intent is dead-lettered).
        """
        facts = registry_facts(bundle)
        if facts:
            self.registry.apply(facts)

    def delivery(self) -> Delivery:
        """A delivery handler (one per stage: it gathers its batch's ledger entries)."""
        return Delivery(
            topics=self.topics,
            directory=self.directory,
            policy=self.decider(),
            clock=self.clock,
            ledger=self.ledger,
            registry_feed=self.feed_registry,
            park_recheck=dt.timedelta(seconds=self.settings.parked_recheck_s),
            asked=self.processes,
            care_contacts=self.processes,
            protections_of=self.registry.protections_at,
            batch_facts=self.registry if self.policy is None else None,
        )

    def build_stages(self, only: Only = None) -> list[TransactionalStage]:
        """Make the stages (all, only the one named, or those named), not yet connected."""
        wanted = _wanted(only)
        prefix = f"{self.settings.topic_prefix}sambus"
        instance = self.settings.instance_id
        retries = Retries(topics=self.topics, policy=self.retry_policy, clock=self.clock)
        made: list[TransactionalStage] = []
        if "intake" in wanted:
            seen = SeenEvents(self.engine)
            intake = Intake(topics=self.topics, pseudonymizer=self.pseudonymizer, seen=seen)
            made.append(
                TransactionalStage(
                    name="intake",
                    bootstrap_servers=self.kafka,
                    topics=[self.topics.agency_events(kind) for kind in ("school", "social", "ehr")],
                    group_id=self.group_id("intake"),
                    member_id=f"{prefix}-intake-{instance}",
                    handler=intake,
                    dlq_topic=self.topics.dlq,
                    dlq_cipher=self.dlq_cipher,
                    hooks=[seen],
                    prepare=intake.prepare,
                )
            )
        if "delivery" in wanted:
            delivery = self.delivery()
            made.append(
                TransactionalStage(
                    name="delivery",
                    bootstrap_servers=self.kafka,
                    topics=[self.topics.intents],
                    group_id=self.group_id("delivery"),
                    member_id=f"{prefix}-delivery-{instance}",
                    handler=delivery,
                    dlq_topic=self.topics.dlq,
                    dlq_cipher=self.dlq_cipher,
                    hooks=[delivery],
                    prepare=delivery.prepare,
                    on_retriable=retries.failed,
                    keys_are_pseudonyms=True,
                )
            )
        if "retry" in wanted:
            for level in self.retry_policy.levels:
                delivery = self.delivery()
                made.append(
                    TransactionalStage(
                        name=f"retry-{level}",
                        bootstrap_servers=self.kafka,
                        topics=[self.topics.retry(level)],
                        group_id=self.group_id(f"retry-{level}"),
                        member_id=f"{prefix}-retry-{level}-{instance}",
                        handler=RetryHandler(handler=delivery, retries=retries, clock=self.clock),
                        dlq_topic=self.topics.dlq,
                        dlq_cipher=self.dlq_cipher,
                        hooks=[delivery],
                        max_batch=50,
                        keys_are_pseudonyms=True,
                    )
                )
        if "parked" in wanted:
            parked = ParkedHandler(
                topics=self.topics,
                directory=self.directory,
                policy=self.decider(),
                ledger=self.ledger,
                clock=self.clock,
                expire_after=dt.timedelta(seconds=self.settings.parked_expire_after_s),
                recheck=dt.timedelta(seconds=self.settings.parked_recheck_s),
                batch_facts=self.registry if self.policy is None else None,
            )
            made.append(
                TransactionalStage(
                    name="parked",  # on a retriable failure the batch is read again; records stay parked
                    bootstrap_servers=self.kafka,
                    topics=[self.topics.parked, self.topics.parked_recheck],
                    group_id=self.group_id("parked"),
                    member_id=f"{prefix}-parked-{instance}",
                    handler=parked,
                    dlq_topic=self.topics.dlq,
                    dlq_cipher=self.dlq_cipher,
                    hooks=[parked],
                    prepare=parked.prepare,
                    max_batch=50,
                    keys_are_pseudonyms=True,
                )
            )
        if "processes" in wanted:
            tracker = ProcessTracker(
                store=self.processes,
                deadlines=self.deadlines,
                rules=RoutingRules(self.directory, care_contacts=self.processes),
                deadline_rules=DeadlineRules(
                    guardian_access_ack=dt.timedelta(hours=self.settings.guardian_access_ack_hours),
                    health_exam_request=dt.timedelta(days=self.rules.deadlines.health_exam_request.days),
                ),
            )
            made.append(
                TransactionalStage(
                    name="processes",  # one database transaction per batch, a savepoint per message
                    bootstrap_servers=self.kafka,
                    topics=[self.topics.intents],
                    group_id=self.group_id("processes"),
                    member_id=f"{prefix}-processes-{instance}",
                    handler=tracker,
                    dlq_topic=self.topics.dlq,
                    dlq_cipher=self.dlq_cipher,
                    hooks=[tracker],
                    prepare=tracker.prepare,
                    keys_are_pseudonyms=True,
                )
            )
        self.stages = made
        return made

    def deadline_timers(self) -> DeadlineTimers:
        """The deadline timers (part of the ``processes`` stage), not yet connected."""
        prefix = f"{self.settings.topic_prefix}sambus"
        return DeadlineTimers(
            deadlines=self.deadlines,
            directory=self.directory,
            topics=self.topics,
            bootstrap_servers=self.kafka,
            transactional_id=f"{prefix}-timers",  # one for all instances: a new owner fences the last
            clock=self.clock,
            interval_s=self.settings.deadline_scan_s,
            tasks=self.processes.tasks_of,
            owner=self.settings.instance_id,
            protections=self.registry.protections_at,
        )

    async def run(self, stop: asyncio.Event, *, only: Only = None, create_topics: bool = True) -> None:
        """Create topics (unless told not to), start the stages and process until ``stop`` is set."""
        if create_topics:
            await self.create_topics()
        stages: list[TransactionalStage | DeadlineTimers] = [*self.build_stages(only)]
        if "processes" in _wanted(only):
            stages.append(self.deadline_timers())
        started: list[TransactionalStage | DeadlineTimers] = []
        try:
            for stage in stages:
                await stage.start()
                started.append(stage)
            settle_heap()
            async with asyncio.TaskGroup() as group:
                for stage in stages:
                    group.create_task(stage.run(stop))
        finally:
            gc.unfreeze()  # what was frozen is collected again once its stages are done
            for stage in started:
                with contextlib.suppress(Exception):
                    await stage.stop()


def settle_heap() -> None:
    """Take what starting made (modules, FHIR models, the directory, clients) out of the collector's way.

    Handling a message makes and drops thousands of small objects; each full collection the garbage
    collector starts then walks every object alive, most of them made once at start and never freed.
    Frozen, they are left out of collections: the delivery handler alone handled 1.8-2x as many intents a
    second. Garbage made later is collected as before.
    """
    gc.collect()
    gc.freeze()


def bootstrap(settings: Settings, *, bootstrap_servers: str, clock: Clock = utc_now) -> Sambus:
    """Wire sambus from ``settings``; opens the database, but connects no broker yet.

    Raises:
        ConfigError: the pseudonym key, the routing directory or the retry delays are missing or invalid, or
            the directory holds no organisation in the configured county, or a care unit in it names no
            care provider (vårdgivare).
        SchemaNotCurrentError: the database's schema is not at the newest revision (run `sambus db upgrade`).
        StoreUnavailableError: the database cannot be reached.
    """
    directory = RoutingDirectory.load(settings.directory)
    directory.check_county(settings.county)
    directory.check_care_providers()
    pseudonymizer = Pseudonymizer(settings.require_pseudonym_key())
    try:
        retry_policy = RetryPolicy(delays_s=settings.retry_delays_s)
    except ValueError as exc:
        raise ConfigError(f"SAMBUS_RETRY_DELAYS_S: {exc}") from exc
    rules = RuleSet.load(settings.rules)
    engine = open_database(settings.database_url)
    registry = ConsentRegistry(engine, pseudonymizer, county=county_policy(settings))
    ledger = decision_ledger(settings, engine)
    processes = ProcessStore(engine)
    dlq_cipher = dead_letter_cipher(settings)
    deadlines = Deadlines(engine, cipher=dlq_cipher)
    return Sambus(
        settings=settings,
        bootstrap_servers=bootstrap_servers,
        engine=engine,
        topics=settings.topics(),
        dlq_cipher=dlq_cipher,
        directory=directory,
        registry=registry,
        rules=rules,
        ledger=ledger,
        pseudonymizer=pseudonymizer,
        processes=processes,
        deadlines=deadlines,
        clock=clock,
        retry_policy=retry_policy,
    )
