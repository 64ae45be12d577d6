"""One table of health care kinds: the directory's, routing's and consent's lists are its named groups."""

from __future__ import annotations

from sambus.consent.rules import SENDER_SECRECY
from sambus.contracts.agencies import HEALTH_CARE_TABLE, AgencyKind, CareGroup, health_care_kinds
from sambus.router.routing.directory import CARE_UNIT_KINDS
from sambus.router.routing.rules import HEALTH_CARE_KINDS


def test_each_list_is_a_group_of_the_one_table() -> None:
    assert health_care_kinds(CareGroup.ROUTED_AS_HEALTH_CARE) == HEALTH_CARE_KINDS
    assert health_care_kinds(CareGroup.KEEPS_PATIENT_RECORD) == CARE_UNIT_KINDS
    assert {k for k, secrecy in SENDER_SECRECY.items() if secrecy.startswith("OSL 25:1 ")} == set(
        HEALTH_CARE_TABLE
    )


def test_the_groups_differ_where_the_law_and_the_agreements_do() -> None:
    assert HEALTH_CARE_KINDS < CARE_UNIT_KINDS, "every unit a health_care address reaches keeps a record"
    assert {
        AgencyKind.DENTAL,  # addressed by name, never as "any health care unit"
        AgencyKind.ADULT_PSYCHIATRY,  # reached only by a hand-over to adult care
        AgencyKind.ADULT_HABILITATION,
    } == CARE_UNIT_KINDS - HEALTH_CARE_KINDS
    assert health_care_kinds() - CARE_UNIT_KINDS == {AgencyKind.KONTAKTCENTER, AgencyKind.CARE_PROVIDER}
