"""Property tests over generated children, guardians, consents, protection decisions and messages."""

# ruff: noqa: PLR0917 - Hypothesis passes each generated value as an argument

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool

from sambus.consent import (
    ConsentPolicy,
    ConsentRegistry,
    DecisionRequest,
    Outcome,
    Pseudonymizer,
    RuleSet,
    redact,
)
from sambus.consent.county import age_on
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.fhir import EventCode
from sambus.contracts.registry_facts import (
    ConsentGiven,
    ConsentWithdrawn,
    Custody,
    CustodyUpdated,
    GivenBy,
    HiddenResidenceDecided,
    HiddenResidenceLifted,
)
from sambus.router.service.schema import upgrade

from .conftest import person_number
from .messages import bundle, reveals_residence

RULES = RuleSet.load()
PSEUDONYMS = Pseudonymizer(b"h" * 32)
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DELIVERED = {Outcome.PERMIT, Outcome.PERMIT_REDACTED}
CONSENT_EVENTS = sorted({e for r in RULES.rules if r.basis.kind == "consent" for e in r.events})

births = st.dates(min_value=dt.date(2005, 1, 1), max_value=dt.date(2025, 12, 31))
moments = st.integers(min_value=0, max_value=3 * 365 * 24).map(lambda h: START + dt.timedelta(hours=h))
kinds = st.sampled_from(sorted(AgencyKind))
purposes = st.sampled_from(sorted(Purpose))
events = st.sampled_from(sorted(EventCode))


@st.composite
def routes(draw):
    """(event, sender, recipient kind): half the time one a rule covers, else anything at all."""
    if draw(st.booleans()):
        rule = draw(st.sampled_from(RULES.rules))
        event = draw(st.sampled_from(sorted(rule.events)))
        sender = draw(st.sampled_from(sorted(rule.senders))) if rule.senders else draw(kinds)
        kind = draw(st.sampled_from(sorted(rule.recipients))) if rule.recipients else draw(kinds)
        return event, sender, kind
    return draw(events), draw(kinds), draw(kinds)


messages = st.builds(bundle, address=st.booleans(), tagged=st.integers(0, 3), plain=st.integers(0, 2))


def _registry() -> ConsentRegistry:
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    upgrade(engine)
    return ConsentRegistry(engine, PSEUDONYMS)


@st.composite
def families(draw):
    """A child, one or two guardians and their custody."""
    born = draw(births)
    child = person_number(born, draw(st.integers(0, 99)))
    guardians = tuple(
        person_number(dt.date(1970, 1, 1) + dt.timedelta(days=draw(st.integers(0, 7000))), serial)
        for serial in range(draw(st.integers(1, 2)))
    )
    custody = Custody.JOINT if len(guardians) == 2 else Custody.SOLE
    return born, child, guardians, CustodyUpdated(child=child, guardians=guardians, custody=custody, at=START)


@st.composite
def consents(draw, child, guardians, born, *, by=None):
    """A consent by the guardians (some or all of them) or, when old enough, by the child."""
    giver = by or draw(st.sampled_from([GivenBy.GUARDIAN, GivenBy.CHILD]))
    valid_from = draw(moments)
    if giver is GivenBy.CHILD and age_on(born, valid_from.date()) < 15:
        giver = GivenBy.GUARDIAN
    end = draw(st.none() | moments)
    return ConsentGiven(
        consent_id=f"c-{draw(st.integers(0, 10**6))}",
        child=child,
        purpose=draw(purposes),
        agency_kinds=frozenset(draw(st.sets(kinds, min_size=1))),
        given_by=giver,
        guardians=tuple(draw(st.sets(st.sampled_from(guardians), min_size=1)))
        if giver is GivenBy.GUARDIAN
        else (),
        valid_from=valid_from,
        valid_to=end if end is not None and end > valid_from else None,
        recorded_at=valid_from,
    )


def _request(child, *, event, sender, kind, at, message, guardian_facing=False) -> DecisionRequest:
    return DecisionRequest(
        message_id="m",
        event=event,
        child=PSEUDONYMS.of(child),
        recipient_id="r",
        recipient_kind=kind,
        at=at,
        bundle=message,
        sender_kind=sender,
        guardian_facing=guardian_facing,
    )


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    family=families(),
    route=routes(),
    message=messages,
    guardian_facing=st.booleans(),
    decided=moments,
    offset=st.integers(-500, 3000),
    length=st.none() | st.integers(1, 2000),
    broad=st.booleans(),
)
def test_no_residence_data_reaches_a_recipient_without_need_while_hidden_residence_applies(
    data, family, route, message, guardian_facing, decided, offset, length, broad
):
    born, child, guardians, custody = family
    event, sender, kind = route
    at = decided + dt.timedelta(hours=offset)
    registry = _registry()
    facts = [custody, *data.draw(st.lists(consents(child, guardians, born), max_size=3))]
    if broad:
        facts += [
            ConsentGiven(
                consent_id=f"all-{purpose}",
                child=child,
                purpose=purpose,
                agency_kinds=frozenset(AgencyKind),
                given_by=GivenBy.GUARDIAN,
                guardians=guardians,
                valid_from=START,
                valid_to=None,
                recorded_at=START,
            )
            for purpose in Purpose
        ]
    until = decided + dt.timedelta(hours=length) if length else None
    facts.append(HiddenResidenceDecided(decision_id="h", child=child, valid_from=decided, valid_to=until))
    registry.apply(facts)

    decision = ConsentPolicy(registry, RULES).decide(
        _request(
            child,
            event=event,
            sender=sender,
            kind=kind,
            at=at,
            message=message,
            guardian_facing=guardian_facing,
        )
    )

    hidden = decided <= at and (until is None or at < until)
    rule = RULES.find(event, sender, kind)
    if decision.outcome in DELIVERED and hidden and (guardian_facing or not rule.residence_need):
        assert not reveals_residence(redact(message, decision.removed))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), family=families(), message=messages, lifted=moments)
def test_a_lifted_decision_stops_hiding_and_a_guardian_facing_recipient_is_never_told_before(
    data, family, message, lifted
):
    _born, child, _guardians, custody = family
    registry = _registry()
    registry.apply(
        [
            custody,
            HiddenResidenceDecided(decision_id="h", child=child, valid_from=START, valid_to=None),
            HiddenResidenceLifted(decision_id="h", child=child, at=lifted),
        ]
    )
    at = data.draw(moments)
    request = _request(
        child,
        event=EventCode.HEALTH_EXAM_REQUESTED,
        sender=AgencyKind.SOCIAL_SERVICES,
        kind=AgencyKind.DENTAL,
        at=at,
        message=message,
        guardian_facing=True,
    )

    decision = ConsentPolicy(registry, RULES).decide(request)

    if decision.outcome in DELIVERED and at < lifted:
        assert not reveals_residence(redact(message, decision.removed))
    if decision.outcome in DELIVERED and at >= lifted:
        assert decision.removed == ()


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    family=families(),
    event=st.sampled_from(CONSENT_EVENTS),
    sender=kinds,
    kind=kinds,
    message=messages,
    after=st.integers(0, 10_000),
)
def test_nothing_resting_on_consent_is_delivered_after_every_consent_is_withdrawn(
    data, family, event, sender, kind, message, after
):
    # An event that rests on consent between some kinds may rest on a duty between others (a report of
    # suicide risk reaches social services on the duty to report): only the consent routes are in question.
    assume(RULES.find(event, sender, kind).basis.kind == "consent")
    born, child, guardians, custody = family
    registry = _registry()
    given_ = data.draw(st.lists(consents(child, guardians, born), min_size=1, max_size=3))
    withdrawals = [
        ConsentWithdrawn(consent_id=c.consent_id, child=child, at=data.draw(moments)) for c in given_
    ]
    registry.apply([custody, *given_, *withdrawals])
    at = max(w.at for w in withdrawals) + dt.timedelta(hours=after)

    decision = ConsentPolicy(registry, RULES).decide(
        _request(child, event=event, sender=sender, kind=kind, at=at, message=message)
    )

    assert decision.outcome not in DELIVERED


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    family=families(),
    event=st.sampled_from(CONSENT_EVENTS),
    sender=kinds,
    kind=kinds,
    message=messages,
    days_after=st.integers(0, 3 * 365),
)
def test_at_18_the_guardians_consent_no_longer_counts(data, family, event, sender, kind, message, days_after):
    assume(RULES.find(event, sender, kind).basis.kind == "consent")  # as above: the consent routes only
    born, child, guardians, custody = family
    registry = _registry()
    given_ = data.draw(
        st.lists(consents(child, guardians, born, by=GivenBy.GUARDIAN), min_size=1, max_size=3)
    )
    registry.apply([custody, *given_])
    first = dt.date(born.year + 18, born.month, 1)  # the birthday itself may not exist (29 February)
    birthday = next(
        first + dt.timedelta(days=n) for n in range(40) if age_on(born, first + dt.timedelta(days=n)) >= 18
    )
    eighteen = dt.datetime.combine(birthday, dt.time(), tzinfo=dt.UTC)
    at = eighteen + dt.timedelta(days=days_after)

    decision = ConsentPolicy(registry, RULES).decide(
        _request(child, event=event, sender=sender, kind=kind, at=at, message=message)
    )

    assert decision.outcome not in DELIVERED


@settings(max_examples=200, deadline=None)
@given(family=families(), route=routes(), at=moments, message=messages)
def test_without_any_consent_only_a_duty_lets_a_message_through(family, route, at, message):
    born, child, _guardians, custody = family
    event, sender, kind = route
    registry = _registry()
    registry.apply([custody])

    decision = ConsentPolicy(registry, RULES).decide(
        _request(child, event=event, sender=sender, kind=kind, at=at, message=message)
    )

    duty_rules = [r for r in RULES.rules if r.basis.kind == "duty" and r.applies(event, sender, kind)]
    if decision.outcome in DELIVERED:
        assert duty_rules
        assert decision.rule_id == duty_rules[0].id
        assert "OSL 10:" in decision.legal_basis
    elif duty_rules and RULES.find(event, sender, kind) is duty_rules[0]:
        assert age_on(born, at.date()) > registry.county.placed_upper_age
