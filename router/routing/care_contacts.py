"""Active care contacts as the care side stated them: whether BUP or habilitation may be invited to a SIP."""

from __future__ import annotations

from typing import Protocol


class CareContacts(Protocol):
    """The care contacts units stated (``care-contact-stated``; the ``processes`` stage keeps them)."""

    def active(self, child: str, unit: str) -> bool:
        """Whether the unit (directory id) stated an active care contact with ``child`` (pseudonym)."""
        ...


class NoCareContacts:
    """A null object for tools that route without process state: no unit has stated a care contact."""

    def active(self, child: str, unit: str) -> bool:
        """None is known."""
        del child, unit
        return False
