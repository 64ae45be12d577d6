"""What an adapter hands on: a canonical FHIR message and the facts the router routes on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sambus.contracts.fhir.codes import EventCode


@dataclass(frozen=True)
class Intent:
    """One canonical FHIR message Bundle made from one inbound event.

    Attributes:
        message_id: the Bundle's id, deterministic for a given source event.
        event: the MessageHeader event code.
        correlation_id: ties together the messages of one process instance.
        child_personnummer: what the child is known by (its 12-digit personnummer or samordningsnummer,
            else ``<system>|<value>`` of its LMA number or reservnummer: ``identifiers.child_key``); used
            by the router to compute the Kafka key (a keyed pseudonym); never written to a key, a header
            or a log.
        bundle: the message Bundle as JSON-ready data, already validated by ``fhir.resources``.
        security: confidentiality and protected-identity labels, for the ``sambus-security`` header.
    """

    message_id: str
    event: EventCode
    correlation_id: str
    child_personnummer: str
    bundle: dict[str, Any]
    security: tuple[str, ...] = field(default=())
