"""Attacks on the decision ledger by someone who can write to its database but has no signing key.

The ledger they attack has nine entries appended in three batches of three, with a signed checkpoint after
each batch (at entries 3, 6 and 9). Each attack names what ``verify`` must report first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from sambus.consent.ledger import GENESIS, entry_hash

from .ledger_records import record

N = 9
BATCHES = ((1, 2, 3), (4, 5, 6), (7, 8, 9))
CHECKPOINT_EVERY = 2


def sql(engine: sa.Engine, statement: str, **params: object) -> None:
    """Run one statement in its own transaction."""
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def row(engine: sa.Engine, seq: int) -> dict[str, object]:
    """Entry ``seq`` as stored."""
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT * FROM ledger_entries WHERE seq = :s"), {"s": seq})
        return dict(found.mappings().one())


def _hash_of(engine: sa.Engine, seq: int) -> str:
    return str(row(engine, seq)["entry_hash"]) if seq else GENESIS


def _fix_head(engine: sa.Engine, seq: int) -> None:
    sql(engine, "UPDATE ledger_head SET seq = :s, entry_hash = :h", s=seq, h=_hash_of(engine, seq))


def _rehash_from(engine: sa.Engine, seq: int) -> None:
    """Recompute every hash from entry ``seq`` on, and the head: the chain is consistent again."""
    prev = _hash_of(engine, seq - 1)
    with engine.connect() as conn:
        last = int(conn.scalar(sa.text("SELECT max(seq) FROM ledger_entries")) or 0)
    for n in range(seq, last + 1):
        new = entry_hash(prev, {**row(engine, n), "prev_hash": prev})
        sql(
            engine,
            "UPDATE ledger_entries SET prev_hash = :p, entry_hash = :h WHERE seq = :n",
            p=prev,
            h=new,
            n=n,
        )
        prev = new
    _fix_head(engine, last)


def change_an_entry(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_entries SET outcome = 'deny' WHERE seq = 5")


def change_a_reason(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_entries SET reason = 'no consent' WHERE seq = 2")


def delete_an_entry(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_entries WHERE seq = 4")


def delete_an_entry_and_renumber(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_entries WHERE seq = 4")
    sql(engine, "UPDATE ledger_entries SET seq = seq - 1 WHERE seq > 4")


def insert_a_forged_entry(engine: sa.Engine) -> None:
    prev = _hash_of(engine, 4)
    forged = {**row(engine, 1), "message_id": "forged", "reason": "forged", "prev_hash": prev}
    forged["entry_hash"] = entry_hash(prev, forged)
    forged["seq"] = 5
    sql(engine, "UPDATE ledger_entries SET seq = seq + 1000 WHERE seq >= 5")
    sql(engine, "UPDATE ledger_entries SET seq = seq - 999 WHERE seq >= 1000")
    columns = ", ".join(forged)
    values = ", ".join(":" + c for c in forged)
    sql(engine, f"INSERT INTO ledger_entries ({columns}) VALUES ({values})", **forged)  # noqa: S608


def swap_two_entries(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_entries SET seq = -1 WHERE seq = 2")
    sql(engine, "UPDATE ledger_entries SET seq = 2 WHERE seq = 3")
    sql(engine, "UPDATE ledger_entries SET seq = 3 WHERE seq = -1")


def rewrite_the_chain_from_an_entry(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_entries SET outcome = 'deny' WHERE seq = 5")
    _rehash_from(engine, 5)


def forge_a_checkpoint_signature(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_checkpoints SET signature = :s WHERE seq = 3", s="00" * 64)


def move_a_checkpoint_time(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_checkpoints SET signed_at = '2020-01-01T00:00:00.000000+00:00' WHERE seq = 6")


def claim_an_unknown_signing_key(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_checkpoints SET key_id = 'feedfacefeedface' WHERE seq = 6")


def truncate_the_tail_and_fix_the_head(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_entries WHERE seq > 7")
    _fix_head(engine, 7)


def truncate_the_tail_with_its_checkpoint(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_entries WHERE seq > 7")
    sql(engine, "DELETE FROM ledger_checkpoints WHERE seq > 7")
    _fix_head(engine, 7)


def delete_the_last_checkpoint(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_checkpoints WHERE seq = 9")


def delete_a_middle_checkpoint(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_checkpoints WHERE seq = 6")


def delete_every_checkpoint(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_checkpoints")


def delete_checkpoints_and_the_entries_after_the_first(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_checkpoints WHERE seq > 3")
    sql(engine, "DELETE FROM ledger_entries WHERE seq > 3")
    _fix_head(engine, 3)


def delete_every_row(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_checkpoints")
    sql(engine, "DELETE FROM ledger_entries")
    _fix_head(engine, 0)


def delete_every_row_and_the_head(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_checkpoints")
    sql(engine, "DELETE FROM ledger_entries")
    sql(engine, "DELETE FROM ledger_head")


def rewrite_the_chain_and_delete_its_checkpoints(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_entries SET outcome = 'deny' WHERE seq = 5")
    _rehash_from(engine, 5)
    sql(engine, "DELETE FROM ledger_checkpoints WHERE seq > 3")


def rewrite_the_whole_history(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_entries SET outcome = 'deny'")
    _rehash_from(engine, 1)
    sql(engine, "DELETE FROM ledger_checkpoints")


def renumber_a_checkpoint(engine: sa.Engine) -> None:
    sql(engine, "DELETE FROM ledger_checkpoints WHERE seq = 6")
    sql(engine, "UPDATE ledger_checkpoints SET seq = 6, entry_hash = :h WHERE seq = 9", h=_hash_of(engine, 6))
    sql(engine, "DELETE FROM ledger_entries WHERE seq > 6")
    _fix_head(engine, 6)


def replace_the_head_row(engine: sa.Engine) -> None:
    sql(engine, "UPDATE ledger_head SET entry_hash = :h", h=_hash_of(engine, 8))


@dataclass(frozen=True)
class Attack:
    """One attack and the start of what verify must say first (e.g. ``entry 8 removed``)."""

    name: str
    run: Callable[[sa.Engine], None]
    first: str


ATTACKS = (
    Attack("change an entry", change_an_entry, "entry 5 changed"),
    Attack("change a reason", change_a_reason, "entry 2 changed"),
    Attack("delete an entry", delete_an_entry, "entry 4 removed"),
    Attack("delete an entry and renumber the rest", delete_an_entry_and_renumber, "entry 4 removed"),
    Attack("insert a forged entry", insert_a_forged_entry, "entry 5 inserted"),
    Attack("swap two entries", swap_two_entries, "entry 2 reordered"),
    Attack(
        "rewrite the chain from an entry and fix the head", rewrite_the_chain_from_an_entry, "checkpoint 6"
    ),
    Attack("forge a checkpoint's signature", forge_a_checkpoint_signature, "checkpoint 3 checkpoint"),
    Attack("move a checkpoint's time", move_a_checkpoint_time, "checkpoint 6 checkpoint"),
    Attack("claim an unknown signing key", claim_an_unknown_signing_key, "checkpoint 6 checkpoint"),
    Attack("truncate the tail and fix the head", truncate_the_tail_and_fix_the_head, "entry 8 removed"),
    Attack("truncate the tail with its checkpoint", truncate_the_tail_with_its_checkpoint, "entry 8 removed"),
    Attack("delete the last checkpoint", delete_the_last_checkpoint, "checkpoint 9 missing"),
    Attack("delete a middle checkpoint", delete_a_middle_checkpoint, "checkpoint 6 missing"),
    Attack("delete every checkpoint", delete_every_checkpoint, "checkpoint 3 missing"),
    Attack(
        "delete the checkpoints and the entries after the first",
        delete_checkpoints_and_the_entries_after_the_first,
        "entry 4 removed",
    ),
    Attack("delete every row", delete_every_row, "entry 1 removed"),
    Attack("delete every row and the head", delete_every_row_and_the_head, "entry 1 removed"),
    Attack(
        "rewrite the chain and delete its checkpoints",
        rewrite_the_chain_and_delete_its_checkpoints,
        "checkpoint 6",
    ),
    Attack("rewrite the whole history", rewrite_the_whole_history, "checkpoint 3"),
    Attack("renumber a checkpoint over a shorter ledger", renumber_a_checkpoint, "checkpoint 6"),
    Attack("replace the head row", replace_the_head_row, "entry 9 changed"),
)


def build(ledger_append: Callable[[list[object]], object]) -> None:
    """Append the attacked ledger's nine entries, batch by batch."""
    for batch in BATCHES:
        ledger_append([record(n) for n in batch])
