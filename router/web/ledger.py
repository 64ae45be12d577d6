"""Reading the decision ledger for compliance: search and verify, behind a Protocol.

:class:`SqlLedgerReader` reads the ``decisions`` table of ``sambus.consent.ledger`` as it is. A ledger with a
hash chain and signed checkpoints provides its own ``verify``; this one can only check that no entry
is missing from the sequence, and says so in its result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sambus.consent import compliance
from sambus.consent.anchor import Anchor
from sambus.consent.compliance import LedgerEntry
from sambus.consent.verify import verify


@dataclass(frozen=True)
class LedgerQuery:
    """What a compliance officer searches for; every field narrows the search."""

    child: str | None = None
    """The child's pseudonym (the personnummer is pseudonymised before it gets here)."""
    since: dt.date | None = None
    until: dt.date | None = None
    """Inclusive."""
    recipient: str | None = None
    outcome: str | None = None
    limit: int = 500


@dataclass(frozen=True)
class ChainVerification:
    """The result of verifying the ledger."""

    intact: bool
    checked: int
    detail: str


class LedgerReader(Protocol):
    """The decision ledger, read-only."""

    def search(self, query: LedgerQuery) -> Sequence[LedgerEntry]:
        """The decisions matching ``query``, oldest first."""
        ...

    def verify(self) -> ChainVerification:
        """Check the ledger has not been tampered with."""
        ...


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


class SqlLedgerReader:
    """Reads the decision ledger of :mod:`sambus.consent.ledger` and verifies its chain and checkpoints."""

    def __init__(
        self,
        engine: sa.Engine,
        keys: Mapping[str, Ed25519PublicKey] | None = None,
        anchors: Callable[[], Sequence[Anchor] | None] = lambda: None,
    ) -> None:
        """Read the ledger in ``engine``'s database; check checkpoint signatures with ``keys`` when given.

        ``anchors`` reads the anchored checkpoints (outside the database) at each verification, ``None``
        when no anchor is configured.
        """
        self._engine = engine
        self._keys = keys
        self._anchors = anchors
        self._compliance = compliance.Compliance(engine)

    def search(self, query: LedgerQuery) -> Sequence[LedgerEntry]:
        """The decisions matching ``query``, oldest first.

        Raises:
            StoreUnavailableError: the database cannot be read.
        """
        return self._compliance.select(
            compliance.LedgerQuery(
                child=query.child or None,
                since=_day_start(query.since) if query.since else None,
                until=_day_start(query.until + dt.timedelta(days=1)) if query.until else None,
                recipient_id=query.recipient or None,
                outcome=query.outcome or None,
                limit=query.limit,
            )
        )

    def verify(self) -> ChainVerification:
        """Check the hash chain and, with keys, the signed checkpoints; name the first bad entry.

        Raises:
            StoreUnavailableError: the database cannot be read.
        """
        anchors = self._anchors()
        result = verify(self._engine, self._keys, anchors)
        signatures = "signed checkpoints checked" if self._keys else "no verify key configured"
        if result.first is not None:
            return ChainVerification(intact=False, checked=result.entries, detail=str(result.first))
        if anchors is None:
            anchored = "no anchor configured"
        elif result.anchored is None:
            anchored = "the anchor holds no checkpoint yet"
        else:
            anchored = f"everything the anchor signed is there (up to entry {result.anchored.seq})"
        return ChainVerification(
            intact=True,
            checked=result.entries,
            detail=f"hash chain intact over {result.entries} entries; "
            f"{result.checkpoints} checkpoints ({signatures}); {anchored}",
        )
