"""Per-recipient decisions: may this message reach this recipient, and on what legal basis."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from consent.registry import ConsentRegistry
from contracts.agencies import AgencyKind, Purpose
from contracts.fhir.codes import EventCode

CONSENT_BASIS = "OSL 12:2 (samtycke)"


class Outcome(StrEnum):
    """What happens to one message for one recipient."""

    PERMIT = "permit"
    PERMIT_REDACTED = "permit_redacted"
    DENY = "deny"
    AWAIT_CONSENT = "await_consent"


@dataclass(frozen=True)
class Decision:
    """A decision with its reason, legal basis and the rule that made it."""

    outcome: Outcome
    reason: str
    legal_basis: str
    rule_id: str
    rule_version: int


_PURPOSE_OF_EVENT = {EventCode.SIP_INITIATED: Purpose.SIP}


class ConsentPolicy:
    """Decides per recipient from the consent registry."""

    def __init__(self, registry: ConsentRegistry) -> None:
        """Decide with the consents in ``registry``."""
        self._registry = registry

    def decide(
        self, *, event: EventCode, child: str, recipient_kind: AgencyKind, at: dt.datetime
    ) -> Decision:
        """Decide whether a message of ``event`` about ``child`` may reach a recipient of ``recipient_kind``.

        A SIP rests on consent: without a consent in force for SIP covering the recipient's kind of
        agency, the message waits for one.
        """
        purpose = _PURPOSE_OF_EVENT[event]
        consent_id = self._registry.covers(child=child, purpose=purpose, agency_kind=recipient_kind, at=at)
        if consent_id is None:
            return Decision(
                outcome=Outcome.AWAIT_CONSENT,
                reason=f"no consent in force for {purpose} covering {recipient_kind}",
                legal_basis=CONSENT_BASIS,
                rule_id="sip-consent",
                rule_version=1,
            )
        return Decision(
            outcome=Outcome.PERMIT,
            reason=f"consent {consent_id} covers {purpose} with {recipient_kind}",
            legal_basis=CONSENT_BASIS,
            rule_id="sip-consent",
            rule_version=1,
        )
