"""Reading the decision ledger for compliance: search and verify, behind a Protocol.

:class:`SqlLedgerReader` reads the ``decisions`` table of ``sambus.consent.ledger`` as it is. A ledger with a
hash chain and signed checkpoints provides its own ``verify``; this one can only check that no entry
is missing from the sequence, and says so in its result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sambus.consent import compliance
from sambus.consent.anchor import Anchor
from sambus.consent.compliance import LedgerEntry, LedgerQuery
from sambus.consent.verify import verify


@dataclass(frozen=True)
class ChainVerification:
    """The result of verifying the ledger."""

    intact: bool
    checked: int
    detail: str


class LedgerReader(Protocol):
    """The decision ledger, read-only."""

    def search(self, query: LedgerQuery) -> Sequence[LedgerEntry]:
        """The decisions matching ``query``, oldest first.

        The query is the CLI's too (:class:`~sambus.consent.compliance.LedgerQuery`): one type for both.
        """
        ...

    def verify(self) -> ChainVerification:
        """Check the ledger has not been tampered with."""
        ...


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
        return self._compliance.select(query)

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
