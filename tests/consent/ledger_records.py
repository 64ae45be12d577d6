"""Ledger records for the tests."""

from __future__ import annotations

import datetime as dt

from sambus.consent import LedgerRecord

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def record(
    n: int, *, recipient: str = "vasteras-socialtjanst", outcome: str = "permit", **changes
) -> LedgerRecord:
    """The n-th decision of a test: message ``m<n>``, one minute after the previous."""
    values = {
        "message_id": f"m{n}",
        "recipient_id": recipient,
        "child": f"{n:064x}",
        "event": "sip-initiated",
        "outcome": outcome,
        "rule_id": "sip-consent",
        "rule_version": 1,
        "legal_basis": "OSL 12:2 (samtycke)",
        "reason": f"the guardians' consent c-{n}",
        "decided_at": T0 + dt.timedelta(minutes=n),
        "removed": (),
    }
    values.update(changes)
    return LedgerRecord(**values)
