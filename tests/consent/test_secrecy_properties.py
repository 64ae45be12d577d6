"""Property test over 10,000 generated children, protections, custody situations, signers and recipients.

For every decision that delivers a message, two things must hold:

* no residence-revealing field is in the Bundle as delivered to a recipient that may not have it: under
  protected identity (any of the three levels, from the message's label or the registry) only a recipient
  named in a release of that message; under hidden residence only a recipient that needs it and does not
  face the guardians;
* no consent from someone who is not a current guardian counts: a delivery that rests on consent has a
  consent signed by current guardians (all of them under joint custody), or, from 18, the young person's
  own; never under unknown custody;
* a child's objection blocks every guardian's consent for what it covers;
* a consent that names organisations releases nothing to another organisation of the same kind;
* under secrecy against the guardians (OSL 12:3) a guardian-facing recipient gets no content.
* an LVU placement notice with residence data goes out only once the hidden-residence question is answered
  (a decision in the registry, or the answer carried in the notice; "hidden" counts as hidden residence);
* a protected identity that ended in the registry no longer redacts, while one still on the label does;
* nothing in a delivered Bundle refers to a resource redaction removed.
"""

# ruff: noqa: PLR0917 - Hypothesis passes each generated value as an argument

from __future__ import annotations

import datetime as dt
import itertools

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool

from sambus.consent import (
    ConsentGrant,
    ConsentPolicy,
    ConsentRegistry,
    DecisionRequest,
    Outcome,
    Protection,
    RuleSet,
    as_delivered,
)
from sambus.consent.county import age_on
from sambus.consent.registry import OBJECTION
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.fhir import deterministic_id
from sambus.contracts.fhir.codes import (
    ACT_CODE_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    HIDDEN_RESIDENCE_ANSWER,
    PLACEMENT_SYSTEM,
    PROTECTION_SYSTEM,
    SWEDISH_SECURITY_SYSTEM,
    TASK_INPUT_SYSTEM,
)
from sambus.contracts.registry_facts import Custody, IdentityLevel, ResidenceReleased
from sambus.router.service.schema import upgrade

from .messages import bundle, reveals_residence

RULES = RuleSet.load()
AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
DELIVERED = {Outcome.PERMIT, Outcome.PERMIT_REDACTED}
HSA = "urn:oid:1.2.752.29.4.19"
PEOPLE = ("mother", "father", "foster-parent", "non-custodial-parent", "god-man", "hvb-staff")
_counter = itertools.count()

ENGINE = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
upgrade(ENGINE)
REGISTRY = ConsentRegistry(ENGINE)
POLICY = ConsentPolicy(REGISTRY, RULES)

LABELS = {
    IdentityLevel.SEKRETESSMARKERING: (SWEDISH_SECURITY_SYSTEM, "sekretessmarkering"),
    IdentityLevel.SKYDDAD_FOLKBOKFORING: (SWEDISH_SECURITY_SYSTEM, "skyddadFolkbokforing"),
    IdentityLevel.FINGERADE_PERSONUPPGIFTER: (PROTECTION_SYSTEM, "fingeradePersonuppgifter"),
}

custody_situations = st.sampled_from(
    [
        None,
        (Custody.SOLE, ("mother",)),
        (Custody.JOINT, ("mother", "father")),
        (Custody.SPECIALLY_APPOINTED, ("god-man",)),
        (Custody.GOD_MAN, ("god-man",)),
    ]
)


@st.composite
def routes(draw):
    """(event, sender, recipient kind) that some rule covers."""
    rule = draw(st.sampled_from(RULES.rules))
    event = draw(st.sampled_from(sorted(rule.events)))
    sender = (
        draw(st.sampled_from(sorted(rule.senders))) if rule.senders else draw(st.sampled_from(AgencyKind))
    )
    kind = (
        draw(st.sampled_from(sorted(rule.recipients)))
        if rule.recipients
        else draw(st.sampled_from(AgencyKind))
    )
    return event, sender, kind


def _objection(child, purpose, kind):
    REGISTRY.record(
        ConsentGrant(
            consent_id="objection",
            child=child,
            purpose=purpose,
            agency_kinds=frozenset({kind}),
            given_by=OBJECTION,
            valid_from=AT - dt.timedelta(days=5),
            maturity_assessed_by="kurator-1",
        ),
        now=AT,
    )


def _consents(child, purpose, kind, signers, *, separate_records, by_child, organisations=()):
    if by_child:
        grants = [("own", "child", ())]
    elif separate_records:
        grants = [(f"c-{person}", "guardian", (person,)) for person in signers]
    else:
        grants = [("c-all", "guardian", signers)] if signers else []
    for consent_id, given_by, people in grants:
        REGISTRY.record(
            ConsentGrant(
                consent_id=consent_id,
                child=child,
                purpose=purpose,
                agency_kinds=frozenset({kind}),
                given_by=given_by,
                valid_from=AT - dt.timedelta(days=10),
                guardians=people,
                organisations=organisations,
            ),
            now=AT,
        )


def _protections(child, message, level, level_in, *, hidden):
    since = AT - dt.timedelta(days=1)
    if level is not None and level_in in {"label", "both"}:
        system, code = LABELS[level]
        labels = [{"system": CONFIDENTIALITY_SYSTEM, "code": "V"}, {"system": system, "code": code}]
        message["entry"][1]["resource"]["meta"] = {"security": labels}
    if level is not None and level_in in {"registry", "both"}:
        REGISTRY.protect(f"identity:{child}", child=child, kind=Protection(str(level)), valid_from=since)
    if hidden:
        REGISTRY.protect(f"hidden:{child}", child=child, kind=Protection.HIDDEN_RESIDENCE, valid_from=since)


PLACEMENTS = {"placement-started", "placement-changed"}
ANSWERS = (None, "carried-hidden", "carried-not-hidden", "registry-not-hidden")


def _placement(child, message, *, lvu, answer):
    """The Task names the residence resource (``Task.input``), LVU as the basis, and maybe the answer."""
    message["entry"][2]["fullUrl"] = "urn:uuid:home"
    task = message["entry"][3]["resource"]
    task["input"] = [{"type": {"text": "home"}, "valueReference": {"reference": "urn:uuid:home"}}]
    if lvu:
        task["reasonCode"] = {"coding": [{"system": PLACEMENT_SYSTEM, "code": "lvu"}]}
    if answer in {"carried-hidden", "carried-not-hidden"}:
        task["input"].append(
            {
                "type": {"coding": [{"system": TASK_INPUT_SYSTEM, "code": HIDDEN_RESIDENCE_ANSWER}]},
                "valueBoolean": answer == "carried-hidden",
            }
        )
    if answer == "registry-not-hidden":
        before = AT - dt.timedelta(days=2)
        REGISTRY.protect(
            f"not-hidden:{child}",
            child=child,
            kind=Protection.HIDDEN_RESIDENCE,
            valid_from=before,
            valid_to=before,
        )


def _refers_to_removed(delivered):
    present = {entry.get("fullUrl") for entry in delivered["entry"]}
    return "urn:uuid:home" not in present and "urn:uuid:home" in repr(delivered)


def _check_consent(decision, age, custody, signers, *, by_child):
    if by_child:
        assert age >= 18, decision.reason
        return
    assert age < 18, decision.reason
    assert custody is not None, f"consent counted under unknown custody: {decision.reason}"
    _, guardians = custody
    counted = set(signers) & set(guardians)
    assert counted, f"a consent from a non-guardian counted: {decision.reason}"
    if len(guardians) > 1:
        assert counted == set(guardians), decision.reason


@given(
    age=st.integers(min_value=0, max_value=21),
    custody=custody_situations,
    signers=st.lists(st.sampled_from(PEOPLE), unique=True, max_size=3).map(tuple),
    separate_records=st.booleans(),
    by_child=st.booleans(),
    level=st.none() | st.sampled_from(IdentityLevel),
    level_in=st.sampled_from(["label", "registry", "both"]),
    hidden=st.booleans(),
    released=st.booleans(),
    route=routes(),
    guardian_facing=st.booleans(),
    objected=st.booleans(),
    named=st.sampled_from(["any", "this", "other"]),
    secret=st.booleans(),
    lvu=st.booleans(),
    answer=st.sampled_from(ANSWERS),
    ended=st.booleans(),
)
@settings(max_examples=10_000, deadline=None, derandomize=True)
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_no_residence_leak_and_no_consent_from_a_non_guardian(  # noqa: C901, PLR0912 - one property, in steps
    age,
    custody,
    signers,
    separate_records,
    by_child,
    level,
    level_in,
    hidden,
    released,
    route,
    guardian_facing,
    objected,
    named,
    secret,
    lvu,
    answer,
    ended,
):
    event, sender, kind = route
    child = f"child-{next(_counter)}"
    born = dt.date(AT.year - age - 1, 12, 31)
    REGISTRY.record_child(child, born)
    if custody is not None:
        REGISTRY.set_custody(child, custody[0], custody[1], at=AT - dt.timedelta(days=30))
    rule = RULES.find(event, sender, kind)
    unit = f"SE2321000206-{next(_counter)}"
    organisations = {"any": (), "this": ((HSA, unit),), "other": ((HSA, f"{unit}9"),)}[named]
    if rule.basis.purpose is not None:
        _consents(
            child,
            rule.basis.purpose,
            kind,
            signers,
            separate_records=separate_records,
            by_child=by_child,
            organisations=organisations,
        )
        if objected:
            _objection(child, rule.basis.purpose, kind)
    message = bundle()
    _placement(child, message, lvu=lvu, answer=answer)
    _protections(child, message, level, level_in, hidden=hidden)
    if secret:
        REGISTRY.protect(
            f"secret:{child}",
            child=child,
            kind=Protection.SECRET_FROM_GUARDIANS,
            valid_from=AT - dt.timedelta(1),
        )
    ended = ended and level is not None and level_in == "registry"
    if ended:
        REGISTRY.end_identity_protection(child, at=AT - dt.timedelta(hours=1))
    if released:
        release = ResidenceReleased(
            release_id=f"rel-{child}",
            child=child,
            message_id="m1",
            recipients=((HSA, unit),),
            released_by="h-1",
        )
        REGISTRY.record_release(release, child=child)

    decision = POLICY.decide(
        DecisionRequest(
            message_id=deterministic_id("m1", "r"),
            event=event,
            child=child,
            recipient_id="r",
            recipient_kind=kind,
            at=AT,
            bundle=message,
            sender_kind=sender,
            guardian_facing=guardian_facing,
            recipient_identifiers=((HSA, unit),),
        )
    )

    unanswered = event in PLACEMENTS and lvu and not hidden and answer is None
    if decision.outcome not in DELIVERED:
        return
    assert not unanswered, f"an LVU placement went out before the hidden-residence answer: {decision.reason}"
    delivered = as_delivered(message, removed=decision.removed, security=decision.security)
    assert not _refers_to_removed(delivered), decision.removed
    hidden = hidden or answer == "carried-hidden"
    identity = level is not None and not ended
    may_have = (not identity or released) and (not hidden or (rule.residence_need and not guardian_facing))
    if not may_have:
        assert not reveals_residence(delivered), decision.reason
    withheld = secret and guardian_facing  # secrecy against the guardians: no content at all
    if ended and not withheld and (not hidden or (rule.residence_need and not guardian_facing)):
        assert reveals_residence(delivered), f"an ended protection still redacts: {decision.reason}"
    if identity:
        assert (CONFIDENTIALITY_SYSTEM, "V") in {
            (x["system"], x["code"]) for x in delivered["meta"]["security"]
        }
    if secret and guardian_facing:
        assert [e["resource"]["resourceType"] for e in delivered["entry"]] == [
            "MessageHeader",
            "Patient",
            "Task",
        ]
        assert (ACT_CODE_SYSTEM, "NOPAT") in {(x["system"], x["code"]) for x in delivered["meta"]["security"]}
    if rule.basis.kind == "consent":
        _check_consent(decision, age_on(born, AT.date()), custody, signers, by_child=by_child)
        assert named != "other", f"a consent for another organisation counted: {decision.reason}"
        if objected:
            assert by_child, f"a guardian's consent counted against the child's objection: {decision.reason}"
