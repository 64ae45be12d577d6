"""Who is asking: roles, an Authenticator Protocol, and bearer tokens from configuration.

Only the SHA-256 of each token is configured (``SAMBUS_WEB_TOKENS``), so the settings never hold a
usable secret. An OIDC provider plugs in as another :class:`Authenticator` that validates an access
token and maps a claim to a :class:`Role`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sambus.contracts.errors import ConfigError


class Role(StrEnum):
    """What a person may do. An admin may do everything the others may."""

    OPERATOR = "operator"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """An authenticated person or system."""

    name: str
    role: Role

    def may(self, *roles: Role) -> bool:
        """Whether this principal has one of ``roles`` (an admin has every role)."""
        return self.role is Role.ADMIN or self.role in roles


class Authenticator(Protocol):
    """Turns a bearer token into a principal."""

    def authenticate(self, token: str) -> Principal | None:
        """The principal the token belongs to, or None when it is not valid."""
        ...


def token_digest(token: str) -> str:
    """The SHA-256 of a token, as 64 hex digits (what ``SAMBUS_WEB_TOKENS`` holds)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint_token() -> tuple[str, str]:
    """A new random token and its digest."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


class TokenAuthenticator:
    """Bearer tokens checked against configured SHA-256 digests."""

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        """``principals`` maps a token's hex digest to who holds it."""
        self._principals = dict(principals)

    @classmethod
    def from_setting(cls, value: str) -> TokenAuthenticator:
        """Parse ``name:role:sha256hex`` entries separated by commas.

        Raises:
            ConfigError: an entry is malformed (the message names the entry's position, not its digest).
        """
        principals: dict[str, Principal] = {}
        for position, entry in enumerate((e.strip() for e in value.split(",") if e.strip()), start=1):
            parts = entry.split(":")
            if len(parts) != 3:  # noqa: PLR2004 - name, role, digest
                raise ConfigError(f"SAMBUS_WEB_TOKENS entry {position} is not name:role:sha256hex")
            name, role, digest = parts
            if role not in set(Role):
                raise ConfigError(
                    f"SAMBUS_WEB_TOKENS entry {position} has role {role!r}; expected one of {', '.join(Role)}"
                )
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):  # noqa: PLR2004
                raise ConfigError(f"SAMBUS_WEB_TOKENS entry {position} needs a 64-hex-digit SHA-256")
            principals[digest] = Principal(name=name, role=Role(role))
        return cls(principals)

    def authenticate(self, token: str) -> Principal | None:
        """The principal whose digest matches, compared in constant time."""
        digest = token_digest(token)
        found = None
        for known, principal in self._principals.items():
            if hmac.compare_digest(known, digest):
                found = principal
        return found
