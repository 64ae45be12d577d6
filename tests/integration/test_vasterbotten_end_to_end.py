"""Västerbotten ("SIP Barnets plan") on the real broker, with Västerbotten's directory and county settings.

A school initiates a SIP itself (no relay: every school is an equal party) and each invited agency's answer
goes back to the school; a school refers a child to Kontaktcenter after the guardians' consent and
Kontaktcenter's answer goes back to the school; a school brings a child to the HLT team's meeting. Every
delivery topic is read: nobody else receives anything.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.topics import Topics
from sambus.router.routing.directory import PACKAGED_VASTERBOTTEN_DIRECTORY
from sambus.router.settings import Settings
from tests.database import upgraded
from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import (
    CHILD,
    Deliveries,
    addressed_to,
    event,
    no_dead_letters,
    received,
    task_of,
)

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SCHOOL = {"schoolUnitCode": "24800001"}
"""Ersbodaskolan, Umeå."""
UMEA_SOCIAL = "212000-2742"
HEALTH_CENTRE = "SE2321000222-2001"
KONTAKTCENTER = "SE2321000222-2005"


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


async def test_a_school_sip_in_vasterbotten_from_initiative_to_every_answer(running: Running) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.PRIMARY_CARE, AgencyKind.SCHOOL)
    deliveries = Deliveries(running)

    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "sip-initiated",
            "ersboda-sip-1",
            {
                **SCHOOL,
                "initiatedBy": "student_health",
                "reason": "school_attendance",
                "invite": [{"organisationNumber": UMEA_SOCIAL}, {"hsaId": HEALTH_CENTRE}],
            },
        ),
    )
    assert await deliveries.who(2) == {
        ("umea-socialtjanst", "sip-initiated"): 1,
        ("vasterbotten-hc-umea", "sip-initiated"): 1,
    }
    social_invitation = await received(deliveries, 2, "umea-socialtjanst", "sip-initiated")
    care_invitation = await received(deliveries, 2, "vasterbotten-hc-umea", "sip-initiated")

    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "task-answered",
            "umea-accepts",
            {
                "processId": task_of(social_invitation)["groupIdentifier"]["value"],
                "taskId": task_of(social_invitation)["id"],
                "status": "accepted",
                "organisationNumber": UMEA_SOCIAL,
                "answerTo": SCHOOL,
            },
        ),
    )
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "task-status",
            "hc-declines",
            {
                "processId": task_of(care_invitation)["groupIdentifier"]["value"],
                "taskId": task_of(care_invitation)["id"],
                "status": "rejected",
                "hsaId": HEALTH_CENTRE,
                "answerTo": SCHOOL,
            },
        ),
    )

    assert await deliveries.who(4) == {
        ("umea-socialtjanst", "sip-initiated"): 1,
        ("vasterbotten-hc-umea", "sip-initiated"): 1,
        ("umea-skola-ersboda", "task-status-changed"): 2,
    }
    answers = [m for r, c, m in await deliveries.all(4) if c == "task-status-changed"]
    assert {addressed_to(m) for m in answers} == {("urn:sambus:recipient:umea-skola-ersboda", "24800001")}
    assert sorted(task_of(m)["status"] for m in answers) == ["accepted", "rejected"]
    await no_dead_letters(running)


async def test_a_kontaktcenter_referral_and_its_answer_in_vasterbotten(running: Running) -> None:
    running.consent(
        CHILD, AgencyKind.KONTAKTCENTER, AgencyKind.SCHOOL, purpose=Purpose.KONTAKTCENTER_REFERRAL
    )
    deliveries = Deliveries(running)

    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "kontaktcenter-referral",
            "ersboda-kc-1",
            {**SCHOOL, "reason": "mental_health", "consentId": "elevhalsan-samtycke-0007"},
        ),
    )
    referral = await received(deliveries, 1, "vasterbotten-kontaktcenter", "kontaktcenter-referral")

    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "task-status",
            "kc-accepts",
            {
                "processId": task_of(referral)["groupIdentifier"]["value"],
                "taskId": task_of(referral)["id"],
                "status": "accepted",
                "hsaId": KONTAKTCENTER,
                "answerTo": SCHOOL,
            },
        ),
    )

    assert await deliveries.who(2) == {
        ("vasterbotten-kontaktcenter", "kontaktcenter-referral"): 1,
        ("umea-skola-ersboda", "task-status-changed"): 1,
    }
    await no_dead_letters(running)


HLT_TEAM = "SE2120002742-HLT1"
"""The HLT team of Ersboda (Hälsa, Lärande, Trygghet), Umeå."""


async def test_a_school_brings_a_child_to_the_hlt_meeting_and_social_services_in_vasterbotten(
    running: Running,
) -> None:
    """The HLT team is a recipient like any agency: it receives its own invitation on the SIP consent."""
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.HLT_TEAM, AgencyKind.SCHOOL)
    deliveries = Deliveries(running)

    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "sip-initiated",
            "ersboda-hlt-1",
            {
                **SCHOOL,
                "initiatedBy": "student_health",
                "reason": "social_situation",
                "invite": [{"hsaId": HLT_TEAM}, {"organisationNumber": UMEA_SOCIAL}],
            },
        ),
    )
    assert await deliveries.who(2) == {
        ("umea-hlt-ersboda", "sip-initiated"): 1,
        ("umea-socialtjanst", "sip-initiated"): 1,
    }
    invitation = await received(deliveries, 2, "umea-hlt-ersboda", "sip-initiated")
    assert addressed_to(invitation) == ("urn:sambus:recipient:umea-hlt-ersboda", HLT_TEAM)
    assert task_of(invitation)["owner"]["identifier"]["value"] == HLT_TEAM
    await no_dead_letters(running)


async def test_the_hlt_team_gets_nothing_without_a_consent_that_names_it(running: Running) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, AgencyKind.SCHOOL)
    deliveries = Deliveries(running)

    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "sip-initiated",
            "ersboda-hlt-2",
            {
                **SCHOOL,
                "initiatedBy": "student_health",
                "reason": "social_situation",
                "invite": [{"hsaId": HLT_TEAM}, {"organisationNumber": UMEA_SOCIAL}],
            },
        ),
    )
    assert await deliveries.who(2) == {
        ("umea-socialtjanst", "sip-initiated"): 1,
        ("umea-skola-ersboda", "delivery-waiting"): 1,  # the school is told the HLT team's copy waits
    }
