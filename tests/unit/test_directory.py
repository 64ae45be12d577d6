"""The routing directory: who faces the guardians when the directory does not say."""

from __future__ import annotations

import pytest

from sambus.contracts.agencies import AgencyKind
from sambus.contracts.errors import RoutingError
from sambus.contracts.identifiers import normalise_system
from sambus.router.routing.directory import Recipient, RoutingDirectory

HSA = {"system": "urn:oid:1.2.752.29.4.19", "value": "SE2321000206-9999"}


def _recipient(kind: AgencyKind, guardian_facing: bool | None = None) -> Recipient:
    return Recipient(id="r", name="R", kind=kind, identifiers=(HSA,), guardian_facing=guardian_facing)


@pytest.mark.parametrize("kind", [AgencyKind.PRESCHOOL, AgencyKind.SCHOOL, AgencyKind.BVC])
def test_schools_preschools_and_bvc_face_the_guardians_unless_the_directory_says_otherwise(kind):
    assert _recipient(kind).faces_guardians
    assert not _recipient(kind, guardian_facing=False).faces_guardians


@pytest.mark.parametrize("kind", [AgencyKind.BUP, AgencyKind.DENTAL, AgencyKind.SOCIAL_SERVICES])
def test_other_kinds_face_the_guardians_only_when_the_directory_says_so(kind):
    assert not _recipient(kind).faces_guardians
    assert _recipient(kind, guardian_facing=True).faces_guardians


def test_a_recipient_is_found_by_any_form_of_its_identifier_and_by_id():
    directory = RoutingDirectory.load()
    for recipient in directory.recipients:
        assert directory.by_id(recipient.id) is recipient
        for identifier in recipient.identifiers:
            assert directory.by_identifier(identifier.system, identifier.value) is recipient
            assert directory.by_identifier(normalise_system(identifier.system), identifier.value) is recipient
    with pytest.raises(RoutingError, match="no recipient in the routing directory has id nobody"):
        directory.by_id("nobody")
    with pytest.raises(RoutingError, match="has the organisation identifier the message names"):
        directory.by_identifier(HSA["system"], HSA["value"])


def test_a_copy_with_other_recipients_answers_for_its_own():
    directory = RoutingDirectory.load()
    first = directory.recipients[0]
    directory.by_id(first.id)  # its lookups are made
    renamed = first.model_copy(update={"id": "renamed"})
    copy = directory.model_copy(update={"recipients": (renamed, *directory.recipients[1:])})

    assert copy.by_id("renamed") is renamed
    assert copy.by_identifier(first.identifiers[0].system, first.identifiers[0].value) is renamed
    with pytest.raises(RoutingError):
        copy.by_id(first.id)
    assert directory.by_id(first.id) is first
