"""A directory of two counties: a child placed across the county border is examined where it lives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sambus.adapters import translate_message
from sambus.contracts.errors import ConfigError, RoutingError
from sambus.contracts.fhir import EventCode
from sambus.router.routing.directory import (
    PACKAGED_TWO_COUNTY_DIRECTORY,
    RoutingDirectory,
)
from sambus.router.routing.projection import tasks
from sambus.router.routing.rules import RoutingRules

TWO_COUNTIES = RoutingDirectory.load(PACKAGED_TWO_COUNTY_DIRECTORY)
VASTERAS_SOCIAL = "212000-2080"


def _exam_request(**data: Any) -> dict[str, Any]:
    """The message the adapters make of Västerås social services' 2017:209 request."""
    event = {
        "type": "se.sambus.social.health-exam-requested.v1",
        "id": "placed-in-umea-1",
        "source": "socialtjanst-vasteras",
        "time": "2026-11-29T09:00:00+01:00",
        "data": {"child": {"civicNo": "20120315-0006"}, "organisationNumber": VASTERAS_SOCIAL, **data},
    }
    [intent] = translate_message(json.dumps(event).encode())
    return intent.bundle


def test_the_two_county_directory_holds_both_counties_and_their_parts() -> None:
    assert TWO_COUNTIES.counties == {"19", "24"}
    assert TWO_COUNTIES.county_part_of("1980") == "ostra-vastmanland"
    assert TWO_COUNTIES.county_part_of("2480") == "umearegionen"
    TWO_COUNTIES.check_county("vastmanland")
    TWO_COUNTIES.check_county("vasterbotten")


def test_a_child_placed_in_vasterbotten_is_examined_by_region_vasterbotten_for_vasteras() -> None:
    bundle = _exam_request(residenceMunicipality="2480")

    routing = RoutingRules(TWO_COUNTIES).route(EventCode.HEALTH_EXAM_REQUESTED, bundle, tasks(bundle))

    assert routing.unroutable == []
    assert [(r.recipient.id, r.via.id, r.refused) for r in routing.routes] == [
        ("vasterbotten-hc-umea", "vasterbotten-hc-umea", None),
        ("vasterbotten-folktandvarden-umea", "vasterbotten-folktandvarden-umea", None),
    ]
    requesters = {r.task.resource["requester"]["identifier"]["value"] for r in routing.routes}
    assert requesters == {VASTERAS_SOCIAL}, "the placing municipality stays the requester"


def test_the_childs_municipality_travels_only_in_the_routing_address() -> None:
    bundle = _exam_request(residenceMunicipality="2480")

    [patient] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert "address" not in patient
    owners = [t.owner_value for t in tasks(bundle)]
    assert owners == ["primary_care@2480", "dental@2480"]


def test_without_the_childs_municipality_two_counties_are_not_guessed_between() -> None:
    bundle = _exam_request()

    with pytest.raises(RoutingError, match="several organisations of kind primary_care fit"):
        RoutingRules(TWO_COUNTIES).route(EventCode.HEALTH_EXAM_REQUESTED, bundle, tasks(bundle))


def test_named_units_in_two_regions_are_refused() -> None:
    bundle = _exam_request(
        healthCare={"hsaId": "SE2321000222-2001"},  # Umeå
        dentalCare={"hsaId": "SE2321000206-1003"},  # Västmanland
    )

    with pytest.raises(RoutingError, match="of the child's region"):
        RoutingRules(TWO_COUNTIES).route(EventCode.HEALTH_EXAM_REQUESTED, bundle, tasks(bundle))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


_ONE = """
county_parts:
  norr: ["2480"]
recipients:
  - id: a-social
    name: A
    kind: social_services
    municipality: "2480"
    identifiers: [{system: "urn:oid:2.5.4.97", value: "212000-0001"}]
"""
_TWO = """
recipients:
  - id: b-social
    name: B
    kind: social_services
    municipality: "1980"
    identifiers: [{system: "urn:oid:2.5.4.97", value: "212000-0002"}]
"""


def test_a_directory_includes_files_relative_to_itself(tmp_path: Path) -> None:
    _write(tmp_path / "counties" / "one.yaml", _ONE)
    _write(tmp_path / "counties" / "two.yaml", "include: [../three.yaml]\n" + _TWO)
    _write(tmp_path / "three.yaml", "recipients: []\n")
    main = _write(tmp_path / "main.yaml", "include: [counties/one.yaml, counties/two.yaml]\nrecipients: []\n")

    directory = RoutingDirectory.load(main)

    assert [r.id for r in directory.recipients] == ["a-social", "b-social"]
    assert directory.counties == {"19", "24"}


def test_an_organisation_in_two_included_files_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "one.yaml", _ONE)
    main = _write(tmp_path / "main.yaml", "include: [one.yaml]\n" + _ONE.replace("norr:", "other:"))

    with pytest.raises(ConfigError, match="recipient ids must be unique"):
        RoutingDirectory.load(main)


def test_a_county_part_defined_differently_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "one.yaml", _ONE)
    main = _write(
        tmp_path / "main.yaml", 'include: [one.yaml]\ncounty_parts:\n  norr: ["2482"]\n' + "recipients: []\n"
    )

    with pytest.raises(ConfigError, match="county part 'norr' is defined differently"):
        RoutingDirectory.load(main)


def test_files_that_include_each_other_are_refused(tmp_path: Path) -> None:
    _write(tmp_path / "one.yaml", "include: [two.yaml]\nrecipients: []\n")
    _write(tmp_path / "two.yaml", "include: [one.yaml]\nrecipients: []\n")

    with pytest.raises(ConfigError, match="includes itself"):
        RoutingDirectory.load(tmp_path / "one.yaml")


def test_a_missing_included_file_is_named(tmp_path: Path) -> None:
    main = _write(tmp_path / "main.yaml", "include: [gone.yaml]\nrecipients: []\n")

    with pytest.raises(ConfigError, match=r"cannot read the routing directory .*gone\.yaml"):
        RoutingDirectory.load(main)


def test_in_one_county_the_units_nearest_the_childs_home_examine() -> None:
    """Västerås places a child in Köping: Köping's health centre (the one in that municipality) examines."""
    bundle = _exam_request(residenceMunicipality="1983")

    routing = RoutingRules(RoutingDirectory.load()).route(
        EventCode.HEALTH_EXAM_REQUESTED, bundle, tasks(bundle)
    )

    assert [r.recipient.id for r in routing.routes] == [
        "vastmanland-vc-kopings",
        "vastmanland-folktandvarden",
    ]
