"""A wired web app over a real SQLite database (and the real broker where a test asks for it)."""

from __future__ import annotations

import datetime as dt
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.exc import SADeprecationWarning

from sambus.consent import DecisionLedger, LedgerRecord
from sambus.contracts.topics import Topics
from sambus.router.kafka.admin import run_sync
from sambus.router.service.bootstrap import Sambus, bootstrap
from sambus.router.settings import Settings
from sambus.router.stats.indicators import ProcessFact, ProcessKind, SqlStatsFacts
from sambus.router.web.app import WebServices, create_app
from sambus.router.web.auth import Role, TokenAuthenticator, mint_token
from sambus.router.web.wiring import web_services
from tests.database import upgraded
from tests.web.kafka_seed import Seeded, seed_queues

CHILD = "201203150006"
OTHER_CHILD = "201203150014"
DAY = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


@dataclass
class Site:
    """The app, a token per role, and what was put in its stores."""

    app: FastAPI
    sambus: Sambus
    services: WebServices
    tokens: dict[Role, str]

    def client(self, role: Role | None = None) -> TestClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return TestClient(self.app, headers=headers, base_url="https://testserver")  # Secure cookies

    def pseudonym(self, personnummer: str) -> str:
        return self.sambus.pseudonymizer.of(personnummer)


def _decision(message: str, child: str, recipient: str, outcome: str, day: int) -> LedgerRecord:
    return LedgerRecord(
        message_id=message,
        recipient_id=recipient,
        child=child,
        event="sip-initiated",
        outcome=outcome,
        rule_id="sip-consent" if outcome != "deny" else "no-consent-dental",
        rule_version=1,
        legal_basis="consent (OSL 10:1)" if outcome != "deny" else "secrecy (OSL 26:1)",
        reason="guardians consented" if outcome != "deny" else "no consent covers dental care",
        decided_at=DAY + dt.timedelta(days=day),
    )


def _population() -> list[ProcessFact]:
    start = dt.date(2026, 2, 1)
    facts = [
        ProcessFact(ProcessKind.SIP, "girl", "6-12", "Västerås", start, held_on=start, plan_on=start)
        for _ in range(12)
    ]
    facts += [ProcessFact(ProcessKind.SIP, "boy", "13-17", "Norra", start, held_on=start) for _ in range(9)]
    facts += [ProcessFact(ProcessKind.SIP, "other", "13-17", "Norra", start) for _ in range(2)]
    return facts


def make_site(tmp_path: Path, *, bootstrap_servers: str, topics: Topics) -> Site:
    settings = Settings(
        topic_prefix=topics.prefix,
        database_url=upgraded(f"sqlite:///{tmp_path / 'sambus.db'}"),
        pseudonym_key=SecretStr(secrets.token_hex(32)),
        dlq_encryption_keys=SecretStr(f"test:{secrets.token_hex(32)}"),
        instance_id=secrets.token_hex(4),
    )
    sambus = bootstrap(settings, bootstrap_servers=bootstrap_servers)
    minted = {role: mint_token() for role in Role}
    authenticator = TokenAuthenticator.from_setting(
        ",".join(f"{role}-person:{role}:{digest}" for role, (_, digest) in minted.items())
    )
    services = web_services(sambus, authenticator=authenticator)
    ledger = DecisionLedger(sambus.engine)
    child, other = sambus.pseudonymizer.of(CHILD), sambus.pseudonymizer.of(OTHER_CHILD)
    with warnings.catch_warnings():
        # sambus.consent.ledger on this branch calls Result.tuples(), deprecated in SQLAlchemy 2.1.
        warnings.simplefilter("ignore", SADeprecationWarning)
        ledger.append(
            [
                _decision("m-1", child, "vastmanland-bu-halsan", "permit", 0),
                _decision("m-1", child, "vastmanland-folktandvard", "deny", 0),
                _decision("m-2", other, "vastmanland-bu-halsan", "permit", 1),
                _decision("m-3", child, "vasteras-socialtjanst", "permit", 40),
            ]
        )
    SqlStatsFacts(sambus.engine).add(_population())
    return Site(
        app=create_app(services),
        sambus=sambus,
        services=services,
        tokens={role: token for role, (token, _) in minted.items()},
    )


@pytest.fixture
def offline_site(tmp_path: Path) -> Iterator[Site]:
    """The app with no broker behind it (for what never reaches the broker)."""
    made = make_site(tmp_path, bootstrap_servers="127.0.0.1:9", topics=Topics(prefix="offline."))
    yield made
    made.services.close()


@pytest.fixture
def seeded(kafka_bootstrap: str, topics: Topics) -> Seeded:
    """Known lag, dead letters and a parked record on the real broker."""
    return run_sync(seed_queues(kafka_bootstrap, topics))


@pytest.fixture
def site(tmp_path: Path, kafka_bootstrap: str, topics: Topics, seeded: Seeded) -> Iterator[Site]:  # noqa: ARG001
    """The app over the real broker (seeded) and a fresh SQLite database."""
    made = make_site(tmp_path, bootstrap_servers=kafka_bootstrap, topics=topics)
    yield made
    made.services.close()
