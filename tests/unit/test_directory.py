"""The routing directory: who faces the guardians when the directory does not say."""

from __future__ import annotations

import pytest

from sambus.contracts.agencies import AgencyKind
from sambus.router.routing.directory import Recipient

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
