"""Process state from messages and answers (SIP, 2017:209), and the deadlines messages open and close."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from sambus.contracts.fhir import EVENT_SYSTEM, ROUTING_ADDRESS_SYSTEM, SCHOOL_UNIT_SYSTEM, EventCode
from sambus.contracts.fhir.task import task_id_for
from sambus.contracts.identifiers import HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM, PERSONNUMMER_SYSTEM
from sambus.contracts.topics import Header
from sambus.router.routing.directory import RoutingDirectory
from sambus.router.routing.rules import RoutingRules
from sambus.router.service.schema import upgrade
from sambus.router.stages.deadlines import Deadline, DeadlineRules, Deadlines
from sambus.router.stages.processes import ProcessStore, ProcessTracker

DIRECTORY = RoutingDirectory.load()  # the example packaged with sambus
AT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
SOCIAL = (ORGANISATION_NUMBER_SYSTEM, "212000-2080")
BU_HALSAN = (HSA_ID_SYSTEM, "SE2321000206-1001")
DENTAL = (HSA_ID_SYSTEM, "SE2321000206-1003")
VC = (HSA_ID_SYSTEM, "SE2321000206-1006")


def bundle(
    message_id: str, *owners: tuple[str, str], status: str = "requested", **task: Any
) -> dict[str, Any]:
    tasks = [
        {
            "resourceType": "Task",
            "id": f"t{n}",
            "status": status,
            "requester": {"identifier": {"system": SOCIAL[0], "value": SOCIAL[1]}},
            "owner": {"identifier": {"system": system, "value": value}},
            **task,
        }
        for n, (system, value) in enumerate(owners)
    ]
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "timestamp": AT.isoformat(),
        "entry": [
            {
                "fullUrl": "urn:uuid:h",
                "resource": {
                    "resourceType": "MessageHeader",
                    # The router reads the event code from the Kafka header; the consent registry reads
                    # this one, and takes no facts from a process message.
                    "eventCoding": {"system": EVENT_SYSTEM, "code": str(EventCode.TASK_STATUS_CHANGED)},
                    "focus": [{"reference": f"urn:uuid:{t['id']}"} for t in tasks],
                },
            },
            *({"fullUrl": f"urn:uuid:{t['id']}", "resource": t} for t in tasks),
            {
                "fullUrl": "urn:uuid:p",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": PERSONNUMMER_SYSTEM, "value": "201203150006"}],
                },
            },
        ],
    }


def record(event: EventCode, data: dict[str, Any], process: str = "proc-1") -> ConsumerRecord:
    value = json.dumps(data).encode()
    return ConsumerRecord(
        topic="t.sambus.intents",
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=b"child",
        value=value,
        checksum=None,
        serialized_key_size=5,
        serialized_value_size=len(value),
        headers=((Header.EVENT_CODE, str(event).encode()), (Header.CORRELATION_ID, process.encode())),
    )


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine) -> ProcessStore:
    upgrade(engine)
    return ProcessStore(engine)


@pytest.fixture
def deadlines(engine) -> Deadlines:
    upgrade(engine)
    return Deadlines(engine)


@pytest.fixture
def tracker(store, deadlines) -> ProcessTracker:
    return ProcessTracker(store=store, deadlines=deadlines, rules=RoutingRules(DIRECTORY))


@pytest.mark.asyncio
async def test_a_sip_moves_from_invitation_through_answers_to_closed(tracker, store) -> None:
    await tracker(record(EventCode.SIP_INITIATED, bundle("m1", SOCIAL, BU_HALSAN)))
    sip = store.get("proc-1")
    assert (sip.kind, sip.state, sip.initiator) == ("sip", "invited", "vasteras-socialtjanst")
    assert sip.parties == {"vasteras-socialtjanst": "invited", "vastmanland-bu-halsan": "invited"}

    await tracker(record(EventCode.SIP_INVITATION_ANSWERED, bundle("m2", BU_HALSAN, status="accepted")))
    await tracker(record(EventCode.SIP_INVITATION_ANSWERED, bundle("m3", SOCIAL, status="rejected")))
    await tracker(record(EventCode.SIP_MEETING_SCHEDULED, bundle("m4", BU_HALSAN)))
    assert store.get("proc-1").parties == {
        "vasteras-socialtjanst": "declined",
        "vastmanland-bu-halsan": "accepted",
    }
    assert store.get("proc-1").state == "meeting-scheduled"

    await tracker(record(EventCode.SIP_PLAN_ESTABLISHED, bundle("m5", BU_HALSAN)))
    await tracker(record(EventCode.SIP_FOLLOWED_UP, bundle("m6", BU_HALSAN)))
    await tracker(record(EventCode.SIP_CLOSED, bundle("m7", BU_HALSAN)))
    assert store.get("proc-1").state == "closed"


@pytest.mark.asyncio
async def test_the_same_message_twice_changes_the_state_once(tracker, store) -> None:
    await tracker(record(EventCode.SIP_INITIATED, bundle("m1", BU_HALSAN)))
    await tracker(record(EventCode.SIP_INVITATION_ANSWERED, bundle("m2", BU_HALSAN, status="accepted")))
    await tracker(record(EventCode.SIP_INVITATION_ANSWERED, bundle("m3", BU_HALSAN, status="rejected")))
    await tracker(record(EventCode.SIP_INVITATION_ANSWERED, bundle("m2", BU_HALSAN, status="accepted")))

    assert store.get("proc-1").parties == {"vastmanland-bu-halsan": "declined"}


@pytest.mark.asyncio
async def test_a_2017_209_examination_completes_with_both_statements(tracker, store) -> None:
    await tracker(record(EventCode.HEALTH_EXAM_REQUESTED, bundle("m1", VC, DENTAL)))
    await tracker(record(EventCode.HEALTH_EXAM_COMPLETED, bundle("m2", VC, status="completed")))
    assert store.get("proc-1").state == "requested"

    await tracker(record(EventCode.HEALTH_EXAM_COMPLETED, bundle("m3", DENTAL, status="completed")))

    exam = store.get("proc-1")
    assert exam.kind == "health-exam-2017-209"
    assert exam.state == "statements-complete"


@pytest.mark.asyncio
async def test_an_answer_to_a_process_never_seen_is_ignored(tracker, store) -> None:
    await tracker(record(EventCode.TASK_STATUS_CHANGED, bundle("m1", BU_HALSAN, status="accepted")))

    assert store.get("proc-1") is None


@pytest.mark.asyncio
async def test_a_sip_for_a_child_opens_the_adulthood_deadline_and_closing_the_sip_ends_it(
    tracker, deadlines
) -> None:
    await tracker(record(EventCode.SIP_INITIATED, bundle("m1", BU_HALSAN)))
    adulthood = deadlines.state("proc-1:adulthood")
    assert adulthood["due_at"].date() == dt.date(2030, 3, 15)
    assert adulthood["reminder_event"] == "transition-to-adulthood"
    assert [t.name for t in deadlines.due(dt.datetime(2029, 10, 1, tzinfo=dt.UTC))] == ["adulthood"]

    await tracker(record(EventCode.SIP_CLOSED, bundle("m2", BU_HALSAN)))

    assert deadlines.due(dt.datetime(2029, 10, 1, tzinfo=dt.UTC)) == []


@pytest.mark.parametrize(
    ("event", "name", "due", "remind"),
    [
        (EventCode.LVU32_EXAM_ORDERED, "lvu32-exam", dt.timedelta(weeks=4), dt.timedelta(weeks=3)),
        (EventCode.SIP_PLAN_ESTABLISHED, "sip-follow-up", dt.timedelta(days=182), dt.timedelta(days=168)),
    ],
)
def test_deadline_rules(event, name, due, remind) -> None:
    [deadline] = DeadlineRules().opened_by(event, at=AT, bundle={}, birth=None)

    assert (deadline.name, deadline.due_at - AT, deadline.remind_at - AT) == (name, due, remind)


def test_an_acute_placement_opens_joint_planning_due_when_its_notices_say() -> None:
    acute = bundle("m1", BU_HALSAN, restriction={"period": {"end": "2026-11-16"}})

    opened = DeadlineRules().opened_by(EventCode.PLACEMENT_STARTED, at=AT, bundle=acute, birth=None)

    [deadline] = [d for d in opened if d.name == "joint-planning"]
    assert (deadline.due_at, deadline.remind_at) == (
        dt.datetime(2026, 11, 16, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 13, tzinfo=dt.UTC),
    )


def test_a_planned_placement_opens_no_joint_planning_deadline() -> None:
    planned = bundle("m1", BU_HALSAN)

    opened = DeadlineRules().opened_by(EventCode.PLACEMENT_STARTED, at=AT, bundle=planned, birth=None)
    assert [d.name for d in opened] == ["health-exam-request"], "only the 2017:209 request is owed"


@pytest.mark.parametrize("days", [14, 30])
def test_every_placement_waits_for_its_2017_209_request_by_the_term_the_rules_set(days) -> None:
    rules = DeadlineRules(health_exam_request=dt.timedelta(days=days))

    [deadline] = rules.opened_by(
        EventCode.PLACEMENT_STARTED, at=AT, bundle=bundle("m1", BU_HALSAN), birth=None
    )

    assert (deadline.name, deadline.due_at - AT, deadline.remind_at - AT) == (
        "health-exam-request",
        dt.timedelta(days=days),
        dt.timedelta(days=days),
    )
    assert (deadline.owed_by_initiator, deadline.escalates) == (True, False)


@pytest.mark.asyncio
@pytest.mark.parametrize("then", [EventCode.HEALTH_EXAM_REQUESTED, EventCode.PLACEMENT_ENDED])
async def test_a_missing_2017_209_request_is_reminded_until_it_is_sent_or_the_placement_ends(
    tracker, deadlines, then
) -> None:
    await tracker(record(EventCode.PLACEMENT_STARTED, bundle("m1", BU_HALSAN)))
    reminded = AT + dt.timedelta(days=14)

    [due] = deadlines.due(reminded)
    assert (due.name, due.to, due.event) == (
        "health-exam-request",
        "vasteras-socialtjanst",
        EventCode.DEADLINE_REMINDER,
    )
    assert deadlines.due(reminded - dt.timedelta(minutes=1)) == []

    await tracker(record(then, bundle("m2", BU_HALSAN), process="proc-2"))  # another process, the same child

    assert deadlines.due(reminded) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("days_before", [0, 1, 14])
async def test_a_2017_209_request_sent_before_the_placement_event_closes_its_reminder(
    tracker, deadlines, days_before
) -> None:
    """Social services sent the request before the placement reached sambus: nothing is reminded."""
    sent = (AT - dt.timedelta(days=days_before)).isoformat()
    await tracker(
        record(EventCode.HEALTH_EXAM_REQUESTED, bundle("m0", BU_HALSAN, lastModified=sent), process="proc-0")
    )
    await tracker(record(EventCode.PLACEMENT_STARTED, bundle("m1", BU_HALSAN)))

    assert deadlines.due(AT + dt.timedelta(days=400)) == []
    opened = deadlines.state("proc-1:health-exam-request")
    assert opened is not None
    assert opened["closed_at"] is not None, "opened already closed: the ledger of deadlines shows it"


@pytest.mark.asyncio
async def test_a_request_older_than_the_term_before_the_placement_does_not_close_its_reminder(
    tracker, deadlines
) -> None:
    """A request long before the placement was for something else (an earlier placement): fail closed."""
    sent = (AT - dt.timedelta(days=15)).isoformat()
    await tracker(
        record(EventCode.HEALTH_EXAM_REQUESTED, bundle("m0", BU_HALSAN, lastModified=sent), process="proc-0")
    )
    await tracker(record(EventCode.PLACEMENT_STARTED, bundle("m1", BU_HALSAN)))

    [due] = deadlines.due(AT + dt.timedelta(days=14))
    assert (due.name, due.process_id) == ("health-exam-request", "proc-1")


def test_a_sip_follow_up_date_in_the_plan_sets_the_deadline() -> None:
    plan = bundle("m1", BU_HALSAN, restriction={"period": {"end": "2027-03-01T00:00:00+00:00"}})

    [deadline] = DeadlineRules().opened_by(EventCode.SIP_PLAN_ESTABLISHED, at=AT, bundle=plan, birth=None)

    assert deadline.due_at == dt.datetime(2027, 3, 1, tzinfo=dt.UTC)


@pytest.mark.asyncio
@pytest.mark.parametrize("value", [b"{not json", b'{"resourceType": "Bundle", "id": "m1"}'])
async def test_a_record_that_is_no_intent_is_skipped_not_dead_lettered_twice(tracker, store, value) -> None:
    broken = record(EventCode.SIP_INITIATED, {})
    fields = {name: getattr(broken, name) for name in broken.__dataclass_fields__}
    fields["value"] = value

    assert await tracker(ConsumerRecord(**fields)) == []
    assert store.get("proc-1") is None


def test_overdue_lists_open_deadlines_past_due_by_process_id_never_by_child(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    deadlines = Deadlines(engine)
    due = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with deadlines._engine.begin() as conn:  # noqa: SLF001 - the stage opens deadlines inside its transaction
        for process_id, days in (("p-late", 0), ("p-later", 10)):
            deadlines.open(
                conn,
                process_id=process_id,
                deadline=Deadline(
                    name="lvu32-exam",
                    due_at=due + dt.timedelta(days=days),
                    remind_at=due - dt.timedelta(days=3),
                ),
                child="pseudonym-of-the-child",
                responsible="vastmanland-bu-halsan",
                escalate_to="vasteras-socialtjanst",
            )
        deadlines.close(conn, process_id="p-closed", names=["lvu32-exam"], at=due)

    overdue = deadlines.overdue(due + dt.timedelta(days=1))

    assert [(o.case, o.process, o.step, o.due) for o in overdue] == [
        ("p-late", "lvu32-exam", "escalation pending", due)
    ]
    assert "pseudonym-of-the-child" not in repr(overdue)
    deadlines.mark_fired(["p-late:lvu32-exam|escalation"], due + dt.timedelta(days=1))
    assert [o.step for o in deadlines.overdue(due + dt.timedelta(days=11))] == [
        "escalated",
        "escalation pending",
    ]


@pytest.mark.asyncio
async def test_the_process_state_knows_who_asked_each_unit_and_nobody_else(tracker, store) -> None:
    await tracker(record(EventCode.HEALTH_EXAM_REQUESTED, bundle("m1", VC, DENTAL)))

    def askers(answerer: str, task_id: str | None = None, process: str = "proc-1") -> frozenset[str] | None:
        return store.askers(process, answerer=answerer, task_id=task_id)

    assert askers("vastmanland-vc-vasteras") == {"vasteras-socialtjanst"}
    assert askers("vastmanland-vc-vasteras", "t0") == {"vasteras-socialtjanst"}
    assert askers("vastmanland-folktandvarden", "t1") == {"vasteras-socialtjanst"}
    assert askers("vastmanland-folktandvarden", "t0") == frozenset()  # t0 was the vårdcentral's
    assert askers("vastmanland-bu-halsan") == frozenset()  # asked nothing here
    assert askers("vastmanland-vc-vasteras", "t9") is None  # a Task not seen (yet)
    assert askers("vastmanland-vc-vasteras", process="proc-2") is None

    await tracker(record(EventCode.HEALTH_EXAM_COMPLETED, bundle("m2", VC, status="completed")))
    assert askers("vasteras-socialtjanst") == frozenset()  # an answer asks nothing


@pytest.mark.asyncio
async def test_joint_planning_is_owed_by_the_placing_board_and_never_reminds_the_notified_units(
    tracker, deadlines
) -> None:
    acute = bundle("m1", BU_HALSAN, DENTAL, restriction={"period": {"end": "2026-11-16"}})
    await tracker(record(EventCode.PLACEMENT_STARTED, acute))

    state = deadlines.state("proc-1:joint-planning")
    assert (state["responsible"], state["escalate_to"]) == ("vasteras-socialtjanst", "vasteras-socialtjanst")


@pytest.mark.asyncio
async def test_a_deadline_reminds_a_unit_the_message_asked_not_one_refused(tracker, deadlines) -> None:
    # BUP without a stated care contact is refused by the routing rules: it is no party of the SIP.
    await tracker(
        record(EventCode.SIP_INITIATED, bundle("m1", (HSA_ID_SYSTEM, "SE2321000206-1002"), BU_HALSAN))
    )

    assert deadlines.state("proc-1:adulthood")["responsible"] == "vastmanland-bu-halsan"


@pytest.mark.asyncio
async def test_a_task_sent_by_routing_address_is_kept_under_the_id_its_organisation_receives(
    tracker, store
) -> None:
    concern = bundle(
        "m1",
        (ROUTING_ADDRESS_SYSTEM, "social_services@1980"),
        groupIdentifier={"value": "proc-1"},
        requester={"identifier": {"system": SCHOOL_UNIT_SYSTEM, "value": "19800002"}},
    )
    concern["entry"][-1]["resource"]["address"] = [{"district": "1980"}]  # where the child lives
    await tracker(record(EventCode.CONCERN_REPORTED, concern))
    received = task_id_for("proc-1", {"system": SOCIAL[0], "value": SOCIAL[1]})

    assert store.tasks_of("proc-1", "vasteras-socialtjanst") == [received]
    assert store.askers("proc-1", answerer="vasteras-socialtjanst", task_id=received) == {
        "vasteras-skola-sodra"
    }


@pytest.mark.asyncio
async def test_the_process_time_is_when_the_event_happened_not_when_the_message_was_assembled(
    tracker, store
) -> None:
    happened = AT - dt.timedelta(days=3)
    await tracker(record(EventCode.LVU32_EXAM_ORDERED, bundle("m1", VC, lastModified=happened.isoformat())))

    with store.engine.connect() as conn:
        [updated] = conn.execute(sa.text("select updated_at from processes")).scalars()
    assert dt.datetime.fromisoformat(str(updated)).replace(tzinfo=dt.UTC) == happened


@pytest.mark.asyncio
async def test_a_hand_over_meeting_to_adult_care_closes_the_adulthood_notice_of_the_childs_sip(
    tracker, deadlines, store
) -> None:
    await tracker(record(EventCode.SIP_INITIATED, bundle("m1", BU_HALSAN)))
    assert [t.name for t in deadlines.due(dt.datetime(2029, 10, 1, tzinfo=dt.UTC))] == ["adulthood"]

    psychiatry = (HSA_ID_SYSTEM, "SE2321000206-1007")
    await tracker(record(EventCode.HANDOVER_MEETING_CALLED, bundle("m2", psychiatry), process="proc-2"))

    handover = store.get("proc-2")
    assert (handover.kind, handover.state) == ("handover-meeting", "meeting-called")
    assert handover.parties == {"vastmanland-vuxenpsykiatri": "invited"}
    assert deadlines.due(dt.datetime(2029, 10, 1, tzinfo=dt.UTC)) == [], "the meeting is the transition"


@pytest.mark.asyncio
async def test_a_birth_date_sent_for_a_child_without_personnummer_opens_its_adulthood_deadline(
    tracker, deadlines
) -> None:
    data = bundle("m1", BU_HALSAN)
    data["entry"][-1]["resource"] = {
        "resourceType": "Patient",
        "identifier": [{"system": "http://electronichealth.se/identifier/LMA-nummer", "value": "12-345678"}],
        "birthDate": "2013-05-02",
    }

    await tracker(record(EventCode.SIP_INITIATED, data))

    assert deadlines.state("proc-1:adulthood")["due_at"].date() == dt.date(2031, 5, 2)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("event", "kind", "state"),
    [
        (EventCode.SIP_INITIATED, "sip", "invited"),
        (EventCode.HEALTH_EXAM_REQUESTED, "health-exam-2017-209", "requested"),
        (EventCode.PLACEMENT_STARTED, "placement", "placed"),
        (EventCode.HIDDEN_RESIDENCE_DECIDED, "hidden-residence", "started"),
        (EventCode.INVESTIGATION_INFO_REQUESTED, "investigation", "started"),
    ],
)
async def test_a_process_starts_in_the_state_of_its_first_message_with_every_unit_asked_invited(
    tracker, store, event, kind, state
) -> None:
    # The first message inserts the process as it ends (no second write): the same row as ever.
    await tracker(record(event, bundle("m1", BU_HALSAN, DENTAL)))

    process = store.get("proc-1")
    assert (process.kind, process.state, process.initiator) == (kind, state, "vasteras-socialtjanst")
    assert process.parties == {"vastmanland-bu-halsan": "invited", "vastmanland-folktandvarden": "invited"}
    assert store.tasks_of("proc-1", "vastmanland-bu-halsan") == ["t0"]
    assert store.tasks_of("proc-1", "vastmanland-folktandvarden") == ["t1"]

    await tracker(record(EventCode.TASK_STATUS_CHANGED, bundle("m2", BU_HALSAN, status="accepted")))
    assert store.get("proc-1").parties == {
        "vastmanland-bu-halsan": "accepted",
        "vastmanland-folktandvarden": "invited",
    }


@pytest.mark.asyncio
async def test_a_start_sent_again_under_a_new_message_id_opens_no_deadline_twice(tracker, deadlines) -> None:
    await tracker(record(EventCode.HIDDEN_RESIDENCE_DECIDED, bundle("m1", BU_HALSAN, DENTAL)))
    first = deadlines.state("proc-1:guardian-access-ack:vastmanland-bu-halsan")
    assert first is not None
    await tracker(record(EventCode.HIDDEN_RESIDENCE_DECIDED, bundle("m2", BU_HALSAN, DENTAL)))

    assert deadlines.state("proc-1:guardian-access-ack:vastmanland-bu-halsan") == first
    assert deadlines.state("proc-1:guardian-access-ack:vastmanland-folktandvarden")["closed_at"] is None


@pytest.mark.asyncio
async def test_a_sip_closes_the_childs_joint_planning_even_on_a_process_that_began_as_another_kind(
    tracker, deadlines
) -> None:
    # An acute placement sent under an existing SIP's process id: its joint planning is owed all the same.
    await tracker(record(EventCode.SIP_INITIATED, bundle("m1", BU_HALSAN)))
    acute = bundle("m2", BU_HALSAN, DENTAL, restriction={"period": {"end": "2026-11-16"}})
    await tracker(record(EventCode.PLACEMENT_STARTED, acute))
    assert deadlines.state("proc-1:joint-planning")["closed_at"] is None

    await tracker(record(EventCode.SIP_INITIATED, bundle("m3", BU_HALSAN), process="proc-2"))

    assert deadlines.state("proc-1:joint-planning")["closed_at"] is not None
