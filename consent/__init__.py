"""Consent and secrecy: the consent registry, per-recipient decisions and keyed pseudonyms.

This package imports only ``contracts``.
"""

from __future__ import annotations

from consent.decisions import CONSENT_BASIS, ConsentPolicy, Decider, Decision, DecisionRequest, Outcome
from consent.ledger import DecisionLedger, LedgerRecord
from consent.pseudonym import Pseudonymizer
from consent.redaction import redact
from consent.registry import ConsentAnswer, ConsentGrant, ConsentRegistry, Protection

__all__ = [
    "CONSENT_BASIS",
    "ConsentAnswer",
    "ConsentGrant",
    "ConsentPolicy",
    "ConsentRegistry",
    "Decider",
    "Decision",
    "DecisionLedger",
    "DecisionRequest",
    "LedgerRecord",
    "Outcome",
    "Protection",
    "Pseudonymizer",
    "redact",
]
