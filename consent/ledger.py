"""The decision ledger: one entry per (message, recipient), append-only, hash-chained and signed.

Each entry's hash is SHA-256 over the previous entry's hash and a canonical encoding of the entry (sorted-key
compact JSON), so changing, removing, inserting or reordering an entry breaks the chain (see
:func:`sambus.consent.verify.verify`). Every ``checkpoint_every`` entries the head of the chain is signed with
Ed25519, so even a chain rewritten from some entry on no longer matches a signed checkpoint. Each checkpoint
also goes to the ledger's anchors (:mod:`sambus.consent.anchor`), outside the database, once the database has
committed it, so a removed tail, removed checkpoints or an emptied ledger are found too.

The child appears as its keyed pseudonym; where the identity must be recoverable it is stored AES-GCM
encrypted with the key's id (see :class:`sambus.consent.keys.FieldCipher`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sambus.consent.anchor import Anchor, AnchorSink
from sambus.consent.decisions import Decision, DecisionRequest
from sambus.consent.keys import CheckpointSigner, FieldCipher
from sambus.contracts.errors import cause_chain, map_errors

GENESIS = "0" * 64
"""The "previous hash" of the first entry."""

metadata = sa.MetaData()
_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite needs INTEGER for its rowid key

entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("recipient_id", sa.String(100), nullable=False),
    sa.Column("child", sa.String(64), nullable=False, comment="keyed pseudonym"),
    sa.Column("identity_key_id", sa.String(40), nullable=True),
    sa.Column("identity", sa.String(200), nullable=True, comment="AES-GCM, base64(nonce + ciphertext)"),
    sa.Column("event", sa.String(60), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("rule_id", sa.String(60), nullable=False),
    sa.Column("rule_version", sa.Integer, nullable=False),
    sa.Column("legal_basis", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("removed", sa.String(2000), nullable=False),
    sa.Column("decided_at", sa.String(40), nullable=False, comment="ISO 8601, UTC"),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("message_id", "recipient_id", name="uq_ledger_message_recipient"),
    # No other index: the compliance filters seek their entries in :data:`search`, written after the append.
)

search = sa.Table(
    "ledger_search",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("recipient_id", sa.String(100), nullable=False),
    sa.Column("child", sa.String(64), nullable=False, comment="keyed pseudonym"),
    sa.Column("event", sa.String(60), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("rule_id", sa.String(60), nullable=False),
    sa.Column("rule_version", sa.Integer, nullable=False),
    sa.Column("legal_basis", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("removed", sa.String(2000), nullable=False),
    sa.Column("decided_at", sa.String(40), nullable=False, comment="ISO 8601, UTC"),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    # One per compliance filter, each in the order the compliance queries return (decision time, then seq),
    # so a query with a period reads only that period and stops at its limit (sambus.consent.compliance).
    sa.Index("ix_ledger_search_decided", "decided_at", "seq"),
    sa.Index("ix_ledger_search_child_decided", "child", "decided_at", "seq"),
    sa.Index("ix_ledger_search_recipient_decided", "recipient_id", "decided_at", "seq"),
    sa.Index("ix_ledger_search_outcome_decided", "outcome", "decided_at", "seq"),
    sa.Index("ix_ledger_search_legal_basis_decided", "legal_basis", "decided_at", "seq"),
    # And for the filters offered together whose entries one of the above would have to sift.
    sa.Index("ix_ledger_search_recipient_outcome_decided", "recipient_id", "outcome", "decided_at", "seq"),
    sa.Index(
        "ix_ledger_search_recipient_legal_basis_decided", "recipient_id", "legal_basis", "decided_at", "seq"
    ),
    sa.Index("ix_ledger_search_legal_basis_outcome_decided", "legal_basis", "outcome", "decided_at", "seq"),
    comment="what compliance queries read of ledger_entries, with their indexes (a copy; verify checks it)",
)
"""What compliance queries read of every entry, with the filters' indexes: a projection of :data:`entries`.

It holds every column a :class:`sambus.consent.compliance.LedgerEntry` is made of (not the encrypted
identity nor the previous hash), so a query reads only the projection and its index, not the ledger too (on
PostgreSQL a second index and table visit per entry). The entries themselves carry no index besides their
key and the (message, recipient) constraint, so an append writes two B-trees, not ten. :func:`project`
copies the entries appended since into this table, in ledger order and in one statement per chunk, after
the append has committed (a ledger does it in a thread of its own, :class:`DecisionLedger`); it always holds
exactly the entries up to its highest ``seq``. A compliance query reads it and, for the entries after its
highest ``seq`` not yet copied, the ledger itself (:meth:`sambus.consent.compliance.Compliance.select`), so
its answer is complete however far behind the projection is; only its speed depends on the projection
keeping up. :func:`sambus.consent.verify.verify` checks that it is an exact copy.
"""

SEARCHED = tuple(column.name for column in search.columns)
"""The columns of :data:`search`, copied from :data:`entries`."""

checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("signed_at", sa.String(40), nullable=False),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
)

head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", _SEQ, nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)

HASHED = (
    "message_id",
    "recipient_id",
    "child",
    "identity_key_id",
    "identity",
    "event",
    "outcome",
    "rule_id",
    "rule_version",
    "legal_basis",
    "reason",
    "removed",
    "decided_at",
)
"""The columns an entry's hash covers (with the previous hash); ``seq`` is only where it is stored."""


def iso(value: dt.datetime) -> str:
    """A fixed-width ISO 8601 UTC text that sorts as the instant does."""
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""Made once: ``json.dumps`` with options makes a new encoder per call."""


def canonical(value: Mapping[str, Any]) -> bytes:
    """The canonical encoding hashed and signed: compact JSON with sorted keys, UTF-8."""
    return _ENCODER.encode(value).encode("utf-8")


_SORTED = tuple(sorted(HASHED))
_encode_str = json.encoder.encode_basestring  # what the encoder above writes a string with (C, where built)
_KEYS = tuple(_encode_str(name) + ":" for name in _SORTED)


def entry_body(row: Mapping[str, Any]) -> bytes:
    """The canonical encoding of an entry's hashed columns: what its hash covers after the previous hash.

    It does not depend on the chain, so an appender makes it before it takes the ledger's write lock. It is
    :func:`canonical` of those columns, written out here for the value types an entry has (text, integer,
    null), in their sorted order: a third of the time (any other type goes through :func:`canonical`).
    """
    parts = []
    for key, name in zip(_KEYS, _SORTED, strict=True):
        value = row[name]
        kind = type(value)
        if kind is str:
            parts.append(key + _encode_str(value))
        elif value is None:
            parts.append(key + "null")
        elif kind is int:
            parts.append(key + int.__repr__(value))
        else:
            return canonical({name: row[name] for name in HASHED})
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def chain_hash(prev_hash: str, body: bytes) -> str:
    """SHA-256 over the previous hash and an entry's body (see :func:`entry_body`)."""
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def entry_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The hash of an entry: SHA-256 over the previous hash and the entry's hashed columns."""
    return chain_hash(prev_hash, entry_body(row))


def checkpoint_payload(seq: int, hash_: str, signed_at: str) -> bytes:
    """What a checkpoint's signature covers."""
    return canonical({"ledger": "sambus", "seq": seq, "entry_hash": hash_, "signed_at": signed_at})


# The statements an append runs, built once (SQLAlchemy then finds them compiled in its cache).
_LOCK_HEAD = (
    head.update().where(head.c.id == 1).values(seq=head.c.seq).returning(head.c.seq, head.c.entry_hash)
)
"""Takes the ledger's write lock (concurrent appenders chain one after another) and reads its head."""
_MOVE_HEAD = head.update().where(head.c.id == 1).values(seq=sa.bindparam("s"), entry_hash=sa.bindparam("h"))
_MOVE_HEAD_FROM = (
    head.update()
    .where(head.c.id == 1, head.c.seq == sa.bindparam("was_s"), head.c.entry_hash == sa.bindparam("was_h"))
    .values(seq=sa.bindparam("s"), entry_hash=sa.bindparam("h"))
)
"""Takes the write lock and moves the head in one statement, only from the head this ledger last left."""
_INSERT = entries.insert()
"""A plain insert: the unique constraint on (message, recipient) refuses an entry already there, and the
whole batch with it; there is no query before the insert."""
_INSERTED = ("seq", *HASHED, "prev_hash", "entry_hash")
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _insert_text(dialect: sa.Dialect) -> str | None:
    """:data:`_INSERT` as the driver's own text with positional markers, or ``None`` for another paramstyle.

    The batch goes to the driver's ``executemany`` as tuples: SQLAlchemy's per-row parameter processing was
    a fifth of an append's time, for columns that need none (text and integers).
    """
    marker = _MARKERS.get(dialect.paramstyle)
    if marker is None:  # pragma: no cover - sqlite3 and psycopg use the ones above
        return None
    columns = ", ".join(_INSERTED)
    markers = ", ".join([marker] * len(_INSERTED))
    return f"INSERT INTO {entries.name} ({columns}) VALUES ({markers})"  # noqa: S608 - our names only


_LAST_CHECKPOINT = sa.select(sa.func.max(checkpoints.c.seq), sa.func.count()).select_from(checkpoints)


_LOG = logging.getLogger(__name__)

PROJECT_CHUNK = 5000
"""The most entries :func:`project` copies in one transaction: how long it holds SQLite's write lock."""

_PROJECTED_HIGHEST = sa.select(sa.func.max(search.c.seq))
_PROJECTED = sa.select(sa.func.coalesce(sa.func.max(search.c.seq), 0)).scalar_subquery()


def _projection(dialect: str) -> sa.Insert:
    """``INSERT INTO ledger_search SELECT … FROM ledger_entries`` for the next chunk not yet copied.

    An entry a concurrent projector copied first is skipped (``ON CONFLICT DO NOTHING``), not an error.
    """
    chunk = (
        sa.select(*(entries.c[name] for name in SEARCHED))
        .where(entries.c.seq > _PROJECTED)
        .order_by(entries.c.seq)
        .limit(sa.bindparam("chunk"))
    )
    if dialect == "postgresql":
        return postgresql.insert(search).from_select(SEARCHED, chunk).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(search).from_select(SEARCHED, chunk).on_conflict_do_nothing()
    return search.insert().from_select(SEARCHED, chunk)  # pragma: no cover - sambus runs on the two above


_PROJECTIONS = {dialect: _projection(dialect) for dialect in ("postgresql", "sqlite")}


def project(engine: sa.Engine, *, chunk: int = PROJECT_CHUNK, once: bool = False) -> int:
    """Copy the entries appended since into :data:`search`, a chunk per transaction; returns how many.

    With ``once``, copy one chunk at most.

    The ledger is appended in order, one batch after another under its head's lock, so the entries it has
    are always ``1 … n``; each chunk copies the next ones in order, so :data:`search` always holds exactly
    the entries up to its highest ``seq``.

    Raises:
        StoreUnavailableError: the database cannot be reached or refused the copy.
    """
    statement = _PROJECTIONS.get(engine.dialect.name)
    if statement is None:  # pragma: no cover - sambus runs on the two made up front
        statement = _projection(engine.dialect.name)
    copied = 0
    with map_errors("copy ledger entries to the compliance projection"), engine.connect() as conn:
        # its own connection, closed when done rather than pooled: a projector thread may copy after the
        # engine's owner has disposed of its pool, and must not leave a connection open behind it
        conn.detach()
        highest = int(conn.scalar(_PROJECTED_HIGHEST) or 0)
        conn.commit()
        while True:
            conn.execute(statement, {"chunk": chunk})
            # the projection is a prefix: what it gained is its new highest seq less the old (psycopg gives
            # no row count for an INSERT … SELECT … ON CONFLICT)
            done = int(conn.scalar(_PROJECTED_HIGHEST) or 0) - highest
            conn.commit()
            highest += done
            copied += done
            if once or done < chunk:
                return copied


class Projector:
    """Keeps :data:`search` caught up with the ledger, in a thread of its own that an append wakes.

    After a wake-up the thread gathers the appends of the next ``gather_s`` seconds, then copies
    (:func:`project`) until nothing is left: one commit (on SQLite one sync to disk) for several appends. So
    the projection is behind by ``gather_s`` plus one copy while appends come, and caught up otherwise. The
    thread ends after ``idle_s`` without a wake-up; the next append starts another. An error is logged (its
    type only) and the copy tried again at the next wake-up: a compliance query reads what is not yet copied
    from the ledger itself, so a projection behind is slower to query, never incomplete.
    """

    def __init__(
        self, engine: sa.Engine, *, chunk: int = PROJECT_CHUNK, gather_s: float = 0.5, idle_s: float = 5.0
    ) -> None:
        """Copy from and to ``engine``'s database, ``chunk`` entries per transaction."""
        self._engine = engine
        self._chunk = chunk
        self._gather_s = gather_s
        self._idle_s = idle_s
        self._wake = threading.Event()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def wake(self) -> None:
        """Entries were appended: copy them soon."""
        with self._guard:
            self._idle.clear()
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ledger-projection", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every entry appended before the last :meth:`wake` is copied (or the copy failed)."""
        return self._idle.wait(timeout)

    @property
    def running(self) -> bool:
        """Whether its thread is there (copying, or waiting for the next append)."""
        with self._guard:
            return self._thread is not None

    def _run(self) -> None:
        while True:
            if not self._wake.wait(self._idle_s):
                with self._guard:
                    if not self._wake.is_set():
                        self._thread = None
                        return
                continue
            time.sleep(self._gather_s)
            self._wake.clear()
            try:
                project(self._engine, chunk=self._chunk)
            except Exception as exc:  # noqa: BLE001 - the thread must live on; the query reads the ledger
                # types and error codes, never the message (it may quote a statement's parameters)
                _LOG.warning(
                    "copying ledger entries to the compliance projection failed: %s", cause_chain(exc)
                )
            with self._guard:
                if not self._wake.is_set():
                    self._idle.set()


def _chain(
    rows: Sequence[dict[str, Any]],
    bodies: Sequence[bytes],
    seq: int,
    prev: str,
    existing: set[tuple[str, str]],
) -> tuple[list[tuple[Any, ...]], int, str]:
    """The rows not in ``existing`` chained after entry ``seq`` of hash ``prev``, as :data:`_INSERTED` tuples.

    Returns them with the new head's seq and hash. A (message, recipient) twice in the batch is chained once.
    """
    chained = []
    for row, body in zip(rows, bodies, strict=True):
        key = (row["message_id"], row["recipient_id"])
        if key in existing:  # looked up, or earlier in this batch
            continue
        existing.add(key)
        seq += 1
        hash_ = chain_hash(prev, body)
        chained.append((seq, *(row[name] for name in HASHED), prev, hash_))
        prev = hash_
    return chained, seq, prev


class _AlreadyThere(Exception):  # noqa: N818 - control flow inside :meth:`DecisionLedger.append`
    """Some entries of a batch were in the ledger already: the batch is chained again without them."""


@dataclass(frozen=True, kw_only=True)
class LedgerDecision:
    """What the ledger says of every decision: which message, to whom, about which child, and why.

    The child is only its pseudonym. :class:`LedgerRecord` (what is written) and
    :class:`sambus.consent.compliance.LedgerEntry` (what is read back) both are one.
    """

    message_id: str
    recipient_id: str
    child: str
    event: str
    outcome: str
    rule_id: str
    rule_version: int
    legal_basis: str
    reason: str
    decided_at: dt.datetime
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LedgerRecord(LedgerDecision):
    """One decision, as it is written to the ledger.

    Attributes:
        identity: the child's personnummer, only when it must be recoverable; stored encrypted, never in
            clear (the ledger refuses it without a :class:`~sambus.consent.keys.FieldCipher`).
    """

    identity: str | None = None


def ledger_record(
    request: DecisionRequest,
    decision: Decision,
    *,
    identity: str | None = None,
    message_id: str | None = None,
) -> LedgerRecord:
    """The ledger record of one decision (under ``message_id`` when given, e.g. for a re-decision)."""
    return LedgerRecord(
        message_id=request.message_id if message_id is None else message_id,
        recipient_id=request.recipient_id,
        child=request.child,
        event=str(request.event),
        outcome=str(decision.outcome),
        rule_id=decision.rule_id,
        rule_version=decision.rule_version,
        legal_basis=decision.legal_basis,
        reason=decision.reason,
        decided_at=request.at,
        removed=decision.removed,
        identity=identity,
    )


class DecisionLedger:
    """Appends decisions in batches; a (message, recipient) already there is not written again."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        signer: CheckpointSigner | None = None,
        cipher: FieldCipher | None = None,
        checkpoint_every: int = 100,
        anchors: Sequence[AnchorSink] = (),
        project_after: bool = True,
    ) -> None:
        """Keep the ledger in ``engine``'s database; sign checkpoints with ``signer`` when given.

        Each checkpoint is also written to every one of ``anchors`` after the database commits it; the
        anchors an append made are in :attr:`last_anchors` until the next append (a stage sends them on with
        its Kafka transaction). With ``project_after`` (the default) the entries an append made are copied
        to the compliance projection (:data:`search`) by a :class:`Projector` thread once it has committed;
        without it, whoever appends calls :func:`project` when they choose (the benchmark times it).
        """
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self._engine = engine
        self._signer = signer
        self._cipher = cipher
        self._checkpoint_every = checkpoint_every
        self._anchors = tuple(anchors)
        self.last_anchors: tuple[Anchor, ...] = ()
        self._appending = threading.Lock()
        self._last_checkpoint = 0
        """The latest checkpoint this ledger made or read: never later than the database's latest."""
        self._insert_text = _insert_text(engine.dialect)
        self._left: tuple[int, str] | None = None
        """The head (seq, hash) this ledger's last append left, or ``None`` (then it locks and reads it)."""
        self.projector = Projector(engine) if project_after else None
        """Copies appended entries to the compliance projection after each append, or ``None``."""

    @property
    def engine(self) -> sa.Engine:
        """The database the ledger is in."""
        return self._engine

    def _row(self, record: LedgerRecord) -> dict[str, Any]:
        key_id = token = None
        if record.identity is not None:
            if self._cipher is None:
                raise ValueError("an identity is stored only encrypted: give the ledger a FieldCipher")
            key_id, token = self._cipher.encrypt(
                record.identity, aad=f"{record.message_id}|{record.recipient_id}".encode()
            )
        return {
            "message_id": record.message_id,
            "recipient_id": record.recipient_id,
            "child": record.child,
            "identity_key_id": key_id,
            "identity": token,
            "event": record.event,
            "outcome": record.outcome,
            "rule_id": record.rule_id,
            "rule_version": record.rule_version,
            "legal_basis": record.legal_basis,
            "reason": record.reason,
            "removed": json.dumps(list(record.removed), separators=(",", ":")) if record.removed else "[]",
            "decided_at": iso(record.decided_at),
        }

    def append(self, records: Sequence[LedgerRecord]) -> int:
        """Append the records not yet in the ledger, in order, in one transaction; returns the number new.

        Each entry's body (what its hash covers besides the previous hash) is made before the ledger's write
        lock is taken; under it, only the chain hashes are computed and the batch inserted at once. A
        duplicate is refused by the unique constraint on (message, recipient), which fails the whole insert:
        that transaction is rolled back and the batch chained again without the entries already there,
        looked up first (a batch read again after a crash).
        """
        if not records:
            self.last_anchors = ()
            return 0
        rows = [self._row(record) for record in records]
        bodies = [entry_body(row) for row in rows]
        with self._appending:  # stages append from worker threads: anchors are written in chain order
            self.last_anchors = ()
            try:
                made, new = self._append(rows, bodies, look_first=False)
            except _AlreadyThere:
                made, new = self._append(rows, bodies, look_first=True)
            self._anchor(made)
        if new and self.projector is not None:
            self.projector.wake()
        return new

    def _append(
        self, rows: Sequence[dict[str, Any]], bodies: Sequence[bytes], *, look_first: bool
    ) -> tuple[list[Anchor], int]:
        """Chain and insert the rows in one transaction; without ``look_first``, raise on a duplicate.

        When this ledger made the last append, the batch is chained on the head it left, and one statement
        takes the write lock and moves the head, on the condition that the head is still that one (seq and
        hash): one statement fewer (on PostgreSQL one round trip fewer) than locking and reading the head,
        then moving it. When another appender (or anything else) has moved the head since, the condition
        fails, nothing has changed, and the head is locked, read and chained on as usual.
        """
        made: list[Anchor] = []
        left, self._left = self._left, None  # forgotten unless this append commits
        with map_errors("append to the decision ledger"):
            try:
                with self._engine.begin() as conn:
                    chained: list[tuple[Any, ...]] = []
                    if left is not None and not look_first:
                        chained, seq, prev = _chain(rows, bodies, *left, set())
                        moved = conn.execute(
                            _MOVE_HEAD_FROM, {"s": seq, "h": prev, "was_s": left[0], "was_h": left[1]}
                        ).rowcount
                        if moved != 1:
                            chained = []
                    if not chained:
                        start, start_hash = conn.execute(_LOCK_HEAD).one()
                        existing: set[tuple[str, str]] = set()
                        if look_first:
                            found = conn.execute(
                                sa.select(entries.c.message_id, entries.c.recipient_id).where(
                                    entries.c.message_id.in_({row["message_id"] for row in rows})
                                )
                            )
                            existing = {(str(m), str(r)) for m, r in found}
                        chained, seq, prev = _chain(rows, bodies, int(start), str(start_hash), existing)
                        if chained:
                            conn.execute(_MOVE_HEAD, {"s": seq, "h": prev})
                    if chained:
                        self._insert(conn, chained)
                        made += self._maybe_checkpoint(conn, seq, prev)
            except sa.exc.IntegrityError:
                if look_first:
                    raise  # not a duplicate of an entry looked up: let it surface
                raise _AlreadyThere from None  # rolled back; the caller chains again
        self._left = (seq, prev)
        if made:
            self._last_checkpoint = made[-1].seq
        return made, len(chained)

    def _insert(self, conn: sa.Connection, chained: list[tuple[Any, ...]]) -> None:
        """Insert the chained entries (tuples in :data:`_INSERTED`'s order) with one executemany."""
        if self._insert_text is None:  # pragma: no cover - see _insert_text
            conn.execute(_INSERT, [dict(zip(_INSERTED, values, strict=True)) for values in chained])
        else:
            conn.exec_driver_sql(self._insert_text, chained)

    def _anchor(self, made: Sequence[Anchor]) -> None:
        """Hand committed checkpoints to the anchors.

        A crash before this leaves the anchor behind the database, never ahead of it.
        """
        self.last_anchors = tuple(made)
        for sink in self._anchors:
            sink.write(made)

    def _maybe_checkpoint(
        self, conn: sa.Connection, seq: int, hash_: str, *, force: bool = False
    ) -> list[Anchor]:
        """Sign the head when ``checkpoint_every`` entries have come since the last checkpoint (or ``force``).

        The last checkpoint this ledger made or saw is remembered: another process may have signed one
        since, so the remembered one is never later than the real one, and when it says none is due, none
        is. Only when it says one may be due are the checkpoints read (under the write lock).
        """
        if self._signer is None:
            return []
        if not force and seq - self._last_checkpoint < self._checkpoint_every:
            return []
        last, count = conn.execute(_LAST_CHECKPOINT).one()
        last = int(last or 0)
        self._last_checkpoint = max(self._last_checkpoint, last)
        if seq <= last or (seq - last < self._checkpoint_every and not force):
            return []
        signed_at = iso(dt.datetime.now(dt.UTC))
        conn.execute(
            checkpoints.insert().values(
                seq=seq,
                entry_hash=hash_,
                signed_at=signed_at,
                key_id=self._signer.key_id,
                signature=self._signer.sign(checkpoint_payload(seq, hash_, signed_at)),
            )
        )
        return [
            Anchor.sign(
                self._signer, seq=seq, entry_hash=hash_, checkpoints=int(count) + 1, signed_at=signed_at
            )
        ]

    def checkpoint(self) -> int:
        """Sign the current head now (when it is not signed yet); returns the head's sequence number."""
        if self._signer is None:
            raise ValueError("the ledger has no signing key")
        made: list[Anchor] = []
        with self._appending:
            with map_errors("sign a ledger checkpoint"), self._engine.begin() as conn:
                seq, hash_ = conn.execute(_LOCK_HEAD).one()
                if seq:
                    made = self._maybe_checkpoint(conn, int(seq), str(hash_), force=True)
            if made:
                self._last_checkpoint = made[-1].seq
            self._anchor(made)
        return int(seq)

    def reveal(self, message_id: str, recipient_id: str) -> str | None:
        """The child's identity stored (encrypted) with one entry, or ``None`` when none was stored.

        Raises:
            ValueError: the ledger has no cipher.
            LedgerKeyError: the entry's key is unknown or the value does not open.
        """
        if self._cipher is None:
            raise ValueError("the ledger has no encryption keys")
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(entries.c.identity_key_id, entries.c.identity).where(
                    entries.c.message_id == message_id, entries.c.recipient_id == recipient_id
                )
            ).one_or_none()
        if row is None or row.identity is None:
            return None
        return self._cipher.decrypt(
            str(row.identity_key_id), str(row.identity), aad=f"{message_id}|{recipient_id}".encode()
        )

    def count(self) -> int:
        """How many decisions the ledger holds."""
        with self._engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(entries)) or 0)
