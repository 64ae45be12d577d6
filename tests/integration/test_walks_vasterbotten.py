"""Västerbotten's processes walked on the real broker, first event to last answer (its own directory).

Each step asserts every delivery of the walk so far on every delivery topic: who received which message, and
that nobody else received anything (:mod:`tests.integration.walks` lists which test walks which process).
Events happen now, so no deadline falls due while a walk reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.identifiers import LMA_NUMBER_SYSTEM, child_key
from sambus.contracts.topics import Topics
from sambus.router.routing.directory import PACKAGED_VASTERBOTTEN_DIRECTORY
from sambus.router.settings import Settings
from tests.database import upgraded
from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import CHILD, addressed_to, task_of
from tests.integration.walks import Walk, process_of

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SCHOOL = "24800001"
"""Ersbodaskolan, Umeå: an equal SIP party without a relay."""
UMEA_SOCIAL = "212000-2742"
SKELLEFTEA_SOCIAL = "212000-2759"
HEALTH_CENTRE = "SE2321000222-2001"
DENTAL = "SE2321000222-2003"
PARTICIPANTS = [{"schoolUnitCode": SCHOOL}, {"organisationNumber": UMEA_SOCIAL}, {"hsaId": HEALTH_CENTRE}]
EVERY_PARTICIPANT = ("umea-skola-ersboda", "umea-socialtjanst", "vasterbotten-hc-umea")


@pytest.fixture
def settings(topics: Topics, tmp_path: Path) -> Settings:
    """Västerbotten: its directory and its county agreement."""
    return Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'registry.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        instance_id=secrets.token_hex(4),
        directory=Path(str(PACKAGED_VASTERBOTTEN_DIRECTORY)),
        county="vasterbotten",
    )


def _each(code: str) -> dict[tuple[str, str], int]:
    return dict.fromkeys(((r, code) for r in EVERY_PARTICIPANT), 1)


async def test_vasterbotten_school_sip_from_initiative_to_closure(running: Running) -> None:
    """SIP Barnets plan: the school offers it; social services and the health centre accept and answer the
    school; social services holds the meeting, the plan names a coordinator at the school; closed."""
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.PRIMARY_CARE, AgencyKind.SCHOOL)
    walk = Walk(running)

    await walk.send(
        "school",
        "sip-initiated",
        "ersboda-sip",
        {
            "schoolUnitCode": SCHOOL,
            "initiatedBy": "student_health",
            "reason": "school_attendance",
            "invite": [{"organisationNumber": UMEA_SOCIAL}, {"hsaId": HEALTH_CENTRE}],
        },
    )
    await walk.expect(
        {("umea-socialtjanst", "sip-initiated"): 1, ("vasterbotten-hc-umea", "sip-initiated"): 1}
    )
    social_task = walk.task("umea-socialtjanst", "sip-initiated")
    care_task = walk.task("vasterbotten-hc-umea", "sip-initiated")
    process_id = process_of(social_task)

    await walk.send(
        "social",
        "task-answered",
        "umea-accepts",
        {
            "processId": process_id,
            "taskId": social_task["id"],
            "status": "accepted",
            "organisationNumber": UMEA_SOCIAL,
            "answerTo": {"schoolUnitCode": SCHOOL},
        },
    )
    await walk.send(
        "ehr",
        "task-status",
        "hc-accepts",
        {
            "processId": process_id,
            "taskId": care_task["id"],
            "status": "accepted",
            "hsaId": HEALTH_CENTRE,
            "answerTo": {"schoolUnitCode": SCHOOL},
        },
    )
    await walk.expect({("umea-skola-ersboda", "task-status-changed"): 2})
    answers = walk.messages("umea-skola-ersboda", "task-status-changed")
    assert {addressed_to(m) for m in answers} == {("urn:sambus:recipient:umea-skola-ersboda", SCHOOL)}

    sip = {
        "processId": process_id,
        "organizer": {"organisationNumber": UMEA_SOCIAL},
        "participants": PARTICIPANTS,
    }
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    await walk.send("sip:social", "meeting-scheduled", "meeting-set", {**sip, "start": soon.isoformat()})
    await walk.expect(_each("sip-meeting-scheduled"))
    await walk.send("sip:social", "meeting-held", "meeting-held", {**sip, "heldAt": soon.isoformat()})
    await walk.expect(_each("sip-meeting-held"))
    await walk.send(
        "sip:social",
        "plan-established",
        "plan",
        {
            **sip,
            "leadCoordinator": {"schoolUnitCode": SCHOOL},
            "leadCoordinatorPerson": {"role": "school_counsellor", "userId": "kurator-ersboda-2"},
            "activities": [
                {"agency": {"schoolUnitCode": SCHOOL}, "action": "school_support"},
                {"agency": {"hsaId": HEALTH_CENTRE}, "action": "assessment"},
                {"agency": {"organisationNumber": UMEA_SOCIAL}, "action": "family_support"},
            ],
            "followUp": (soon + dt.timedelta(days=60)).date().isoformat(),
        },
    )
    await walk.expect(_each("sip-plan-established"))
    await walk.send("sip:social", "followed-up", "followed-up", {**sip, "outcome": "revised"})
    await walk.expect(_each("sip-followed-up"))
    await walk.send("sip:social", "closed", "closed", {**sip, "reason": "goals_met"})
    await walk.expect(_each("sip-closed"))
    await walk.no_dead_letters()


async def test_vasterbotten_2017_209_examination(running: Running) -> None:
    """Umeå social services asks for a placed child's examination; both statements come back to it."""
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, purpose=Purpose.INFORMATION_SHARING)
    walk = Walk(running)

    await walk.send(
        "social",
        "health-exam-requested",
        "umea-exam",
        {"organisationNumber": UMEA_SOCIAL, "residenceMunicipality": "2480"},
    )
    await walk.expect(
        {
            ("vasterbotten-hc-umea", "health-exam-requested"): 1,
            ("vasterbotten-folktandvarden-umea", "health-exam-requested"): 1,
        }
    )
    request = walk.task("vasterbotten-hc-umea", "health-exam-requested")
    for unit, statement in ((HEALTH_CENTRE, "mental_physical"), (DENTAL, "oral")):
        await walk.send(
            "ehr",
            "health-exam-completed",
            f"statement-{statement}",
            {
                "processId": process_of(request),
                "hsaId": unit,
                "statement": statement,
                "documentId": f"utlatande-{statement}",
                "answerTo": {"organisationNumber": UMEA_SOCIAL},
            },
        )
    await walk.expect({("umea-socialtjanst", "health-exam-completed"): 2})
    await walk.no_dead_letters()


async def test_vasterbotten_report_of_concern(running: Running) -> None:
    """An Umeå school reports concern for a child living in Skellefteå: Skellefteå's social services only,
    whose answer goes back to the school (no consent needed)."""
    walk = Walk(running)

    await walk.send(
        "school",
        "concern-reported",
        "ersboda-oro",
        {
            "schoolUnitCode": SCHOOL,
            "residenceMunicipality": "2482",
            "category": "neglect",
            "reporter": {"role": "teacher", "userId": "larare-ersboda-9"},
        },
    )
    await walk.expect({("skelleftea-socialtjanst", "concern-reported"): 1})
    report = walk.task("skelleftea-socialtjanst", "concern-reported")

    await walk.send(
        "social",
        "task-answered",
        "skelleftea-tar-emot",
        {
            "processId": process_of(report),
            "taskId": report["id"],
            "status": "accepted",
            "organisationNumber": SKELLEFTEA_SOCIAL,
            "answerTo": {"schoolUnitCode": SCHOOL},
        },
    )
    await walk.expect({("umea-skola-ersboda", "task-status-changed"): 1})
    await walk.no_dead_letters()


BUP_UMEA = "SE2321000222-2002"


async def test_vasterbotten_suicide_risk_from_alert_to_both_answers(running: Running) -> None:
    """Student health sees acute suicide risk: Umeå social services and BUP Umeå are alerted at once (the
    school nurse assessed OSL 25:12); both acknowledge within the hours, and both answers go to the school."""
    walk = Walk(running)

    await walk.send(
        "school",
        "suicide-risk-reported",
        "ersboda-risk",
        {
            "schoolUnitCode": SCHOOL,
            "residenceMunicipality": "2480",
            "secrecyAssessment": {"provision": "OSL 25:12", "assessedBy": "skolskoterska-ersboda-1"},
        },
    )
    await walk.expect(
        {
            ("umea-socialtjanst", "suicide-risk-reported"): 1,
            ("vasterbotten-bup-umea", "suicide-risk-reported"): 1,
        }
    )
    social_alert = walk.task("umea-socialtjanst", "suicide-risk-reported")
    bup_alert = walk.task("vasterbotten-bup-umea", "suicide-risk-reported")
    assert social_alert["priority"] == bup_alert["priority"] == "stat"

    await walk.send(
        "social",
        "task-answered",
        "umea-acts",
        {
            "processId": process_of(social_alert),
            "taskId": social_alert["id"],
            "status": "in-progress",
            "organisationNumber": UMEA_SOCIAL,
            "answerTo": {"schoolUnitCode": SCHOOL},
        },
    )
    await walk.send(
        "ehr",
        "task-status",
        "bup-acts",
        {
            "processId": process_of(bup_alert),
            "taskId": bup_alert["id"],
            "status": "accepted",
            "hsaId": BUP_UMEA,
            "answerTo": {"schoolUnitCode": SCHOOL},
        },
    )
    await walk.expect({("umea-skola-ersboda", "task-status-changed"): 2})
    answers = walk.messages("umea-skola-ersboda", "task-status-changed")
    owners = {task_of(m)["owner"]["identifier"]["value"] for m in answers}
    assert owners == {UMEA_SOCIAL, BUP_UMEA}
    await walk.no_dead_letters()


async def test_vasterbotten_information_to_a_social_services_investigation(running: Running) -> None:
    """Umeå social services asks the health centre and BUP for records (no consent); each answers it."""
    walk = Walk(running)

    await walk.send(
        "social",
        "investigation-info-requested",
        "umea-utredning",
        {"organisationNumber": UMEA_SOCIAL, "recipients": [{"hsaId": HEALTH_CENTRE}, {"hsaId": BUP_UMEA}]},
    )
    await walk.expect(
        {
            ("vasterbotten-hc-umea", "investigation-info-requested"): 1,
            ("vasterbotten-bup-umea", "investigation-info-requested"): 1,
        }
    )
    for unit, recipient in ((HEALTH_CENTRE, "vasterbotten-hc-umea"), (BUP_UMEA, "vasterbotten-bup-umea")):
        request = walk.task(recipient, "investigation-info-requested")
        await walk.send(
            "ehr",
            "investigation-info-provided",
            f"records-{unit}",
            {
                "processId": process_of(request),
                "hsaId": unit,
                "taskId": request["id"],
                "documentIds": [f"journal-{unit}"],
                "answerTo": {"organisationNumber": UMEA_SOCIAL},
            },
        )
    await walk.expect({("umea-socialtjanst", "investigation-info-provided"): 2})
    await walk.no_dead_letters()


HEALTH_CENTRE_SKELLEFTEA = "SE2321000222-2004"


async def test_vasterbotten_placement_from_start_to_end(running: Running) -> None:
    """Umeå places a child in Skellefteå: the health centre there is told and answers Umeå; then the end."""
    running.consent(
        CHILD, AgencyKind.PRIMARY_CARE, AgencyKind.SOCIAL_SERVICES, purpose=Purpose.INFORMATION_SHARING
    )
    walk = Walk(running)
    today = dt.datetime.now(dt.UTC).date()
    placement = {
        "placingMunicipality": "2480",
        "legalBasis": "sol",
        "notify": [{"hsaId": HEALTH_CENTRE_SKELLEFTEA}],
    }

    await walk.send(
        "social",
        "placement-started",
        "umea-placerar",
        {
            **placement,
            "form": "family_home",
            "start": today.isoformat(),
            "residence": {
                "line": ["Storgatan 2"],
                "postalCode": "931 30",
                "city": "Skellefteå",
                "municipality": "2482",
            },
        },
    )
    await walk.expect({("vasterbotten-hc-skelleftea", "placement-started"): 1})
    notice = walk.task("vasterbotten-hc-skelleftea", "placement-started")
    assert notice["requester"]["identifier"]["value"] == UMEA_SOCIAL

    await walk.send(
        "ehr",
        "task-status",
        "hc-skelleftea-accepts",
        {
            "processId": process_of(notice),
            "taskId": notice["id"],
            "status": "accepted",
            "hsaId": HEALTH_CENTRE_SKELLEFTEA,
            "answerTo": {"organisationNumber": UMEA_SOCIAL},
        },
    )
    await walk.expect({("umea-socialtjanst", "task-status-changed"): 1})

    await walk.send(
        "social",
        "placement-ended",
        "umea-avslutar",
        {**placement, "end": (today + dt.timedelta(days=120)).isoformat()},
    )
    await walk.expect({("vasterbotten-hc-skelleftea", "placement-ended"): 1})
    await walk.no_dead_letters()


LMA_CHILD = {"lmaNumber": "12-345678", "birthDate": "2013-05-02"}
"""A newly arrived asylum-seeking child: an LMA number, no personnummer or samordningsnummer."""


async def test_vasterbotten_newly_arrived_child_referred_by_student_health(running: Running) -> None:
    """Student health at Ersbodaskolan refers a newly arrived child who was not health-examined (lag
    2008:344) to the health centre in Umeå, which accepts and then completes: each answer to the school."""
    running.consent(
        child_key(LMA_NUMBER_SYSTEM, "12-345678"),
        AgencyKind.PRIMARY_CARE,
        AgencyKind.SCHOOL,
        purpose=Purpose.INFORMATION_SHARING,
    )
    walk = Walk(running, child=LMA_CHILD)

    await walk.send("school", "newly-arrived-referral", "referral-1", {"schoolUnitCode": SCHOOL})
    await walk.expect({("vasterbotten-hc-umea", "newly-arrived-health-referral"): 1})
    referral = walk.message("vasterbotten-hc-umea", "newly-arrived-health-referral")
    [patient] = [e["resource"] for e in referral["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert patient["identifier"] == [{"system": LMA_NUMBER_SYSTEM, "value": "12-345678"}]
    task = task_of(referral)
    assert task["requester"]["identifier"]["value"] == SCHOOL

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
                "answerTo": {"schoolUnitCode": SCHOOL},
            },
        )
        await walk.expect({("umea-skola-ersboda", "task-status-changed"): 1})
    answers = walk.messages("umea-skola-ersboda", "task-status-changed")
    assert sorted(task_of(m)["status"] for m in answers) == ["accepted", "completed"]
    assert {addressed_to(m) for m in answers} == {("urn:sambus:recipient:umea-skola-ersboda", SCHOOL)}
    await walk.no_dead_letters()


ADULT_SOCIAL_UNIT = "SE2120002742-VUX1"
"""The adult unit of social services (vuxenenhet): it answers through social services' own system."""
EHR_STATUS = ("ehr", "task-status")
SOCIAL_ANSWER = ("social", "task-answered")
PSYCHIATRY = "vasterbotten-vuxenpsykiatri-umea"
ADULT_PSYCHIATRY = "SE2321000222-2006"
BUP = "SE2321000222-2002"


async def test_vasterbotten_handover_to_adult_care(running: Running) -> None:
    """A young person placed before 18 (Västerbotten follows them to 21) is handed over to adult care: Umeå's
    social services call the meeting before the 18th birthday; the adult unit of social services (by kind
    and municipality), adult psychiatry and BUP each get a Task; the care units' answers and the adult unit's
    (by its HSA-id, through social services' own system) go to the calling social services alone."""
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
            "caller": {"organisationNumber": UMEA_SOCIAL},
            "meeting": meeting.isoformat(),
            "invite": [
                {"kind": "adult_social_services", "municipality": "2480"},
                {"hsaId": ADULT_PSYCHIATRY},
                {"hsaId": BUP},
            ],
        },
    )
    invited = ("umea-vuxenenhet", "vasterbotten-vuxenpsykiatri-umea", "vasterbotten-bup-umea")
    await walk.expect(dict.fromkeys(((r, "handover-meeting-called") for r in invited), 1))
    for recipient in invited:
        task = walk.task(recipient, "handover-meeting-called")
        assert task["restriction"]["period"]["end"].startswith(meeting.date().isoformat())
        assert task["requester"]["identifier"]["value"] == UMEA_SOCIAL

    for recipient, (source, event), hsa_id, step, status in (
        (PSYCHIATRY, EHR_STATUS, ADULT_PSYCHIATRY, "psychiatry-accepts", "accepted"),
        ("vasterbotten-bup-umea", EHR_STATUS, BUP, "bup-accepts", "accepted"),
        ("umea-vuxenenhet", SOCIAL_ANSWER, ADULT_SOCIAL_UNIT, "adult-unit-accepts", "accepted"),
        (PSYCHIATRY, EHR_STATUS, ADULT_PSYCHIATRY, "psychiatry-took-over", "completed"),
        ("umea-vuxenenhet", SOCIAL_ANSWER, ADULT_SOCIAL_UNIT, "adult-unit-took-over", "completed"),
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
                "answerTo": {"organisationNumber": UMEA_SOCIAL},
            },
        )
        await walk.expect({("umea-socialtjanst", "task-status-changed"): 1})
    answers = walk.messages("umea-socialtjanst", "task-status-changed")
    assert sorted((task_of(m)["owner"]["identifier"]["value"], task_of(m)["status"]) for m in answers) == [
        (ADULT_SOCIAL_UNIT, "accepted"),
        (ADULT_SOCIAL_UNIT, "completed"),
        (BUP, "accepted"),
        (ADULT_PSYCHIATRY, "accepted"),
        (ADULT_PSYCHIATRY, "completed"),
    ]
    await walk.no_dead_letters()


async def test_vasterbotten_consultation_of_the_childs_current_care_contacts(running: Running) -> None:
    """During its investigation Umeå's social services consults the child's current care contacts
    ("Konsultation och hälsoundersökningar på begäran av socialtjänsten"): the health centre, which stated an
    active care contact, gets the consultation and answers it with its combined assessment of the child's
    health, to social services alone; BUP, which stated none, gets nothing (social services is told)."""
    walk = Walk(running)
    await walk.send(
        "ehr",
        "care-contact-stated",
        "hc-contact",
        {"hsaId": HEALTH_CENTRE, "active": True, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
    )
    pseudonym = running.app.pseudonymizer.of(CHILD)
    for _ in range(300):  # the processes stage records the care contact on its own consumer
        if running.app.processes.active(pseudonym, "vasterbotten-hc-umea"):
            break
        await asyncio.sleep(0.2)
    assert running.app.processes.active(pseudonym, "vasterbotten-hc-umea")
    await walk.expect({})

    await walk.send(
        "social",
        "consultation-requested",
        "umea-konsultation",
        {"organisationNumber": UMEA_SOCIAL, "careContacts": [HEALTH_CENTRE, BUP]},
    )
    await walk.expect(
        {("vasterbotten-hc-umea", "consultation-requested"): 1, ("umea-socialtjanst", "delivery-denied"): 1}
    )
    consultation = walk.task("vasterbotten-hc-umea", "consultation-requested")
    assert consultation["code"]["coding"][0]["code"] == "consultation"
    assert consultation["requester"]["identifier"]["value"] == UMEA_SOCIAL

    await walk.send(
        "ehr",
        "consultation-answered",
        "hc-assessment",
        {
            "processId": process_of(consultation),
            "hsaId": HEALTH_CENTRE,
            "taskId": consultation["id"],
            "documentId": "samlad-bedomning-1",
            "answerTo": {"organisationNumber": UMEA_SOCIAL},
        },
    )
    await walk.expect({("umea-socialtjanst", "consultation-answered"): 1})
    answered = walk.task("umea-socialtjanst", "consultation-answered")
    assert answered["status"] == "completed"
    assert answered["output"][0]["type"]["coding"][0]["code"] == "combined-assessment"
    await walk.no_dead_letters()
