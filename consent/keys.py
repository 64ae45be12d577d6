"""Keys of the ledger: Ed25519 for signed checkpoints, AES-GCM for identities that must be recoverable.

Keys come from settings (``SAMBUS_LEDGER_*``), never from the repository; tests generate their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from sambus.contracts.errors import ConfigError, SambusError

_KEY_BYTES = 32
_NONCE_BYTES = 12


class LedgerKeyError(SambusError):
    """An encrypted identity cannot be opened: unknown key id, or the data or key is wrong."""

    code = "ledger_key"


def _hex_key(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise ConfigError(f"{what} must be {_KEY_BYTES * 2} hexadecimal digits") from exc
    if len(raw) != _KEY_BYTES:
        raise ConfigError(f"{what} must be {_KEY_BYTES * 2} hexadecimal digits ({_KEY_BYTES} bytes)")
    return raw


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable id of a verification key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


class CheckpointSigner:
    """Signs ledger checkpoints with an Ed25519 key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        """Sign with ``private``."""
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def from_hex(cls, text: str) -> CheckpointSigner:
        """A signer from a 32-byte Ed25519 seed in hex (``SAMBUS_LEDGER_SIGNING_KEY``).

        Raises:
            ConfigError: the text is not 64 hex digits.
        """
        return cls(Ed25519PrivateKey.from_private_bytes(_hex_key(text, "SAMBUS_LEDGER_SIGNING_KEY")))

    @classmethod
    def generate(cls) -> CheckpointSigner:
        """A signer with a fresh random key (tests, benchmarks, `sambus consent keygen`)."""
        return cls(Ed25519PrivateKey.generate())

    def seed_hex(self) -> str:
        """The private seed in hex, to put in ``SAMBUS_LEDGER_SIGNING_KEY``."""
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()

    def public_hex(self) -> str:
        """The verification key in hex, for ``SAMBUS_LEDGER_VERIFY_KEYS``."""
        return self.public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def sign(self, payload: bytes) -> str:
        """The signature of ``payload`` in hex."""
        return self._private.sign(payload).hex()

    def __repr__(self) -> str:
        """Never show the key."""
        return f"CheckpointSigner(key_id={self.key_id})"


def verify_keys(spec: str) -> dict[str, Ed25519PublicKey]:
    """Verification keys by key id, from comma-separated raw Ed25519 public keys in hex.

    Keeps checkpoints signed before a signing-key rotation verifiable (``SAMBUS_LEDGER_VERIFY_KEYS``).

    Raises:
        ConfigError: a key is not 64 hex digits.
    """
    keys = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        public = Ed25519PublicKey.from_public_bytes(_hex_key(part, "SAMBUS_LEDGER_VERIFY_KEYS"))
        keys[key_id(public)] = public
    return keys


def signature_valid(public: Ed25519PublicKey, payload: bytes, signature_hex: str) -> bool:
    """Whether ``signature_hex`` is a valid signature of ``payload`` under ``public``."""
    try:
        public.verify(bytes.fromhex(signature_hex), payload)
    except (InvalidSignature, ValueError):
        return False
    return True


class FieldCipher:
    """AES-256-GCM for identities the ledger must be able to give back; each value names its key id.

    Old keys stay listed to decrypt old entries; new values use the current key (rotation).
    """

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        """Encrypt with ``keys[current]``; decrypt with whichever key a value names.

        Raises:
            ConfigError: ``current`` is not among ``keys`` or a key is not 32 bytes.
        """
        if current not in keys:
            raise ConfigError(f"the current ledger encryption key id {current!r} is not among the keys")
        if any(len(key) != _KEY_BYTES for key in keys.values()):
            raise ConfigError(f"every ledger encryption key must be {_KEY_BYTES} bytes")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.current = current

    @classmethod
    def from_spec(
        cls, spec: str, current: str | None = None, *, setting: str = "SAMBUS_LEDGER_ENCRYPTION_KEYS"
    ) -> FieldCipher:
        """Keys from ``id:hex,id:hex`` (``setting``, by default the ledger's); the current key: the last.

        Raises:
            ConfigError: the spec is malformed.
        """
        keys: dict[str, bytes] = {}
        for part in (p.strip() for p in spec.split(",")):
            kid, sep, text = part.partition(":")
            if not sep or not kid:
                raise ConfigError(f"{setting} must look like id1:<64 hex>,id2:<64 hex>")
            keys[kid] = _hex_key(text, f"{setting} key {kid!r}")
        return cls(keys, current or list(keys)[-1])

    @staticmethod
    def new_key_hex() -> str:
        """A fresh random AES-256 key in hex."""
        return os.urandom(_KEY_BYTES).hex()

    def encrypt(self, plaintext: str, *, aad: bytes) -> tuple[str, str]:
        """``(key id, base64 of nonce + ciphertext)`` of ``plaintext``, bound to ``aad``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.current].encrypt(nonce, plaintext.encode("utf-8"), aad)
        return self.current, base64.b64encode(nonce + sealed).decode("ascii")

    def seal(self, plaintext: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """``(key id, nonce + ciphertext)`` of ``plaintext`` bytes, bound to ``aad``."""
        nonce = os.urandom(_NONCE_BYTES)
        return self.current, nonce + self._keys[self.current].encrypt(nonce, plaintext, aad)

    def open(self, kid: str, sealed: bytes, *, aad: bytes) -> bytes:
        """The plaintext of bytes :meth:`seal` made.

        Raises:
            LedgerKeyError: the key id is unknown, or the bytes, their context or the key is wrong.
        """
        cipher = self._keys.get(kid)
        if cipher is None:
            raise LedgerKeyError(f"no encryption key with id {kid!r}")
        try:
            return cipher.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad)
        except (InvalidTag, ValueError) as exc:
            raise LedgerKeyError("the sealed value cannot be opened with this key") from exc

    def decrypt(self, kid: str, token: str, *, aad: bytes) -> str:
        """The plaintext of a value :meth:`encrypt` made.

        Raises:
            LedgerKeyError: the key id is unknown, or the value, its context or the key is wrong.
        """
        cipher = self._keys.get(kid)
        if cipher is None:
            raise LedgerKeyError(f"no ledger encryption key with id {kid!r}")
        try:
            raw = base64.b64decode(token, validate=True)
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise LedgerKeyError("the encrypted identity cannot be opened with this key") from exc

    def __repr__(self) -> str:
        """Never show the keys."""
        return f"FieldCipher(keys={sorted(self._keys)}, current={self.current!r})"
