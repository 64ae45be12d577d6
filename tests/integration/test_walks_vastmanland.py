"""Västmanland's processes walked on the real broker, first event to last answer (the packaged directory).

Each step asserts every delivery of the walk so far on every delivery topic: who received which message, and
that nobody else received anything (:mod:`tests.integration.walks` lists which test walks which process).
Events happen now, so no deadline falls due while a walk reads.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.identifiers import LMA_NUMBER_SYSTEM, child_key
from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import (
    BU_HALSAN,
    BUP,
    CHILD,
    DENTAL,
    SOCIAL,
    addressed_to,
    task_of,
)
from tests.integration.walks import Walk, process_of

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SCHOOL = "19800002"
"""Västerås, Södra skolan (takes part in SIP through Cosmic Link itself)."""
PARTICIPANTS = [{"organisationNumber": SOCIAL}, {"schoolUnitCode": SCHOOL}, {"hsaId": BU_HALSAN}]
EVERY_PARTICIPANT = ("vasteras-socialtjanst", "vasteras-skola-sodra", "vastmanland-bu-halsan")
ASSESSMENT = {"provision": "OSL 26:9", "assessedBy": "ifo-handlaggare-41"}
"""A social worker's assessment that OSL 26:9 allows the disclosure (no consent needed)."""
RESIDENCE = {"line": ["Storgatan 1"], "postalCode": "722 10", "city": "Västerås", "municipality": "1980"}


def _each(code: str) -> dict[tuple[str, str], int]:
    return dict.fromkeys(((r, code) for r in EVERY_PARTICIPANT), 1)


async def test_vastmanland_sip_from_initiative_to_closure(running: Running) -> None:
    """Social services offers a SIP; school and BU-hälsan accept; meeting, plan, follow-up, closed."""
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN, AgencyKind.SCHOOL)
    walk = Walk(running)

    await walk.send(
        "social",
        "sip-initiated",
        "sip-1",
        {
            "organisationNumber": SOCIAL,
            "reason": "social_situation",
            "invite": [{"schoolUnitCode": SCHOOL}, {"hsaId": BU_HALSAN}],
        },
    )
    await walk.expect(
        {("vasteras-skola-sodra", "sip-initiated"): 1, ("vastmanland-bu-halsan", "sip-initiated"): 1}
    )
    school_task = walk.task("vasteras-skola-sodra", "sip-initiated")
    care_task = walk.task("vastmanland-bu-halsan", "sip-initiated")
    process_id = process_of(school_task)

    await walk.send(
        "school",
        "sip-answered",
        "school-accepts",
        {
            "processId": process_id,
            "schoolUnitCode": SCHOOL,
            "answer": "accepted",
            "answerTo": {"organisationNumber": SOCIAL},
        },
    )
    await walk.send(
        "ehr",
        "task-status",
        "bu-halsan-accepts",
        {
            "processId": process_id,
            "taskId": care_task["id"],
            "status": "accepted",
            "hsaId": BU_HALSAN,
            "answerTo": {"organisationNumber": SOCIAL},
        },
    )
    await walk.expect(
        {
            ("vasteras-socialtjanst", "sip-invitation-answered"): 1,
            ("vasteras-socialtjanst", "task-status-changed"): 1,
        }
    )
    assert school_task["owner"]["identifier"]["value"] == SCHOOL

    sip = {"processId": process_id, "organizer": {"organisationNumber": SOCIAL}, "participants": PARTICIPANTS}
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    await walk.send("sip:ehr", "meeting-scheduled", "meeting-set", {**sip, "start": soon.isoformat()})
    await walk.expect(_each("sip-meeting-scheduled"))

    await walk.send("sip:ehr", "meeting-held", "meeting-held", {**sip, "heldAt": soon.isoformat()})
    await walk.expect(_each("sip-meeting-held"))

    follow_up = (soon + dt.timedelta(days=90)).date()
    await walk.send(
        "sip:ehr",
        "plan-established",
        "plan",
        {
            **sip,
            "leadCoordinator": {"organisationNumber": SOCIAL},
            "leadCoordinatorPerson": {"role": "social_worker", "userId": "ifo-handlaggare-41"},
            "activities": [
                {"agency": {"schoolUnitCode": SCHOOL}, "action": "school_support"},
                {"agency": {"hsaId": BU_HALSAN}, "action": "treatment"},
                {"agency": {"organisationNumber": SOCIAL}, "action": "family_support"},
            ],
            "followUp": follow_up.isoformat(),
        },
    )
    await walk.expect(_each("sip-plan-established"))

    await walk.send(
        "sip:ehr",
        "followed-up",
        "followed-up",
        {**sip, "outcome": "continue", "nextFollowUp": (follow_up + dt.timedelta(days=90)).isoformat()},
    )
    await walk.expect(_each("sip-followed-up"))

    await walk.send("sip:ehr", "closed", "closed", {**sip, "reason": "goals_met"})
    await walk.expect(_each("sip-closed"))
    for recipient in EVERY_PARTICIPANT:
        closed = walk.task(recipient, "sip-closed")
        assert (closed["status"], process_of(closed)) == ("completed", process_id)
    await walk.no_dead_letters()


async def test_vastmanland_placement_from_start_to_end(running: Running) -> None:
    """A SoL placement: its notices, each unit's status back to the placing board, re-placement, end."""
    running.consent(
        CHILD, AgencyKind.BU_HALSAN, AgencyKind.SOCIAL_SERVICES, purpose=Purpose.INFORMATION_SHARING
    )
    walk = Walk(running)
    today = dt.datetime.now(dt.UTC).date()
    placement = {"placingMunicipality": "1980", "legalBasis": "sol", "notify": [{"hsaId": BU_HALSAN}]}

    await walk.send(
        "social",
        "placement-started",
        "placed",
        {**placement, "form": "family_home", "start": today.isoformat(), "residence": RESIDENCE},
    )
    await walk.expect({("vastmanland-bu-halsan", "placement-started"): 1})
    notice = walk.task("vastmanland-bu-halsan", "placement-started")

    await walk.send(
        "ehr",
        "task-status",
        "notice-accepted",
        {
            "processId": process_of(notice),
            "taskId": notice["id"],
            "status": "accepted",
            "hsaId": BU_HALSAN,
            "answerTo": {"organisationNumber": SOCIAL},
        },
    )
    await walk.expect({("vasteras-socialtjanst", "task-status-changed"): 1})
    status = walk.message("vasteras-socialtjanst", "task-status-changed")
    assert addressed_to(status) == ("urn:sambus:recipient:vasteras-socialtjanst", SOCIAL)

    await walk.send(
        "social",
        "placement-changed",
        "re-placed",
        {
            **placement,
            "form": "hvb",
            "start": (today + dt.timedelta(days=30)).isoformat(),
            "residence": RESIDENCE,
        },
    )
    await walk.expect({("vastmanland-bu-halsan", "placement-changed"): 1})

    await walk.send(
        "social",
        "placement-ended",
        "ended",
        {**placement, "end": (today + dt.timedelta(days=200)).isoformat()},
    )
    await walk.expect({("vastmanland-bu-halsan", "placement-ended"): 1})
    await walk.no_dead_letters()


async def test_vastmanland_acute_placement_to_its_joint_planning(running: Running) -> None:
    """An acute LVU placement on a professional's assessment reaches health and dental care; each unit's
    status goes back to the board, which then invites to joint planning (a SIP) within two weeks."""
    running.consent(CHILD, AgencyKind.BU_HALSAN, AgencyKind.SOCIAL_SERVICES)
    walk = Walk(running)
    today = dt.datetime.now(dt.UTC).date()

    await walk.send(
        "social",
        "placement-started",
        "acute",
        {
            "placingMunicipality": "1980",
            "legalBasis": "lvu",
            "hiddenResidence": False,  # answered: an LVU placement's residence waits for it
            "notify": [{"hsaId": BU_HALSAN}, {"hsaId": DENTAL}],
            "form": "family_home",
            "acute": True,
            "start": today.isoformat(),
            "residence": RESIDENCE,
            "secrecyAssessment": ASSESSMENT,
        },
    )
    await walk.expect(
        {
            ("vastmanland-bu-halsan", "placement-started"): 1,
            ("vastmanland-folktandvarden", "placement-started"): 1,
        }
    )
    notices = {
        (unit, recipient): walk.task(recipient, "placement-started")
        for unit, recipient in ((BU_HALSAN, "vastmanland-bu-halsan"), (DENTAL, "vastmanland-folktandvarden"))
    }
    for (unit, _), notice in notices.items():
        assert notice["restriction"]["period"]["end"], "joint planning within two weeks"
        await walk.send(
            "ehr",
            "task-status",
            f"accepted-{unit}",
            {
                "processId": process_of(notice),
                "taskId": notice["id"],
                "status": "accepted",
                "hsaId": unit,
                "answerTo": {"organisationNumber": SOCIAL},
            },
        )
    await walk.expect({("vasteras-socialtjanst", "task-status-changed"): 2})
    statuses = walk.messages("vasteras-socialtjanst", "task-status-changed")
    assert {task_of(m)["owner"]["identifier"]["value"] for m in statuses} == {BU_HALSAN, DENTAL}

    await walk.send(
        "social",
        "sip-initiated",
        "joint-planning",
        {"organisationNumber": SOCIAL, "reason": "social_situation", "invite": [{"hsaId": BU_HALSAN}]},
    )
    await walk.expect({("vastmanland-bu-halsan", "sip-initiated"): 1})
    await walk.no_dead_letters()


async def test_vastmanland_suicide_risk_assessment_before_a_placement(running: Running) -> None:
    """Social services asks BUP (on a professional's OSL 26:9 assessment); BUP's answer comes back."""
    walk = Walk(running)

    await walk.send(
        "social",
        "suicide-risk-assessment-requested",
        "assess",
        {
            "organisationNumber": SOCIAL,
            "performer": {"hsaId": BUP},
            "secrecyAssessment": ASSESSMENT,
        },
    )
    await walk.expect({("vastmanland-bup", "suicide-risk-assessment-requested"): 1})
    request = walk.task("vastmanland-bup", "suicide-risk-assessment-requested")

    await walk.send(
        "ehr",
        "task-status",
        "assessed",
        {
            "processId": process_of(request),
            "taskId": request["id"],
            "status": "completed",
            "hsaId": BUP,
            "answerTo": {"organisationNumber": SOCIAL},
        },
    )
    await walk.expect({("vasteras-socialtjanst", "task-status-changed"): 1})
    answer = walk.task("vasteras-socialtjanst", "task-status-changed")
    assert (answer["status"], answer["owner"]["identifier"]["value"]) == ("completed", BUP)
    await walk.no_dead_letters()


LMA_CHILD = {"lmaNumber": "12-345678", "birthDate": "2013-05-02"}
"""A newly arrived asylum-seeking child: an LMA number, no personnummer or samordningsnummer."""
NORRA_SKOLAN = "19800001"
HEALTH_CENTRE = "SE2321000206-1006"
"""Västerås vårdcentral Centrum (primary care where the school is)."""


async def test_vastmanland_newly_arrived_child_referred_by_student_health(running: Running) -> None:
    """Student health refers a newly arrived child who was not health-examined (lag 2008:344); the health
    centre accepts and, after the examination, completes its Task: each answer goes to the school alone."""
    running.consent(
        child_key(LMA_NUMBER_SYSTEM, "12-345678"),
        AgencyKind.PRIMARY_CARE,
        AgencyKind.SCHOOL,
        purpose=Purpose.INFORMATION_SHARING,
    )
    walk = Walk(running, child=LMA_CHILD)

    await walk.send("school", "newly-arrived-referral", "referral-1", {"schoolUnitCode": NORRA_SKOLAN})
    await walk.expect({("vastmanland-vc-vasteras", "newly-arrived-health-referral"): 1})
    referral = walk.message("vastmanland-vc-vasteras", "newly-arrived-health-referral")
    [patient] = [e["resource"] for e in referral["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert patient["identifier"] == [{"system": LMA_NUMBER_SYSTEM, "value": "12-345678"}]
    assert patient["birthDate"] == "2013-05-02"
    task = task_of(referral)
    assert task["code"]["coding"][0]["code"] == "newly-arrived-health-examination"
    assert task["requester"]["identifier"]["value"] == NORRA_SKOLAN

    for step, status in (("exam-accepted", "accepted"), ("exam-done", "completed")):
        await walk.send(
            "ehr",
            "task-status",
            step,
            {
                "processId": process_of(task),
                "taskId": task["id"],
                "status": status,
                "hsaId": HEALTH_CENTRE,
                "answerTo": {"schoolUnitCode": NORRA_SKOLAN},
            },
        )
        await walk.expect({("vasteras-skola-norra", "task-status-changed"): 1})
    answers = walk.messages("vasteras-skola-norra", "task-status-changed")
    assert sorted(task_of(m)["status"] for m in answers) == ["accepted", "completed"]
    assert {addressed_to(m) for m in answers} == {("urn:sambus:recipient:vasteras-skola-norra", NORRA_SKOLAN)}
    await walk.no_dead_letters()


ADULT_SOCIAL_UNIT = "SE2120002080-VUX1"
"""The adult unit of social services (vuxenenhet): it answers through social services' own system."""
EHR_STATUS = ("ehr", "task-status")
SOCIAL_ANSWER = ("social", "task-answered")
ADULT_PSYCHIATRY = "SE2321000206-1007"


async def test_vastmanland_handover_to_adult_care(running: Running) -> None:
    """Before the 18th birthday social services call the hand-over meeting: adult social services (by kind
    and municipality), adult psychiatry and BUP each get a Task due on the meeting day; the care units and the
    adult unit of social services (by its HSA-id, through social services' own system) accept, adult
    psychiatry and the adult unit complete after the meeting, each answer to the caller alone."""
    young = "20101224-5674"  # turns 18 on 2028-12-24
    running.consent(
        young.replace("-", ""),
        AgencyKind.ADULT_SOCIAL_SERVICES,
        AgencyKind.ADULT_PSYCHIATRY,
        AgencyKind.BUP,
        AgencyKind.SOCIAL_SERVICES,
        purpose=Purpose.INFORMATION_SHARING,
    )
    walk = Walk(running, child=young)
    meeting = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)

    await walk.send(
        "social",
        "handover-meeting-called",
        "handover-1",
        {
            "caller": {"organisationNumber": SOCIAL},
            "meeting": meeting.isoformat(),
            "invite": [
                {"kind": "adult_social_services", "municipality": "1980"},
                {"hsaId": ADULT_PSYCHIATRY},
                {"hsaId": BUP},
            ],
        },
    )
    invited = ("vasteras-vuxenenhet", "vastmanland-vuxenpsykiatri", "vastmanland-bup")
    await walk.expect(dict.fromkeys(((r, "handover-meeting-called") for r in invited), 1))
    for recipient in invited:
        task = walk.task(recipient, "handover-meeting-called")
        assert task["code"]["coding"][0]["code"] == "handover-meeting"
        assert task["restriction"]["period"]["end"].startswith(meeting.date().isoformat())
        assert task["requester"]["identifier"]["value"] == SOCIAL

    for recipient, (source, event), hsa_id, step, status in (
        ("vastmanland-vuxenpsykiatri", EHR_STATUS, ADULT_PSYCHIATRY, "psychiatry-accepts", "accepted"),
        ("vastmanland-bup", EHR_STATUS, BUP, "bup-accepts", "accepted"),
        ("vasteras-vuxenenhet", SOCIAL_ANSWER, ADULT_SOCIAL_UNIT, "adult-unit-accepts", "accepted"),
        ("vastmanland-vuxenpsykiatri", EHR_STATUS, ADULT_PSYCHIATRY, "psychiatry-took-over", "completed"),
        ("vasteras-vuxenenhet", SOCIAL_ANSWER, ADULT_SOCIAL_UNIT, "adult-unit-took-over", "completed"),
    ):
        task = walk.task(recipient, "handover-meeting-called")
        await walk.send(
            source,
            event,
            step,
            {
                "processId": process_of(task),
                "taskId": task["id"],
                "status": status,
                "hsaId": hsa_id,
                "answerTo": {"organisationNumber": SOCIAL},
            },
        )
        await walk.expect({("vasteras-socialtjanst", "task-status-changed"): 1})
    answers = walk.messages("vasteras-socialtjanst", "task-status-changed")
    assert sorted((task_of(m)["owner"]["identifier"]["value"], task_of(m)["status"]) for m in answers) == [
        (ADULT_SOCIAL_UNIT, "accepted"),
        (ADULT_SOCIAL_UNIT, "completed"),
        (BUP, "accepted"),
        (ADULT_PSYCHIATRY, "accepted"),
        (ADULT_PSYCHIATRY, "completed"),
    ]
    await walk.no_dead_letters()
