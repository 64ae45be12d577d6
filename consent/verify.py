"""Verifying the decision ledger: the hash chain, the head, the signed checkpoints and the compliance copy.

``verify`` names the first bad entry: changed (its hash no longer matches its content), removed (the chain
skips over it), inserted (the chain goes on from before it) or reordered (it stands before an entry that
should come first), and any checkpoint whose signature or hash does not match. Given the ledger's anchors
(:mod:`sambus.consent.anchor`, kept outside the database), it also names what was removed together with the
checkpoints over it: a missing tail, missing checkpoints, an emptied ledger. It also checks that the
compliance projection, where compliance queries seek their entries, is an exact copy of the ledger's first
entries (miscopied).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sambus.consent.anchor import Anchor, latest
from sambus.consent.keys import signature_valid
from sambus.consent.ledger import (
    GENESIS,
    SEARCHED,
    checkpoint_payload,
    checkpoints,
    entries,
    entry_hash,
    head,
    search,
)
from sambus.contracts.errors import map_errors


class Tamper(StrEnum):
    """What is wrong with an entry or checkpoint."""

    CHANGED = "changed"
    REMOVED = "removed"
    INSERTED = "inserted"
    REORDERED = "reordered"
    CHECKPOINT = "checkpoint"
    MISSING = "missing"
    """A checkpoint the anchor holds is not in the database."""
    FORGED = "forged"
    """An anchor whose signature is not valid."""
    MISCOPIED = "miscopied"
    """The entry's copy in the compliance projection differs from it, is missing, or has no entry."""


@dataclass(frozen=True)
class Problem:
    """One thing verification found, at the ledger position ``seq``."""

    kind: Tamper
    seq: int
    detail: str

    def __str__(self) -> str:
        """E.g. ``entry 17 changed: ...``."""
        noun = {Tamper.CHECKPOINT: "checkpoint", Tamper.MISSING: "checkpoint", Tamper.FORGED: "anchor"}.get(
            self.kind, "entry"
        )
        return f"{noun} {self.seq} {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Verification:
    """The result of :func:`verify`: how much was checked and what is wrong (first problem first)."""

    entries: int
    checkpoints: int
    problems: tuple[Problem, ...] = field(default=())
    anchored: Anchor | None = None
    """The latest valid anchor the ledger was checked against, if any."""

    @property
    def ok(self) -> bool:
        """Whether the ledger is intact."""
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first bad entry or checkpoint."""
        return self.problems[0] if self.problems else None


def _chain_problem(rows: Sequence[Mapping[str, Any]]) -> Problem | None:
    """The first break in the hash chain, classified."""
    position_of = {str(row["entry_hash"]): index for index, row in enumerate(rows)}
    prev = GENESIS
    for index, row in enumerate(rows):
        seq = int(row["seq"])
        if entry_hash(str(row["prev_hash"]), row) != row["entry_hash"]:
            return Problem(Tamper.CHANGED, seq, "its content no longer matches its hash")
        if row["prev_hash"] == prev:
            prev = str(row["entry_hash"])
            continue
        linked = -1 if row["prev_hash"] == GENESIS else position_of.get(str(row["prev_hash"]))
        if linked is not None and linked > index:
            return Problem(
                Tamper.REORDERED,
                seq,
                f"it stands before entry {rows[linked]['seq']}, which should come first",
            )
        if linked is not None:
            first_inserted = rows[linked + 1]
            return Problem(
                Tamper.INSERTED,
                int(first_inserted["seq"]),
                f"the chain goes on from entry {rows[linked]['seq'] if linked >= 0 else 0} to entry {seq}",
            )
        before = int(rows[index - 1]["seq"]) if index else 0
        return Problem(Tamper.REMOVED, before + 1, f"entry {seq} follows an entry that is no longer there")
    return None


def _checkpoint_problems(
    rows: Sequence[Mapping[str, Any]],
    signed: Iterable[Mapping[str, Any]],
    keys: Mapping[str, Ed25519PublicKey],
) -> list[Problem]:
    by_seq = {int(row["seq"]): str(row["entry_hash"]) for row in rows}
    last = max(by_seq, default=0)
    problems = []
    for checkpoint in signed:
        seq = int(checkpoint["seq"])
        key = keys.get(str(checkpoint["key_id"]))
        payload = checkpoint_payload(seq, str(checkpoint["entry_hash"]), str(checkpoint["signed_at"]))
        if key is None:
            problems.append(Problem(Tamper.CHECKPOINT, seq, f"unknown key {checkpoint['key_id']}"))
        elif not signature_valid(key, payload, str(checkpoint["signature"])):
            problems.append(Problem(Tamper.CHECKPOINT, seq, "its signature is not valid"))
        elif seq > last:
            problems.append(Problem(Tamper.REMOVED, last + 1, f"a checkpoint signed entries up to {seq}"))
        elif by_seq.get(seq) != checkpoint["entry_hash"]:
            problems.append(
                Problem(Tamper.CHECKPOINT, seq, "the chain up to here was rewritten: the signed hash differs")
            )
    return problems


def _head_problems(rows: Sequence[Mapping[str, Any]], seq: int, hash_: str) -> list[Problem]:
    """The head row names the last entry; a difference means entries were removed or added at the end."""
    last_seq, last_hash = (int(rows[-1]["seq"]), str(rows[-1]["entry_hash"])) if rows else (0, GENESIS)
    if seq > last_seq:
        return [Problem(Tamper.REMOVED, last_seq + 1, f"the ledger's head says it has {seq} entries")]
    if seq < last_seq:
        return [Problem(Tamper.INSERTED, seq + 1, f"entries stand after the ledger's head ({seq})")]
    if hash_ != last_hash:
        return [Problem(Tamper.CHANGED, last_seq, "the last entry is not the one the ledger's head names")]
    return []


def _anchor_problems(
    rows: Sequence[Mapping[str, Any]],
    signed: Sequence[Mapping[str, Any]],
    anchors: Sequence[Anchor],
    keys: Mapping[str, Ed25519PublicKey],
) -> tuple[list[Problem], Anchor | None]:
    """What the database lacks or changed against the anchors outside it (the anchor may lag, never lead)."""
    problems = [
        Problem(Tamper.FORGED, a.seq, "its signature is not valid under the verification keys")
        for a in anchors
        if not a.valid(keys)
    ]
    valid = {a.seq: a for a in anchors if a.valid(keys)}
    top = latest(valid.values())
    if top is None:
        return problems, None
    hashes = {int(row["seq"]): str(row["entry_hash"]) for row in rows}
    stored = {int(c["seq"]) for c in signed}
    last = max(hashes, default=0)
    if top.seq > last:
        problems.append(
            Problem(
                Tamper.REMOVED,
                last + 1,
                f"entries {last + 1} to {top.seq} are missing: the anchor's checkpoint of {top.signed_at} "
                f"signed {top.seq} entries, the database has {len(rows)}",
            )
        )
    for seq, anchor in sorted(valid.items()):
        if seq not in stored:
            problems.append(
                Problem(Tamper.MISSING, seq, "the anchor holds this checkpoint, the database does not")
            )
        if seq in hashes and hashes[seq] != anchor.entry_hash:
            problems.append(
                Problem(
                    Tamper.CHECKPOINT, seq, "the chain up to here was rewritten: the anchored hash differs"
                )
            )
    kept = sum(1 for seq in stored if seq <= top.seq)
    if kept < top.checkpoints and all(seq in stored for seq in valid):
        problems.append(
            Problem(
                Tamper.MISSING,
                top.seq,
                f"{top.checkpoints - kept} of the {top.checkpoints} checkpoints up to entry {top.seq} "
                "are missing",
            )
        )
    return problems, top


def _projection_problems(
    rows: Sequence[Mapping[str, Any]], copies: Sequence[Mapping[str, Any]]
) -> list[Problem]:
    """Where the compliance projection is not an exact copy of the ledger's first entries.

    Compliance queries seek entries in the projection (:data:`sambus.consent.ledger.search`): a copy
    changed, removed or added there would change their answers while the chain stays intact. It must hold,
    unchanged, exactly the entries up to its highest seq (those after it are not copied yet). Only the names
    of the columns that differ are given, never their values.
    """
    by_seq = {int(row["seq"]): row for row in rows}
    problems = []
    for copy in copies:
        seq = int(copy["seq"])
        entry = by_seq.get(seq)
        if entry is None:
            problems.append(
                Problem(Tamper.MISCOPIED, seq, "the compliance projection has it; the ledger does not")
            )
            continue
        differ = [name for name in SEARCHED if copy[name] != entry[name]]
        if differ:
            problems.append(
                Problem(
                    Tamper.MISCOPIED,
                    seq,
                    f"its copy in the compliance projection differs in {', '.join(differ)}",
                )
            )
    copied = {int(copy["seq"]) for copy in copies}
    last = max(copied, default=0)
    problems += [
        Problem(Tamper.MISCOPIED, seq, "the compliance projection lacks it, but holds later entries")
        for seq in sorted(by_seq)
        if seq <= last and seq not in copied
    ]
    return problems


def verify(
    engine: sa.Engine,
    keys: Mapping[str, Ed25519PublicKey] | None = None,
    anchors: Sequence[Anchor] | None = None,
) -> Verification:
    """Check the whole ledger: each entry's hash and link, the head, the checkpoints, the anchors.

    Checkpoints are checked under ``keys``; the database against ``anchors``.

    Args:
        engine: the ledger's database.
        keys: verification keys by key id (see :func:`sambus.consent.keys.key_id`); old keys stay listed
            after a rotation. Without keys, checkpoints are not checked.
        anchors: the checkpoints kept outside the database (see :class:`sambus.consent.anchor.AnchorFile`);
            ``None`` when there is no anchor to check against.

    Raises:
        ValueError: anchors are given without keys to check them.
        StoreUnavailableError: the database cannot be read.
    """
    if anchors is not None and not keys:
        raise ValueError("the ledger's anchor can only be checked with its verification keys")
    with map_errors("read the decision ledger"), engine.connect() as conn:
        # the copies first: whatever is copied is in the ledger by the time the ledger is read
        copies = [dict(row) for row in conn.execute(sa.select(search).order_by(search.c.seq)).mappings()]
        rows = [dict(row) for row in conn.execute(sa.select(entries).order_by(entries.c.seq)).mappings()]
        signed = [
            dict(row) for row in conn.execute(sa.select(checkpoints).order_by(checkpoints.c.seq)).mappings()
        ]
        top = conn.execute(sa.select(head.c.seq, head.c.entry_hash)).one_or_none()
    problems: list[Problem] = []
    chain = _chain_problem(rows)
    if chain is not None:
        problems.append(chain)
    if top is not None:
        problems += _head_problems(rows, int(top.seq), str(top.entry_hash))
    if keys is not None:
        problems += _checkpoint_problems(rows, signed, keys)
    anchored = None
    if anchors is not None and keys:
        found, anchored = _anchor_problems(rows, signed, anchors, keys)
        problems += found
    problems.sort(key=lambda p: p.seq)
    problems += _projection_problems(rows, copies)  # after the ledger's own: first is the ledger's
    return Verification(
        entries=len(rows), checkpoints=len(signed), problems=tuple(problems), anchored=anchored
    )
