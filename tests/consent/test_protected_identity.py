"""Protected identity fails closed: from the message's labels or the registry, residence data to nobody.

Skatteverket's three levels (sekretessmarkering, skyddad folkbokföring, fingerade personuppgifter) all keep
the address, municipality, placement home and new school unit from every recipient, whatever its need,
until a named person at social services releases one message for one recipient.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sambus.consent import ConsentPolicy, DecisionRequest, Outcome, Protection, RuleSet, as_delivered
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.fhir import EventCode, deterministic_id
from sambus.contracts.fhir.codes import (
    ACT_CODE_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    PROTECTION_SYSTEM,
    SWEDISH_SECURITY_SYSTEM,
)
from sambus.contracts.fhir.registry import registry_facts
from sambus.contracts.registry_facts import (
    HiddenResidenceNotNeeded,
    IdentityLevel,
    IdentityProtected,
    IdentityProtectionEnded,
    ResidenceReleased,
)

from .conftest import person_number
from .messages import bundle, reveals_residence

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
CHILD = person_number(dt.date(2012, 3, 15))
HSA = ("urn:oid:1.2.752.29.4.19", "SE2321000206-1001")
INTENT = "intent-1"


@pytest.fixture
def policy(registry) -> ConsentPolicy:
    return ConsentPolicy(registry, RuleSet.load())


def _labelled(*labels: tuple[str, str]) -> dict:
    message = bundle()
    message["entry"][1]["resource"]["meta"] = {"security": [{"system": s, "code": c} for s, c in labels]}
    return message


def _request(pseudonymizer, message, *, kind=AgencyKind.SOCIAL_SERVICES, recipient="r1") -> DecisionRequest:
    """A report of concern: its rule states a need for the residence, and needs no consent."""
    return DecisionRequest(
        message_id=deterministic_id(INTENT, recipient),
        event=EventCode.CONCERN_REPORTED,
        child=pseudonymizer.of(CHILD),
        recipient_id=recipient,
        recipient_kind=kind,
        at=T0,
        bundle=message,
        sender_kind=AgencyKind.SCHOOL,
        recipient_identifiers=(HSA,),
    )


LEVEL_LABELS = {
    IdentityLevel.SEKRETESSMARKERING: (SWEDISH_SECURITY_SYSTEM, "sekretessmarkering"),
    IdentityLevel.SKYDDAD_FOLKBOKFORING: (SWEDISH_SECURITY_SYSTEM, "skyddadFolkbokforing"),
    IdentityLevel.FINGERADE_PERSONUPPGIFTER: (PROTECTION_SYSTEM, "fingeradePersonuppgifter"),
}


@pytest.mark.parametrize("level", list(IdentityLevel))
def test_a_labelled_message_reaches_even_a_recipient_with_need_without_residence(
    policy, pseudonymizer, level
):
    message = _labelled((CONFIDENTIALITY_SYSTEM, "V"), LEVEL_LABELS[level])

    decision = policy.decide(_request(pseudonymizer, message))

    assert decision.outcome is Outcome.PERMIT_REDACTED
    delivered = as_delivered(message, removed=decision.removed, security=decision.security)
    assert not reveals_residence(delivered)
    assert LEVEL_LABELS[level] in {(x["system"], x["code"]) for x in delivered["meta"]["security"]}


@pytest.mark.parametrize("level", list(IdentityLevel))
def test_a_protection_in_the_registry_applies_to_an_unlabelled_message(
    registry, policy, pseudonymizer, level
):
    registry.apply([IdentityProtected(child=CHILD, level=level)])

    decision = policy.decide(_request(pseudonymizer, bundle()))

    assert decision.outcome is Outcome.PERMIT_REDACTED
    delivered = as_delivered(bundle(), removed=decision.removed, security=decision.security)
    assert not reveals_residence(delivered)
    labels = {(x["system"], x["code"]) for x in delivered["meta"]["security"]}
    assert {(CONFIDENTIALITY_SYSTEM, "V"), LEVEL_LABELS[level]} <= labels


def test_a_labelled_message_teaches_the_registry(registry, pseudonymizer):
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "identifier": [{"system": "http://electronichealth.se/identifier/personnummer", "value": CHILD}],
        "meta": {"security": [{"system": SWEDISH_SECURITY_SYSTEM, "code": "skyddadFolkbokforing"}]},
    }
    header = {
        "resourceType": "MessageHeader",
        "eventCoding": {"system": "https://sambus.se/fhir/CodeSystem/sambus-event", "code": "sip-initiated"},
    }
    message = {
        "resourceType": "Bundle",
        "type": "message",
        "entry": [{"resource": header}, {"resource": patient}],
    }

    registry.apply(registry_facts(message))

    assert registry.protections_at(pseudonymizer.of(CHILD), T0) == {Protection.SKYDDAD_FOLKBOKFORING}


def test_very_restricted_without_a_level_fails_closed(policy, pseudonymizer):
    decision = policy.decide(_request(pseudonymizer, _labelled((CONFIDENTIALITY_SYSTEM, "V"))))

    assert decision.outcome is Outcome.PERMIT_REDACTED
    assert "protected identity" in decision.reason


def test_fingerade_personuppgifter_are_labelled_never_to_be_relinked(registry, policy, pseudonymizer):
    registry.apply([IdentityProtected(child=CHILD, level=IdentityLevel.FINGERADE_PERSONUPPGIFTER)])

    decision = policy.decide(_request(pseudonymizer, bundle(address=False, tagged=0)))

    assert decision.outcome is Outcome.PERMIT
    assert (ACT_CODE_SYSTEM, "NORELINK") in decision.security


def _release(recipients=(HSA,), message_id=INTENT) -> ResidenceReleased:
    return ResidenceReleased(
        release_id="frisl-1",
        child=CHILD,
        message_id=message_id,
        recipients=recipients,
        released_by="handlaggare-4711",
    )


def test_a_named_release_lets_that_recipient_have_that_message(registry, policy, pseudonymizer):
    registry.apply([IdentityProtected(child=CHILD, level=IdentityLevel.SKYDDAD_FOLKBOKFORING), _release()])

    decision = policy.decide(_request(pseudonymizer, bundle()))

    assert decision.outcome is Outcome.PERMIT
    assert "released" in decision.reason
    assert "handlaggare-4711" in decision.reason
    assert "frisl-1" in decision.reason


def test_a_release_is_for_its_message_and_its_recipients_only(registry, policy, pseudonymizer):
    other_unit = ("urn:oid:1.2.752.29.4.19", "SE2321000206-1003")
    registry.apply(
        [
            IdentityProtected(child=CHILD, level=IdentityLevel.SKYDDAD_FOLKBOKFORING),
            _release(recipients=(other_unit,)),
            _release(message_id="another-message"),
        ]
    )

    decision = policy.decide(_request(pseudonymizer, bundle()))

    assert decision.outcome is Outcome.PERMIT_REDACTED


def test_a_release_does_not_lift_hidden_residence_for_a_guardian_facing_recipient(
    registry, policy, pseudonymizer
):
    registry.apply([IdentityProtected(child=CHILD, level=IdentityLevel.SEKRETESSMARKERING), _release()])
    registry.protect("lvu-1", child=pseudonymizer.of(CHILD), kind=Protection.HIDDEN_RESIDENCE, valid_from=T0)
    request = _request(pseudonymizer, bundle())
    request = DecisionRequest(**{**request.__dict__, "guardian_facing": True})

    decision = policy.decide(request)

    assert decision.outcome is Outcome.PERMIT_REDACTED
    assert (ACT_CODE_SYSTEM, "NOPAT") in decision.security


def test_an_ended_protection_stops_redacting_and_a_new_label_protects_again(registry, policy, pseudonymizer):
    child = pseudonymizer.of(CHILD)
    registry.apply([IdentityProtected(child=CHILD, level=IdentityLevel.SKYDDAD_FOLKBOKFORING)])
    assert policy.decide(_request(pseudonymizer, bundle())).outcome is Outcome.PERMIT_REDACTED

    registry.apply([IdentityProtectionEnded(decision_id="skv-1", child=CHILD, at=T0 - dt.timedelta(hours=1))])

    assert registry.protections_at(child, T0) == frozenset()
    assert registry.protections_at(child, T0 - dt.timedelta(hours=2)) == {Protection.SKYDDAD_FOLKBOKFORING}
    assert policy.decide(_request(pseudonymizer, bundle())).outcome is Outcome.PERMIT
    registry.apply([IdentityProtected(child=CHILD, level=IdentityLevel.SKYDDAD_FOLKBOKFORING)])
    assert registry.protections_at(child, T0) == {Protection.SKYDDAD_FOLKBOKFORING}, "labelled again"
    assert policy.decide(_request(pseudonymizer, bundle())).outcome is Outcome.PERMIT_REDACTED


def test_a_decision_not_to_hide_answers_the_question_but_never_protects(registry, pseudonymizer):
    child = pseudonymizer.of(CHILD)
    assert not registry.assess(child=child, at=T0).residence_answered

    registry.apply(
        [HiddenResidenceNotNeeded(decision_id="beslut-9", child=CHILD, at=T0 - dt.timedelta(hours=1))]
    )

    known = registry.assess(child=child, at=T0)
    assert known.residence_answered
    assert known.protections == frozenset()
