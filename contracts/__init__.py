"""The shared language of sambus: inbound events, FHIR messages, identifiers and the Kafka contract.

This package imports no other package of ours.
"""

from __future__ import annotations

from sambus.contracts.agencies import AgencyKind, Purpose
from sambus.contracts.envelope import Envelope, open_envelope, parse_event
from sambus.contracts.errors import (
    BrokerUnavailableError,
    ConfigError,
    InvalidEventError,
    InvalidIntentError,
    ProcessNotKnownError,
    RoutingError,
    SambusError,
    StoreUnavailableError,
)
from sambus.contracts.intent import Intent
from sambus.contracts.topics import SCHEMA_VERSION, Header, Topics, TopicSpec

__all__ = [
    "SCHEMA_VERSION",
    "AgencyKind",
    "BrokerUnavailableError",
    "ConfigError",
    "Envelope",
    "Header",
    "Intent",
    "InvalidEventError",
    "InvalidIntentError",
    "ProcessNotKnownError",
    "Purpose",
    "RoutingError",
    "SambusError",
    "StoreUnavailableError",
    "TopicSpec",
    "Topics",
    "open_envelope",
    "parse_event",
]
