"""The child's voice, consent scope, the relay and answers, on the real broker from the agencies' own events.

Each test sends what the agencies' systems send (custody, consents, a child's objection, secrecy against
the guardians, SIP initiatives, Task answers) through the adapters, the router and the registry, and reads
every delivery topic and the decision ledger:

* a child's objection blocks the guardians' consent for what it covers;
* secrecy against the guardians (OSL 12:3) gives a guardian-facing school a message without content;
* a consent naming one school releases nothing to another school;
* the relay that carries a SIP message for a school without Cosmic Link is decided for itself;
* a Task status goes on its request's basis: after a withdrawal it is denied (withdrawn) and the sender
  told; an answer to a statutory request names that request's provision.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from sambus.adapters import translate_message
from sambus.consent.compliance import Compliance, LedgerEntry, LedgerQuery
from sambus.consent.registry import Protection
from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.topics import Header
from tests.integration.conftest import Running
from tests.integration.test_answers_end_to_end import (
    BU_HALSAN,
    BUP,
    CHILD,
    SOCIAL,
    Deliveries,
    event,
    received,
    task_of,
)
from tests.present import day, moment

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

MOTHER = "19800412-1235"
SODRA = {"schoolUnitCode": "19800002"}
"""Södra skolan, Västerås: Cosmic Link, faces the guardians (its portal)."""
NORRA = {"schoolUnitCode": "19800001"}
"""Norra skolan, Västerås: no Cosmic Link (social services of Västerås relays its SIP messages)."""
FROM = moment(days=-19)
"""When the consents and secrecy decisions begin: before the events, which happen now."""


async def until(what: str, condition: Callable[[], bool]) -> None:
    """Wait (bounded) until ``condition`` holds: events on other agency topics arrive in their own time."""
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"never happened: {what}")


def registry_knows(running: Running, kind: str, *, objected: bool = False) -> Callable[[], bool]:
    """Whether the registry has applied the mother's consent (or the child's objection) for ``kind``."""

    def check() -> bool:
        answer = running.app.registry.assess(
            child=running.app.pseudonymizer.of(CHILD),
            at=dt.datetime.now(dt.UTC),
            purpose=Purpose.SIP,
            agency_kind=AgencyKind(kind),
        ).consent
        if answer is None:
            return False
        return answer.objected if objected else answer.consent_id is not None

    return check


async def custody_and_consent(running: Running, *kinds: str, extra: dict[str, Any] | None = None) -> None:
    """Sole custody for the mother, and her consent to SIP with ``kinds``, as social services sends them.

    Returns once the registry has applied both (later events travel on other agency topics).
    """
    social = running.topics.agency_events("social")
    await running.send(
        social,
        event(
            "social",
            "custody-updated",
            "custody-1",
            {"guardians": [MOTHER], "custody": "sole", "at": moment(days=-50)},
        ),
    )
    await running.send(
        social,
        event(
            "social",
            "consent-recorded",
            "consent-1",
            {
                "consentId": "samtycke-sip-1",
                "purpose": "sip",
                "agencyKinds": list(kinds),
                "givenBy": "guardian",
                "guardians": [MOTHER],
                "validFrom": FROM,
                **(extra or {}),
            },
        ),
    )
    await until("the consent is recorded", registry_knows(running, kinds[0]))


async def ledger(running: Running, recipient: str, code: str, count: int = 1) -> list[LedgerEntry]:
    """The ledger's decisions for ``recipient`` of ``code``, once ``count`` are there (bounded wait)."""
    compliance = Compliance(running.app.ledger.engine)
    found: list[LedgerEntry] = []
    for _ in range(300):
        found = [e for e in compliance.select(LedgerQuery(recipient_id=recipient)) if e.event == code]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    return found


async def school_sip(
    running: Running, event_id: str, *invite: dict[str, str], school: dict[str, str]
) -> None:
    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "sip-initiated",
            event_id,
            {**school, "initiatedBy": "student_health", "reason": "mental_health", "invite": list(invite)},
        ),
    )


async def test_a_childs_objection_blocks_the_guardians_consent(running: Running) -> None:
    await custody_and_consent(running, "school", "bu_halsan", "social_services")
    await running.send(
        running.topics.agency_events("school"),
        event(
            "school",
            "child-objected",
            "objection-1",
            {
                "objectionId": "invandning-1",
                "purpose": "sip",
                "agencyKinds": ["bu_halsan"],
                "assessedBy": "kurator-17",
                "validFrom": FROM,
            },
        ),
    )
    await until("the objection is recorded", registry_knows(running, "bu_halsan", objected=True))
    deliveries = Deliveries(running)
    await school_sip(running, "sip-1", {"hsaId": BU_HALSAN}, {"organisationNumber": SOCIAL}, school=SODRA)

    [(_, code, notice)] = [d for d in await deliveries.all(2) if d[0] == "vasteras-skola-sodra"]
    assert code == "delivery-denied"
    assert "objected" in json.dumps(notice, ensure_ascii=False)
    assert {(r, c) for r, c, _ in await deliveries.all(2)} == {
        ("vasteras-skola-sodra", "delivery-denied"),
        ("vasteras-socialtjanst", "sip-initiated"),
    }
    [entry] = await ledger(running, "vastmanland-bu-halsan", "sip-initiated")
    assert entry.outcome == "deny"
    assert "the child objected (invandning-1, heard by kurator-17)" in entry.reason
    assert "no guardian's consent counts" in entry.reason


async def test_secrecy_against_the_guardians_gives_a_guardian_facing_school_no_content(
    running: Running,
) -> None:
    await custody_and_consent(running, "school", "bu_halsan")
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "guardian-secrecy-decided",
            "secrecy-1",
            {"decisionId": "sekretess-vh-1", "assessedBy": "bup-lakare-3", "validFrom": FROM},
        ),
    )
    child = running.app.pseudonymizer.of(CHILD)
    await until(
        "the secrecy is recorded",
        lambda: bool(running.app.registry.protections_at(child, dt.datetime.now(dt.UTC))),
    )
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "sip-initiated",
            "sip-2",
            {"hsaId": BU_HALSAN, "unitKind": "bu_halsan", "reason": "mental_health", "invite": [SODRA]},
        ),
    )

    school = await received(deliveries, 1, "vasteras-skola-sodra", "sip-initiated")
    task = task_of(school)
    assert "reasonCode" not in task
    assert {c["code"] for c in school["meta"]["security"]} >= {"R", "NOPAT"}
    records = await running.read(running.topics.deliver("vasteras-skola-sodra"), count=1)
    assert dict(records[0].headers)[Header.DECISION] == b"permit_redacted"
    [entry] = await ledger(running, "vasteras-skola-sodra", "sip-initiated")
    assert "content removed (secret from the guardians (OSL 12:3): the recipient faces the guardians)" in (
        entry.reason
    )
    assert "entry[1].resource.reasonCode" in entry.removed


async def test_secrecy_against_the_guardians_lifted_early_lets_later_messages_carry_their_content(
    running: Running,
) -> None:
    await custody_and_consent(running, "school", "bu_halsan")
    child = running.app.pseudonymizer.of(CHILD)
    ehr = running.topics.agency_events("ehr")
    await running.send(
        ehr,
        event(
            "ehr",
            "guardian-secrecy-decided",
            "secrecy-2",
            {
                "decisionId": "sekretess-vh-2",
                "assessedBy": "bup-lakare-3",
                "validFrom": FROM,
                "validTo": moment(days=346),
            },
        ),
    )
    await until(
        "the secrecy is recorded",
        lambda: (
            Protection.SECRET_FROM_GUARDIANS
            in running.app.registry.protections_at(child, dt.datetime.now(dt.UTC))
        ),
    )
    deliveries = Deliveries(running)
    lifted_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    await running.send(
        ehr,
        event(
            "ehr",
            "guardian-secrecy-lifted",
            "secrecy-2-lifted",
            {"decisionId": "sekretess-vh-2", "assessedBy": "bup-lakare-3", "at": lifted_at.isoformat()},
        ),
    )
    await until(
        "the lift is recorded",
        lambda: (
            Protection.SECRET_FROM_GUARDIANS
            not in running.app.registry.protections_at(child, dt.datetime.now(dt.UTC))
        ),
    )
    await running.send(
        ehr,
        event(
            "ehr",
            "sip-initiated",
            "sip-7",
            {"hsaId": BU_HALSAN, "unitKind": "bu_halsan", "reason": "mental_health", "invite": [SODRA]},
        ),
    )

    assert [(r, c) for r, c, _ in await deliveries.all(1)] == [("vasteras-skola-sodra", "sip-initiated")], (
        "the school gets the SIP invitation; nobody is told of the lift itself"
    )
    school = await received(deliveries, 1, "vasteras-skola-sodra", "sip-initiated")
    assert "reasonCode" in task_of(school)
    assert "NOPAT" not in {c["code"] for c in school.get("meta", {}).get("security", [])}
    records = await running.read(running.topics.deliver("vasteras-skola-sodra"), count=1)
    assert dict(records[0].headers)[Header.DECISION] == b"permit"
    [lift] = await ledger(running, "sambus-registry", "guardian-secrecy-lifted")
    assert (lift.outcome, lift.rule_id) == ("permit", "guardian-secrecy-lifted")
    assert lift.reason.startswith(
        f"secrecy against the guardians (decision sekretess-vh-2) lifted from {lifted_at.isoformat()}"
    )
    assert lift.child == child


async def test_a_consent_for_one_school_releases_nothing_to_another(running: Running) -> None:
    named = [SODRA, {"hsaId": BU_HALSAN}, {"organisationNumber": SOCIAL}]
    await custody_and_consent(
        running, "school", "bu_halsan", "social_services", extra={"organisations": named}
    )
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "sip-initiated",
            "sip-3",
            {
                "hsaId": BU_HALSAN,
                "unitKind": "bu_halsan",
                "reason": "mental_health",
                "invite": [SODRA, NORRA],
            },
        ),
    )

    assert await deliveries.who(2) == {
        ("vasteras-skola-sodra", "sip-initiated"): 1,
        ("vastmanland-bu-halsan", "delivery-waiting"): 1,  # the initiator is told the other school waits
    }
    [other] = await ledger(running, "vasteras-skola-norra", "sip-initiated")
    assert other.outcome == "await_consent"
    assert other.reason.startswith("no consent in force for sip covering school")
    [sodra] = await ledger(running, "vasteras-skola-sodra", "sip-initiated")
    assert sodra.outcome == "permit"
    assert "samtycke-sip-1" in sodra.reason


async def test_a_consent_for_one_process_releases_nothing_in_another(running: Running) -> None:
    invite = {"hsaId": BU_HALSAN, "unitKind": "bu_halsan", "reason": "mental_health", "invite": [SODRA]}
    first, second = (
        event("ehr", "sip-initiated", "sip-8", invite),
        event("ehr", "sip-initiated", "sip-9", invite),
    )
    [intent] = translate_message(first)
    await custody_and_consent(running, "school", extra={"processId": intent.correlation_id})
    deliveries = Deliveries(running)

    await running.send(running.topics.agency_events("ehr"), first)
    await running.send(running.topics.agency_events("ehr"), second)

    got = await deliveries.all(2)
    assert {(r, c) for r, c, _ in got} == {
        ("vasteras-skola-sodra", "sip-initiated"),
        ("vastmanland-bu-halsan", "delivery-waiting"),
    }, "the school gets the SIP the consent names; the other waits, and BU-hälsan is told"
    [school] = [m for r, c, m in got if c == "sip-initiated"]
    assert task_of(school)["groupIdentifier"]["value"] == intent.correlation_id
    entries = await ledger(running, "vasteras-skola-sodra", "sip-initiated", count=2)
    assert sorted(e.outcome for e in entries) == ["await_consent", "permit"]


async def test_the_relay_for_a_school_without_cosmic_link_is_decided_for_itself(running: Running) -> None:
    await custody_and_consent(running, "school", "bu_halsan")
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "sip-initiated",
            "sip-4",
            {"hsaId": BU_HALSAN, "unitKind": "bu_halsan", "reason": "mental_health", "invite": [NORRA]},
        ),
    )

    [school] = await ledger(running, "vasteras-skola-norra", "sip-initiated")
    [relay] = await ledger(running, "vasteras-socialtjanst", "sip-initiated")
    assert relay.outcome == "await_consent"
    assert "no consent in force for sip covering social_services" in relay.reason
    assert relay.message_id == school.message_id
    assert school.outcome == "await_consent"
    assert "through relay vasteras-socialtjanst: await_consent" in school.reason
    told = await running.read(*Deliveries(running)._topics, count=2, timeout=6)  # noqa: SLF001
    assert [(r.topic.rsplit(".", 1)[-1], dict(r.headers)[Header.EVENT_CODE]) for r in told] == [
        ("vastmanland-bu-halsan", b"delivery-waiting")  # only the initiator, told that the message waits
    ]
    del deliveries


async def test_a_status_answer_after_the_consent_was_withdrawn_is_denied_withdrawn(running: Running) -> None:
    await custody_and_consent(running, "school", "bu_halsan")
    deliveries = Deliveries(running)
    await school_sip(running, "sip-5", {"hsaId": BU_HALSAN}, school=SODRA)
    invitation = await received(deliveries, 1, "vastmanland-bu-halsan", "sip-initiated")
    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "consent-withdrawn",
            "withdrawn-1",
            {
                "consentId": "samtycke-sip-1",
                "at": moment(days=-1),
                "withdrawnBy": "guardian",
                "guardians": [MOTHER],
            },
        ),
    )
    await until("the withdrawal is recorded", lambda: not registry_knows(running, "school")())
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "task-status",
            "accepted-1",
            {
                "processId": task_of(invitation)["groupIdentifier"]["value"],
                "taskId": task_of(invitation)["id"],
                "status": "accepted",
                "hsaId": BU_HALSAN,
                "answerTo": SODRA,
            },
        ),
    )

    [entry] = await ledger(running, "vasteras-skola-sodra", "task-status-changed")
    assert (entry.outcome, entry.rule_id, entry.rule_version) == ("deny", "task-status-answer", 4)
    assert entry.reason.startswith("answers a sip-initiated request made on sip-consent@2: withdrawn:")
    assert entry.reason.endswith(
        "; the answering unit is told why; the requester is told that its request will not be answered "
        "through sambus (the consent it rested on was withdrawn), without the answer"
    )
    got = await deliveries.all(3)
    assert {(r, c) for r, c, _ in got} == {
        ("vastmanland-bu-halsan", "sip-initiated"),
        ("vastmanland-bu-halsan", "delivery-denied"),
        ("vasteras-skola-sodra", "delivery-denied"),
    }, "BU-hälsan is told why its answer was denied; the school that waits for it, that none will come"
    [told_answerer] = [m for r, c, m in got if (r, c) == ("vastmanland-bu-halsan", "delivery-denied")]
    assert "withdrawn" in json.dumps(told_answerer, ensure_ascii=False)
    [told_school] = [m for r, c, m in got if (r, c) == ("vasteras-skola-sodra", "delivery-denied")]
    [communication] = [
        e["resource"] for e in told_school["entry"] if e["resource"]["resourceType"] == "Communication"
    ]
    text = communication["payload"][0]["contentString"]
    assert text == (
        "Region Västmanland, BU-hälsan Västerås (vastmanland-bu-halsan): no answer to this request will be "
        "delivered through sambus: the consent it rested on was withdrawn"
    )
    assert {"type": "Task", "identifier": task_of(invitation)["identifier"][0]} in communication["about"]
    school_sees = json.dumps(told_school, ensure_ascii=False)
    assert "accepted" not in school_sees, "the school must not learn what BU-hälsan answered"
    assert "samtycke-sip-1" not in school_sees


async def test_a_status_answer_to_a_statutory_request_goes_on_that_requests_provision(
    running: Running,
) -> None:
    deliveries = Deliveries(running)
    await running.send(
        running.topics.agency_events("social"),
        event(
            "social",
            "investigation-info-requested",
            "inv-1",
            {"organisationNumber": SOCIAL, "recipients": [{"hsaId": BUP}], "answerBy": day(14)},
        ),
    )
    request = await received(deliveries, 1, "vastmanland-bup", "investigation-info-requested")
    await running.send(
        running.topics.agency_events("ehr"),
        event(
            "ehr",
            "task-status",
            "inv-accepted",
            {
                "processId": task_of(request)["groupIdentifier"]["value"],
                "taskId": task_of(request)["id"],
                "status": "accepted",
                "hsaId": BUP,
                "answerTo": {"organisationNumber": SOCIAL},
            },
        ),
    )

    assert await deliveries.who(2) == {
        ("vastmanland-bup", "investigation-info-requested"): 1,
        ("vasteras-socialtjanst", "task-status-changed"): 1,
    }
    [entry] = await ledger(running, "vasteras-socialtjanst", "task-status-changed")
    assert (entry.outcome, entry.rule_id, entry.rule_version) == ("permit", "task-status-answer", 4)
    assert "investigation-info-requested request made on investigation-info@2" in entry.reason
    assert entry.legal_basis.startswith("OSL 10:28 with SoL (2025:400) uppgiftsskyldighet")
    assert "breaks OSL 25:1" in entry.legal_basis
