"""Decisions by the rules: consent, duties, the 18-year rule and hidden residence."""

from __future__ import annotations

import datetime as dt

import pytest

from sambus.consent import ConsentPolicy, DecisionRequest, Outcome, Protection, RuleSet, redact
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.fhir import EventCode
from sambus.contracts.registry_facts import (
    ConsentGiven,
    ConsentWithdrawn,
    Custody,
    CustodyUpdated,
    GivenBy,
    HiddenResidenceDecided,
)

from .conftest import person_number
from .messages import bundle, reveals_residence

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
CHILD = person_number(dt.date(2012, 3, 15))
GUARDIAN = person_number(dt.date(1980, 1, 2), 1)


@pytest.fixture
def policy(registry) -> ConsentPolicy:
    return ConsentPolicy(registry, RuleSet.load())


@pytest.fixture(autouse=True)
def custody(registry) -> None:
    """The children of these tests have one guardian, who has sole custody."""
    for child in (CHILD, person_number(dt.date(2008, 12, 1))):
        registry.apply(
            [CustodyUpdated(child=child, guardians=(GUARDIAN,), custody=Custody.SOLE, at=T0 - DAY)]
        )


def _request(
    pseudonymizer,
    *,
    event=EventCode.SIP_INITIATED,
    kind=AgencyKind.SOCIAL_SERVICES,
    sender=AgencyKind.SCHOOL,
    at=T0 + DAY,
    message=None,
    guardian_facing=False,
    child=CHILD,
) -> DecisionRequest:
    return DecisionRequest(
        message_id="m1",
        event=event,
        child=pseudonymizer.of(child),
        recipient_id="r1",
        recipient_kind=kind,
        at=at,
        bundle=message if message is not None else bundle(),
        sender_kind=sender,
        guardian_facing=guardian_facing,
    )


def _consent(purpose="sip", kinds=(AgencyKind.SOCIAL_SERVICES,), *, child=CHILD, by=GivenBy.GUARDIAN):
    return ConsentGiven(
        consent_id="c-1",
        child=child,
        purpose=purpose,
        agency_kinds=frozenset(kinds),
        given_by=by,
        guardians=(GUARDIAN,) if by is GivenBy.GUARDIAN else (),
        valid_from=T0,
        valid_to=None,
        recorded_at=T0,
    )


def test_sip_with_consent_is_permitted_on_consent(registry, policy, pseudonymizer):
    registry.apply([_consent()])

    decision = policy.decide(_request(pseudonymizer))

    assert decision.outcome is Outcome.PERMIT
    assert decision.legal_basis.startswith("OSL 12:2")
    assert (decision.rule_id, decision.rule_version) == ("sip-consent", 2)
    assert "c-1" in decision.reason


def test_sip_without_consent_awaits_it(policy, pseudonymizer):
    decision = policy.decide(_request(pseudonymizer))

    assert decision.outcome is Outcome.AWAIT_CONSENT
    assert "no consent" in decision.reason


def test_after_withdrawal_the_same_message_is_denied_for_the_withdrawal(registry, policy, pseudonymizer):
    registry.apply([_consent(), ConsentWithdrawn(consent_id="c-1", child=CHILD, at=T0 + 2 * DAY)])

    first = policy.decide(_request(pseudonymizer, at=T0 + DAY))
    retry = policy.decide(_request(pseudonymizer, at=T0 + 3 * DAY))

    assert first.outcome is Outcome.PERMIT
    assert retry.outcome is Outcome.DENY
    assert retry.reason.startswith("withdrawn: consent c-1")


def test_a_new_consent_after_a_withdrawal_counts(registry, policy, pseudonymizer):
    renewed = _consent()
    renewed = ConsentGiven(**{**renewed.__dict__, "consent_id": "c-2", "valid_from": T0 + 3 * DAY})
    registry.apply([_consent(), ConsentWithdrawn(consent_id="c-1", child=CHILD, at=T0 + 2 * DAY), renewed])

    assert policy.decide(_request(pseudonymizer, at=T0 + 4 * DAY)).outcome is Outcome.PERMIT


@pytest.mark.parametrize(
    ("event", "sender", "kind", "rule", "provision"),
    [
        (
            EventCode.CONCERN_REPORTED,
            AgencyKind.SCHOOL,
            AgencyKind.SOCIAL_SERVICES,
            "report-of-concern",
            "SoL 2001:453 14:1",
        ),
        (
            EventCode.LVU32_EXAM_ORDERED,
            AgencyKind.SOCIAL_SERVICES,
            AgencyKind.BU_HALSAN,
            "lvu32-order",
            "LVU 32",
        ),
        (
            EventCode.HEALTH_EXAM_REQUESTED,
            AgencyKind.SOCIAL_SERVICES,
            AgencyKind.DENTAL,
            "health-exam-notice",
            "11:3 a",
        ),
        (
            EventCode.INVESTIGATION_INFO_REQUESTED,
            AgencyKind.SOCIAL_SERVICES,
            AgencyKind.PRIMARY_CARE,
            "investigation-info",
            "SoL 2001:453 14:1",
        ),
        (
            EventCode.CONCERN_REPORTED,
            AgencyKind.SOCIAL_SERVICES,
            AgencyKind.SOCIAL_SERVICES,
            "report-of-concern",
            "SoL 2001:453 14:1",
        ),
    ],
)
def test_no_consent_processes_are_permitted_on_their_duty(  # noqa: PLR0917 - one case per parameter
    policy, pseudonymizer, event, sender, kind, rule, provision
):
    decision = policy.decide(_request(pseudonymizer, event=event, sender=sender, kind=kind))

    assert decision.outcome is Outcome.PERMIT
    assert decision.rule_id == rule
    assert "OSL 10:28" in decision.legal_basis
    assert provision in decision.legal_basis


@pytest.mark.parametrize(
    ("event", "sender", "kind"),
    [
        (EventCode.CONCERN_REPORTED, AgencyKind.SCHOOL, AgencyKind.DENTAL),
        (EventCode.LVU32_EXAM_ORDERED, AgencyKind.SCHOOL, AgencyKind.BU_HALSAN),
        (EventCode.LVU32_EXAM_ORDERED, AgencyKind.SOCIAL_SERVICES, AgencyKind.SCHOOL),
        (EventCode.HEALTH_EXAM_REQUESTED, AgencyKind.SOCIAL_SERVICES, AgencyKind.SCHOOL),
        (EventCode.INVESTIGATION_INFO_REQUESTED, AgencyKind.BUP, AgencyKind.PRIMARY_CARE),
        (EventCode.INVESTIGATION_INFO_REQUESTED, AgencyKind.SOCIAL_SERVICES, AgencyKind.SOCIAL_SERVICES),
        (EventCode.INVESTIGATION_INFO_PROVIDED, AgencyKind.BUP, AgencyKind.PRIMARY_CARE),
    ],
)
def test_a_duty_does_not_reach_beyond_its_agencies(policy, pseudonymizer, event, sender, kind):
    decision = policy.decide(_request(pseudonymizer, event=event, sender=sender, kind=kind))

    assert decision.outcome is Outcome.DENY
    assert decision.rule_id == "default-deny"


def test_from_18_only_the_young_persons_consent_counts(registry, policy, pseudonymizer):
    young = person_number(dt.date(2008, 12, 1))
    registry.apply([_consent(child=young)])

    minor = policy.decide(_request(pseudonymizer, child=young, at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC)))
    adult = policy.decide(_request(pseudonymizer, child=young, at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC)))

    assert minor.outcome is Outcome.PERMIT
    assert adult.outcome is Outcome.AWAIT_CONSENT
    assert "from 18" in adult.reason


def test_beyond_the_countys_upper_age_nothing_is_shared(registry, policy, pseudonymizer):
    older = person_number(dt.date(2004, 1, 1))
    registry.apply([_consent(child=older, by=GivenBy.CHILD)])

    decision = policy.decide(_request(pseudonymizer, child=older))

    assert decision.outcome is Outcome.DENY
    assert "target group" in decision.reason


def _hide(registry):
    registry.apply([HiddenResidenceDecided(decision_id="h-1", child=CHILD, valid_from=T0, valid_to=None)])


def test_hidden_residence_removes_residence_data_for_a_recipient_without_need(
    registry, policy, pseudonymizer
):
    registry.apply([_consent()])
    _hide(registry)
    message = bundle(tagged=2)

    decision = policy.decide(_request(pseudonymizer, message=message))

    assert decision.outcome is Outcome.PERMIT_REDACTED
    assert decision.removed == ("entry[1].resource.address", "entry[2]", "entry[3]")
    assert "hidden residence" in decision.reason
    delivered = redact(message, decision.removed)
    assert not reveals_residence(delivered)
    assert [e["resource"]["resourceType"] for e in delivered["entry"]] == ["MessageHeader", "Patient", "Task"]


def test_a_recipient_with_need_keeps_the_residence(registry, policy, pseudonymizer):
    _hide(registry)

    decision = policy.decide(
        _request(
            pseudonymizer,
            event=EventCode.HEALTH_EXAM_REQUESTED,
            sender=AgencyKind.SOCIAL_SERVICES,
            kind=AgencyKind.DENTAL,
        )
    )

    assert decision.outcome is Outcome.PERMIT
    assert decision.removed == ()


def test_a_guardian_facing_recipient_never_gets_the_residence(registry, policy, pseudonymizer):
    _hide(registry)

    decision = policy.decide(
        _request(
            pseudonymizer,
            event=EventCode.HEALTH_EXAM_REQUESTED,
            sender=AgencyKind.SOCIAL_SERVICES,
            kind=AgencyKind.DENTAL,
            guardian_facing=True,
        )
    )

    assert decision.outcome is Outcome.PERMIT_REDACTED
    assert "faces the guardians" in decision.reason


def test_protected_identity_also_hides_the_residence(registry, policy, pseudonymizer):
    registry.apply([_consent()])
    registry.protect("s-1", child=pseudonymizer.of(CHILD), kind=Protection.PROTECTED_IDENTITY, valid_from=T0)

    decision = policy.decide(_request(pseudonymizer))

    assert decision.outcome is Outcome.PERMIT_REDACTED


def test_without_residence_data_there_is_nothing_to_remove(registry, policy, pseudonymizer):
    registry.apply([_consent()])
    _hide(registry)

    decision = policy.decide(_request(pseudonymizer, message=bundle(address=False, tagged=0)))

    assert decision.outcome is Outcome.PERMIT
    assert decision.removed == ()


def test_without_protection_nothing_is_removed(registry, policy, pseudonymizer):
    registry.apply([_consent()])

    decision = policy.decide(_request(pseudonymizer))

    assert decision.outcome is Outcome.PERMIT
    assert decision.removed == ()


def test_the_policy_reads_the_shipped_rules_by_default(registry, pseudonymizer):
    decision = ConsentPolicy(registry).decide(
        _request(pseudonymizer, event=EventCode.CONCERN_REPORTED, kind=AgencyKind.SOCIAL_SERVICES)
    )

    assert decision.rule_id == "report-of-concern"
