"""Consent: keyed pseudonyms, the consent registry and the per-recipient consent policy."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import pytest
import sqlalchemy as sa

from sambus.consent import (
    CONSENT_BASIS,
    ConsentGrant,
    ConsentPolicy,
    ConsentRegistry,
    DecisionRequest,
    Outcome,
    Pseudonymizer,
)
from sambus.consent.registry import Scope
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.fhir import EventCode
from sambus.contracts.registry_facts import Custody
from sambus.router.service.schema import upgrade

CHILD = "201203150006"
KEY = b"k" * 32
T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


# Pseudonymizer


def test_pseudonym_is_deterministic():
    assert Pseudonymizer(KEY).of(CHILD) == Pseudonymizer(KEY).of(CHILD)


def test_pseudonym_is_64_hex_digits():
    assert re.fullmatch(r"[0-9a-f]{64}", Pseudonymizer(KEY).of(CHILD))


def test_pseudonym_differs_per_key():
    assert Pseudonymizer(b"a" * 32).of(CHILD) != Pseudonymizer(b"b" * 32).of(CHILD)


def test_pseudonym_differs_per_child():
    pseudonymizer = Pseudonymizer(KEY)

    assert pseudonymizer.of(CHILD) != pseudonymizer.of("201203150014")


@pytest.mark.parametrize("child", [CHILD, "201203150014", "199001011234"])
def test_pseudonym_never_contains_the_number(child):
    pseudonym = Pseudonymizer(KEY).of(child)

    assert child not in pseudonym
    assert child[2:] not in pseudonym
    assert child[:8] not in pseudonym


@pytest.mark.parametrize("size", [0, 1, 16, 31])
def test_short_keys_are_refused(size):
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonymizer(b"x" * size)


@pytest.mark.parametrize("size", [32, 64])
def test_keys_of_32_bytes_or_more_are_accepted(size):
    assert len(Pseudonymizer(b"x" * size).of(CHILD)) == 64


def test_repr_hides_the_key():
    key = b"my-very-secret-pseudonym-key-0123456789"
    shown = repr(Pseudonymizer(key)) + str(Pseudonymizer(key))

    assert key.decode() not in shown
    assert "my-very-secret" not in shown
    assert "***" in shown


# ConsentRegistry


@pytest.fixture
def registry(tmp_path) -> ConsentRegistry:
    engine = sa.create_engine("sqlite:///" + str(tmp_path / "r.db"))
    upgrade(engine)
    registry = ConsentRegistry(engine)
    for child in ("child-pseudonym", "child-a", "child-b"):
        registry.set_custody(child, Custody.SOLE, (GUARDIAN,), at=T0 - DAY)
    yield registry
    engine.dispose()


GUARDIAN = "guardian-pseudonym"
"""The one guardian (sole custody) of the children these tests record consents for."""


def _grant(
    consent_id: str = "consent-1",
    *,
    child: str = "child-pseudonym",
    purpose: Purpose = Purpose.SIP,
    kinds: frozenset[AgencyKind] = frozenset({AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN}),
    valid_from: dt.datetime = T0,
    valid_to: dt.datetime | None = None,
) -> ConsentGrant:
    return ConsentGrant(
        consent_id=consent_id,
        child=child,
        purpose=purpose,
        agency_kinds=kinds,
        given_by="guardian",
        valid_from=valid_from,
        valid_to=valid_to,
        guardians=(GUARDIAN,),
    )


def _covers(
    registry, *, child="child-pseudonym", purpose=Purpose.SIP, kind=AgencyKind.SOCIAL_SERVICES, at=T0
):
    return registry.covers(child=child, purpose=purpose, agency_kind=kind, at=at)


@pytest.mark.parametrize("kind", [AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN])
def test_recorded_consent_covers_its_purpose_and_agency_kinds(registry, kind):
    registry.record(_grant(), now=T0)

    assert _covers(registry, kind=kind, at=T0 + DAY) == "consent-1"


@pytest.mark.parametrize("kind", [AgencyKind.DENTAL, AgencyKind.BUP, AgencyKind.SCHOOL])
def test_consent_does_not_cover_other_agency_kinds(registry, kind):
    registry.record(_grant(), now=T0)

    assert _covers(registry, kind=kind, at=T0 + DAY) is None


@pytest.mark.parametrize("purpose", [Purpose.KONTAKTCENTER_REFERRAL, Purpose.INFORMATION_SHARING])
def test_consent_does_not_cover_other_purposes(registry, purpose):
    registry.record(_grant(), now=T0)

    assert _covers(registry, purpose=purpose, at=T0 + DAY) is None


def test_consent_does_not_cover_another_child(registry):
    registry.record(_grant(), now=T0)

    assert _covers(registry, child="another-child", at=T0 + DAY) is None


def test_nothing_is_covered_in_an_empty_registry(registry):
    assert _covers(registry) is None


@pytest.mark.parametrize(
    ("at", "covered"),
    [
        (T0 - dt.timedelta(seconds=1), False),
        (T0, True),
        (T0 + 5 * DAY, True),
        (T0 + 10 * DAY - dt.timedelta(seconds=1), True),
        (T0 + 10 * DAY, False),
        (T0 + 11 * DAY, False),
    ],
)
def test_consent_is_in_force_from_valid_from_until_valid_to(registry, at, covered):
    registry.record(_grant(valid_to=T0 + 10 * DAY), now=T0)

    assert (_covers(registry, at=at) == "consent-1") is covered


def test_times_in_other_timezones_are_compared_as_instants(registry):
    stockholm = dt.timezone(dt.timedelta(hours=1))
    registry.record(_grant(valid_from=dt.datetime(2026, 11, 20, 10, 0, tzinfo=stockholm)), now=T0)

    assert _covers(registry, at=dt.datetime(2026, 11, 20, 8, 59, tzinfo=dt.UTC)) is None
    assert _covers(registry, at=dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)) == "consent-1"


def test_naive_times_are_refused(registry):
    with pytest.raises(ValueError, match="timezone-aware"):
        registry.record(_grant(valid_from=dt.datetime(2026, 11, 20, 9, 0)), now=T0)  # noqa: DTZ001


@pytest.mark.parametrize(
    ("at", "covered"),
    [
        (T0 + DAY, True),
        (T0 + 2 * DAY - dt.timedelta(seconds=1), True),
        (T0 + 2 * DAY, False),
        (T0 + 3 * DAY, False),
    ],
)
def test_withdrawal_ends_the_consent_from_its_time(registry, at, covered):
    registry.record(_grant(), now=T0)

    ended = registry.withdraw("consent-1", at=T0 + 2 * DAY)

    assert ended == 2  # one grant per agency kind
    assert (_covers(registry, at=at) == "consent-1") is covered


def test_withdrawing_twice_ends_nothing_more(registry):
    registry.record(_grant(), now=T0)
    registry.withdraw("consent-1", at=T0 + 2 * DAY)

    assert registry.withdraw("consent-1", at=T0 + 3 * DAY) == 0
    assert _covers(registry, at=T0 + DAY) == "consent-1"


def test_withdrawal_ends_only_that_consent(registry):
    registry.record(_grant("consent-1"), now=T0)
    registry.record(_grant("consent-10", kinds=frozenset({AgencyKind.SOCIAL_SERVICES})), now=T0)

    registry.withdraw("consent-1", at=T0 + DAY)

    assert _covers(registry, at=T0 + 2 * DAY) == "consent-10"


@pytest.mark.parametrize(("withdrawn", "kept"), [("consent_1", "consent-1"), ("consent%", "consent-1")])
def test_withdrawal_does_not_end_a_consent_whose_id_merely_looks_alike(registry, withdrawn, kept):
    # Consent ids are free text from the recording system; "_" and "%" are ordinary characters in them.
    registry.record(_grant(withdrawn, child="child-a"), now=T0)
    registry.record(_grant(kept, child="child-b"), now=T0)

    registry.withdraw(withdrawn, at=T0 + DAY)

    assert _covers(registry, child="child-a", at=T0 + 2 * DAY) is None
    assert _covers(registry, child="child-b", at=T0 + 2 * DAY) == kept


def test_unknown_consent_withdraws_nothing(registry):
    registry.record(_grant(), now=T0)

    assert registry.withdraw("no-such-consent", at=T0) == 0
    assert _covers(registry, at=T0 + DAY) == "consent-1"


def test_recording_is_idempotent(registry):
    registry.record(_grant(), now=T0)
    registry.record(_grant(), now=T0 + DAY)

    assert _covers(registry, at=T0 + DAY) == "consent-1"
    assert registry.withdraw("consent-1", at=T0 + 2 * DAY) == 2


def test_recording_again_does_not_revive_a_withdrawn_consent(registry):
    registry.record(_grant(), now=T0)
    registry.withdraw("consent-1", at=T0 + DAY)

    registry.record(_grant(), now=T0 + 2 * DAY)

    assert _covers(registry, at=T0 + 3 * DAY) is None


def test_upgrading_twice_keeps_the_consents(tmp_path):
    engine = sa.create_engine("sqlite:///" + str(tmp_path / "r.db"))
    upgrade(engine)
    ConsentRegistry(engine).set_custody("child-pseudonym", Custody.SOLE, (GUARDIAN,), at=T0 - DAY)
    ConsentRegistry(engine).record(_grant(), now=T0)

    upgrade(engine)

    assert _covers(ConsentRegistry(engine)) == "consent-1"
    engine.dispose()


# ConsentPolicy


def _request(*, kind: AgencyKind, event: EventCode = EventCode.SIP_INITIATED, at=T0 + DAY) -> DecisionRequest:
    return DecisionRequest(
        message_id="message-1",
        event=event,
        child="child-pseudonym",
        recipient_id="recipient-1",
        recipient_kind=kind,
        at=at,
        bundle={"resourceType": "Bundle"},
    )


@pytest.mark.parametrize("kind", [AgencyKind.SOCIAL_SERVICES, AgencyKind.BU_HALSAN])
def test_policy_permits_with_consent_in_force(registry, kind):
    registry.record(_grant(), now=T0)

    decision = ConsentPolicy(registry).decide(_request(kind=kind))

    assert decision.outcome is Outcome.PERMIT
    assert "OSL 12:2" in decision.legal_basis
    assert decision.legal_basis.startswith(CONSENT_BASIS)
    assert decision.rule_id == "sip-consent"
    assert "consent-1" in decision.reason


@pytest.mark.parametrize("kind", [AgencyKind.DENTAL, AgencyKind.BUP])
def test_policy_awaits_consent_for_kinds_not_covered(registry, kind):
    registry.record(_grant(), now=T0)

    decision = ConsentPolicy(registry).decide(_request(kind=kind))

    assert decision.outcome is Outcome.AWAIT_CONSENT
    assert "OSL 12:2" in decision.legal_basis
    assert decision.rule_id == "sip-consent"


@pytest.mark.parametrize(("at", "outcome"), [(T0 - DAY, Outcome.AWAIT_CONSENT), (T0 + 3 * DAY, Outcome.DENY)])
def test_policy_awaits_consent_before_validity_and_denies_after_withdrawal(registry, at, outcome):
    registry.record(_grant(), now=T0)
    registry.withdraw("consent-1", at=T0 + 2 * DAY)

    decision = ConsentPolicy(registry).decide(_request(kind=AgencyKind.SOCIAL_SERVICES, at=at))

    assert decision.outcome is outcome


def test_policy_denies_an_event_no_rule_covers(registry):
    registry.record(_grant(), now=T0)

    decision = ConsentPolicy(registry).decide(
        _request(kind=AgencyKind.SOCIAL_SERVICES, event=EventCode.PLACEMENT_STARTED)
    )

    assert decision.outcome is Outcome.DENY
    assert decision.rule_id == "default-deny"


def test_policy_scopes_each_decision_by_its_recipient_and_process_working_out_each_recipient_once(
    registry, monkeypatch
):
    """A consent naming one organisation and one process counts only there, however often one policy asks."""
    named = ("urn:oid:1.2.752.29.4.19", "SE2321000206-1001")
    registry.record(replace(_grant(), organisations=(named,), process_id="process-p"), now=T0)
    made = []
    original = Scope.of.__func__
    monkeypatch.setattr(Scope, "of", classmethod(lambda cls, *a: made.append(a) or original(cls, *a)))
    policy = ConsentPolicy(registry)

    def outcome(identifiers: tuple[tuple[str, str], ...], process: str) -> Outcome:
        task = {"resourceType": "Task", "groupIdentifier": {"value": process}}
        request = replace(
            _request(kind=AgencyKind.BU_HALSAN),
            recipient_identifiers=identifiers,
            bundle={"resourceType": "Bundle", "entry": [{"resource": {}}, {"resource": task}]},
        )
        return policy.decide(request).outcome

    other = (("urn:oid:1.2.752.29.4.19", "SE2321000206-1003"),)
    assert outcome((named,), "process-p") is Outcome.PERMIT
    assert outcome((named,), "process-q") is Outcome.AWAIT_CONSENT
    assert outcome(other, "process-p") is Outcome.AWAIT_CONSENT
    assert outcome((named,), "process-p") is Outcome.PERMIT
    assert len(made) == 2  # once per recipient
