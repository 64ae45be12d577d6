"""Keyed pseudonyms of children: the same child always maps to the same value, which reveals nothing.

A pseudonym is HMAC-SHA-256 of the normalised personnummer under a secret key. It is the Kafka key
of every message about the child (so per-child order holds) and the child's handle in the consent
registry. Without the key it cannot be reversed or recomputed from a guessed personnummer.
"""

from __future__ import annotations

import hashlib
import hmac

_MIN_KEY_BYTES = 32


class Pseudonymizer:
    """Computes keyed pseudonyms under one secret key."""

    def __init__(self, key: bytes) -> None:
        """Use ``key`` (at least 32 bytes, from settings, never from the repository)."""
        if len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"the pseudonym key must be at least {_MIN_KEY_BYTES} bytes")
        self._key = key

    def of(self, person_number: str) -> str:
        """The pseudonym of a child's key, as 64 hex digits.

        The key (``identifiers.child_key``) is a validated 12-digit personnummer or samordningsnummer, or an
        LMA number's or reservnummer's ``<system>|<value>``.
        """
        return hmac.new(self._key, person_number.encode("ascii"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        """Never show the key."""
        return "Pseudonymizer(key=***)"
