"""The routing stage: each intent, for each recipient, decided by consent and delivered, parked or refused.

Decisions are gathered per batch and appended to the decision ledger just before the batch's Kafka
transaction commits (:class:`sambus.router.stages.transactional.TransactionHooks`); the ledger is idempotent
on (message,
recipient), so a batch read again after a crash writes nothing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from aiokafka.structs import ConsumerRecord

from sambus.consent import (
    AnsweredRequest,
    Decider,
    Decision,
    DecisionRequest,
    LedgerRecord,
    Outcome,
    as_delivered,
    header_codes,
    ledger_record,
    through_relay,
)
from sambus.consent.registry import IDENTITY_PROTECTIONS, Protection
from sambus.contracts.bounded_json import dump_json, load_json_noting_floats
from sambus.contracts.errors import (
    InvalidEventError,
    InvalidIntentError,
    ProcessNotKnownError,
    RoutingError,
    TooDeepError,
    TooLargeError,
)
from sambus.contracts.fhir import ROUTING_ADDRESS_SYSTEM, EventCode
from sambus.contracts.fhir.registry import registry_facts
from sambus.contracts.registry_facts import GuardianSecrecyLifted, IdentityProtectionEnded
from sambus.contracts.topics import Header, RecordHeaders, Topics
from sambus.router.kafka.dead_letters import dead_letter
from sambus.router.kafka.parked_headers import park_headers
from sambus.router.kafka.records import Outgoing
from sambus.router.ops.metrics import METRICS
from sambus.router.routing.asked import EQUIVALENT_EXAM_ACCEPTED, AskedTasks, ProcessStates
from sambus.router.routing.care_contacts import CareContacts
from sambus.router.routing.convene import convene_request
from sambus.router.routing.directory import Recipient, RoutingDirectory
from sambus.router.routing.notices import (
    denied_answer_told,
    initiator_notice,
    refusal_notice,
    unanswered_notice,
)
from sambus.router.routing.projection import Referrals, for_recipient, tasks
from sambus.router.routing.rules import RELAYED_FOR_HEADER, Route, RoutingRules, child_municipality

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
RegistryFeed = Callable[[Mapping[str, Any]], None]
ProtectionsOf = Callable[[str, dt.datetime], frozenset[Protection]]
REGISTRY_RECIPIENT = "sambus-registry"
"""The ledger's recipient id of what the consent registry recorded itself (an ended protected identity)."""


def utc_now() -> dt.datetime:
    """The current time, timezone-aware."""
    return dt.datetime.now(dt.UTC)


def ignore_registry_facts(_bundle: Mapping[str, Any]) -> None:
    """The default registry feed: does nothing."""


class LedgerSink(Protocol):
    """Where decisions are written: :class:`sambus.consent.DecisionLedger` or a test's fake."""

    def append(self, records: Sequence[LedgerRecord]) -> int:
        """Append the records not yet there; returns how many were new."""
        ...


Facts = TypeVar("Facts")


class BatchFacts(Protocol[Facts]):
    """Where decisions read their facts a batch at a time: :class:`sambus.consent.ConsentRegistry`."""

    def read_batch(self, wanted: Iterable[str]) -> Facts:
        """Read every fact about the ``wanted`` children (pseudonyms); blocking, thread-safe."""
        ...

    def hold_batch(self, facts: Facts) -> None:
        """Decide by ``facts`` (what :meth:`read_batch` read) until :meth:`end_batch`."""
        ...

    def end_batch(self) -> None:
        """Forget them: decisions read the database again."""
        ...


class FactsForBatch:
    """Reads the registry's facts of every child in a batch before it is handled, forgets them after.

    :class:`Delivery` uses it for its batches. The parked stage, which decides each record when it is due,
    waiting for it within the batch, reads them again whenever a record fell due after they were read (see
    :class:`~.parked.ParkedHandler`).
    """

    def __init__(self, facts: BatchFacts[Any]) -> None:
        """Read from ``facts`` (the registry the stage's policy decides by)."""
        self._facts = facts

    async def prepare(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Read the facts of every child (record key) in ``records``, in a worker thread."""
        wanted = {record.key.decode("ascii", errors="replace") for record in records if record.key}
        self._facts.hold_batch(await asyncio.to_thread(self._facts.read_batch, wanted))

    def before_commit(self) -> None:
        """Nothing to write."""

    def after_commit(self) -> None:
        """The batch is out: the next one reads its own facts."""
        self._facts.end_batch()

    def after_abort(self) -> None:
        """The batch will be read again, with its facts read again."""
        self._facts.end_batch()


class NoLedger:
    """A ledger that keeps nothing (for tools that route without recording)."""

    def append(self, records: Sequence[LedgerRecord]) -> int:
        """Keep nothing."""
        del records
        return 0


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    """A header's value as text.

    Raises:
        InvalidIntentError: the record has no such header, or its value is not UTF-8.
    """
    return header_text(RecordHeaders.of(record.headers), name)


def header_text(headers: RecordHeaders, name: str) -> str:
    """:func:`header`, from a record's headers already read.

    Raises:
        InvalidIntentError: the record has no such header, or its value is not UTF-8.
    """
    try:
        value = headers.text(name)
    except UnicodeDecodeError as exc:
        raise InvalidIntentError(f"the intent's {name} header is not UTF-8") from exc
    if value is None:
        raise InvalidIntentError(f"the intent has no {name} header")
    return value


def read_intent(record: ConsumerRecord[bytes, bytes]) -> tuple[str, EventCode, dict[str, Any]]:
    """The child's pseudonym, the event code and the Bundle of an intent record.

    Raises:
        InvalidIntentError: the record is not an intent.
        TooLargeError: the intent is larger than sambus reads.
        TooDeepError: the intent nests deeper than sambus reads.
    """
    child, event, bundle, _ = read_intent_noting_floats(record)
    return child, event, bundle


def read_intent_noting_floats(
    record: ConsumerRecord[bytes, bytes],
) -> tuple[str, EventCode, dict[str, Any], bool]:
    """:func:`read_intent`, and whether the Bundle holds a non-integer number (see :func:`dump_json`).

    Raises:
        InvalidIntentError: the record is not an intent.
        TooLargeError: the intent is larger than sambus reads.
        TooDeepError: the intent nests deeper than sambus reads.
    """
    if not record.key:
        raise InvalidIntentError("the intent has no key (the child's pseudonym)")
    try:
        event = EventCode(header(record, Header.EVENT_CODE))
    except ValueError as exc:
        raise InvalidIntentError("the intent's event code is unknown") from exc
    try:
        bundle, floats = load_json_noting_floats(record.value or b"")
    except (TooLargeError, TooDeepError):
        raise
    except InvalidEventError as exc:
        raise InvalidIntentError("the intent is not JSON") from exc
    if not isinstance(bundle, dict):
        raise InvalidIntentError("the intent is not a JSON object")
    return record.key.decode("ascii"), event, bundle, floats


class LedgerBatch:
    """Decisions gathered while a batch is handled, appended to the ledger inside its transaction.

    They are counted in the metrics once the transaction has committed, so a batch aborted and read again
    counts its decisions once.

    A :class:`sambus.router.stages.transactional.TransactionHooks`: give the handler to its stage as a hook.
    """

    def __init__(self, ledger: LedgerSink | None) -> None:
        """Write to ``ledger`` (nothing is kept without one)."""
        self._ledger: LedgerSink = ledger or NoLedger()
        self._pending: list[LedgerRecord] = []

    def before_commit(self) -> None:
        """Append the batch's decisions to the ledger (idempotently)."""
        self._ledger.append(self._pending)

    def after_commit(self) -> None:
        """The batch is out: count its decisions (an aborted batch's are counted when it is done again)."""
        for entry in self._pending:
            METRICS.decided(entry.outcome, entry.rule_id)
        self._pending.clear()

    def after_abort(self) -> None:
        """The batch will be read again: forget its decisions."""
        self._pending.clear()


class Delivery(LedgerBatch):
    """Turns one intent into deliveries (permitted), parked records (awaiting consent) or nothing (denied).

    Also a :class:`sambus.router.stages.transactional.TransactionHooks`: give it to the stage so its
    decisions reach the ledger
    inside each batch's transaction.
    """

    def __init__(
        self,
        *,
        topics: Topics,
        directory: RoutingDirectory,
        policy: Decider,
        clock: Clock = utc_now,
        ledger: LedgerSink | None = None,
        registry_feed: RegistryFeed = ignore_registry_facts,
        park_recheck: dt.timedelta = dt.timedelta(seconds=10),
        asked: AskedTasks | None = None,
        care_contacts: CareContacts | None = None,
        protections_of: ProtectionsOf | None = None,
        batch_facts: BatchFacts[Any] | None = None,
    ) -> None:
        """Route with ``directory``, decide with ``policy``, publish on ``topics``, record in ``ledger``.

        Answers go back to whom ``asked`` (the process state) says asked; without it no answer is routed.
        ``care_contacts`` says which specialist units stated an active care contact with a child.

        ``registry_feed`` is called with every intent's Bundle before it is routed, so consent, custody and
        hidden-residence messages update the registry. ``protections_of`` (the registry's protections of a
        child at a time) lets the ledger say which protected identity an ``identity-protection-ended``
        message ended. A parked message is checked again every
        ``park_recheck`` (see :mod:`sambus.router.stages.parked`).

        With ``batch_facts`` (the registry ``policy`` decides by), :meth:`prepare` reads the facts of every
        child in a batch at once, and they are forgotten when the batch commits or aborts.
        """
        self._batch_facts = None if batch_facts is None else FactsForBatch(batch_facts)
        self._park_recheck = park_recheck
        self._topics = topics
        self._parked_topic = topics.parked
        self._rules = RoutingRules(directory, asked=asked, care_contacts=care_contacts)
        self._states: object = asked  # the process state, when it also says where a process stands
        self._policy = policy
        self._clock = clock
        super().__init__(ledger)
        self._registry_feed = registry_feed
        self._protections_of = protections_of

    async def prepare(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Before a batch is handled: read the registry's facts of every child in it (one query per table).

        They are read in a worker thread, so the event loop goes on polling Kafka meanwhile.
        """
        if self._batch_facts is not None:
            await self._batch_facts.prepare(records)

    def after_commit(self) -> None:
        """The batch is out: start the next one empty, its facts read again."""
        super().after_commit()
        if self._batch_facts is not None:
            self._batch_facts.after_commit()

    def after_abort(self) -> None:
        """The batch will be read again: forget its decisions and the facts read for it."""
        super().after_abort()
        if self._batch_facts is not None:
            self._batch_facts.after_abort()

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        """The records one intent becomes."""
        child, event, bundle, floats = read_intent_noting_floats(record)
        if event is EventCode.IDENTITY_PROTECTION_ENDED:
            self._pending.append(self._protection_ended(child, bundle))
        elif event is EventCode.GUARDIAN_SECRECY_LIFTED:
            self._pending.append(self._secrecy_lifted(child, bundle))
        self._registry_feed(bundle)
        if event is EventCode.EQUIVALENT_HEALTH_EXAM_EXISTS:
            return self._equivalent_exam(record, child, bundle)
        try:
            routing = self._rules.route(event, bundle, tasks(bundle), child=child)
        except RoutingError as exc:
            if exc.retriable:
                raise  # e.g. an answer whose request the process state has not seen yet: retried later
            return [dead_letter(record, exc, dlq_topic=self._topics.dlq, keep_pseudonym=True)]
        read = RecordHeaders.of(record.headers)
        base_headers = read.without({Header.MESSAGE_ID})
        correlation_id = read.get(Header.CORRELATION_ID)
        now = self._clock()
        outgoing = [
            dead_letter(record, error, dlq_topic=self._topics.dlq, keep_pseudonym=True)
            for error in routing.unroutable
        ]
        referrals = Referrals(bundle)
        for route in routing.routes:
            message = _message_for(
                bundle, route, requester=self._resolved_requester(bundle, route), referrals=referrals
            )
            request = self._request(route, event=event, child=child, message=message, now=now)
            decision = self._decide(route, request)
            if route.relayed and decision.outcome is not Outcome.DENY:
                decision = self._relay(route.via, request, decision)
            if route.answer and decision.outcome is Outcome.DENY:
                decision = replace(decision, reason=decision.reason + denied_answer_told(decision.lapsed))
            self._pending.append(ledger_record(request, decision))
            headers = (
                *base_headers,
                (Header.MESSAGE_ID, str(message["id"]).encode("ascii")),
                (Header.RECIPIENT, route.recipient.id.encode("ascii")),
                (Header.DECISION, str(decision.outcome).encode("ascii")),
                (Header.DECISION_REASON, _reason(decision).encode("utf-8")),
            )
            if route.relayed:
                headers = (*headers, (RELAYED_FOR_HEADER, route.recipient.id.encode("ascii")))
            logger.debug(
                "intent %s for %s: %s (%s)",
                bundle.get("id"),
                route.recipient.id,
                decision.outcome,
                decision.rule_id,
            )
            outgoing.extend(
                self._records(
                    record,
                    route,
                    message,
                    decision,
                    headers=headers,
                    now=now,
                    floats=floats,
                    correlation_id=correlation_id,
                )
            )
        return outgoing

    def _equivalent_exam(
        self, record: ConsumerRecord[bytes, bytes], child: str, bundle: Mapping[str, Any]
    ) -> list[Outgoing]:
        """Social services' assessment that an equivalent examination exists: the ledger, or a refusal.

        The ``processes`` stage decided it (in the child's order of messages): it closed the reminder of the
        child's placement waiting for its 2017:209 request, and the ledger records the assessment as the
        reason; or no placement was waiting, and the event is refused (the ledger says so and the sender is
        told why). Until the process state has applied the message it is retried (retriable error).

        Raises:
            ProcessNotKnownError: the process state has not applied the message yet.
        """
        process_id = header(record, Header.CORRELATION_ID)
        state = self._states.state_of(process_id) if isinstance(self._states, ProcessStates) else None
        if state is None:
            raise ProcessNotKnownError(
                "the process state has not yet applied this equivalent-examination assessment"
            )
        basic: dict[str, Any] = next(
            (
                e["resource"]
                for e in bundle.get("entry", [])[1:]
                if isinstance(e, dict) and e.get("resource", {}).get("resourceType") == "Basic"
            ),
            {},
        )
        assessed_by = basic.get("author", {}).get("identifier", {}).get("value", "unknown")
        examined_on = basic.get("created", "unknown")
        accepted = state == EQUIVALENT_EXAM_ACCEPTED
        reason = (
            f"lag (2017:209): the placing social services assessed (by {assessed_by}) that an equivalent "
            f"examination exists (done {examined_on}): the reminder of the child's placement waiting for its "
            "health-examination request is closed; nothing is delivered"
            if accepted
            else "lag (2017:209): refused: no placement of this child waits for its health-examination "
            "request (none started, it ended, or its request was already sent), so the assessment that an "
            "equivalent examination exists closes nothing; the sender is told"
        )
        now = self._clock()
        self._pending.append(
            LedgerRecord(
                message_id=str(bundle.get("id")),
                recipient_id=REGISTRY_RECIPIENT,
                child=child,
                event=str(EventCode.EQUIVALENT_HEALTH_EXAM_EXISTS),
                outcome=str(Outcome.PERMIT if accepted else Outcome.DENY),
                rule_id="equivalent-health-exam",
                rule_version=1,
                legal_basis="lag (2017:209); the regional agreement: social services assesses whether an "
                "earlier examination is equivalent",
                reason=reason,
                decided_at=now,
            )
        )
        sender = self._header_sender(bundle)
        if accepted or sender is None:
            return []
        return [
            refusal_notice(
                topics=self._topics,
                to=sender,
                message=bundle,
                text=(
                    "refused: no placement of this child waits for its 2017:209 health-examination request "
                    "(none started, it ended, or its request was already sent): the assessment that an "
                    "equivalent examination exists was not recorded against any placement"
                ),
                key=record.key,
                correlation_id=RecordHeaders.of(record.headers).get(Header.CORRELATION_ID),
                at=now,
            )
        ]

    def _header_sender(self, bundle: Mapping[str, Any]) -> Recipient | None:
        """The organisation ``MessageHeader.sender`` names, if it is in the directory."""
        entries = bundle.get("entry") or [{}]
        identifier = entries[0].get("resource", {}).get("sender", {}).get("identifier", {})
        if not identifier.get("system") or not identifier.get("value"):
            return None
        try:
            return self._rules.resolve(str(identifier["system"]), str(identifier["value"]))
        except RoutingError:
            return None

    def _protection_ended(self, child: str, bundle: Mapping[str, Any]) -> LedgerRecord:
        """The ledger's record of an ended protected identity: which levels, from when, by which decision.

        Written under the pseudonym of the identity named, and nothing else: an ended fingerade
        personuppgifter is never linked to another identity of the same person.
        """
        [ended] = [f for f in registry_facts(bundle) if isinstance(f, IdentityProtectionEnded)]
        held = (
            self._protections_of(child, ended.at - dt.timedelta(microseconds=1)) & IDENTITY_PROTECTIONS
            if self._protections_of is not None
            else frozenset()
        )
        levels = ", ".join(p.shown for p in sorted(held)) or "none was held for this identity"
        return LedgerRecord(
            message_id=str(bundle.get("id")),
            recipient_id=REGISTRY_RECIPIENT,
            child=child,
            event=str(EventCode.IDENTITY_PROTECTION_ENDED),
            outcome=str(Outcome.PERMIT),
            rule_id="identity-protection-ended",
            rule_version=1,
            legal_basis="Skatteverket's decision, as social services recorded it",
            reason=(
                f"protected identity ended ({levels}) from {ended.at.isoformat()} by decision "
                f"{ended.decision_id}: later messages about this identity are no longer redacted for it"
            ),
            decided_at=self._clock(),
        )

    def _secrecy_lifted(self, child: str, bundle: Mapping[str, Any]) -> LedgerRecord:
        """The ledger's record of secrecy against the guardians lifted early: which decision, from when."""
        [lifted] = [f for f in registry_facts(bundle) if isinstance(f, GuardianSecrecyLifted)]
        return LedgerRecord(
            message_id=str(bundle.get("id")),
            recipient_id=REGISTRY_RECIPIENT,
            child=child,
            event=str(EventCode.GUARDIAN_SECRECY_LIFTED),
            outcome=str(Outcome.PERMIT),
            rule_id="guardian-secrecy-lifted",
            rule_version=1,
            legal_basis="OSL 12:3, as a professional assessed (the sender's decision)",
            reason=(
                f"secrecy against the guardians (decision {lifted.decision_id}) lifted from "
                f"{lifted.at.isoformat()}: later messages reach guardian-facing recipients with their "
                "content; nothing delivered before is sent again, and no recipient is told of the lift"
            ),
            decided_at=self._clock(),
        )

    def _request(
        self, route: Route, *, event: EventCode, child: str, message: dict[str, Any], now: dt.datetime
    ) -> DecisionRequest:
        return DecisionRequest(
            message_id=str(message["id"]),
            event=event,
            child=child,
            recipient_id=route.recipient.id,
            recipient_kind=route.recipient.kind,
            at=now,
            bundle=message,
            sender_kind=sender.kind if (sender := self._rules.sender(message, event)) else None,
            sender_private=sender.private if sender else False,
            guardian_facing=route.recipient.faces_guardians,
            recipient_identifiers=tuple((i.system, i.value) for i in route.recipient.identifiers),
            answers=AnsweredRequest(*route.request) if route.request is not None else None,
        )

    def _relay(self, relay: Recipient, request: DecisionRequest, decision: Decision) -> Decision:
        """Decide for the relay itself (its own consent and secrecy check, its own ledger entry)."""
        relayed = relay_request(request, relay)
        relay_decision = self._policy.decide(relayed)
        self._pending.append(ledger_record(relayed, relay_decision))
        return through_relay(decision, relay_decision, relay.id)

    def _resolved_requester(self, bundle: Mapping[str, Any], route: Route) -> tuple[str, str] | None:
        """The organisation's own identifier for a requester the Task names by routing address, if found.

        A routing address is sambus's internal way to name "social services of 1980"; the recipient gets
        the organisation's identifier instead (an answer keeps what it names).
        """
        named = route.task.resource.get("requester", {}).get("identifier", {})
        if route.answer or named.get("system") != ROUTING_ADDRESS_SYSTEM or not named.get("value"):
            return None
        try:
            resolved = self._rules.resolve(
                ROUTING_ADDRESS_SYSTEM, str(named["value"]), home=child_municipality(bundle)
            )
        except RoutingError:
            return None
        return _first_identifier(resolved)

    def _decide(self, route: Route, request: DecisionRequest) -> Decision:
        if route.refused is not None:
            return Decision(
                outcome=Outcome.DENY,
                reason=route.refused,
                legal_basis="routing directory rules (regional agreement)",
                rule_id=route.rule,
                rule_version=1,
            )
        return self._policy.decide(request)

    def _records(
        self,
        record: ConsumerRecord[bytes, bytes],
        route: Route,
        message: dict[str, Any],
        decision: Decision,
        *,
        headers: tuple[tuple[str, bytes], ...],
        now: dt.datetime,
        floats: bool = True,
        correlation_id: bytes | None = None,
    ) -> list[Outgoing]:
        """A delivery, a parked record, or a notice to the initiator that the recipient was denied.

        ``floats``: the intent may hold a non-integer number (the message is then written by the standard
        library's encoder; without, by orjson: the same bytes, see :func:`dump_json`). Sambus's projection,
        relay request and labels add strings, objects and lists only. ``correlation_id``: the intent's
        ``sambus-correlation-id`` header, which notices carry.
        """
        if decision.outcome is Outcome.DENY:
            denied = initiator_notice(
                rules=self._rules,
                topics=self._topics,
                event=EventCode.DELIVERY_DENIED,
                message=message,
                recipient=route.recipient,
                text=f"not delivered: {decision.reason}",
                key=record.key,
                correlation_id=correlation_id,
                at=now,
            )
            unanswered = (
                unanswered_notice(
                    topics=self._topics,
                    answer=message,
                    requester=route.recipient,
                    answerer=answerer,
                    lapsed=decision.lapsed,
                    key=record.key,
                    correlation_id=correlation_id,
                    at=now,
                )
                if route.answer
                and decision.lapsed is not None
                and (answerer := self._rules.initiator(message)) is not None
                else None
            )
            return [notice for notice in (denied, unanswered) if notice is not None]
        if not decision.outcome.waits:
            message = as_delivered(message, removed=decision.removed, security=decision.security)
            headers = labelled_headers(headers, message)
        value = dump_json(message, floats=floats)
        if decision.outcome.waits:
            parked = park_headers(
                since=now, check_at=now + self._park_recheck, deliver_to=route.via.topic_suffix
            )
            waiting = initiator_notice(
                rules=self._rules,
                topics=self._topics,
                event=EventCode.DELIVERY_WAITING,
                message=message,
                recipient=route.recipient,
                text=f"waits, not delivered yet: it needs {decision.waiting_for or 'what the rules ask for'}",
                key=record.key,
                correlation_id=correlation_id,
                at=now,
            )
            return [
                Outgoing(topic=self._parked_topic, key=record.key, value=value, headers=(*headers, *parked)),
                *([] if waiting is None else [waiting]),
            ]
        return [
            Outgoing(
                topic=self._topics.deliver(route.via.topic_suffix),
                key=record.key,
                value=value,
                headers=headers,
            )
        ]


def relay_request(request: DecisionRequest, relay: Recipient) -> DecisionRequest:
    """The same message, decided for the relay that carries it to its recipient."""
    return replace(
        request,
        recipient_id=relay.id,
        recipient_kind=relay.kind,
        guardian_facing=relay.faces_guardians,
        recipient_identifiers=tuple((i.system, i.value) for i in relay.identifiers),
    )


def labelled_headers(
    headers: tuple[tuple[str, bytes], ...], message: Mapping[str, Any]
) -> tuple[tuple[str, bytes], ...]:
    """``headers`` with ``sambus-security`` naming the delivered Bundle's labels (codes only)."""
    codes = header_codes(message)
    kept = tuple((k, v) for k, v in headers if k != Header.SECURITY)
    return (*kept, (Header.SECURITY, codes.encode("ascii"))) if codes else kept


def _message_for(
    bundle: dict[str, Any],
    route: Route,
    *,
    requester: tuple[str, str] | None = None,
    referrals: Referrals | None = None,
) -> dict[str, Any]:
    """What ``route.recipient`` gets of ``bundle``: its own Task, or the relay's request to convene a SIP.

    ``requester``: the organisation's own identifier in place of a routing address as requester.
    ``referrals``: what the entries of ``bundle`` refer to, shared by its recipients.
    """
    if route.convene:
        school = route.task.resource["requester"]["identifier"]
        return convene_request(
            bundle,
            route.task,
            relay_id=route.recipient.id,
            relay_name=route.recipient.name,
            relay=_first_identifier(route.recipient),
            school=(str(school["system"]), str(school["value"])),
            invitees=[_first_identifier(invitee) for invitee in route.convene],
        )
    return for_recipient(
        bundle,
        route.task,
        recipient_id=route.recipient.id,
        recipient_name=route.recipient.name,
        owner=_resolved_owner(route),
        receiver=_answer_receiver(route),
        requester=requester,
        referrals=referrals,
    )


def _first_identifier(recipient: Recipient) -> tuple[str, str]:
    first = recipient.identifiers[0]
    return (first.system, first.value)


def _resolved_owner(route: Route) -> tuple[str, str] | None:
    """The organisation's own identifier in place of a routing address; otherwise the Task keeps its owner."""
    if route.answer or route.task.owner_system != ROUTING_ADDRESS_SYSTEM:
        return None
    first = route.recipient.identifiers[0]
    return (first.system, first.value)


def _answer_receiver(route: Route) -> tuple[str, str] | None:
    """An answer is addressed to the organisation that asked, by the identifier the answer names it by."""
    if not route.answer:
        return None
    named = route.task.resource.get("requester", {}).get("identifier", {})
    if named.get("system") and named.get("value"):
        return (str(named["system"]), str(named["value"]))
    first = route.recipient.identifiers[0]
    return (first.system, first.value)


def _reason(decision: Decision) -> str:
    return f"{decision.rule_id}@{decision.rule_version}: {decision.reason} [{decision.legal_basis}]"
