"""Process state: each process instance as its messages and the recipients' Task answers move it along.

Processes: SIP, 2017:209 examination, LVU § 32 exam, placement, and every other request (investigation,
suicide-risk assessment, referrals, reports of concern, hidden residence). State is kept in the database, so
it survives a restart.

Each Task a request gives an organisation is kept (``process_tasks``: the Task id, its owner and its
requester, as directory ids resolved by the routing rules): the delivery stage sends an answer back to the
requester of the Task the answering unit was given (:meth:`ProcessStore.askers`), never to whom the answer
names.

A process is named by its correlation id (``sambus-correlation-id``, also ``Task.groupIdentifier``). The
tracker reads ``sambus.intents`` in a consumer group of its own; each message changes state once: the ids of
messages already applied are stored with the state, in the same database transaction.

In its stage the tracker writes a batch of messages in a few database transactions
(:meth:`ProcessTracker.prepare`, in a worker thread), each asking once which of its messages were applied:
a message that fails rolls back only its own changes and is dead-lettered, the others commit before the
batch's Kafka transaction does (a batch read again skips them by message id). A transaction is written
without a savepoint per message at first; when a message of it fails, it is rolled back and written again
with one per message. Not one commit per message: on SQLite each commit waits for the disk; not one per
batch either: a transaction holds the write lock the ledger waits for, so each ends after about
:attr:`ProcessTracker.LOCK_BUDGET_S` of work.

The same transaction keeps the process's anonymous follow-up fact (``followup_facts``, read by
``sambus stats``) up to date: its kind, the child's sex and age band (derived from the personnummer in the
first message's Patient, which is then dropped; for a child without one from its Patient's ``birthDate`` and
``gender``, the sex ``not-stated`` when no gender is given), the county part of the requesting (else owning)
organisation, and the dates of its steps. No personnummer, pseudonym or name is stored there.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from sambus.contracts.errors import InvalidIntentError, RoutingError, SambusError, map_errors
from sambus.contracts.events.sip import ClosureReason
from sambus.contracts.fhir import ROUTING_ADDRESS_SYSTEM, EventCode
from sambus.contracts.fhir.assessment import secrecy_assessment
from sambus.contracts.fhir.codes import SIP_CLOSURE_SYSTEM, STATEMENT_SYSTEM
from sambus.contracts.fhir.task import task_id_for
from sambus.contracts.identifiers import (
    PERSONNUMMER_SYSTEM,
    SAMORDNINGSNUMMER_SYSTEM,
    birth_date,
    child_key,
)
from sambus.contracts.topics import Header, RecordHeaders
from sambus.router.kafka.records import Outgoing
from sambus.router.routing.asked import EQUIVALENT_EXAM_ACCEPTED, EQUIVALENT_EXAM_REFUSED
from sambus.router.routing.convene import convene_task_id
from sambus.router.routing.directory import Recipient
from sambus.router.routing.projection import tasks as focal_tasks
from sambus.router.routing.rules import ANSWER_EVENTS, Route, RoutingRules, child_municipality
from sambus.router.stages.deadlines import (
    GUARDIAN_ACCESS_ACK,
    HEALTH_EXAM_REQUEST,
    JOINT_PLANNING,
    DeadlineRules,
    Deadlines,
)
from sambus.router.stages.deadlines import deadlines as deadline_rows
from sambus.router.stages.delivery import header, read_intent
from sambus.router.stages.id_reads import ids_among, ids_in, rows_among
from sambus.router.stages.write_behind import WriteBehind, insert
from sambus.router.stats.indicators import (
    SEX_NOT_STATED,
    UNKNOWN_COUNTY_PART,
    ProcessKind,
    age_band,
    age_on,
    followup_facts,
    sex_of,
)

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

processes = sa.Table(
    "processes",
    metadata,
    sa.Column("process_id", sa.String(100), primary_key=True, comment="the correlation id"),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("child", sa.String(64), nullable=False, index=True, comment="keyed pseudonym"),
    sa.Column("state", sa.String(40), nullable=False),
    sa.Column("initiator", sa.String(100), nullable=True, comment="directory id of the requester"),
    sa.Column("parties", sa.Text, nullable=False, comment="JSON: recipient id -> its answer"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "request_assessment",
        sa.String(60),
        nullable=True,
        comment="the provision a professional assessed for the request (secrecyAssessment), if any",
    ),
)

asked_tasks = sa.Table(
    "process_tasks",
    metadata,
    sa.Column("process_id", sa.String(100), primary_key=True),
    sa.Column("task_id", sa.String(100), primary_key=True),
    sa.Column("owner", sa.String(100), primary_key=True, comment="directory id of the organisation asked"),
    sa.Column("requester", sa.String(100), nullable=False, comment="directory id of the one that asked"),
)

care_contacts = sa.Table(
    "care_contacts",
    metadata,
    sa.Column("child", sa.String(64), primary_key=True, comment="keyed pseudonym"),
    sa.Column("unit", sa.String(100), primary_key=True, comment="directory id of the care unit"),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False, comment="when it began or ended"),
)

applied = sa.Table(
    "process_messages",
    metadata,
    sa.Column("message_id", sa.String(100), primary_key=True),
    sa.Column("process_id", sa.String(100), nullable=False, index=True),
)

_KIND_OF_EVENT = {
    EventCode.SIP_INITIATED: "sip",
    EventCode.HEALTH_EXAM_REQUESTED: "health-exam-2017-209",
    EventCode.LVU32_EXAM_ORDERED: "lvu32-exam",
    EventCode.PLACEMENT_STARTED: "placement",
    EventCode.PLACEMENT_CHANGED: "placement-changed",
    EventCode.PLACEMENT_ENDED: "placement-ended",
    EventCode.HANDOVER_MEETING_CALLED: "handover-meeting",
    EventCode.SUICIDE_RISK_ASSESSMENT_REQUESTED: "suicide-risk-assessment",
    EventCode.SUICIDE_RISK_REPORTED: "suicide-risk",
    EventCode.INVESTIGATION_INFO_REQUESTED: "investigation",
    EventCode.CONSULTATION_REQUESTED: "consultation",
    EventCode.KONTAKTCENTER_REFERRAL: "kontaktcenter-referral",
    EventCode.NEWLY_ARRIVED_HEALTH_REFERRAL: "newly-arrived-exam",
    EventCode.CONCERN_REPORTED: "concern",
    EventCode.HIDDEN_RESIDENCE_DECIDED: "hidden-residence",
    EventCode.HIDDEN_RESIDENCE_LIFTED: "hidden-residence-lifted",
}
"""Events that start a process, and its kind."""

_KIND_OF_EQUIVALENT_EXAM = "equivalent-health-exam"
"""An ``equivalent-health-exam-exists`` message's own process: whether it closed a waiting reminder."""

_EVENT_OF_KIND = {kind: event for event, kind in _KIND_OF_EVENT.items()}
"""The request each kind of process starts with (its answers go on that request's basis)."""

_FACT_KIND = {
    EventCode.SIP_INITIATED: ProcessKind.SIP,
    EventCode.HEALTH_EXAM_REQUESTED: ProcessKind.EXAM_2017_209,
    EventCode.LVU32_EXAM_ORDERED: ProcessKind.LVU_32,
    EventCode.PLACEMENT_STARTED: ProcessKind.ACUTE_PLACEMENT,
}
"""Events that start a followed-up process, and its kind (a placement only when acute)."""

_STEP_DATE = {
    EventCode.SIP_MEETING_HELD: (ProcessKind.SIP, "held_on"),
    EventCode.SIP_PLAN_ESTABLISHED: (ProcessKind.SIP, "plan_on"),
    EventCode.LVU32_EXAM_COMPLETED: (ProcessKind.LVU_32, "completed_on"),
    EventCode.SIP_INITIATED: (ProcessKind.ACUTE_PLACEMENT, "completed_on"),
}
"""Steps dated in a process's fact: the first message of the step dates it. A SIP initiated under an acute
placement's process id is its joint planning (as the joint-planning deadline counts it)."""

_STATE_AFTER = {
    EventCode.SIP_INITIATED: "invited",
    EventCode.SIP_MEETING_SCHEDULED: "meeting-scheduled",
    EventCode.SIP_MEETING_HELD: "meeting-held",
    EventCode.SIP_PLAN_ESTABLISHED: "plan-established",
    EventCode.SIP_FOLLOWED_UP: "followed-up",
    EventCode.SIP_CLOSED: "closed",
    EventCode.HEALTH_EXAM_REQUESTED: "requested",
    EventCode.LVU32_EXAM_ORDERED: "ordered",
    EventCode.LVU32_EXAM_COMPLETED: "completed",
    EventCode.PLACEMENT_STARTED: "placed",
    EventCode.PLACEMENT_ENDED: "ended",
    EventCode.HANDOVER_MEETING_CALLED: "meeting-called",
    EventCode.SUICIDE_RISK_REPORTED: "alerted",
}

_ANSWERS = {
    "accepted": "accepted",
    "rejected": "declined",
    "completed": "completed",
    "in-progress": "accepted",
}
"""``Task.status`` in an answer -> what the party's answer is recorded as."""


# The statements a message is applied with, built once: building one per message (columns compared,
# values bound, its cache key made) cost more than SQLite took to run it.
_IS_APPLIED = sa.select(applied.c.message_id).where(applied.c.message_id == sa.bindparam("message_id"))
_ARE_APPLIED = ids_in(applied.c.message_id)
_MARK_APPLIED = applied.insert()
_PROCESS = sa.select(processes).where(processes.c.process_id == sa.bindparam("p_process_id"))
_PROCESSES_AMONG = sa.select(processes).where(
    processes.c.process_id.in_(sa.bindparam("p_ids", expanding=True))
)
_NEW_PROCESS = processes.insert()
_MOVE_PROCESS = (
    processes.update()
    .where(processes.c.process_id == sa.bindparam("p_process_id"))
    .values(
        state=sa.bindparam("p_state"),
        parties=sa.bindparam("p_parties"),
        updated_at=sa.bindparam("p_updated_at"),
    )
)
_NEW_FACT = followup_facts.insert()
_KEPT_TASKS = sa.select(asked_tasks.c.task_id, asked_tasks.c.owner).where(
    asked_tasks.c.process_id == sa.bindparam("p_process_id"),
    asked_tasks.c.task_id.in_(sa.bindparam("p_task_ids", expanding=True)),
)
_KEEP_TASKS = asked_tasks.insert()
# What the delivery stage and the timers ask of the process state (built once too).
_TASKS_OF = (
    sa.select(asked_tasks.c.task_id)
    .where(
        asked_tasks.c.process_id == sa.bindparam("p_process_id"),
        sa.or_(
            asked_tasks.c.owner == sa.bindparam("p_party"), asked_tasks.c.requester == sa.bindparam("p_party")
        ),
    )
    .order_by(asked_tasks.c.task_id)
)
_CARE_CONTACT = sa.select(care_contacts.c.active).where(
    care_contacts.c.child == sa.bindparam("p_child"), care_contacts.c.unit == sa.bindparam("p_unit")
)
_REQUEST_OF = sa.select(processes.c.kind, processes.c.request_assessment).where(
    processes.c.process_id == sa.bindparam("p_process_id")
)
_IS_PROCESS = sa.select(processes.c.process_id).where(processes.c.process_id == sa.bindparam("p_process_id"))
_ASKERS = sa.select(asked_tasks.c.owner, asked_tasks.c.requester).where(
    asked_tasks.c.process_id == sa.bindparam("p_process_id")
)
_ASKERS_OF_TASK = _ASKERS.where(asked_tasks.c.task_id == sa.bindparam("p_task_id"))


@dataclass(frozen=True)
class Process:
    """A process instance as the database holds it."""

    process_id: str
    kind: str
    child: str
    state: str
    initiator: str | None
    parties: dict[str, str]


def _focal_tasks(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries = bundle.get("entry", [])
    focus = (
        {ref.get("reference") for ref in entries[0].get("resource", {}).get("focus", [])}
        if entries
        else set()
    )
    return [
        e["resource"]
        for e in entries[1:]
        if e.get("fullUrl") in focus and e.get("resource", {}).get("resourceType") == "Task"
    ]


def _child_number(bundle: Mapping[str, Any], *systems: str) -> str | None:
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") != "Patient":
            continue
        for identifier in resource.get("identifier", []):
            if identifier.get("system") in systems and identifier.get("value"):
                return str(identifier["value"])
    return None


def _child_key(bundle: Mapping[str, Any]) -> str | None:
    """What sambus knows the message's child by (``identifiers.child_key`` of its Patient's identifier)."""
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") != "Patient":
            continue
        for identifier in resource.get("identifier", []):
            with contextlib.suppress(ValueError):
                return child_key(str(identifier.get("system", "")), str(identifier.get("value", "")))
    return None


def _birth_date(bundle: Mapping[str, Any]) -> dt.date | None:
    """The child's birth date: from its personnummer, else ``Patient.birthDate`` (LMA number, reservnr)."""
    number = _child_number(bundle, PERSONNUMMER_SYSTEM)
    if number is None:
        sent = next(
            (
                entry["resource"].get("birthDate")
                for entry in bundle.get("entry", [])
                if entry.get("resource", {}).get("resourceType") == "Patient"
            ),
            None,
        )
        try:
            return dt.date.fromisoformat(str(sent)) if sent is not None else None
        except ValueError:
            return None
    try:
        return birth_date(number)
    except ValueError:
        return None


_SEX_OF_GENDER = {"female": "girl", "male": "boy", "other": "other"}
"""``Patient.gender`` (FHIR administrative gender) -> the follow-up's sex; ``unknown`` or none: not stated."""


def _sex_and_age_band(bundle: Mapping[str, Any], on: dt.date) -> tuple[str, str] | None:
    """The child's sex and age band on ``on`` (neither is kept beyond the band), or ``None``.

    From its personnummer or samordningsnummer; a child named otherwise (LMA number, reservnummer) by its
    Patient's ``birthDate`` and ``gender``: without a birth date there is no age band (``None``), without a
    gender the sex is ``not-stated``. Nothing is guessed.
    """
    number = _child_number(bundle, PERSONNUMMER_SYSTEM, SAMORDNINGSNUMMER_SYSTEM)
    if number is not None:
        try:
            return sex_of(number), age_band(age_on(birth_date(number), on))
        except ValueError:
            return None  # not a valid number, or a person no agreement follows up
    patient = next(
        (
            entry["resource"]
            for entry in bundle.get("entry", [])
            if entry.get("resource", {}).get("resourceType") == "Patient"
        ),
        None,
    )
    born = _birth_date(bundle)
    if patient is None or born is None:
        return None
    try:
        band = age_band(age_on(born, on))
    except ValueError:
        return None  # born after the event, or a person no agreement follows up
    return _SEX_OF_GENDER.get(str(patient.get("gender")), SEX_NOT_STATED), band


def _is_acute(tasks: list[dict[str, Any]]) -> bool:
    """An acute placement's notices are due (joint planning within two weeks); others carry no due date."""
    return any(task.get("restriction", {}).get("period", {}).get("end") for task in tasks)


def _timestamp(bundle: Mapping[str, Any]) -> dt.datetime:
    """When the event the message reports happened.

    Its Tasks' ``lastModified`` (the latest), else the ``Bundle.timestamp`` (when the message was assembled,
    moments after the event).
    """
    modified = [
        str(task["lastModified"])
        for entry in bundle.get("entry", ())[1:]
        if isinstance(entry, dict)
        and isinstance(task := entry.get("resource"), dict)
        and task.get("resourceType") == "Task"
        and task.get("lastModified")
    ]
    try:
        times = [dt.datetime.fromisoformat(value) for value in modified]
        return max(times) if times else dt.datetime.fromisoformat(str(bundle.get("timestamp")))
    except (TypeError, ValueError) as exc:
        raise InvalidIntentError("the message has no valid Task.lastModified or Bundle.timestamp") from exc


class ProcessStore:
    """Processes and their applied messages in the database (SQLite by default, one SQLAlchemy Core path)."""

    def __init__(self, engine: sa.Engine) -> None:
        """Keep processes in ``engine``'s database."""
        self._engine = engine
        self._batch: contextvars.ContextVar[sa.Connection | None] = contextvars.ContextVar(
            f"process-batch-{id(self)}", default=None
        )
        self._savepoints: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"process-batch-savepoints-{id(self)}", default=True
        )
        self._behind: contextvars.ContextVar[WriteBehind | None] = contextvars.ContextVar(
            f"process-batch-behind-{id(self)}", default=None
        )

    @property
    def engine(self) -> sa.Engine:
        """The database engine."""
        return self._engine

    # Batches (the processes stage): one transaction, a savepoint per message once one failed

    def open_batch(self) -> sa.Connection:
        """A connection in a new transaction that holds the write lock from its start (SQLite).

        SQLite's ``BEGIN IMMEDIATE`` waits (up to the busy timeout) for the write lock at once: a transaction
        that read first and wrote later would fail outright if another process (the ledger) wrote between.
        Blocking: :meth:`ProcessTracker.prepare` calls it in a worker thread.

        Raises:
            StoreUnavailableError: the database cannot be written (retriable).
        """
        with map_errors("begin a batch of process updates"):
            conn = self._engine.connect()
            try:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    conn.begin()
            except BaseException:
                conn.close()
                raise
        return conn

    def hold(self, conn: sa.Connection, *, savepoints: bool = True) -> None:
        """Write and read through ``conn`` until :meth:`end_batch`, in this thread (or asyncio task) only.

        Without ``savepoints`` a message's writes go straight into the batch's transaction: a failure then
        spoils the whole transaction, which its caller must roll back (:meth:`end_batch`); and its inserts
        are held and run together (:mod:`sambus.router.stages.write_behind`).
        """
        self._batch.set(conn)
        self._savepoints.set(savepoints)
        self._behind.set(None if savepoints else WriteBehind(conn))

    def commit_batch(self) -> None:
        """Commit the batch's transaction (nothing when none is held).

        Raises:
            StoreUnavailableError: the commit failed (retriable: the batch is read again).
        """
        conn = self._batch.get()
        if conn is not None:
            with map_errors("commit the process updates"):
                if (behind := self._behind.get()) is not None:
                    behind.flush()
                conn.commit()

    def end_batch(self) -> None:
        """Give the batch's connection back; what was not committed is rolled back."""
        conn = self._batch.get()
        self._batch.set(None)
        if (behind := self._behind.get()) is not None:
            self._behind.set(None)
            behind.close()
        if conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.close()

    @contextlib.contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """A transaction for one message: a savepoint of the batch's transaction, else one of its own."""
        held = self._batch.get()
        if held is None:
            with self._engine.begin() as conn:
                yield conn
            return
        if not self._savepoints.get():
            yield held
            return
        with held.begin_nested():
            yield held

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        """A connection to read with: the batch's own (it sees the batch's writes so far), else a new one."""
        held = self._batch.get()
        if held is not None:
            yield held
            return
        with self._engine.connect() as conn:
            yield conn

    def get(self, process_id: str) -> Process | None:
        """A process by its id, or ``None``."""
        with self._reading() as conn:
            row = conn.execute(_PROCESS, {"p_process_id": process_id}).first()
        if row is None:
            return None
        return Process(row.process_id, row.kind, row.child, row.state, row.initiator, json.loads(row.parties))

    def applied_among(self, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` were applied (through the batch's connection when one is held).

        Raises:
            StoreUnavailableError: the database cannot be read (retriable).
        """
        with map_errors("read the process state"), self._reading() as conn:
            return ids_among(conn, _ARE_APPLIED, message_ids)

    def processes_among(self, process_ids: Sequence[str]) -> dict[str, sa.Row[Any]]:
        """The rows of those of ``process_ids`` that exist, by id (through the batch's connection when held).

        Raises:
            StoreUnavailableError: the database cannot be read (retriable).
        """
        with map_errors("read the process state"), self._reading() as conn:
            return {row.process_id: row for row in rows_among(conn, _PROCESSES_AMONG, process_ids)}

    def planning_among(self, children: Sequence[str]) -> set[str]:
        """Which of ``children`` (pseudonyms) have a joint planning pending (:func:`_joint_planning_pending`).

        Raises:
            StoreUnavailableError: the database cannot be read (retriable).
        """
        with map_errors("read the process state"), self._reading() as conn:
            return ids_among(conn, _PLANNING_AMONG, children)

    def tasks_of(self, process_id: str, party: str) -> list[str]:
        """The ids of the Tasks ``party`` (directory id) was given or sent in ``process_id``.

        Raises:
            StoreUnavailableError: the database cannot be read (retriable).
        """
        with map_errors("read the process state"), self._reading() as conn:
            found = conn.execute(_TASKS_OF, {"p_process_id": process_id, "p_party": party}).scalars()
            return list(dict.fromkeys(found))

    def active(self, child: str, unit: str) -> bool:
        """Whether ``unit`` (directory id) stated an active care contact with ``child`` (pseudonym).

        Raises:
            StoreUnavailableError: the database cannot be read (retriable).
        """
        with map_errors("read the care contacts"), self._reading() as conn:
            row = conn.execute(_CARE_CONTACT, {"p_child": child, "p_unit": unit}).first()
        return bool(row is not None and row.active)

    def request_of(self, process_id: str) -> tuple[EventCode, str | None] | None:
        """The event that started ``process_id`` and the provision assessed for it; ``None`` if not known.

        Raises:
            StoreUnavailableError: the database cannot be read (retriable).
        """
        with map_errors("read the process state"), self._reading() as conn:
            row = conn.execute(_REQUEST_OF, {"p_process_id": process_id}).first()
        event = None if row is None else _EVENT_OF_KIND.get(str(row.kind))
        return None if event is None or row is None else (event, row.request_assessment)

    def state_of(self, process_id: str) -> str | None:
        """The state of ``process_id``; ``None`` if not known (yet).

        Raises:
            StoreUnavailableError: the database cannot be read (retriable).
        """
        with map_errors("read the process state"), self._reading() as conn:
            row = conn.execute(
                sa.select(processes.c.state).where(processes.c.process_id == process_id)
            ).first()
        return None if row is None else str(row.state)

    def askers(self, process_id: str, *, answerer: str, task_id: str | None) -> frozenset[str] | None:
        """Who asked ``answerer`` something in ``process_id`` (the requesters of the Tasks it was given).

        With ``task_id``, only that Task's requester, and only if ``answerer`` owns it. ``None`` when the
        process or the Task is not known (yet).

        Raises:
            StoreUnavailableError: the database cannot be read (retriable).
        """
        with map_errors("read the process state"), self._reading() as conn:
            known = conn.execute(_IS_PROCESS, {"p_process_id": process_id}).first()
            if task_id is None:
                rows = conn.execute(_ASKERS, {"p_process_id": process_id}).all()
            else:
                rows = conn.execute(_ASKERS_OF_TASK, {"p_process_id": process_id, "p_task_id": task_id}).all()
        if known is None or (task_id is not None and not rows):
            return None
        return frozenset(row.requester for row in rows if row.owner == answerer)


_Offset = tuple[str, int, int]


def _offset(record: ConsumerRecord[bytes, bytes]) -> _Offset:
    return (record.topic, record.partition, record.offset)


def _correlation_id(record: ConsumerRecord[bytes, bytes]) -> str | None:
    """The process id of an intent record (its correlation-id header), if any."""
    return RecordHeaders.first_text(record.headers, Header.CORRELATION_ID, errors="replace")


def _event_code(record: ConsumerRecord[bytes, bytes]) -> str | None:
    """The event code header of an intent record, if any."""
    return RecordHeaders.first_text(record.headers, Header.EVENT_CODE, errors="replace")


_NOT_READ: Any = object()
"""A process not read for the transaction (or already used by a message of it): read it now."""


def _message_id(record: ConsumerRecord[bytes, bytes]) -> str | None:
    """The message id of an intent record (its header, which intake sets to the Bundle's id), if any."""
    return RecordHeaders.first_text(record.headers, Header.MESSAGE_ID, errors="replace")


@dataclass
class _Applied:
    """The message ids a transaction of the batch asked about, and which of them were applied."""

    asked: set[str]
    applied: set[str]
    marks: list[dict[str, str]] | None = None
    """When not ``None``: the applied messages' rows not yet written, written at once before the commit
    (a transaction without savepoints, where a failure rolls everything back anyway)."""
    processes: dict[str, sa.Row[Any] | None] = field(default_factory=dict)
    """The transaction's processes as read at its start (``None``: not in the database), each used by the
    first message of its process only: a message of it may change it, so any later one reads it again."""
    planning: dict[str, bool] = field(default_factory=dict)
    """Whether each child (pseudonym) of the transaction's SIP invitations had a joint planning pending at
    its start (:func:`_joint_planning_pending`); dropped once any other kind of message for the child comes,
    since only such a message (a placement) can make one pending. A SIP may end one: a ``True`` that went
    stale only means the placement and deadline updates are run and find nothing, as before they were
    skipped."""

    def take_process(self, process_id: str) -> Any:  # noqa: ANN401 - a row, None or _NOT_READ
        """The process's row read for the transaction (``None``: none), or ``_NOT_READ``; used once."""
        return self.processes.pop(process_id, _NOT_READ)

    def take_planning(self, child: str, event: EventCode) -> bool | None:
        """Whether ``child`` had a joint planning pending, as read for the transaction; ``None``: read it.

        Any message for the child but a SIP invitation drops what was read (see :attr:`planning`).
        """
        if event is EventCode.SIP_INITIATED:
            return self.planning.get(child)
        self.planning.pop(child, None)
        return None


class ProcessTracker:
    """The handler of the ``processes`` stage: applies each message to its process once, sets deadlines."""

    def __init__(
        self,
        *,
        store: ProcessStore,
        deadlines: Deadlines,
        rules: RoutingRules,
        deadline_rules: DeadlineRules | None = None,
    ) -> None:
        """Track in ``store``, set and close timers in ``deadlines``, resolve parties with ``rules``.

        Give it to its stage as ``prepare`` and as a hook too: a batch is then written in one transaction
        (see :meth:`prepare`); without them each message commits on its own when it is handled.
        """
        self._store = store
        self._deadlines = deadlines
        self._rules = rules
        self._deadline_rules = deadline_rules or DeadlineRules()
        self._outcomes: dict[_Offset, Exception | None] = {}

    LOCK_BUDGET_S = 0.1
    """How long a transaction of the batch holds SQLite's one write lock before it commits the records applied
    so far and opens the next: the ledger's appends and intake's seen events wait for that lock, and a batch
    of 500 in one transaction held it for seconds (15 s on a loaded machine), stalling every other stage."""

    LOCK_CHECK_EVERY = 20
    """The time is looked at every this many records, so a small batch is one transaction, as ever."""

    LOCK_PAUSE_S = 0.005
    """How long the batch leaves the lock free between its transactions, for the writers that waited."""

    async def prepare(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply the whole batch in a worker thread, one database transaction, before it is handled.

        The handler then answers each record from what happened to it here. The event loop goes on
        polling meanwhile, and the transaction never waits for the loop: a stage on the same loop that
        writes (the deadline timers) cannot hold the write lock the batch needs while it waits for it.
        """
        self._outcomes = await asyncio.to_thread(self._apply_batch, records)

    def _apply_batch(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> dict[_Offset, Exception | None]:
        """Apply ``records`` in short transactions, each record in a savepoint; what failed, by record.

        Each transaction holds the write lock about :attr:`LOCK_BUDGET_S` at most. A transaction is first
        written without a savepoint per record (they cost about as much as a statement each); when a record
        of it fails, it is rolled back and written again with them, so that only that record's changes are
        undone.

        A record whose error is retriable ends the batch there: the records before it commit, and the stage
        reads the batch again from it (as it did when each record committed on its own). When a later
        transaction fails, those committed before it stay: the batch read again skips them by message id.

        Raises:
            StoreUnavailableError: the transaction could not begin or commit (the batch is read again).
        """
        outcomes: dict[_Offset, Exception | None] = {}
        todo = collections.deque(records)
        savepoints = False
        while todo:
            if outcomes:  # not the first part: the writers that waited for the lock go first
                time.sleep(self.LOCK_PAUSE_S)
            self._store.hold(self._store.open_batch(), savepoints=savepoints)
            try:
                part = self._apply_part(todo, outcomes, savepoints=savepoints)
                if part is not None:  # rolled back below; written again, each record in a savepoint
                    todo.extendleft(reversed(part))
                    savepoints = True
                    continue
                self._store.commit_batch()
                savepoints = False
            finally:
                self._store.end_batch()
        return outcomes

    def _apply_part(
        self,
        todo: collections.deque[ConsumerRecord[bytes, bytes]],
        outcomes: dict[_Offset, Exception | None],
        *,
        savepoints: bool,
    ) -> list[ConsumerRecord[bytes, bytes]] | None:
        """Apply records from ``todo`` in the batch's transaction in hand, for about :attr:`LOCK_BUDGET_S`.

        Returns ``None`` when the transaction may commit, else (a record failed without savepoints) the
        records it applied, their outcomes taken back: the transaction must be rolled back.
        """
        budget_ends = time.monotonic() + self.LOCK_BUDGET_S
        try:
            known = self._applied_of(todo)
        except SambusError as exc:  # as when the first record's own read failed
            outcomes[_offset(todo[0])] = exc
            todo.clear()
            return None
        if not savepoints:
            known.marks = []
        part: list[ConsumerRecord[bytes, bytes]] = []
        failed = False
        while todo and not failed:
            record = todo.popleft()
            part.append(record)
            failed = not self._apply_in_part(record, known, outcomes, todo, savepoints=savepoints)
            if len(outcomes) % self.LOCK_CHECK_EVERY == 0 and time.monotonic() > budget_ends:
                break
        if failed or not self._write_marks(known):
            for applied_record in part:
                outcomes.pop(_offset(applied_record), None)
            return part
        return None

    def _apply_in_part(
        self,
        record: ConsumerRecord[bytes, bytes],
        known: _Applied,
        outcomes: dict[_Offset, Exception | None],
        todo: collections.deque[ConsumerRecord[bytes, bytes]],
        *,
        savepoints: bool,
    ) -> bool:
        """Apply ``record`` and note its outcome; ``False`` when it failed without savepoints (roll back).

        A retriable failure (with savepoints) ends the batch there: ``todo`` is emptied.
        """
        try:
            self._apply_record(record, known=known)
        except Exception as exc:  # noqa: BLE001 - raised again by the handler, for this record only
            if not savepoints:
                return False
            outcomes[_offset(record)] = exc
            if isinstance(exc, SambusError) and exc.retriable:
                todo.clear()
        else:
            outcomes[_offset(record)] = None
        return True

    def _write_marks(self, known: _Applied) -> bool:
        """Write the applied messages' rows a transaction without savepoints kept back; whether it could."""
        if not known.marks:
            return True
        try:
            with map_errors("update the process state"), self._store.writing() as conn:
                conn.execute(_MARK_APPLIED, known.marks)
        except Exception:  # noqa: BLE001 - the transaction is rolled back and written again
            return False
        return True

    def before_commit(self) -> None:
        """Nothing: :meth:`prepare` committed the batch's changes (before the Kafka transaction, as ever)."""

    def after_commit(self) -> None:
        """The batch is out: forget what happened to its records."""
        self._outcomes = {}

    def after_abort(self) -> None:
        """The batch will be read again: its records already applied are skipped then (by message id)."""
        self._outcomes = {}

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> list[Outgoing]:
        """Apply one message (unless :meth:`prepare` did); the stage produces nothing for it.

        A record that is not a valid intent is skipped: the delivery stage, reading the same topic, already
        dead-letters it, and a second dead letter would only confuse.
        """
        key = _offset(record)
        if key in self._outcomes:
            failed = self._outcomes[key]
            if failed is not None:
                raise failed
            return []
        self._apply_record(record)
        return []

    def _applied_of(self, records: Collection[ConsumerRecord[bytes, bytes]]) -> _Applied:
        """Which of the message ids of ``records`` were applied already: one read for a transaction's records.

        The ids are the records' message-id headers (intake sets them to the Bundle's id); a record whose
        Bundle names another id is asked about on its own. Read through the batch's connection.

        Raises:
            StoreUnavailableError: the database cannot be read (retriable).
        """
        ids = sorted({message_id for record in records if (message_id := _message_id(record)) is not None})
        known = _Applied(asked=set(ids), applied=self._store.applied_among(ids))
        process_ids = sorted({p for record in records if (p := _correlation_id(record)) is not None})
        found = self._store.processes_among(process_ids)
        known.processes = {process_id: found.get(process_id) for process_id in process_ids}
        children = sorted(
            {
                record.key.decode("ascii", errors="replace")
                for record in records
                if record.key and _event_code(record) == EventCode.SIP_INITIATED
            }
        )
        pending = self._store.planning_among(children)
        known.planning = {child: child in pending for child in children}
        return known

    def _apply_record(self, record: ConsumerRecord[bytes, bytes], *, known: _Applied | None = None) -> None:
        """Apply ``record`` unless its message was applied before.

        ``known``: what was read for the transaction (:meth:`_applied_of`), kept up to date here; an id it was
        not asked about is read from the database, as is every id without it.
        """
        try:
            child, event, bundle = read_intent(record)
            process_id = header(record, Header.CORRELATION_ID)
            at = _timestamp(bundle)
        except InvalidIntentError as exc:
            logger.info(
                "processes skip %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc.code
            )
            return
        message_id = str(bundle.get("id"))
        if known is None:  # nothing read ahead: every read is made here
            known = _Applied(asked=set(), applied=set())
        answered = message_id in known.asked
        if answered and message_id in known.applied:
            return
        mark = {"message_id": message_id, "process_id": process_id}
        with map_errors("update the process state"), self._store.writing() as conn:
            if not answered and conn.execute(_IS_APPLIED, {"message_id": message_id}).first():
                return
            if known.marks is None:
                conn.execute(_MARK_APPLIED, mark)
            self._apply(
                conn, process_id=process_id, child=child, event=event, bundle=bundle, at=at, known=known
            )
        if known.marks is not None:
            known.marks.append(mark)
        known.asked.add(message_id)
        known.applied.add(message_id)

    def _apply(
        self,
        conn: sa.Connection,
        *,
        process_id: str,
        child: str,
        event: EventCode,
        bundle: Mapping[str, Any],
        at: dt.datetime,
        known: _Applied,
    ) -> None:
        """Apply a message (``at``: when its event happened, :func:`_timestamp`) to its process."""
        read = known.take_process(process_id)
        planning_read = known.take_planning(child, event)
        if event is EventCode.CARE_CONTACT_STATED:
            self._record_care_contacts(conn, child=child, bundle=bundle)
            return
        if event is EventCode.EQUIVALENT_HEALTH_EXAM_EXISTS:
            self._equivalent_exam(conn, process_id=process_id, child=child, bundle=bundle, at=at)
            return
        row = conn.execute(_PROCESS, {"p_process_id": process_id}).first() if read is _NOT_READ else read
        parties: dict[str, str] = json.loads(row.parties) if row is not None else {}
        tasks = _focal_tasks(bundle)
        if row is None and event not in _KIND_OF_EVENT:
            return  # an answer or step of a process sambus did not see start
        owners = [self._party(task, "owner") for task in tasks]
        if row is None:
            # The process starts with this message, inserted as it ends: a start is no answer (nothing below
            # changes its parties) and is its first step (no step to date, no Task kept before).
            initiator = self._party(tasks[0], "requester") if tasks else None
            parties = {owner: "invited" for owner in owners if owner}
            insert(
                conn,
                _NEW_PROCESS,
                {
                    "process_id": process_id,
                    "kind": _KIND_OF_EVENT[event],
                    "child": child,
                    "state": _STATE_AFTER.get(event, "started"),
                    "initiator": initiator,
                    "parties": json.dumps(parties),
                    "updated_at": at,
                    "request_assessment": assessment.provision
                    if (assessment := secrecy_assessment(bundle)) is not None
                    else None,
                },
            )
            self._start_fact(conn, process_id=process_id, event=event, bundle=bundle, tasks=tasks, at=at)
        # A SIP is the joint planning of the child's acute placements: only when it has one is there any to
        # date or close (one read, instead of an update of each that finds nothing for most children).
        planning = event is not EventCode.SIP_INITIATED or (
            planning_read if planning_read is not None else _joint_planning_pending(conn, child=child)
        )
        if row is None:
            if event is EventCode.SIP_INITIATED and planning:
                _joint_planning(conn, child=child, on=at.date())
        else:
            initiator = row.initiator
        asked: list[str] = []
        if event not in ANSWER_EVENTS:
            asked = self._record_tasks(
                conn,
                process_id=process_id,
                event=event,
                bundle=bundle,
                child=child,
                started_here=row is None,
            )
        if row is not None:
            self._record_answers(event, tasks, owners, parties)
            state = _STATE_AFTER.get(event, row.state)
            if (
                event is EventCode.HEALTH_EXAM_COMPLETED
                and parties
                and all(a == "completed" for a in parties.values())
            ):
                state = "statements-complete"
            conn.execute(
                _MOVE_PROCESS,
                {
                    "p_process_id": process_id,
                    "p_state": state,
                    "p_parties": json.dumps(parties),
                    "p_updated_at": at,
                },
            )
            _date_step(conn, process_id=process_id, event=event, state=state, on=at.date())
            _date_outcomes(conn, process_id=process_id, event=event, tasks=tasks, on=at.date())
        self._set_deadlines(
            conn,
            process_id=process_id,
            child=child,
            event=event,
            bundle=bundle,
            at=at,
            parties=(initiator, asked, owners),
            answered=[
                owner
                for task, owner in zip(tasks, owners, strict=True)
                if owner
                and event in ANSWER_EVENTS
                and _ANSWERS.get(str(task.get("status"))) in {"accepted", "completed"}
            ],
            started_here=row is None,
            for_child=planning,
        )

    def _set_deadlines(
        self,
        conn: sa.Connection,
        *,
        process_id: str,
        child: str,
        event: EventCode,
        bundle: Mapping[str, Any],
        at: dt.datetime,
        parties: tuple[str | None, list[str], list[str | None]],
        answered: list[str],
        started_here: bool = False,
        for_child: bool = True,
    ) -> None:
        """Open the deadlines ``event`` opens and close those it fulfils.

        ``parties``: the process's initiator, the units this message asked, the owners of its Tasks;
        ``answered``: the owners that accepted or completed their Task in this message.
        Reminders go only to parties of the process: a unit this message asked (routed, not refused), or the
        initiator; a deadline the initiator owes (joint planning) goes to the initiator alone, and a per-party
        deadline (urgent suicide risk, acknowledging a guardian-access block) to each unit asked. An answer
        closes the answering unit's own urgent deadline; an acceptance its guardian-access acknowledgement.

        ``started_here``: the process began with this message, so its only deadlines are those opened here
        (the database is not asked whether one is open, nor told to close one that cannot be there).
        ``for_child``: whether the child can have a deadline ``event`` closes in any of its processes (when
        not, the database is not told to close one). ``at``: when the event happened (:func:`_timestamp`).
        """
        initiator, asked, owners = parties
        asked_first = asked[0] if asked else None
        identity = _child_key(bundle)
        opened: set[str] | None = set() if started_here else None  # the ids opened here, if it began here
        opened_names: set[str] = set()
        for deadline in self._deadline_rules.opened_by(
            event, at=at, bundle=bundle, birth=_birth_date(bundle)
        ):
            if deadline.per_party:
                responsibles: list[str | None] = list(dict.fromkeys(asked))
            else:
                responsibles = [initiator if deadline.owed_by_initiator else (asked_first or initiator)]
            for responsible in responsibles:
                self._deadlines.open(
                    conn,
                    process_id=process_id,
                    deadline=deadline,
                    child=child,
                    responsible=responsible,
                    escalate_to=initiator or responsible,
                    identity=identity,
                    opened=opened,
                )
            opened_names.add(deadline.name)
        closed = self._deadline_rules.closed_by(event)
        if not started_here or opened_names.intersection(closed):
            self._deadlines.close(conn, process_id=process_id, names=closed, at=at)
        for owner in {o for o in owners if o} if event in ANSWER_EVENTS else ():
            self._deadlines.close(
                conn,
                process_id=process_id,
                names=self._deadline_rules.closed_by_answer(event),
                at=at,
                responsible=owner,
            )
        for owner in answered:
            self._deadlines.close(
                conn, process_id=process_id, names=(GUARDIAN_ACCESS_ACK,), at=at, responsible=owner
            )
        if for_child:
            self._deadlines.close_for_child(
                conn, child=child, names=self._deadline_rules.closed_for_child_by(event), at=at
            )
        if event is EventCode.PLACEMENT_STARTED and self._requested_before(conn, child=child, at=at):
            self._deadlines.close(conn, process_id=process_id, names=(HEALTH_EXAM_REQUEST,), at=at)

    def _equivalent_exam(
        self, conn: sa.Connection, *, process_id: str, child: str, bundle: Mapping[str, Any], at: dt.datetime
    ) -> None:
        """Social services assessed that an equivalent examination exists: close the waiting reminder.

        Only a placement of the child still waiting for its 2017:209 request (its reminder open) is tied to
        it; without one the event is refused (fail closed): its process records which, and the delivery
        stage writes the ledger and tells the sender.
        """
        waiting = self._deadlines.open_for_child(conn, child=child, name=HEALTH_EXAM_REQUEST)
        header_resource = bundle.get("entry", [{}])[0].get("resource", {})
        conn.execute(
            processes.insert().values(
                process_id=process_id,
                kind=_KIND_OF_EQUIVALENT_EXAM,
                child=child,
                state=EQUIVALENT_EXAM_ACCEPTED if waiting else EQUIVALENT_EXAM_REFUSED,
                initiator=self._party({"requester": header_resource.get("sender", {})}, "requester"),
                parties="{}",
                updated_at=at,
            )
        )
        if waiting:
            self._deadlines.close_for_child(conn, child=child, names=(HEALTH_EXAM_REQUEST,), at=at)

    def _requested_before(self, conn: sa.Connection, *, child: str, at: dt.datetime) -> bool:
        """Whether a 2017:209 request for ``child`` came at most the request's term before ``at``.

        Social services may send the request before the placement event reaches sambus (the placement is
        registered later in its case system): the placement then opens its request deadline already closed.
        An older request does not count (it was for an earlier placement, or stale: a reminder rather than
        silence).
        """
        return (
            conn.execute(
                sa.select(processes.c.process_id).where(
                    processes.c.child == child,
                    processes.c.kind == _KIND_OF_EVENT[EventCode.HEALTH_EXAM_REQUESTED],
                    processes.c.updated_at >= at - self._deadline_rules.health_exam_request,
                )
            ).first()
            is not None
        )

    def _record_answers(
        self, event: EventCode, tasks: list[dict[str, Any]], owners: list[str | None], parties: dict[str, str]
    ) -> None:
        """Record in ``parties`` each party's answer this message carries."""
        for task, owner in zip(tasks, owners, strict=True):
            answer = _ANSWERS.get(str(task.get("status")))
            if owner and answer and event in ANSWER_EVENTS:
                parties[owner] = answer

    def _record_care_contacts(self, conn: sa.Connection, *, child: str, bundle: Mapping[str, Any]) -> None:
        """Keep each care contact (``EpisodeOfCare``) a unit states, the latest statement per unit."""
        for entry in bundle.get("entry", [])[1:]:
            episode = entry.get("resource", {})
            if episode.get("resourceType") != "EpisodeOfCare":
                continue
            unit = self._recipient({"owner": episode.get("managingOrganization", {})}, "owner")
            period = episode.get("period", {})
            try:
                since = dt.datetime.fromisoformat(str(period.get("start") or period.get("end")))
            except ValueError:
                continue
            if unit is None:
                continue  # a unit outside the directory is never invited anyway
            key = (care_contacts.c.child == child, care_contacts.c.unit == unit.id)
            conn.execute(care_contacts.delete().where(*key))
            conn.execute(
                care_contacts.insert().values(
                    child=child, unit=unit.id, active=episode.get("status") == "active", since=since
                )
            )

    def _record_tasks(
        self,
        conn: sa.Connection,
        *,
        process_id: str,
        event: EventCode,
        bundle: Mapping[str, Any],
        child: str,
        started_here: bool = False,
    ) -> list[str]:
        """Keep who asked whom: each Task routed as the delivery stage routes it (refused ones left out).

        Returns the directory ids of the organisations asked, in order. ``started_here``: the process began
        with this message, so it has no Task kept yet (the database is not asked).
        """
        try:
            routing = self._rules.route(event, bundle, focal_tasks(dict(bundle)), child=child)
        except (RoutingError, InvalidIntentError) as exc:
            logger.info("process %s: no Tasks kept from a message routed nowhere (%s)", process_id, exc.code)
            return []
        home = child_municipality(bundle)
        rows: list[dict[str, str]] = []
        for route in routing.routes:
            requester = self._recipient(route.task.resource, "requester", home=home)
            task_id = (
                convene_task_id(str(bundle.get("id")), route.recipient.id)
                if route.convene
                else _delivered_task_id(route)
            )
            if route.refused is None and requester is not None and isinstance(task_id, str):
                rows.append(
                    {
                        "process_id": process_id,
                        "task_id": task_id,
                        "owner": route.recipient.id,
                        "requester": requester.id,
                    }
                )
        asked = [row["owner"] for row in rows]
        if rows:
            # One read and one write per message (not per Task): a Task already kept (sent again, e.g. a
            # corrected message) is asked once.
            task_ids = sorted({row["task_id"] for row in rows})
            kept: set[tuple[str, str]] = set()
            if not started_here:
                found = conn.execute(_KEPT_TASKS, {"p_process_id": process_id, "p_task_ids": task_ids})
                kept = {(r.task_id, r.owner) for r in found}
            new = [row for row in rows if (row["task_id"], row["owner"]) not in kept]
            if new:
                insert(conn, _KEEP_TASKS, new)
        return asked

    def _start_fact(
        self,
        conn: sa.Connection,
        *,
        process_id: str,
        event: EventCode,
        bundle: Mapping[str, Any],
        tasks: list[dict[str, Any]],
        at: dt.datetime,
    ) -> None:
        """Insert the anonymous follow-up fact of a process that starts with this message."""
        kind = _FACT_KIND.get(event)
        if kind is None or (kind is ProcessKind.ACUTE_PLACEMENT and not _is_acute(tasks)):
            return
        child = _sex_and_age_band(bundle, at.date())
        if child is None:
            logger.info(
                "process %s has no valid child identifier or a child outside the ages followed up: "
                "no follow-up fact",
                process_id,
            )
            return
        sex, band = child
        insert(
            conn,
            _NEW_FACT,
            {
                "process_id": process_id,
                "kind": str(kind),
                "sex": sex,
                "age_band": band,
                "county_part": self._county_part(tasks),
                "started_on": at.date(),
            },
        )

    def _county_part(self, tasks: list[dict[str, Any]]) -> str:
        """The county part of the requesting organisation, else of the first owner that has one."""
        directory = self._rules.directory
        parties = [self._recipient(task, "requester") for task in tasks[:1]]
        parties += [self._recipient(task, "owner") for task in tasks]
        for party in parties:
            if party is None:
                continue
            part = party.county_part or (
                directory.county_part_of(party.municipality) if party.municipality else None
            )
            if part is not None:
                return part
        return UNKNOWN_COUNTY_PART

    def _recipient(self, task: Mapping[str, Any], role: str, *, home: str | None = None) -> Recipient | None:
        identifier = task.get(role, {}).get("identifier", {})
        if not identifier.get("system") or not identifier.get("value"):
            return None
        try:
            return self._rules.resolve(str(identifier["system"]), str(identifier["value"]), home=home)
        except RoutingError:
            return None  # a party outside the directory is left out of the state

    def _party(self, task: Mapping[str, Any], role: str) -> str | None:
        recipient = self._recipient(task, role)
        return None if recipient is None else recipient.id


def _delivered_task_id(route: Route) -> object:
    """The id of the Task as delivered.

    A Task addressed by routing address gets its organisation's id (as
    :func:`~sambus.router.routing.projection.for_recipient` gives it).
    """
    process_id = route.task.resource.get("groupIdentifier", {}).get("value")
    if route.task.owner_system != ROUTING_ADDRESS_SYSTEM or not isinstance(process_id, str):
        return route.task.resource.get("id")
    first = route.recipient.identifiers[0]
    return task_id_for(process_id, {"system": first.system, "value": first.value})


def _date_step(conn: sa.Connection, *, process_id: str, event: EventCode, state: str, on: dt.date) -> None:
    """Date the step ``event`` makes in a process's fact, unless an earlier message already did."""
    step = (
        (ProcessKind.EXAM_2017_209, "completed_on")
        if state == "statements-complete"
        else _STEP_DATE.get(event)
    )
    if step is None:
        return
    kind, column = step
    conn.execute(_fill_fact(column), {"p_process_id": process_id, "p_kind": str(kind), "p_value": on})


_STATEMENT_DATE = {"mental_physical": "medical_on", "oral": "oral_on"}
"""A 2017:209 statement kind (``Task.output.type``) -> the fact's column it dates."""


def _codes(items: list[Any], system: str) -> set[str]:
    """The codes of ``system`` in a list of CodeableConcepts."""
    return {
        str(coding.get("code"))
        for item in items
        if isinstance(item, dict)
        for coding in item.get("coding", ())
        if isinstance(coding, dict) and coding.get("system") == system
    }


def _date_outcomes(
    conn: sa.Connection,
    *,
    process_id: str,
    event: EventCode,
    tasks: list[dict[str, Any]],
    on: dt.date,
) -> None:
    """Date each 2017:209 statement (medical, oral) as it comes, and keep a SIP's closure reason.

    The first message of each dates it; the codes are the adapters' (no free text is stored).
    """
    values: dict[str, object] = {}
    kind = None
    if event is EventCode.HEALTH_EXAM_COMPLETED:
        kind = ProcessKind.EXAM_2017_209
        for task in tasks:
            if task.get("status") != "completed":
                continue
            outputs = [item.get("type", {}) for item in task.get("output", ()) if isinstance(item, dict)]
            for statement in _codes(outputs, STATEMENT_SYSTEM):
                if statement in _STATEMENT_DATE:
                    values[_STATEMENT_DATE[statement]] = on
    elif event is EventCode.SIP_CLOSED:
        kind = ProcessKind.SIP
        reasons = {str(r) for r in ClosureReason}.intersection(
            *(_codes([t.get("statusReason", {})], SIP_CLOSURE_SYSTEM) for t in tasks)
        )
        if len(reasons) == 1 and tasks:
            values = {"closed_on": on, "closure_reason": reasons.pop()}
    for column, value in values.items():
        conn.execute(_fill_fact(column), {"p_process_id": process_id, "p_kind": str(kind), "p_value": value})


def _joint_planning_pending(conn: sa.Connection, *, child: str) -> bool:
    """Whether ``child`` (pseudonym) has a placement process or an open joint-planning deadline.

    Without either, a SIP started for it dates no placement's joint planning (:func:`_joint_planning` finds
    no placement) and closes no joint-planning deadline.
    """
    return conn.execute(_JOINT_PLANNING_PENDING, {"p_child": child}).first() is not None


_JOINT_PLANNING_PENDING = sa.union_all(
    sa.select(sa.literal(1)).where(
        processes.c.child == sa.bindparam("p_child"),
        processes.c.kind == _KIND_OF_EVENT[EventCode.PLACEMENT_STARTED],
    ),
    sa.select(sa.literal(1)).where(
        deadline_rows.c.child == sa.bindparam("p_child"),
        deadline_rows.c.name == JOINT_PLANNING,
        deadline_rows.c.closed_at.is_(None),
    ),
).limit(1)
"""What :func:`_joint_planning_pending` runs (built once)."""

_PLANNING_AMONG = sa.union(
    sa.select(processes.c.child).where(
        processes.c.child.in_(sa.bindparam("p_ids", expanding=True)),
        processes.c.kind == _KIND_OF_EVENT[EventCode.PLACEMENT_STARTED],
    ),
    sa.select(deadline_rows.c.child).where(
        deadline_rows.c.child.in_(sa.bindparam("p_ids", expanding=True)),
        deadline_rows.c.name == JOINT_PLANNING,
        deadline_rows.c.closed_at.is_(None),
    ),
)
"""Which of several children :func:`_joint_planning_pending` would answer yes for (built once)."""


def _joint_planning(conn: sa.Connection, *, child: str, on: dt.date) -> None:
    """A SIP started for a child (by pseudonym) is the joint planning of its acute placements not yet planned.

    Agency events cannot name a placement's process in a new SIP, so the child links them; a SIP sent under
    the placement's own process id dates it through :data:`_STEP_DATE` instead.
    """
    conn.execute(_PLAN_PLACEMENTS, {"p_child": child, "p_on": on, "p_completed_on": on})


_PLAN_PLACEMENTS = (
    followup_facts.update()
    .where(
        followup_facts.c.process_id.in_(
            sa.select(processes.c.process_id).where(
                processes.c.child == sa.bindparam("p_child"),
                processes.c.kind == _KIND_OF_EVENT[EventCode.PLACEMENT_STARTED],
            )
        ),
        followup_facts.c.kind == str(ProcessKind.ACUTE_PLACEMENT),
        followup_facts.c.started_on <= sa.bindparam("p_on"),
        followup_facts.c.completed_on.is_(None),
    )
    .values(completed_on=sa.bindparam("p_completed_on"))
)
"""What :func:`_joint_planning` runs (built once)."""


@functools.cache
def _fill_fact(column: str) -> sa.Update:
    """The statement that sets a follow-up fact's ``column`` unless set (built once per column)."""
    return (
        followup_facts.update()
        .where(
            followup_facts.c.process_id == sa.bindparam("p_process_id"),
            followup_facts.c.kind == sa.bindparam("p_kind"),
            followup_facts.c[column].is_(None),
        )
        .values({column: sa.bindparam("p_value")})
    )
