"""Deadlines of processes: a reminder before, an escalation after; timers that survive restarts, fire once.

Rules (from the laws and agreements the processes follow):

* LVU § 32 examination: due four weeks after it is ordered; reminder a week before.
* Acute placement: the joint planning (a SIP for the same child) is due two weeks after the placement (the
  notices' ``restriction.period.end``); reminder three days before. A planned placement opens no deadline.
* SIP follow-up: due on the plan's follow-up date (the plan Task's ``restriction.period.end``, else six
  months after the plan); reminder two weeks before.
* Acute suicide risk: social services and BUP each acknowledge within four hours (their Tasks'
  ``restriction.period.end``); one deadline per unit alerted, closed by that unit's answer; reminder halfway.
* A child with an active SIP turning 18: a transition-to-adulthood notice six months before the birthday,
  unless a hand-over meeting to adult care (``handover-meeting-called``, for the same child) was called.
* Guardian-access block (hidden residence): each care unit told to block the guardians' access must
  acknowledge it (answer its Task ``accepted`` or ``completed``) within ``SAMBUS_GUARDIAN_ACCESS_ACK_HOURS``
  (default four hours); the unit is reminded half-way, and the deciding social services are told at the end
  if it has not (one deadline per unit).
* A placed child's 2017:209 health-examination request: the law (the notice "when a child is placed") and
  the agreements give no deadline, so the rule file sets one (``deadlines.health_exam_request``, default
  14 days after the placement, marked (verify)); the placing social services is reminded if no
  ``health-exam-requested`` for the same child came by then (failing closed: a reminder rather than
  silence). The request closes it, and so does the end of the placement; a request for the same child
  that came at most the term before the placement (sent before the placement event was registered) opens
  it already closed, and the placing social services' assessment that an equivalent examination exists
  (``equivalent-health-exam-exists``) closes it. It does not escalate (the placing social services is the
  party that owes it and the one an escalation would go to).
* LVU placement: LVU 14 § third paragraph (verify) has the board consider at least every three months
  whether its decisions under 14 § second paragraph (contact restrictions, hidden residence) are still
  needed: a reminder to the placing social services a week before every third month from the placement,
  until the placement ends (``placement-ended`` for the child closes it).

A reminder goes to the party that must act: a unit the message asked (a Task's owner, as routed), or the
initiator for what the initiator owes (joint planning); an escalation to the initiator (the Task's requester).
Nobody outside the process is reminded. Each names the child (a ``Patient`` with its identifier only) and the
Tasks the addressee holds. The table keeps the child as its pseudonym and, to name it, its identifier
encrypted with the dead-letter keys (``SAMBUS_DLQ_ENCRYPTION_KEYS``, AES-GCM bound to the deadline); a
deadline opened without the keys, or before it kept an identifier, reminds without the Patient and says so.

Timers live in the database; each firing is also written, in the same Kafka transaction as its notice, to
the compacted topic ``sambus.timers.fired``, which is read back at start so a timer whose notice
went out just before a crash is not fired again.

With several instances, one fires timers at a time: the owner, named in the ``timer_owner`` row, which it
claims with a conditional update (one row changed, or it is not the owner) and renews at every scan. A claim
lapses after a lease, so a crashed or paused owner is replaced. Every owner uses the same Kafka
transactional id: a new owner's producer fences the old one (whose open transaction is aborted and whose
next commit fails), and only then reads the fired-timers topic, so no timer fires twice, even when the old
owner wakes up mid-scan.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import IllegalOperation, KafkaError, ProducerFenced
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from sambus.consent.keys import FieldCipher, LedgerKeyError
from sambus.consent.registry import IDENTITY_PROTECTIONS, Protection
from sambus.consent.rules import HEALTH_EXAM_REQUEST as HEALTH_EXAM_REQUEST_TERM
from sambus.contracts.bounded_json import dump_json
from sambus.contracts.errors import (
    BrokerUnavailableError,
    RoutingError,
    SambusError,
    StoreUnavailableError,
    map_errors,
)
from sambus.contracts.events._common import URGENT_RESPONSE_HOURS
from sambus.contracts.fhir import EventCode
from sambus.contracts.fhir.codes import PLACEMENT_SYSTEM, PROCESS_ID_SYSTEM
from sambus.contracts.fhir.notices import notice
from sambus.contracts.identifiers import child_identifier
from sambus.contracts.topics import SCHEMA_VERSION, Header, Topics
from sambus.router.kafka.admin import read_topic
from sambus.router.kafka.connection import Broker, client_kwargs
from sambus.router.kafka.records import Outgoing
from sambus.router.ops.queues import OverdueDeadline
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.routing.notices import addressee
from sambus.router.stages.transactional import forget_failures
from sambus.router.stages.write_behind import insert

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

metadata = sa.MetaData()

deadlines = sa.Table(
    "deadlines",
    metadata,
    sa.Column("deadline_id", sa.String(200), primary_key=True, comment="<process id>:<name>"),
    sa.Column("process_id", sa.String(100), nullable=False, index=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("child", sa.String(64), nullable=False, index=True, comment="keyed pseudonym"),
    sa.Column("child_identity_key_id", sa.String(40), nullable=True),
    sa.Column(
        "child_identity",
        sa.String(400),
        nullable=True,
        comment="the child's identifier for its reminders: AES-GCM, base64(nonce + ciphertext)",
    ),
    sa.Column("responsible", sa.String(100), nullable=True),
    sa.Column("escalate_to", sa.String(100), nullable=True),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("remind_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reminder_event", sa.String(40), nullable=False),
    sa.Column("escalates", sa.Boolean, nullable=False),
    sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
)

timer_owner = sa.Table(
    "timer_owner",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False, comment="the instance that fires timers"),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, comment="its claim lapses then"),
)

# The statements a message opens and closes deadlines with, built once (see processes.py).
_IS_OPEN = sa.select(deadlines.c.deadline_id).where(deadlines.c.deadline_id == sa.bindparam("p_deadline_id"))
_OPEN = deadlines.insert()
_OPEN_NAMED = (
    deadlines.c.name.in_(sa.bindparam("p_names", expanding=True)),
    deadlines.c.closed_at.is_(None),
)
_CLOSE = (
    deadlines.update()
    .where(deadlines.c.process_id == sa.bindparam("p_process_id"), *_OPEN_NAMED)
    .values(closed_at=sa.bindparam("p_closed_at"))
)
_CLOSE_RESPONSIBLE = _CLOSE.where(deadlines.c.responsible == sa.bindparam("p_responsible"))
_CLOSE_FOR_CHILD = (
    deadlines.update()
    .where(deadlines.c.child == sa.bindparam("p_child"), *_OPEN_NAMED)
    .values(closed_at=sa.bindparam("p_closed_at"))
)

URGENT_RESPONSE = "urgent-response"
"""The deadline of each unit alerted to an acute suicide risk."""
_ACKNOWLEDGEMENTS = frozenset({EventCode.TASK_STATUS_CHANGED})
"""Answers that acknowledge an urgent Task (any reported state: accepted, in progress, even rejected)."""

REMINDER = "reminder"
ESCALATION = "escalation"
TIMERS = "deadline-timers"
LVU14_REVIEW = "lvu14-review"
GUARDIAN_ACCESS_ACK = "guardian-access-ack"
JOINT_PLANNING = "joint-planning"
"""An acute placement's joint planning (a SIP for the child), owed by the placing social services."""
HEALTH_EXAM_REQUEST = "health-exam-request"
"""A placed child's 2017:209 examination request, owed by the placing social services."""
ADULTHOOD = "adulthood"
"""A child with a SIP turning 18: the transition notice six months before; a hand-over meeting closes it."""
HEALTH_EXAM_REQUEST_DAYS = HEALTH_EXAM_REQUEST_TERM.days
"""The default term of the 2017:209 request (the rule file's ``deadlines.health_exam_request.days``)."""
RECURRING_MONTHS = {LVU14_REVIEW: 3}
"""Deadlines that come back: after each reminder the next period's opens, this many months on."""
_PERIOD = re.compile(r"(?P<deadline>.+)@(?P<due>\d{4}-\d{2}-\d{2})")


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """``moment`` ``months`` calendar months on (the last day of a shorter month where the day is missing)."""
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class Deadline:
    """A deadline a message opens."""

    name: str
    due_at: dt.datetime
    remind_at: dt.datetime
    reminder_event: EventCode = EventCode.DEADLINE_REMINDER
    escalates: bool = True
    owed_by_initiator: bool = False
    """The process's initiator must act (e.g. the placing board's joint planning), not the units it asked."""
    per_party: bool = False
    """Each unit the message asked owes it on its own (one deadline each, closed by that unit's answer)."""


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _follow_up_date(bundle: Mapping[str, Any]) -> dt.datetime | None:
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        end = resource.get("restriction", {}).get("period", {}).get("end")
        if resource.get("resourceType") == "Task" and end:
            try:
                parsed = dt.datetime.fromisoformat(str(end))
            except ValueError:
                return None
            return _utc(parsed)
    return None


def _adulthood(at: dt.datetime, birth: dt.date) -> list[Deadline]:
    """The transition-to-adulthood notice of a child born on ``birth``, unless it is 18 already."""
    try:
        eighteen = birth.replace(year=birth.year + 18)
    except ValueError:  # born on 29 February
        eighteen = birth.replace(year=birth.year + 18, day=28)
    due = dt.datetime.combine(eighteen, dt.time(), tzinfo=dt.UTC)
    if due <= at:
        return []
    return [
        Deadline(
            ADULTHOOD,
            due,
            due - dt.timedelta(days=182),
            reminder_event=EventCode.TRANSITION_TO_ADULTHOOD,
            escalates=False,
        )
    ]


def _lvu(bundle: Mapping[str, Any]) -> bool:
    """Whether a placement message's Tasks name LVU as the placement's legal basis."""
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        codings = (
            resource.get("reasonCode", {}).get("coding", []) if resource.get("resourceType") == "Task" else []
        )
        if any(c.get("system") == PLACEMENT_SYSTEM and c.get("code") == "lvu" for c in codings):
            return True
    return False


def _placement(at: dt.datetime, bundle: Mapping[str, Any], *, exam_request: dt.timedelta) -> list[Deadline]:
    """The deadlines a placement opens: the 2017:209 request, joint planning when acute, LVU 14 § reviews.

    Only an acute placement calls for joint planning within two weeks: its notices carry the due date
    (``restriction.period.end``); a planned placement's carry none.
    """
    week = dt.timedelta(weeks=1)
    opened: list[Deadline] = [
        Deadline(
            HEALTH_EXAM_REQUEST,
            at + exam_request,
            at + exam_request,
            escalates=False,
            owed_by_initiator=True,
        )
    ]
    acute_due = _follow_up_date(bundle)
    if acute_due is not None:
        opened.append(
            Deadline(JOINT_PLANNING, acute_due, acute_due - dt.timedelta(days=3), owed_by_initiator=True)
        )
    if _lvu(bundle):
        review = add_months(at, RECURRING_MONTHS[LVU14_REVIEW])
        opened.append(Deadline(LVU14_REVIEW, review, review - week, escalates=False, owed_by_initiator=True))
    return opened


def _special_text(timer: Timer, when: str, owed_by: str | None) -> str | None:
    """What a reminder or escalation of an LVU 14 § review or a guardian-access acknowledgement says."""
    if timer.name == LVU14_REVIEW and timer.event is EventCode.DEADLINE_REMINDER:
        return (
            f"LVU 14 §: consider by {when} whether the decisions under 14 § second paragraph (contact "
            "restrictions, hidden residence) are still needed; due every three months while the LVU "
            "placement lasts"
        )
    if timer.name == HEALTH_EXAM_REQUEST:
        return (
            "lag (2017:209): no health-examination request (health-exam-requested) has reached sambus for "
            f"the child placed in this process, due by {when}: notify health care and dental care of the "
            "region, unless an equivalent examination has been done"
        )
    if timer.name == GUARDIAN_ACCESS_ACK:
        if timer.event is EventCode.DEADLINE_REMINDER:
            return (
                f"acknowledge the guardian-access block (hidden residence, LVU 14 §) by {when}: answer the "
                "block-guardian-access Task accepted or completed"
            )
        return (
            f"{owed_by or timer.responsible} has not acknowledged the guardian-access block (hidden "
            f"residence, LVU 14 §) due {when}: make sure the guardians cannot see the record"
        )
    return None


UNNAMED_PROTECTED = (
    "the child is not named here: its identity is protected; the Tasks named identify the child"
)
"""What a reminder or escalation about a child with a protected identity says instead of naming it."""

ProtectionsOf = Callable[[str, dt.datetime], frozenset[Protection]]
"""The registry's protections of a child (its pseudonym) at a moment."""

UNNAMED_CHILD = (
    "the child is not named here: this deadline kept no readable identifier (opened before reminders named "
    "the child, or without SAMBUS_DLQ_ENCRYPTION_KEYS); the Tasks named identify the child"
)
"""What a reminder or escalation without the child's Patient says about it."""


def _patient(timer: Timer) -> tuple[str, str] | None:
    """The FHIR ``(system, value)`` of the child a timer is about, if its deadline kept it."""
    return None if timer.identity is None else child_identifier(timer.identity)


class DeadlineRules:
    """Which deadlines a message opens and which it closes."""

    def __init__(
        self,
        *,
        guardian_access_ack: dt.timedelta = dt.timedelta(hours=4),
        health_exam_request: dt.timedelta = dt.timedelta(days=HEALTH_EXAM_REQUEST_DAYS),
    ) -> None:
        """The terms of the deadlines a county sets.

        Care units acknowledge a guardian-access block within ``guardian_access_ack``; the placing social
        services sends a placed child's 2017:209 request within ``health_exam_request``.
        """
        self._guardian_access_ack = guardian_access_ack
        self._health_exam_request = health_exam_request

    @property
    def health_exam_request(self) -> dt.timedelta:
        """The term of a placed child's 2017:209 request; a request this long before the placement counts."""
        return self._health_exam_request

    def opened_by(
        self, event: EventCode, *, at: dt.datetime, bundle: Mapping[str, Any], birth: dt.date | None
    ) -> list[Deadline]:
        """The deadlines ``event`` (sent at ``at``) opens."""
        at = _utc(at)
        week = dt.timedelta(weeks=1)
        ack = self._guardian_access_ack
        urgent_due = _follow_up_date(bundle) or at + dt.timedelta(hours=URGENT_RESPONSE_HOURS)
        follow_up = _follow_up_date(bundle) or at + dt.timedelta(days=182)
        opens: dict[EventCode, Callable[[], list[Deadline]]] = {
            EventCode.LVU32_EXAM_ORDERED: lambda: [Deadline("lvu32-exam", at + 4 * week, at + 3 * week)],
            EventCode.HIDDEN_RESIDENCE_DECIDED: lambda: [
                Deadline(GUARDIAN_ACCESS_ACK, at + ack, at + ack / 2, per_party=True)
            ],
            EventCode.PLACEMENT_STARTED: lambda: _placement(
                at, bundle, exam_request=self._health_exam_request
            ),
            EventCode.SUICIDE_RISK_REPORTED: lambda: [
                Deadline(URGENT_RESPONSE, urgent_due, at + (urgent_due - at) / 2, per_party=True)
            ],
            EventCode.SIP_PLAN_ESTABLISHED: lambda: [
                Deadline("sip-follow-up", follow_up, follow_up - 2 * week)
            ],
            EventCode.SIP_INITIATED: lambda: _adulthood(at, birth) if birth is not None else [],
        }
        return opens[event]() if event in opens else []

    def closed_for_child_by(self, event: EventCode) -> tuple[str, ...]:
        """The deadlines ``event`` fulfils in any process about the same child.

        A SIP started after an acute placement is its joint planning, a 2017:209 request is the placement's
        examination request, and the end of a placement ends its three-monthly LVU 14 § reviews (and the wait
        for its request): agency systems cannot name the placement's process, so the child ties them together.
        """
        return {
            EventCode.SIP_INITIATED: (JOINT_PLANNING,),
            EventCode.PLACEMENT_ENDED: (LVU14_REVIEW, HEALTH_EXAM_REQUEST),
            EventCode.HANDOVER_MEETING_CALLED: (ADULTHOOD,),
            EventCode.HEALTH_EXAM_REQUESTED: (HEALTH_EXAM_REQUEST,),
        }.get(event, ())

    def closed_by_answer(self, event: EventCode) -> tuple[str, ...]:
        """The per-party deadlines an answer (``event``) closes for the unit that answers."""
        return (URGENT_RESPONSE,) if event in _ACKNOWLEDGEMENTS else ()

    def closed_by(self, event: EventCode) -> tuple[str, ...]:
        """The deadlines ``event`` fulfils (or ends)."""
        return {
            EventCode.LVU32_EXAM_COMPLETED: ("lvu32-exam",),
            EventCode.SIP_INITIATED: (JOINT_PLANNING,),
            EventCode.SIP_FOLLOWED_UP: ("sip-follow-up",),
            EventCode.SIP_CLOSED: ("sip-follow-up", ADULTHOOD),
            EventCode.PLACEMENT_ENDED: (JOINT_PLANNING,),
        }.get(event, ())


@dataclass(frozen=True)
class Timer:
    """A reminder or escalation that is due."""

    deadline_id: str
    kind: str
    process_id: str
    name: str
    child: str
    to: str | None
    due_at: dt.datetime
    event: EventCode
    responsible: str | None = None
    """The unit that owes the deadline (the escalation of a per-party deadline names it)."""
    identity: str | None = None
    """What sambus knows the child by (``identifiers.child_key``), opened from the table; ``None`` when the
    deadline kept none (opened without the keys, or before v0011) or it cannot be opened."""

    @property
    def fired_key(self) -> str:
        """The key of this timer on the fired-timers topic (a recurring one's names its period's due date)."""
        period = f"@{self.due_at:%Y-%m-%d}" if self.name in RECURRING_MONTHS else ""
        return f"{self.deadline_id}{period}|{self.kind}"


class Deadlines:
    """The deadline table."""

    def __init__(self, engine: sa.Engine, *, cipher: FieldCipher | None = None) -> None:
        """Keep deadlines in ``engine``'s database; the child's identifier sealed with ``cipher``.

        Without a cipher no identifier is kept, and reminders go out without the child's Patient.
        """
        self._engine = engine
        self._cipher = cipher

    @staticmethod
    def _aad(deadline_id: str, child: str) -> bytes:
        """What a sealed identifier is bound to: its deadline and the child's pseudonym."""
        return f"sambus-deadline|{deadline_id}|{child}".encode()

    def _seal(self, identity: str | None, *, deadline_id: str, child: str) -> tuple[str | None, str | None]:
        if identity is None or self._cipher is None:
            return None, None
        return self._cipher.encrypt(identity, aad=self._aad(deadline_id, child))

    def _open(self, row: Any) -> str | None:  # noqa: ANN401 - a SQLAlchemy row
        """The child's identifier a deadline row keeps, or ``None`` (none kept, or it cannot be opened)."""
        if row.child_identity is None or row.child_identity_key_id is None:
            return None
        if self._cipher is None:
            logger.warning("deadline %s: no key to open the child's identifier", row.deadline_id)
            return None
        try:
            return self._cipher.decrypt(
                row.child_identity_key_id, row.child_identity, aad=self._aad(row.deadline_id, row.child)
            )
        except LedgerKeyError:
            logger.warning("deadline %s: the child's identifier does not open with the keys", row.deadline_id)
            return None

    def open(
        self,
        conn: sa.Connection,
        *,
        process_id: str,
        deadline: Deadline,
        child: str,
        responsible: str | None,
        escalate_to: str | None,
        identity: str | None = None,
        opened: set[str] | None = None,
    ) -> None:
        """Open a deadline of a process (once: opening it again changes nothing).

        ``identity`` is what sambus knows the child by (``identifiers.child_key``), kept sealed so that the
        reminders can name the child; without a cipher it is not kept.

        A per-party deadline is one per ``responsible`` unit: its id names the unit too.

        ``opened``, for a process that began with the message in hand: the ids of the deadlines opened for
        it so far (this adds to it). No other deadline of it can be in the database, which is not asked.
        """
        deadline_id = f"{process_id}:{deadline.name}"
        if deadline.per_party:
            deadline_id = f"{deadline_id}:{responsible}"
        if opened is not None:
            if deadline_id in opened:
                return
            opened.add(deadline_id)
        elif conn.execute(_IS_OPEN, {"p_deadline_id": deadline_id}).first():
            return
        key_id, sealed = self._seal(identity, deadline_id=deadline_id, child=child)
        insert(
            conn,
            _OPEN,
            {
                "deadline_id": deadline_id,
                "process_id": process_id,
                "name": deadline.name,
                "child": child,
                "child_identity_key_id": key_id,
                "child_identity": sealed,
                "responsible": responsible,
                "escalate_to": escalate_to,
                "due_at": deadline.due_at,
                "remind_at": deadline.remind_at,
                "reminder_event": str(deadline.reminder_event),
                "escalates": deadline.escalates,
            },
        )

    def close(
        self,
        conn: sa.Connection,
        *,
        process_id: str,
        names: Sequence[str],
        at: dt.datetime,
        responsible: str | None = None,
    ) -> None:
        """Close a process's open deadlines named ``names`` (with ``responsible``, only that unit's)."""
        if not names:
            return
        values = {"p_process_id": process_id, "p_names": list(names), "p_closed_at": at}
        if responsible is None:
            conn.execute(_CLOSE, values)
        else:
            conn.execute(_CLOSE_RESPONSIBLE, {**values, "p_responsible": responsible})

    def close_for_child(
        self, conn: sa.Connection, *, child: str, names: Sequence[str], at: dt.datetime
    ) -> None:
        """Close the open deadlines named ``names`` of every process about ``child`` (its pseudonym)."""
        if names:
            conn.execute(_CLOSE_FOR_CHILD, {"p_child": child, "p_names": list(names), "p_closed_at": at})

    def open_for_child(self, conn: sa.Connection, *, child: str, name: str) -> bool:
        """Whether a deadline named ``name`` of any process about ``child`` (its pseudonym) is still open."""
        return (
            conn.execute(
                sa.select(deadlines.c.deadline_id).where(
                    deadlines.c.child == child, deadlines.c.name == name, deadlines.c.closed_at.is_(None)
                )
            ).first()
            is not None
        )

    def due(self, now: dt.datetime) -> list[Timer]:
        """Reminders and escalations due at ``now`` and not yet fired."""
        query = sa.select(deadlines).where(
            deadlines.c.closed_at.is_(None),
            sa.or_(
                sa.and_(deadlines.c.remind_at <= now, deadlines.c.reminded_at.is_(None)),
                sa.and_(deadlines.c.escalates, deadlines.c.due_at <= now, deadlines.c.escalated_at.is_(None)),
            ),
        )
        timers = []
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                due_at = _utc(row.due_at)
                if row.reminded_at is None and _utc(row.remind_at) <= now:
                    event = EventCode(row.reminder_event)
                    timers.append(
                        Timer(
                            row.deadline_id,
                            REMINDER,
                            row.process_id,
                            row.name,
                            row.child,
                            row.responsible,
                            due_at,
                            event,
                            row.responsible,
                            self._open(row),
                        )
                    )
                if row.escalates and row.escalated_at is None and due_at <= now:
                    timers.append(
                        Timer(
                            row.deadline_id,
                            ESCALATION,
                            row.process_id,
                            row.name,
                            row.child,
                            row.escalate_to,
                            due_at,
                            EventCode.DEADLINE_ESCALATION,
                            row.responsible,
                            self._open(row),
                        )
                    )
        return timers

    def overdue(self, now: dt.datetime) -> list[OverdueDeadline]:
        """Open deadlines whose time has passed, oldest first: for ``sambus queues`` and the operations page.

        A case is named by its process id only, never by the child.
        """
        query = (
            sa.select(deadlines.c.process_id, deadlines.c.name, deadlines.c.due_at, deadlines.c.escalated_at)
            .where(deadlines.c.closed_at.is_(None), deadlines.c.due_at <= now)
            .order_by(deadlines.c.due_at)
        )
        with map_errors("read the deadline table"), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            OverdueDeadline(
                process=row.name,
                step="escalated" if row.escalated_at is not None else "escalation pending",
                case=row.process_id,
                due=_utc(row.due_at),
            )
            for row in rows
        ]

    def mark_fired(self, keys: Sequence[str], at: dt.datetime) -> None:
        """Mark timers (fired-topic keys) as fired; a recurring reminder moves its deadline a period on."""
        with self._engine.begin() as conn:
            for key in keys:
                deadline_id, _, kind = key.rpartition("|")
                if (period := _PERIOD.fullmatch(deadline_id)) is not None:
                    self._next_period(conn, period["deadline"], due=period["due"])
                    continue
                column = deadlines.c.reminded_at if kind == REMINDER else deadlines.c.escalated_at
                conn.execute(
                    deadlines.update()
                    .where(deadlines.c.deadline_id == deadline_id, column.is_(None))
                    .values({column.name: at})
                )

    @staticmethod
    def _next_period(conn: sa.Connection, deadline_id: str, *, due: str) -> None:
        """Move a recurring deadline whose reminder for the period due on ``due`` fired to its next period.

        Only while the deadline is still in that period, so reading the fired-timers topic again at a
        restart moves nothing twice.
        """
        row = conn.execute(
            sa.select(deadlines.c.name, deadlines.c.due_at, deadlines.c.remind_at).where(
                deadlines.c.deadline_id == deadline_id
            )
        ).first()
        if row is None or row.name not in RECURRING_MONTHS or f"{_utc(row.due_at):%Y-%m-%d}" != due:
            return
        months = RECURRING_MONTHS[row.name]
        conn.execute(
            deadlines.update()
            .where(deadlines.c.deadline_id == deadline_id)
            .values(
                due_at=add_months(_utc(row.due_at), months),
                remind_at=add_months(_utc(row.remind_at), months),
                reminded_at=None,
            )
        )

    def claim_owner(self, owner: str, *, now: dt.datetime, lease: dt.timedelta) -> bool:
        """Claim or renew the right to fire timers until ``now + lease``; whether ``owner`` holds it.

        The claim is one conditional update: it changes the row only when ``owner`` holds it already or
        the holder's claim has lapsed, so of several instances claiming at once exactly one succeeds.

        Raises:
            StoreUnavailableError: the database cannot be reached.
        """
        try:
            with self._engine.begin() as conn:
                claimed = conn.execute(
                    timer_owner.update()
                    .where(
                        timer_owner.c.name == TIMERS,
                        sa.or_(timer_owner.c.owner == owner, timer_owner.c.expires_at < now),
                    )
                    .values(owner=owner, expires_at=now + lease)
                ).rowcount
            if claimed == 1:
                return True
            with self._engine.begin() as conn:
                if conn.execute(sa.select(timer_owner.c.name).where(timer_owner.c.name == TIMERS)).first():
                    return False
                conn.execute(timer_owner.insert().values(name=TIMERS, owner=owner, expires_at=now + lease))
        except IntegrityError:
            return False  # another instance inserted the row first: it is the owner
        except SQLAlchemyError as exc:
            raise StoreUnavailableError("cannot claim the deadline timers") from exc
        return True

    def release_owner(self, owner: str) -> None:
        """Let another instance take the timers at once (a clean shutdown)."""
        with contextlib.suppress(SQLAlchemyError), self._engine.begin() as conn:
            conn.execute(
                timer_owner.update()
                .where(timer_owner.c.name == TIMERS, timer_owner.c.owner == owner)
                .values(expires_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
            )

    def state(self, deadline_id: str) -> Mapping[str, Any] | None:
        """A deadline row as a mapping (for tools and tests)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(deadlines).where(deadlines.c.deadline_id == deadline_id)).first()
        return None if row is None else dict(row._mapping)  # noqa: SLF001 - SQLAlchemy's public row mapping


class TasksOf(Protocol):
    """The ids of the Tasks a party (directory id) was given or sent in a process, oldest first."""

    def __call__(self, process_id: str, party: str) -> list[str]:
        """The Task ids."""
        ...


def _no_tasks(process_id: str, party: str) -> list[str]:
    del process_id, party
    return []


class DeadlineTimers:
    """Fires due reminders and escalations as FHIR notices, each exactly once, from one instance at a time."""

    def __init__(
        self,
        *,
        deadlines: Deadlines,
        directory: RoutingDirectory,
        topics: Topics,
        bootstrap_servers: Broker,
        transactional_id: str,
        clock: Clock,
        interval_s: float = 5.0,
        tasks: TasksOf | None = None,
        owner: str = "0",
        lease_s: float | None = None,
        wall_clock: Clock | None = None,
        protections: ProtectionsOf | None = None,
    ) -> None:
        """Scan ``deadlines`` every ``interval_s`` seconds by ``clock``; connects when it becomes the owner.

        ``tasks`` names the Tasks a party holds in a process, which each notice refers to. ``protections``
        (the consent registry's) keeps a child with a protected identity out of its notices: they name the
        Tasks only, never its Patient (fails closed: without ``protections`` no notice names a child).
        ``transactional_id`` must be the same for every instance (it fences a replaced owner); ``owner``
        names this instance. A claim lasts ``lease_s`` (default: three scans, at least 15 s) by
        ``wall_clock``, which must agree between hosts to well within the lease.
        """
        self._tasks_of: TasksOf = tasks or _no_tasks
        self._protections = protections
        self._deadlines = deadlines
        self._directory = directory
        self._topics = topics
        self._bootstrap_servers = bootstrap_servers
        self._transactional_id = transactional_id
        self._clock = clock
        self._interval_s = interval_s
        self._owner = owner
        self._lease = dt.timedelta(seconds=lease_s if lease_s is not None else max(15.0, 3 * interval_s))
        self._wall_clock = wall_clock or (lambda: dt.datetime.now(dt.UTC))
        self._producer: AIOKafkaProducer | None = None

    @property
    def is_owner(self) -> bool:
        """Whether this instance fired (or may fire) timers at its last scan."""
        return self._producer is not None

    async def start(self) -> None:
        """Claim the timers if no other instance holds them (see :meth:`tick`)."""
        await self._claim()

    async def stop(self) -> None:
        """Disconnect and give the timers up to another instance."""
        await self._drop()
        await asyncio.to_thread(self._deadlines.release_owner, self._owner)

    async def run(self, stop: asyncio.Event) -> None:
        """Fire what is due every interval until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.tick()
            except (KafkaError, SambusError) as exc:  # the broker or the database is away: scan again later
                logger.warning("the deadline timers skipped a scan (%s)", type(exc).__name__)
                await self._drop()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
            except TimeoutError:
                continue

    async def _claim(self) -> bool:
        """Renew or take the timers; on taking them, fence the last owner and catch up with what it fired."""
        claimed = await asyncio.to_thread(  # a write: it may wait for the lock, not on the event loop
            self._deadlines.claim_owner, self._owner, now=self._wall_clock(), lease=self._lease
        )
        if not claimed:
            if self._producer is not None:
                logger.warning("instance %s no longer fires deadline timers: another took them", self._owner)
            await self._drop()
            return False
        if self._producer is not None:
            return True
        producer = AIOKafkaProducer(
            **client_kwargs(self._bootstrap_servers),
            transactional_id=self._transactional_id,
            enable_idempotence=True,
            acks="all",
        )
        try:
            await producer.start()  # fences the last owner's producer; its open transaction is aborted
            fired = [
                (r.key or b"").decode()
                for r in await read_topic(self._bootstrap_servers, self._topics.timers_fired)
            ]
            await asyncio.to_thread(self._deadlines.mark_fired, fired, self._clock())
        except BaseException as exc:  # the broker or the database failed: nothing of this claim stays open
            with contextlib.suppress(KafkaError):
                await producer.stop()
            if isinstance(exc, KafkaError):
                raise BrokerUnavailableError(f"the deadline timers cannot connect: {exc}") from exc
            raise
        self._producer = producer
        logger.info("instance %s fires the deadline timers", self._owner)
        return True

    async def _drop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError):
                await producer.stop()

    async def tick(self) -> list[Timer]:
        """Fire every due timer in one transaction, if this instance owns the timers; returns those fired."""
        if not await self._claim() or self._producer is None:
            return []
        now = self._clock()
        timers = await asyncio.to_thread(self._deadlines.due, now)
        if not timers:
            return []
        try:
            await self._fire(self._producer, timers, now)
        except (
            ProducerFenced,
            IllegalOperation,
        ):  # fenced; mid-transaction aiokafka says "not in transaction"
            logger.warning("instance %s was replaced as the deadline timers' owner", self._owner)
            await self._drop()
            return []
        except KafkaError:
            await self._drop()  # a new producer (and a fresh look at the fired timers) next scan
            raise
        await asyncio.to_thread(self._deadlines.mark_fired, [t.fired_key for t in timers], now)
        logger.info("fired %d deadline timer(s)", len(timers))
        return timers

    async def _fire(self, producer: AIOKafkaProducer, timers: list[Timer], now: dt.datetime) -> None:
        """Send ``timers``' notices and their fired marks in one transaction."""
        sends: list[asyncio.Future[object]] = []
        try:
            async with producer.transaction():
                for timer in timers:
                    outs = [
                        *self._notices(timer, now),
                        Outgoing(
                            self._topics.timers_fired, now.isoformat().encode(), timer.fired_key.encode()
                        ),
                    ]
                    for out in outs:
                        sends.append(  # noqa: PERF401 - kept if a later send raises
                            await producer.send(out.topic, out.value, key=out.key, headers=list(out.headers))
                        )
        except BaseException:
            forget_failures(sends)  # the transaction failed as a whole, and so did each of its sends
            raise

    def _protected(self, child: str, now: dt.datetime) -> bool:
        """Whether the child's identity is protected now, or may be (no registry to ask)."""
        if self._protections is None:
            return True
        return bool(self._protections(child, now) & IDENTITY_PROTECTIONS)

    def _notices(self, timer: Timer, now: dt.datetime) -> list[Outgoing]:
        if timer.to is None:
            logger.warning("deadline %s has nobody to tell", timer.deadline_id)
            return []
        try:
            recipient = self._directory.by_id(timer.to)
        except RoutingError:
            logger.warning("deadline %s: %s is no longer in the directory", timer.deadline_id, timer.to)
            return []
        # A unit's own deadline (urgent suicide risk, a guardian-access acknowledgement: due within hours)
        # is told to the minute, and its escalation names that unit and its Task.
        per_party = timer.deadline_id != f"{timer.process_id}:{timer.name}"
        when = f"{timer.due_at:%Y-%m-%d %H:%M} UTC" if per_party else f"{timer.due_at:%Y-%m-%d}"
        owed_by = timer.responsible if per_party and timer.responsible != recipient.id else None
        text = (
            _special_text(timer, when, owed_by)
            or {
                EventCode.DEADLINE_REMINDER: f"{timer.name} is due on {when}",
                EventCode.DEADLINE_ESCALATION: f"{timer.name}"
                + (f" of {owed_by}" if owed_by else "")
                + f" was due on {when} and has not been done",
                EventCode.TRANSITION_TO_ADULTHOOD: f"the child turns 18 on {when}: call the hand-over "
                "meeting to adult care (handover-meeting-called) before then",
            }[timer.event]
        )
        patient = _patient(timer)
        if patient is None:
            text += f"; {UNNAMED_CHILD}"
        elif self._protected(timer.child, now):
            patient = None
            text += f"; {UNNAMED_PROTECTED}"
        data = notice(
            event=timer.event,
            to=addressee(recipient),
            about={"system": PROCESS_ID_SYSTEM, "value": timer.process_id},
            text=text,
            at=now,
            key=timer.fired_key,
            tasks=self._tasks_of(timer.process_id, owed_by or recipient.id),
            patient=patient,
        )
        headers = (
            (Header.EVENT_CODE, str(timer.event).encode("ascii")),
            (Header.MESSAGE_ID, str(data["id"]).encode("ascii")),
            (Header.CORRELATION_ID, timer.process_id.encode("utf-8")),
            (Header.SCHEMA_VERSION, SCHEMA_VERSION.encode("ascii")),
            (Header.RECIPIENT, recipient.id.encode("ascii")),
        )
        value = dump_json(data)
        return [
            Outgoing(
                self._topics.deliver(recipient.topic_suffix), value, timer.child.encode("ascii"), headers
            )
        ]
