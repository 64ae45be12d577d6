"""Consent and secrecy: the consent registry, per-recipient decisions and keyed pseudonyms.

This package imports only ``contracts``.
"""

from __future__ import annotations

from consent.county import VASTERBOTTEN, VASTMANLAND, CountyPolicy
from consent.decisions import CONSENT_BASIS, ConsentPolicy, Decider, Decision, DecisionRequest, Outcome
from consent.ledger import DecisionLedger, LedgerRecord
from consent.pseudonym import Pseudonymizer
from consent.redaction import redact
from consent.registry import ConsentAnswer, ConsentGrant, ConsentRegistry, Protection
from consent.residence import GuardianAccessNotice, guardian_access_notice, residence_paths
from consent.rules import DEFAULT_RULES, Duty, LegalBasis, Rule, RuleSet

__all__ = [
    "CONSENT_BASIS",
    "DEFAULT_RULES",
    "VASTERBOTTEN",
    "VASTMANLAND",
    "ConsentAnswer",
    "ConsentGrant",
    "ConsentPolicy",
    "ConsentRegistry",
    "CountyPolicy",
    "Decider",
    "Decision",
    "DecisionLedger",
    "DecisionRequest",
    "Duty",
    "GuardianAccessNotice",
    "LedgerRecord",
    "LegalBasis",
    "Outcome",
    "Protection",
    "Pseudonymizer",
    "Rule",
    "RuleSet",
    "guardian_access_notice",
    "redact",
    "residence_paths",
]
