"""Consent and secrecy: the consent registry, per-recipient decisions and keyed pseudonyms.

This package imports only ``contracts``.
"""

from __future__ import annotations

from sambus.consent.compliance import Compliance, LedgerEntry, LedgerQuery, audit_event, csv_text
from sambus.consent.county import VASTERBOTTEN, VASTMANLAND, CountyPolicy
from sambus.consent.decisions import (
    CONSENT_BASIS,
    AnsweredRequest,
    ConsentPolicy,
    Decider,
    Decision,
    DecisionRequest,
    Outcome,
    through_relay,
)
from sambus.consent.keys import CheckpointSigner, FieldCipher, LedgerKeyError, key_id
from sambus.consent.labels import as_delivered, header_codes, labelled, labelled_protections, security_for
from sambus.consent.ledger import DecisionLedger, LedgerRecord, ledger_record
from sambus.consent.pseudonym import Pseudonymizer
from sambus.consent.redaction import redact
from sambus.consent.registry import (
    IDENTITY_PROTECTIONS,
    ConsentAnswer,
    ConsentGrant,
    ConsentRegistry,
    Protection,
    Scope,
)
from sambus.consent.residence import (
    GuardianAccessNotice,
    guardian_access_message,
    guardian_access_notice,
    residence_paths,
)
from sambus.consent.rules import PACKAGED_RULES, Duty, LegalBasis, Rule, RuleSet
from sambus.consent.verify import Problem, Tamper, Verification, verify

__all__ = [
    "CONSENT_BASIS",
    "IDENTITY_PROTECTIONS",
    "PACKAGED_RULES",
    "VASTERBOTTEN",
    "VASTMANLAND",
    "AnsweredRequest",
    "CheckpointSigner",
    "Compliance",
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
    "FieldCipher",
    "GuardianAccessNotice",
    "LedgerEntry",
    "LedgerKeyError",
    "LedgerQuery",
    "LedgerRecord",
    "LegalBasis",
    "Outcome",
    "Problem",
    "Protection",
    "Pseudonymizer",
    "Rule",
    "RuleSet",
    "Scope",
    "Tamper",
    "Verification",
    "as_delivered",
    "audit_event",
    "csv_text",
    "guardian_access_message",
    "guardian_access_notice",
    "header_codes",
    "key_id",
    "labelled",
    "labelled_protections",
    "ledger_record",
    "redact",
    "residence_paths",
    "security_for",
    "through_relay",
    "verify",
]
