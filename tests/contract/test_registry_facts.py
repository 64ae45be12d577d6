"""Consent, custody and hidden-residence messages read back into the facts the consent registry records."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from sambus.adapters import translate_message
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.errors import InvalidIntentError
from sambus.contracts.fhir.registry import registry_facts
from sambus.contracts.registry_facts import (
    ConsentGiven,
    ConsentWithdrawn,
    Custody,
    CustodyUpdated,
    GivenBy,
    HiddenResidenceDecided,
    HiddenResidenceLifted,
)

CHILD = "201203150006"
CET = dt.timezone(dt.timedelta(hours=1))


def _bundle(event: dict) -> dict:
    [intent] = translate_message(json.dumps(event).encode())
    return intent.bundle


@pytest.mark.parametrize("source", ["social", "ehr"])
def test_consent_recorded_round_trips(example, source):
    facts = registry_facts(_bundle(example(f"{source}.consent-recorded")))

    [fact] = facts
    assert isinstance(fact, ConsentGiven)
    assert fact.child == CHILD
    if source == "social":
        assert fact == ConsentGiven(
            consent_id="samtycke-2026-0042",
            child=CHILD,
            purpose=Purpose.SIP,
            agency_kinds=frozenset({AgencyKind.SCHOOL, AgencyKind.BU_HALSAN, AgencyKind.DENTAL}),
            given_by=GivenBy.GUARDIAN,
            guardians=("198004121235", "198209072340"),
            valid_from=dt.datetime(2026, 11, 20, 9, tzinfo=CET),
            valid_to=dt.datetime(2027, 11, 20, 9, tzinfo=CET),
            recorded_at=dt.datetime(2026, 11, 20, 9, tzinfo=CET),
        )
    else:
        assert fact.given_by is GivenBy.CHILD
        assert fact.guardians == ()
        assert fact.valid_to is None


def test_an_inbound_fhir_consent_round_trips_to_the_same_fact_shape(example):
    [fact] = registry_facts(_bundle(example("ehr.fhir-consent")))

    assert isinstance(fact, ConsentGiven)
    assert fact.consent_id == "samtycke-bu-2026-8"
    assert fact.agency_kinds == frozenset({AgencyKind.SCHOOL})
    assert fact.guardians == ("198004121235",)


def test_consent_withdrawn_round_trips(example):
    [fact] = registry_facts(_bundle(example("social.consent-withdrawn")))

    assert fact == ConsentWithdrawn(
        consent_id="samtycke-2026-0042", child=CHILD, at=dt.datetime(2027, 1, 15, 13, tzinfo=CET)
    )


def test_custody_updated_round_trips(example):
    [fact] = registry_facts(_bundle(example("social.custody-updated")))

    assert fact == CustodyUpdated(
        child=CHILD,
        guardians=("198004121235", "198209072340"),
        custody=Custody.JOINT,
        at=dt.datetime(2026, 11, 20, 9, tzinfo=CET),
    )


def test_hidden_residence_decided_and_lifted_round_trip(example):
    [decided] = registry_facts(_bundle(example("social.hidden-residence-decided")))
    [lifted] = registry_facts(_bundle(example("social.hidden-residence-lifted")))

    assert decided == HiddenResidenceDecided(
        decision_id="beslut-2026-117",
        child=CHILD,
        valid_from=dt.datetime(2026, 11, 20, 10, tzinfo=CET),
        valid_to=None,
    )
    assert lifted == HiddenResidenceLifted(
        decision_id="beslut-2026-117", child=CHILD, at=dt.datetime(2027, 3, 1, 8, tzinfo=CET)
    )


@pytest.mark.parametrize(
    "name", ["school.sip-initiated", "social.health-exam-requested", "sip.plan-established"]
)
def test_other_messages_carry_no_facts(example, name):
    assert registry_facts(_bundle(example(name))) == ()


def test_a_registry_message_without_its_consent_is_refused(example):
    bundle = copy.deepcopy(_bundle(example("social.consent-recorded")))
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Consent"]

    with pytest.raises(InvalidIntentError, match="exactly one Consent"):
        registry_facts(bundle)


def test_a_custody_message_with_an_unknown_custody_form_is_refused(example):
    bundle = copy.deepcopy(_bundle(example("social.custody-updated")))
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["extension"][0]["valueCode"] = "shared"

    with pytest.raises(InvalidIntentError, match="must be one of joint, sole"):
        registry_facts(bundle)


def test_something_that_is_not_a_message_is_refused():
    with pytest.raises(InvalidIntentError):
        registry_facts({"resourceType": "Bundle", "type": "collection", "entry": []})
