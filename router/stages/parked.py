"""Parked messages wait on ``sambus.parked`` for consent: released when it comes, expired when it does not.

The parked stage reads each parked record when it is due, decides consent again, and in one Kafka
transaction with the consumed offset either delivers it (consent now given; the initiator is told,
``delivery-released``), tells the initiator it was
denied (``delivery-denied``) or expired (``parked-expired``, after the configured time), or parks it again
with its next check time on ``sambus.parked.recheck`` (``sambus.parked`` holds each parked message once).
A consent therefore releases a parked message within one check interval. The registry's facts are read a
batch at a time, and again whenever a record of the batch fell due after they were read.

Each final outcome is written to the decision ledger as a re-decision of the message: its entry's message
id is ``deterministic_id(<message id>, "parked")``, because the ledger keeps one entry per (message,
recipient) and the first (``await_consent``) is already there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka.structs import ConsumerRecord

from sambus.consent import (
    Decider,
    Decision,
    DecisionRequest,
    Outcome,
    as_delivered,
    ledger_record,
    through_relay,
)
from sambus.contracts.bounded_json import dump_json
from sambus.contracts.errors import InvalidIntentError
from sambus.contracts.fhir import EventCode, deterministic_id
from sambus.contracts.topics import Header, RecordHeaders, Topics
from sambus.router.kafka.parked_headers import PARKED_HEADERS, epoch_ms, from_epoch_ms
from sambus.router.kafka.records import Outgoing
from sambus.router.kafka.retry import wait_until
from sambus.router.routing.directory import Recipient, RoutingDirectory
from sambus.router.routing.notices import initiator_notice
from sambus.router.routing.rules import RoutingRules
from sambus.router.stages.delivery import (
    BatchFacts,
    Clock,
    LedgerBatch,
    LedgerSink,
    header_text,
    labelled_headers,
    read_intent,
    relay_request,
)

logger = logging.getLogger(__name__)


class ParkedHandler(LedgerBatch):
    """The handler of the parked stage; also its :class:`~.transactional.TransactionHooks` (ledger)."""

    def __init__(
        self,
        *,
        topics: Topics,
        directory: RoutingDirectory,
        policy: Decider,
        ledger: LedgerSink,
        clock: Clock,
        expire_after: dt.timedelta,
        recheck: dt.timedelta,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        batch_facts: BatchFacts[Any] | None = None,
    ) -> None:
        """Decide again with ``policy``; expire what waited ``expire_after``; look again every ``recheck``.

        With ``batch_facts`` (the registry ``policy`` decides by), the facts of every child in a batch are
        read at once, in a worker thread, and read again whenever a record of the batch became due after
        they were read: each record is decided by facts read once it was due, as when it read its own.
        """
        self._batch_facts = batch_facts
        self._children: frozenset[str] = frozenset()
        self._facts_read_at: dt.datetime | None = None
        self._topics = topics
        self._rules = RoutingRules(directory)
        self._policy = policy
        super().__init__(ledger)
        self._clock = clock
        self._expire_after = expire_after
        self._recheck = recheck
        self._sleep = sleep

    async def prepare(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """A batch begins: note its children (record keys); their facts are read when the first is due."""
        self._children = frozenset(r.key.decode("ascii", errors="replace") for r in records if r.key)
        self._facts_read_at = None

    async def _read_facts(self, due: dt.datetime | None) -> None:
        """Hold the batch's facts, read again unless they were read after ``due`` (the record's check)."""
        if self._batch_facts is None or not self._children:
            return
        if self._facts_read_at is not None and (due is None or self._facts_read_at >= due):
            return
        read_at = self._clock()
        facts = await asyncio.to_thread(self._batch_facts.read_batch, self._children)
        self._batch_facts.hold_batch(facts)
        self._facts_read_at = read_at

    def after_commit(self) -> None:
        """The batch is out: the next one reads its own facts."""
        super().after_commit()
        self._forget_facts()

    def after_abort(self) -> None:
        """The batch will be read again, its facts too."""
        super().after_abort()
        self._forget_facts()

    def _forget_facts(self) -> None:
        self._children = frozenset()
        self._facts_read_at = None
        if self._batch_facts is not None:
            self._batch_facts.end_batch()

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        """A parked record, when due: delivered, refused, expired, or parked again."""
        headers = RecordHeaders.of(record.headers)
        checked_at = headers.get(Header.PARKED_CHECK_AT)
        await wait_until(checked_at, clock=self._clock, sleep=self._sleep)
        try:
            due = from_epoch_ms(checked_at) if checked_at else None
        except ValueError:
            due = None
        await self._read_facts(due)
        child, event, message = read_intent(record)
        try:
            recipient = self._rules.directory.by_id(header_text(headers, Header.RECIPIENT))
            since = from_epoch_ms(headers.get(Header.PARKED_SINCE))
            deliver_to = (headers.get(Header.PARKED_DELIVER_TO) or b"").decode("ascii")
        except ValueError as exc:
            raise InvalidIntentError("a parked record lacks its parked-state headers") from exc
        now = self._clock()
        request = DecisionRequest(
            message_id=str(message.get("id")),
            event=event,
            child=child,
            recipient_id=recipient.id,
            recipient_kind=recipient.kind,
            at=now,
            bundle=message,
            sender_kind=sender.kind if (sender := self._rules.sender(message, event)) else None,
            sender_private=sender.private if sender else False,
            guardian_facing=recipient.faces_guardians,
            recipient_identifiers=tuple((i.system, i.value) for i in recipient.identifiers),
        )
        decision = self._policy.decide(request)
        relay = self._relay(deliver_to, recipient)
        relay_decision: tuple[DecisionRequest, Decision] | None = None
        if relay is not None and decision.outcome is not Outcome.DENY:
            relayed = relay_request(request, relay)
            relay_decision = (relayed, self._policy.decide(relayed))
            decision = through_relay(decision, relay_decision[1], relay.id)
        if decision.outcome.waits and now - since < self._expire_after:
            again = headers.without({Header.PARKED_CHECK_AT})
            check_at = min(now + self._recheck, since + self._expire_after)
            return [
                Outgoing(
                    self._topics.parked_recheck,
                    record.value or b"",
                    record.key,
                    (*again, (Header.PARKED_CHECK_AT, epoch_ms(check_at))),
                )
            ]
        if decision.outcome.waits:
            waited = "no consent" if decision.outcome is Outcome.AWAIT_CONSENT else "no answer"
            decision = Decision(
                outcome=Outcome.DENY,
                reason=f"{waited} came within {self._expire_after}; the message expired unsent",
                legal_basis=decision.legal_basis,
                rule_id="parked-expired",
                rule_version=1,
            )
        self._pending.append(
            ledger_record(request, decision, message_id=deterministic_id(request.message_id, "parked"))
        )
        if relay_decision is not None:
            relayed, relayed_decision = relay_decision
            self._pending.append(
                ledger_record(
                    relayed, relayed_decision, message_id=deterministic_id(request.message_id, "parked")
                )
            )
        logger.debug(
            "parked %s for %s: %s (%s)", message.get("id"), recipient.id, decision.outcome, decision.rule_id
        )
        if decision.outcome is Outcome.DENY:
            expired = decision.rule_id == "parked-expired"
            notice = initiator_notice(
                rules=self._rules,
                topics=self._topics,
                event=EventCode.PARKED_EXPIRED if expired else EventCode.DELIVERY_DENIED,
                message=message,
                recipient=recipient,
                text=decision.reason if expired else f"not delivered: {decision.reason}",
                key=record.key,
                correlation_id=headers.get(Header.CORRELATION_ID),
                at=now,
            )
            return [] if notice is None else [notice]
        released = initiator_notice(
            rules=self._rules,
            topics=self._topics,
            event=EventCode.DELIVERY_RELEASED,
            message=message,
            recipient=recipient,
            text="delivered: what it waited for came",
            key=record.key,
            correlation_id=headers.get(Header.CORRELATION_ID),
            at=now,
        )
        return [
            self._release(record, headers, message, decision, deliver_to),
            *([] if released is None else [released]),
        ]

    def _relay(self, deliver_to: str, recipient: Recipient) -> Recipient | None:
        """The relay that carries a parked message to ``recipient``, if another organisation does."""
        if deliver_to == recipient.topic_suffix:
            return None
        return next((r for r in self._rules.directory.recipients if r.topic_suffix == deliver_to), None)

    def _release(
        self,
        record: ConsumerRecord[bytes, bytes],
        headers: RecordHeaders,
        message: dict[str, Any],
        decision: Decision,
        deliver_to: str,
    ) -> Outgoing:
        message = as_delivered(message, removed=decision.removed, security=decision.security)
        reason = f"{decision.rule_id}@{decision.rule_version}: {decision.reason} [{decision.legal_basis}]"
        kept = headers.without({*PARKED_HEADERS, Header.DECISION, Header.DECISION_REASON})
        return Outgoing(
            self._topics.deliver(deliver_to),
            dump_json(message),
            record.key,
            labelled_headers(
                (
                    *kept,
                    (Header.DECISION, str(decision.outcome).encode("ascii")),
                    (Header.DECISION_REASON, reason.encode("utf-8")),
                ),
                message,
            ),
        )
