"""Redaction removes exactly the named fields and whole entries, on a copy."""

from __future__ import annotations

import pytest

from sambus.consent.redaction import redact

BUNDLE = {
    "resourceType": "Bundle",
    "entry": [
        {"resource": {"resourceType": "MessageHeader"}},
        {"resource": {"resourceType": "Patient", "address": [{"city": "Sala"}], "identifier": [{}]}},
        {"resource": {"resourceType": "Location", "name": "a placement home"}},
        {"resource": {"resourceType": "Task"}},
    ],
}


def test_removes_a_field_and_whole_entries_by_their_original_indexes() -> None:
    result = redact(BUNDLE, ["entry[1].resource.address", "entry[2]"])

    assert [e["resource"]["resourceType"] for e in result["entry"]] == ["MessageHeader", "Patient", "Task"]
    assert "address" not in result["entry"][1]["resource"]
    assert result["entry"][1]["resource"]["identifier"] == [{}]
    assert "address" in BUNDLE["entry"][1]["resource"], "the original must not change"


def test_paths_that_are_not_there_are_ignored() -> None:
    assert redact(BUNDLE, ["entry[9].resource", "entry[0].resource.nothing"]) == BUNDLE


@pytest.mark.parametrize("path", ["", "entry[x]", "entry..resource", "entry[1]resource"])
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="not a redaction path"):
        redact(BUNDLE, [path])
