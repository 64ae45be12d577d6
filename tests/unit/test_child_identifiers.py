"""Children without personnummer or samordningsnummer: LMA number and reservnummer, each kept apart."""

from __future__ import annotations

import json

import pytest

from sambus.adapters import translate_message
from sambus.consent import Pseudonymizer
from sambus.contracts.errors import InvalidEventError
from sambus.contracts.events import Child
from sambus.contracts.identifiers import (
    LMA_NUMBER_SYSTEM,
    NATIONAL_RESERVE_NUMBER_SYSTEM,
    PERSONNUMMER_SYSTEM,
    child_identifier,
    child_key,
)

REGION_RESERVE = "urn:oid:1.2.752.74.9.1"


def _child(data: dict[str, object]) -> Child:
    return Child.model_validate(data)


def test_each_identifier_kind_gives_its_own_key() -> None:
    keys = {
        _child({"civicNo": "20120315-0006"}).key,
        _child({"lmaNumber": "12-345678"}).key,
        _child({"lmaNumber": "12345678"}).key,  # the same LMA number, written without '-'
        _child({"reserveNumber": {"value": "12-345678"}}).key,
        _child({"reserveNumber": {"system": REGION_RESERVE, "value": "12-345678"}}).key,
    }

    assert len(keys) == 4, "the LMA number in two spellings is one child; every other kind is another"
    assert _child({"civicNo": "20120315-0006"}).key == "201203150006", "personnummer keys are unchanged"


def test_a_reservnummer_that_looks_like_a_personnummer_is_not_that_child() -> None:
    lookalike = _child({"reserveNumber": {"value": "201203150006"}})
    real = _child({"civicNo": "20120315-0006"})
    pseudonyms = Pseudonymizer(b"k" * 32)

    assert lookalike.identifier == (NATIONAL_RESERVE_NUMBER_SYSTEM, "201203150006")
    assert pseudonyms.of(lookalike.key) != pseudonyms.of(real.key)


def test_child_identifier_reads_back_what_child_key_made() -> None:
    for system, value in (
        (PERSONNUMMER_SYSTEM, "201203150006"),
        (LMA_NUMBER_SYSTEM, "12-345678"),
        (REGION_RESERVE, "RV-77"),
    ):
        assert child_identifier(child_key(system, value)) == (system, value)


@pytest.mark.parametrize(
    ("child", "problem"),
    [
        ({"lmaNumber": "12-34567"}, "eight digits"),
        ({"reserveNumber": {"system": "urn:oid:1.2.752.129.2.1.3.1", "value": "RV1"}}, "another kind"),
        ({"reserveNumber": {"system": "https://example.org/ids", "value": "RV1"}}, "urn:oid"),
        ({"lmaNumber": "12-345678", "reserveNumber": {"value": "RV1"}}, "exactly one"),
        ({"civicNo": "20120315-0006", "birthDate": "2012-03-15"}, "birthDate goes with"),
    ],
)
def test_a_wrong_child_identifier_is_refused_without_repeating_it(child, problem) -> None:
    event = {
        "type": "se.sambus.social.health-exam-requested.v1",
        "id": "e-1",
        "source": "socialtjanst-vasteras",
        "time": "2026-11-20T09:00:00+01:00",
        "data": {"child": child, "organisationNumber": "212000-2080"},
    }

    with pytest.raises(InvalidEventError, match=problem) as caught:
        translate_message(json.dumps(event).encode())

    assert "345678" not in str(caught.value)
    assert "RV1" not in str(caught.value)


def test_the_patient_of_an_lma_child_carries_the_lma_number_and_birth_date() -> None:
    event = {
        "type": "se.sambus.social.health-exam-requested.v1",
        "id": "e-2",
        "source": "socialtjanst-vasteras",
        "time": "2026-11-20T09:00:00+01:00",
        "data": {
            "child": {"lmaNumber": "12345678", "birthDate": "2013-05-02"},
            "organisationNumber": "212000-2080",
        },
    }

    [intent] = translate_message(json.dumps(event).encode())

    [patient] = [e["resource"] for e in intent.bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert patient["identifier"] == [{"system": LMA_NUMBER_SYSTEM, "value": "12-345678"}]
    assert patient["birthDate"] == "2013-05-02"
    assert intent.child_personnummer == f"{LMA_NUMBER_SYSTEM}|12-345678"
