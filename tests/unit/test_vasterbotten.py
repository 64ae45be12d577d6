"""Västerbotten's directory ("SIP Barnets plan"): schools take part in SIP themselves; Kontaktcenter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_routing import message

from sambus.contracts.errors import ConfigError
from sambus.contracts.fhir import ROUTING_ADDRESS_SYSTEM, SCHOOL_UNIT_SYSTEM, EventCode
from sambus.contracts.identifiers import HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM
from sambus.router.routing.directory import (
    PACKAGED_DIRECTORY,
    PACKAGED_VASTERBOTTEN_DIRECTORY,
    RoutingDirectory,
)
from sambus.router.routing.projection import tasks
from sambus.router.routing.rules import RoutingRules

VASTERBOTTEN = RoutingDirectory.load(Path(str(PACKAGED_VASTERBOTTEN_DIRECTORY)))
RULES = RoutingRules(VASTERBOTTEN)


def _task(n: int, owner: tuple[str, str], requester: tuple[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": f"task-{n}",
        "status": "requested",
        "intent": "proposal",
        "for": {"reference": "urn:uuid:patient"},
        "owner": {"identifier": {"system": owner[0], "value": owner[1]}},
        "requester": {"identifier": {"system": requester[0], "value": requester[1]}},
    }


def _routes(event: EventCode, bundle: dict[str, Any]) -> list[tuple[str, str, str]]:
    routing = RULES.route(event, bundle, tasks(bundle))
    assert routing.unroutable == []
    return [(r.recipient.id, r.via.id, r.rule) for r in routing.routes]


def test_a_vasterbotten_school_invites_to_sip_itself_without_a_relay() -> None:
    school = (SCHOOL_UNIT_SYSTEM, "24800001")
    bundle = message(
        _task(1, (ORGANISATION_NUMBER_SYSTEM, "212000-2742"), school),
        _task(2, (HSA_ID_SYSTEM, "SE2321000222-2001"), school),
        district="2480",
    )

    assert _routes(EventCode.SIP_INITIATED, bundle) == [
        ("umea-socialtjanst", "umea-socialtjanst", "direct"),
        ("vasterbotten-hc-umea", "vasterbotten-hc-umea", "direct"),
    ]


def test_sip_messages_reach_a_vasterbotten_preschool_directly() -> None:
    bundle = message(
        _task(1, (SCHOOL_UNIT_SYSTEM, "24800002"), (ORGANISATION_NUMBER_SYSTEM, "212000-2742")),
        district="2480",
    )

    assert _routes(EventCode.SIP_MEETING_SCHEDULED, bundle) == [
        ("umea-forskola-backen", "umea-forskola-backen", "direct")
    ]


def test_kontaktcenter_and_social_services_are_found_by_routing_address() -> None:
    school = (SCHOOL_UNIT_SYSTEM, "24800001")
    referral = message(_task(1, (ROUTING_ADDRESS_SYSTEM, "kontaktcenter"), school), district="2482")
    concern = message(_task(1, (ROUTING_ADDRESS_SYSTEM, "social_services@2482"), school), district="2482")

    assert _routes(EventCode.KONTAKTCENTER_REFERRAL, referral)[0][0] == "vasterbotten-kontaktcenter"
    assert _routes(EventCode.CONCERN_REPORTED, concern)[0][0] == "skelleftea-socialtjanst"


@pytest.mark.parametrize(
    ("directory", "county", "refused"),
    [
        (PACKAGED_DIRECTORY, "vasterbotten", True),
        (PACKAGED_VASTERBOTTEN_DIRECTORY, "vastmanland", True),
        (PACKAGED_DIRECTORY, "vastmanland", False),
        (PACKAGED_VASTERBOTTEN_DIRECTORY, "vasterbotten", False),
        (PACKAGED_DIRECTORY, "gotland", True),
    ],
)
def test_a_directory_must_hold_the_configured_county(directory, county, refused) -> None:
    loaded = RoutingDirectory.load(Path(str(directory)))

    if refused:
        with pytest.raises(ConfigError, match=f"SAMBUS_COUNTY={county}"):
            loaded.check_county(county)
    else:
        loaded.check_county(county)
