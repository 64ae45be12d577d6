"""Per-recipient decisions: may this message reach this recipient, and on what legal basis.

The router asks a :class:`Decider` once per (message, recipient), at delivery time, and again at every
retry or replay, so a withdrawn consent stops later deliveries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

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
class DecisionRequest:
    """One message for one recipient, as the router sees it.

    Attributes:
        message_id: the intent's message id (the ledger is idempotent on it and ``recipient_id``).
        event: the message's event code.
        child: the child's keyed pseudonym.
        sender_kind: the kind of agency that sent the message, when known.
        recipient_id: the recipient's id in the routing directory.
        recipient_kind: the recipient's kind of agency.
        at: when the decision is made.
        bundle: the message Bundle as this recipient would receive it (plain JSON data).
    """

    message_id: str
    event: EventCode
    child: str
    recipient_id: str
    recipient_kind: AgencyKind
    at: dt.datetime
    bundle: Mapping[str, Any]
    sender_kind: AgencyKind | None = None


@dataclass(frozen=True)
class Decision:
    """A decision with its reason, legal basis and the rule (id and version) that made it.

    Attributes:
        removed: for ``permit_redacted``, the JSON paths removed from the Bundle (see :func:`redact`).
    """

    outcome: Outcome
    reason: str
    legal_basis: str
    rule_id: str
    rule_version: int
    removed: tuple[str, ...] = ()


class Decider(Protocol):
    """Anything that decides per recipient."""

    def decide(self, request: DecisionRequest) -> Decision:
        """Decide one message for one recipient."""
        ...


_PURPOSE_OF_EVENT = {EventCode.SIP_INITIATED: Purpose.SIP}


class ConsentPolicy:
    """Decides per recipient from the consent registry."""

    def __init__(self, registry: ConsentRegistry) -> None:
        """Decide with the consents in ``registry``."""
        self._registry = registry

    def decide(self, request: DecisionRequest) -> Decision:
        """Decide whether a message may reach a recipient.

        A SIP rests on consent: without a consent in force for SIP covering the recipient's kind of
        agency, the message waits for one. Messages no rule covers are denied.
        """
        purpose = _PURPOSE_OF_EVENT.get(request.event)
        if purpose is None:
            return Decision(
                outcome=Outcome.DENY,
                reason=f"no rule allows {request.event} to reach {request.recipient_kind}",
                legal_basis="OSL (sekretess): no consent and no provision breaking secrecy",
                rule_id="default-deny",
                rule_version=1,
            )
        consent_id = self._registry.covers(
            child=request.child, purpose=purpose, agency_kind=request.recipient_kind, at=request.at
        )
        if consent_id is None:
            return Decision(
                outcome=Outcome.AWAIT_CONSENT,
                reason=f"no consent in force for {purpose} covering {request.recipient_kind}",
                legal_basis=CONSENT_BASIS,
                rule_id="sip-consent",
                rule_version=1,
            )
        return Decision(
            outcome=Outcome.PERMIT,
            reason=f"consent {consent_id} covers {purpose} with {request.recipient_kind}",
            legal_basis=CONSENT_BASIS,
            rule_id="sip-consent",
            rule_version=1,
        )
