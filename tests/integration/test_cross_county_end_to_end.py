"""A child placed across the county border, on the real broker, with a directory of two counties.

Västerås social services (Västmanland) has placed a child in Umeå (Västerbotten) and asks for its 2017:209
health examination: Region Västerbotten's health centre and dental clinic near where the child now lives
receive the requests (the placing municipality named as the requester), Region Västmanland's units nothing;
both statements go back to Västerås social services and nobody else.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.topics import Topics
from sambus.router.routing.directory import PACKAGED_TWO_COUNTY_DIRECTORY
from sambus.router.settings import Settings
from tests.database import upgraded
from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import CHILD, SOCIAL, addressed_to
from tests.integration.walks import Walk, process_of

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

UMEA_HEALTH_CENTRE = "SE2321000222-2001"
UMEA_DENTAL = "SE2321000222-2003"


@pytest.fixture
def settings(topics: Topics, tmp_path: Path) -> Settings:
    """A Västmanland deployment whose directory also holds Västerbotten's organisations."""
    return Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'registry.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        instance_id=secrets.token_hex(4),
        directory=Path(str(PACKAGED_TWO_COUNTY_DIRECTORY)),
        county="vastmanland",
    )


async def test_a_child_placed_in_vasterbotten_is_examined_there_and_the_statements_go_to_vasteras(
    running: Running,
) -> None:
    running.consent(CHILD, AgencyKind.SOCIAL_SERVICES, purpose=Purpose.INFORMATION_SHARING)
    walk = Walk(running)

    await walk.send(
        "social",
        "health-exam-requested",
        "placed-in-umea",
        {"organisationNumber": SOCIAL, "residenceMunicipality": "2480"},
    )
    await walk.expect(
        {
            ("vasterbotten-hc-umea", "health-exam-requested"): 1,
            ("vasterbotten-folktandvarden-umea", "health-exam-requested"): 1,
        }
    )
    health = walk.task("vasterbotten-hc-umea", "health-exam-requested")
    dental = walk.task("vasterbotten-folktandvarden-umea", "health-exam-requested")
    for task, unit in ((health, UMEA_HEALTH_CENTRE), (dental, UMEA_DENTAL)):
        assert task["requester"]["identifier"]["value"] == SOCIAL, "the placing municipality asks"
        assert task["owner"]["identifier"]["value"] == unit
    request = walk.message("vasterbotten-hc-umea", "health-exam-requested")
    [patient] = [e["resource"] for e in request["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert "address" not in patient
    assert "2480" not in str(task["owner"]), "the municipality is resolved, not passed on"

    for unit, statement, event_id in (
        (UMEA_HEALTH_CENTRE, "mental_physical", "st-hc"),
        (UMEA_DENTAL, "oral", "st-ftv"),
    ):
        await walk.send(
            "ehr",
            "health-exam-completed",
            event_id,
            {
                "processId": process_of(health),
                "hsaId": unit,
                "statement": statement,
                "documentId": f"doc-{event_id}",
                "answerTo": {"organisationNumber": SOCIAL},
            },
        )
    await walk.expect({("vasteras-socialtjanst", "health-exam-completed"): 2})
    statements = walk.messages("vasteras-socialtjanst", "health-exam-completed")
    assert {addressed_to(m) for m in statements} == {("urn:sambus:recipient:vasteras-socialtjanst", SOCIAL)}
    await walk.no_dead_letters()
