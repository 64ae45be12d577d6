"""The ledger's anchor: every signed checkpoint, also kept outside the database.

Everything :func:`sambus.consent.verify.verify` can check inside the database, an attacker with write access
to it can also remove: the tail of the chain together with the checkpoints over it, every checkpoint, or
every row. The anchor is the part they cannot reach: each checkpoint (its sequence number, head hash, the
number of checkpoints so far, the signing time and key id) is also appended to a place the database's writer
cannot rewrite, signed with the same Ed25519 key, and ``verify`` checks the database against it. A missing
tail, a missing checkpoint or an emptied ledger is then named.

:class:`AnchorFile` is an append-only file of JSON lines (one per checkpoint). Put it where the database's
users cannot write (another host, a write-once volume, ``chattr +a``); the signing key and this file are what
an operator must protect.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sambus.consent.keys import CheckpointSigner, signature_valid
from sambus.contracts.errors import ConfigError, StoreUnavailableError


def _canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Anchor:
    """One checkpoint as the anchor keeps it, signed on its own (the signature covers every other field).

    Attributes:
        seq: the ledger position the checkpoint signs (the number of entries up to it).
        entry_hash: the hash of entry ``seq``, the head of the chain at the checkpoint.
        checkpoints: how many checkpoints the ledger had, this one included.
        signed_at: when it was signed (ISO 8601, UTC).
        key_id: the signing key's id.
        signature: Ed25519 over :meth:`payload`, in hex.
    """

    seq: int
    entry_hash: str
    checkpoints: int
    signed_at: str
    key_id: str
    signature: str

    @staticmethod
    def signed_payload(seq: int, entry_hash: str, checkpoints: int, signed_at: str, key_id: str) -> bytes:
        """What an anchor's signature covers."""
        return _canonical(
            {
                "anchor": "sambus-ledger",
                "seq": seq,
                "entry_hash": entry_hash,
                "checkpoints": checkpoints,
                "signed_at": signed_at,
                "key_id": key_id,
            }
        )

    def payload(self) -> bytes:
        """What this anchor's signature covers."""
        return self.signed_payload(self.seq, self.entry_hash, self.checkpoints, self.signed_at, self.key_id)

    @classmethod
    def sign(
        cls, signer: CheckpointSigner, *, seq: int, entry_hash: str, checkpoints: int, signed_at: str
    ) -> Anchor:
        """The anchor of one checkpoint, signed by ``signer``."""
        payload = cls.signed_payload(seq, entry_hash, checkpoints, signed_at, signer.key_id)
        return cls(seq, entry_hash, checkpoints, signed_at, signer.key_id, signer.sign(payload))

    def valid(self, keys: Mapping[str, Ed25519PublicKey]) -> bool:
        """Whether the signature is valid under the key it names."""
        key = keys.get(self.key_id)
        return key is not None and signature_valid(key, self.payload(), self.signature)

    def to_json(self) -> str:
        """One compact JSON line."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Anchor:
        """An anchor from :meth:`to_json`'s text.

        Raises:
            ValueError: the text is not an anchor.
        """
        try:
            data = json.loads(text)
            return cls(
                seq=int(data["seq"]),
                entry_hash=str(data["entry_hash"]),
                checkpoints=int(data["checkpoints"]),
                signed_at=str(data["signed_at"]),
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
            )
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError("not a ledger anchor") from exc


class AnchorSink(Protocol):
    """Where the ledger puts each checkpoint's anchor once the database has committed it."""

    def write(self, anchors: Sequence[Anchor]) -> None:
        """Keep ``anchors`` (oldest first)."""
        ...


class AnchorFile:
    """An append-only file of anchors, one JSON line each, flushed to disk before the call returns."""

    def __init__(self, path: Path) -> None:
        """Keep anchors in ``path`` (created when missing)."""
        self.path = path

    def write(self, anchors: Sequence[Anchor]) -> None:
        """Append ``anchors`` and fsync.

        Raises:
            StoreUnavailableError: the file cannot be written.
        """
        if not anchors:
            return
        data = "".join(anchor.to_json() + "\n" for anchor in anchors).encode("ascii")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot append to the ledger anchor {self.path}") from exc

    def read(self) -> list[Anchor]:
        """Every anchor in the file, in the order written.

        Raises:
            ConfigError: the file is missing or a line is not an anchor (the anchor must not be guessed).
        """
        try:
            lines = self.path.read_text(encoding="ascii").splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read the ledger anchor {self.path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"the ledger anchor {self.path} is not an anchor file") from exc
        anchors = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                anchors.append(Anchor.from_json(line))
            except ValueError as exc:
                raise ConfigError(f"line {number} of the ledger anchor {self.path} is not an anchor") from exc
        return anchors


def latest(anchors: Iterable[Anchor]) -> Anchor | None:
    """The anchor of the highest sequence number."""
    return max(anchors, key=lambda a: (a.seq, a.checkpoints), default=None)
