"""The routing stage: each intent, for each recipient, decided by consent and delivered or parked."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from aiokafka.structs import ConsumerRecord

from consent import Decider, Decision, DecisionRequest, Outcome
from contracts.errors import InvalidIntentError, RoutingError
from contracts.fhir import EventCode
from contracts.topics import Header, Topics
from router.dead_letter import dead_letter
from router.directory import RoutingDirectory
from router.metrics import METRICS
from router.outgoing import Outgoing
from router.projection import for_recipient, tasks

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The current time, timezone-aware."""
    return dt.datetime.now(dt.UTC)


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return str(value.decode("utf-8"))
    raise InvalidIntentError(f"the intent has no {name} header")


class Delivery:
    """Turns one intent into deliveries (permitted), parked records (awaiting consent) or nothing (denied)."""

    def __init__(
        self, *, topics: Topics, directory: RoutingDirectory, policy: Decider, clock: Clock = utc_now
    ) -> None:
        """Route with ``directory``, decide with ``policy``, publish on ``topics``."""
        self._topics = topics
        self._directory = directory
        self._policy = policy
        self._clock = clock

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        """The records one intent becomes."""
        if not record.key:
            raise InvalidIntentError("the intent has no key (the child's pseudonym)")
        try:
            event = EventCode(_header(record, Header.EVENT_CODE))
        except ValueError as exc:
            raise InvalidIntentError("the intent's event code is unknown") from exc
        try:
            bundle: Any = json.loads(record.value or b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidIntentError("the intent is not JSON") from exc
        if not isinstance(bundle, dict):
            raise InvalidIntentError("the intent is not a JSON object")
        child = record.key.decode("ascii")
        base_headers = tuple((k, v) for k, v in record.headers or () if k != Header.MESSAGE_ID)
        now = self._clock()
        outgoing: list[Outgoing] = []
        for task in tasks(bundle):
            try:
                recipient = self._directory.by_identifier(task.owner_system, task.owner_value)
            except RoutingError as exc:
                outgoing.append(dead_letter(record, exc, dlq_topic=self._topics.dlq))
                continue
            message = for_recipient(bundle, task, recipient_id=recipient.id, recipient_name=recipient.name)
            decision = self._policy.decide(
                DecisionRequest(
                    message_id=str(bundle.get("id")),
                    event=event,
                    child=child,
                    recipient_id=recipient.id,
                    recipient_kind=recipient.kind,
                    at=now,
                    bundle=message,
                )
            )
            METRICS.decided(str(decision.outcome), decision.rule_id)
            headers = (
                *base_headers,
                (Header.MESSAGE_ID, str(message["id"]).encode("ascii")),
                (Header.RECIPIENT, recipient.id.encode("ascii")),
                (Header.DECISION, str(decision.outcome).encode("ascii")),
                (Header.DECISION_REASON, _reason(decision).encode("utf-8")),
            )
            topic = self._topic_for(decision, recipient.id)
            logger.info(
                "intent %s for %s: %s (%s)",
                bundle.get("id"),
                recipient.id,
                decision.outcome,
                decision.rule_id,
            )
            if topic is not None:
                value = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                outgoing.append(Outgoing(topic=topic, key=record.key, value=value, headers=headers))
        return outgoing

    def _topic_for(self, decision: Decision, recipient_id: str) -> str | None:
        if decision.outcome in {Outcome.PERMIT, Outcome.PERMIT_REDACTED}:
            return self._topics.deliver(recipient_id)
        if decision.outcome is Outcome.AWAIT_CONSENT:
            return self._topics.parked
        return None


def _reason(decision: Decision) -> str:
    return f"{decision.rule_id}@{decision.rule_version}: {decision.reason} [{decision.legal_basis}]"
