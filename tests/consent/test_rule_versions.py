"""Rules carry a version; a ledger entry keeps the version (and basis) it was decided under.

A county changes a rule (here: task-status answers, raised from version 1, a generic duty, to version 2,
the request's own basis): decisions made before keep ``@1`` and the old basis in the ledger, later ones
carry ``@2``, and the hash chain still verifies.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.pool import StaticPool

from sambus.consent import (
    PACKAGED_RULES,
    AnsweredRequest,
    ConsentPolicy,
    ConsentRegistry,
    DecisionLedger,
    DecisionRequest,
    RuleSet,
    ledger_record,
    verify,
)
from sambus.consent.compliance import Compliance, LedgerQuery
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.fhir import EventCode
from sambus.router.service.schema import upgrade

AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
OLD_ANSWER_RULE = {
    "id": "task-status-answer",
    "version": 1,
    "basis": {
        "kind": "duty",
        "duty": "investigation_info",
        "provision": "OSL 10:28 with the provision of the request it answers",
    },
    "events": ["task-status-changed"],
}


def _rules(*, old: bool) -> RuleSet:
    data: dict[str, Any] = yaml.safe_load(PACKAGED_RULES.read_text(encoding="utf-8"))
    if old:
        data["rules"] = [OLD_ANSWER_RULE if r["id"] == "task-status-answer" else r for r in data["rules"]]
    return RuleSet.parse(data)


def _answer(message_id: str) -> DecisionRequest:
    return DecisionRequest(
        message_id=message_id,
        event=EventCode.TASK_STATUS_CHANGED,
        child="child-1",
        recipient_id="vasteras-socialtjanst",
        recipient_kind=AgencyKind.SOCIAL_SERVICES,
        at=AT,
        bundle={"resourceType": "Bundle", "type": "message", "entry": []},
        sender_kind=AgencyKind.BUP,
        answers=AnsweredRequest(EventCode.INVESTIGATION_INFO_REQUESTED),
    )


def test_a_ledger_entry_keeps_the_rule_version_it_was_decided_under() -> None:
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    upgrade(engine)
    registry = ConsentRegistry(engine)
    ledger = DecisionLedger(engine)
    before, after = _answer("m-before"), _answer("m-after")

    ledger.append([ledger_record(before, ConsentPolicy(registry, _rules(old=True)).decide(before))])
    ledger.append([ledger_record(after, ConsentPolicy(registry, _rules(old=False)).decide(after))])

    entries = {e.message_id: e for e in Compliance(engine).select(LedgerQuery())}
    assert (entries["m-before"].rule_id, entries["m-before"].rule_version) == ("task-status-answer", 1)
    assert entries["m-before"].legal_basis.startswith(
        "OSL 10:28 with the provision of the request it answers"
    )
    assert (entries["m-after"].rule_id, entries["m-after"].rule_version) == ("task-status-answer", 4)
    assert entries["m-after"].legal_basis.startswith("OSL 10:28 with SoL (2025:400) uppgiftsskyldighet")
    assert "investigation-info@2" in entries["m-after"].reason
    assert verify(engine).ok
