"""Puts the web app's services together from a wired sambus, and serves it with uvicorn."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from sambus.contracts.errors import ConfigError
from sambus.router.kafka.admin import metadata_answers
from sambus.router.kafka.connection import Broker
from sambus.router.kafka.dead_letters import KafkaDeadLetters
from sambus.router.kafka.reader import KafkaReader
from sambus.router.ops.queues import QueueMonitor
from sambus.router.service.bootstrap import Sambus
from sambus.router.service.consent_wiring import ledger_anchors, ledger_public_keys
from sambus.router.stats.indicators import SqlStatsFacts
from sambus.router.web.app import WebServices, create_app
from sambus.router.web.audit import AuditLog
from sambus.router.web.auth import Authenticator, TokenAuthenticator
from sambus.router.web.ledger import SqlLedgerReader


@dataclass(frozen=True)
class BrokerCheck:
    """Ready when the broker answers a metadata request."""

    bootstrap_servers: Broker
    name: str = "broker"

    async def __call__(self) -> bool:
        """Whether the broker answers."""
        return await metadata_answers(self.bootstrap_servers, timeout_ms=2000)


@dataclass(frozen=True)
class DatabaseCheck:
    """Ready when the database answers ``SELECT 1``."""

    engine: sa.Engine
    name: str = "database"

    async def __call__(self) -> bool:
        """Whether the database answers."""

        def ping() -> bool:
            try:
                with self.engine.connect() as conn:
                    return bool(conn.scalar(sa.text("SELECT 1")) == 1)
            except SQLAlchemyError:
                return False

        return await asyncio.to_thread(ping)


def token_authenticator(sambus: Sambus) -> TokenAuthenticator:
    """Bearer tokens from ``SAMBUS_WEB_TOKENS``.

    Raises:
        ConfigError: no tokens are configured, or an entry is malformed.
    """
    tokens = sambus.settings.web_tokens
    if tokens is None or not tokens.get_secret_value().strip():
        raise ConfigError(
            "SAMBUS_WEB_TOKENS is not set: mint a token with `sambus serve token --name NAME --role ROLE`"
        )
    return TokenAuthenticator.from_setting(tokens.get_secret_value())


def web_services(sambus: Sambus, *, authenticator: Authenticator | None = None) -> WebServices:
    """The web app's services over ``sambus``'s broker and database (its schema checked by the bootstrap).

    Raises:
        ConfigError: no authenticator is given and ``SAMBUS_WEB_TOKENS`` is not usable.
    """
    engine = sambus.engine
    audit = AuditLog(engine)
    facts = SqlStatsFacts(engine)
    reader = KafkaReader(sambus.kafka)  # one admin client and consumer for every page and scrape
    dead_letters = KafkaDeadLetters(
        bootstrap_servers=sambus.kafka, topics=sambus.topics, cipher=sambus.dlq_cipher, reader=reader
    )
    return WebServices(
        authenticator=authenticator or token_authenticator(sambus),
        queues=QueueMonitor(
            bootstrap_servers=sambus.kafka,
            topics=sambus.topics,
            deadlines=sambus.deadlines,
            reader=reader,
            known=lambda: ([spec.name for spec in sambus.topic_specs()], sambus.group_ids()),
        ),
        dead_letters=dead_letters,
        ledger=SqlLedgerReader(
            engine, ledger_public_keys(sambus.settings), lambda: ledger_anchors(sambus.settings)
        ),
        audit=audit,
        pseudonymizer=sambus.pseudonymizer,
        stats=facts,
        readiness=(BrokerCheck(sambus.kafka), DatabaseCheck(engine)),
        cookie_secure=sambus.settings.web_cookie_secure,
        login_attempts=sambus.settings.web_login_attempts,
        on_close=(reader.close,),
    )


async def serve(app: FastAPI, *, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve ``app`` until ``stop`` is set."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


__all__ = ["BrokerCheck", "DatabaseCheck", "create_app", "serve", "token_authenticator", "web_services"]
