"""Consent scope per organisation and process, and the child's objection, in the registry and the policy."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from sambus.consent import ConsentGrant, ConsentPolicy, ConsentRegistry, DecisionRequest, Outcome, RuleSet
from sambus.consent.registry import OBJECTION
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.fhir import EventCode
from sambus.contracts.fhir.codes import PROCESS_ID_SYSTEM
from sambus.contracts.registry_facts import Custody
from sambus.router.service.schema import upgrade

AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
HSA = "urn:oid:1.2.752.29.4.19"
UNIT = "SE2321000206-1001"


def _registry() -> ConsentRegistry:
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    upgrade(engine)
    registry = ConsentRegistry(engine)
    registry.record_child("child", dt.date(2014, 1, 1))
    registry.set_custody("child", Custody.SOLE, ("mother",), at=AT - dt.timedelta(days=30))
    return registry


def _grant(consent_id: str, **scope: object) -> ConsentGrant:
    return ConsentGrant(
        consent_id=consent_id,
        child="child",
        purpose=Purpose.SIP,
        agency_kinds=frozenset({AgencyKind.BU_HALSAN}),
        given_by="guardian",
        valid_from=AT - dt.timedelta(days=10),
        guardians=("mother",),
        **scope,  # type: ignore[arg-type]
    )


def _sip(process: str, unit: str = UNIT) -> DecisionRequest:
    task = {"resourceType": "Task", "groupIdentifier": {"system": PROCESS_ID_SYSTEM, "value": process}}
    return DecisionRequest(
        message_id=f"m-{process}-{unit}",
        event=EventCode.SIP_INITIATED,
        child="child",
        recipient_id="bu-halsan",
        recipient_kind=AgencyKind.BU_HALSAN,
        at=AT,
        bundle={"resourceType": "Bundle", "type": "message", "entry": [{"resource": task}]},
        sender_kind=AgencyKind.SCHOOL,
        recipient_identifiers=((HSA, unit),),
    )


def test_a_consent_for_one_process_covers_no_other() -> None:
    registry = _registry()
    registry.record(_grant("c-1", process_id="sip-1"), now=AT)
    policy = ConsentPolicy(registry, RuleSet.load())

    assert policy.decide(_sip("sip-1")).outcome is Outcome.PERMIT
    other = policy.decide(_sip("sip-2"))
    assert other.outcome is Outcome.AWAIT_CONSENT
    assert other.reason == "no consent in force for sip covering bu_halsan"


def test_a_consent_naming_one_unit_releases_nothing_to_another_of_the_same_kind() -> None:
    registry = _registry()
    registry.record(_grant("c-1", organisations=((HSA, UNIT),)), now=AT)
    policy = ConsentPolicy(registry, RuleSet.load())

    assert policy.decide(_sip("sip-1")).outcome is Outcome.PERMIT
    assert policy.decide(_sip("sip-1", unit="SE2321000206-1009")).outcome is Outcome.AWAIT_CONSENT


def test_an_objection_denies_and_its_withdrawal_lets_the_guardians_consent_count_again() -> None:
    registry = _registry()
    registry.record(_grant("c-1"), now=AT)
    objection = ConsentGrant(
        consent_id="inv-1",
        child="child",
        purpose=Purpose.SIP,
        agency_kinds=frozenset({AgencyKind.BU_HALSAN}),
        given_by=OBJECTION,
        valid_from=AT - dt.timedelta(days=5),
        maturity_assessed_by="kurator-1",
    )
    registry.record(objection, now=AT)
    policy = ConsentPolicy(registry, RuleSet.load())

    denied = policy.decide(_sip("sip-1"))
    assert denied.outcome is Outcome.DENY
    assert denied.reason.startswith("objected: the child objected (inv-1, heard by kurator-1)")

    registry.withdraw("inv-1", at=AT - dt.timedelta(days=1), child="child")
    again = policy.decide(_sip("sip-1"))
    assert again.outcome is Outcome.PERMIT, again.reason
