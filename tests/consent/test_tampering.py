"""Tampering with the ledger: a changed, removed, inserted or swapped entry is caught and named by verify, and
so is a copy changed, removed or added in the compliance projection."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sambus.consent import CheckpointSigner, DecisionLedger, Tamper, verify
from sambus.consent.ledger import entry_hash, project
from sambus.router.service.schema import upgrade

from .ledger_records import record

N = 6


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner.generate()


@pytest.fixture(autouse=True)
def ledger(engine, signer) -> DecisionLedger:
    upgrade(engine)
    made = DecisionLedger(engine, signer=signer, checkpoint_every=2)
    made.append([record(n) for n in range(1, 4)])
    made.append([record(n) for n in range(4, N + 1)])
    return made


def _check(engine, signer):
    return verify(engine, {signer.key_id: signer.public})


def _sql(engine, statement, **params):
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _row(engine, seq):
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.text("SELECT * FROM ledger_entries WHERE seq = :s"), {"s": seq}).mappings().one()
        )


def test_the_untouched_ledger_is_intact(engine, signer):
    assert _check(engine, signer).ok


@pytest.mark.parametrize("seq", range(1, N + 1))
@pytest.mark.parametrize(
    ("column", "value"),
    [("outcome", "deny"), ("legal_basis", "OSL 10:28"), ("child", "f" * 64), ("decided_at", "2020-01-01")],
)
def test_a_changed_entry_is_named(engine, signer, seq, column, value):
    _sql(engine, f"UPDATE ledger_entries SET {column} = :v WHERE seq = :s", v=value, s=seq)  # noqa: S608

    result = _check(engine, signer)

    assert not result.ok
    assert (result.first.kind, result.first.seq) == (Tamper.CHANGED, seq)
    assert f"entry {seq} changed" in str(result.first)


@pytest.mark.parametrize("seq", range(1, N + 1))
def test_a_removed_entry_is_named(engine, signer, seq):
    _sql(engine, "DELETE FROM ledger_entries WHERE seq = :s", s=seq)

    result = _check(engine, signer)

    assert not result.ok
    assert (result.first.kind, result.first.seq) == (Tamper.REMOVED, seq)


@pytest.mark.parametrize("seq", range(1, N))
def test_a_removed_entry_is_named_even_when_the_rest_is_renumbered(engine, signer, seq):
    _sql(engine, "DELETE FROM ledger_entries WHERE seq = :s", s=seq)
    _sql(engine, "UPDATE ledger_entries SET seq = seq - 1 WHERE seq > :s", s=seq)

    result = _check(engine, signer)

    assert (result.first.kind, result.first.seq) == (Tamper.REMOVED, seq)


@pytest.mark.parametrize("seq", range(1, N + 2))
def test_an_inserted_entry_is_named(engine, signer, seq):
    # A forger who knows the format: the inserted entry links correctly to the one before it.
    prev = _row(engine, seq - 1)["entry_hash"] if seq > 1 else "0" * 64
    forged = {
        **_row(engine, 1),
        "message_id": "forged",
        "reason": "forged",
        "identity_key_id": None,
        "identity": None,
        "prev_hash": prev,
    }
    forged["entry_hash"] = entry_hash(prev, forged)
    forged["seq"] = seq
    _sql(engine, "UPDATE ledger_entries SET seq = seq + 1000 WHERE seq >= :s", s=seq)
    _sql(engine, "UPDATE ledger_entries SET seq = seq - 999 WHERE seq >= 1000")
    columns = ", ".join(forged)
    values = ", ".join(":" + c for c in forged)
    _sql(engine, f"INSERT INTO ledger_entries ({columns}) VALUES ({values})", **forged)  # noqa: S608

    result = _check(engine, signer)

    assert not result.ok
    assert (result.first.kind, result.first.seq) == (Tamper.INSERTED, seq)


@pytest.mark.parametrize("seq", range(1, N))
def test_swapped_entries_are_named(engine, signer, seq):
    _sql(engine, "UPDATE ledger_entries SET seq = -1 WHERE seq = :s", s=seq)
    _sql(engine, "UPDATE ledger_entries SET seq = :s WHERE seq = :n", s=seq, n=seq + 1)
    _sql(engine, "UPDATE ledger_entries SET seq = :n WHERE seq = -1", n=seq + 1)

    result = _check(engine, signer)

    assert not result.ok
    assert (result.first.kind, result.first.seq) == (Tamper.REORDERED, seq)


@pytest.mark.parametrize("seq", range(1, N + 1))
def test_a_chain_rewritten_from_an_entry_on_fails_its_signed_checkpoint(engine, signer, seq):
    # The forger changes an entry and recomputes every hash after it, and the head: the chain is
    # consistent again, but the signed checkpoints are not.
    _sql(engine, "UPDATE ledger_entries SET outcome = 'deny' WHERE seq = :s", s=seq)
    prev = _row(engine, seq - 1)["entry_hash"] if seq > 1 else "0" * 64
    for n in range(seq, N + 1):
        row = _row(engine, n)
        new = entry_hash(prev, {**row, "prev_hash": prev})
        _sql(
            engine,
            "UPDATE ledger_entries SET prev_hash = :p, entry_hash = :h WHERE seq = :n",
            p=prev,
            h=new,
            n=n,
        )
        prev = new
    _sql(engine, "UPDATE ledger_head SET entry_hash = :h", h=prev)

    result = _check(engine, signer)

    assert not result.ok
    assert result.first.kind is Tamper.CHECKPOINT
    assert result.first.seq == (3 if seq <= 3 else 6)  # the first checkpoint at or after it (batches of 3)


def test_a_forged_checkpoint_signature_is_caught(engine, signer):
    _sql(engine, "UPDATE ledger_checkpoints SET signature = :s WHERE seq = 3", s="00" * 64)

    result = _check(engine, signer)

    assert (result.first.kind, result.first.seq) == (Tamper.CHECKPOINT, 3)
    assert "signature" in str(result.first)


# The fast append (no look-up before the insert, entry bodies made before the write lock, the last
# checkpoint remembered between appends) must not hide a tampered entry: appending more on top of it, or
# replaying a batch that holds it, leaves the evidence for verify.


@pytest.mark.parametrize("seq", [1, 3, N])
def test_a_changed_entry_stays_named_after_a_replayed_batch_that_holds_it(engine, signer, ledger, seq):
    _sql(engine, "UPDATE ledger_entries SET outcome = 'deny' WHERE seq = :s", s=seq)

    # the replayed entry is refused by the unique constraint, not rewritten
    assert ledger.append([record(seq), record(N + 1), record(N + 2)]) == 2

    result = _check(engine, signer)
    assert not result.ok
    assert (result.first.kind, result.first.seq) == (Tamper.CHANGED, seq)
    assert _row(engine, seq)["outcome"] == "deny"


@pytest.mark.parametrize("fresh", [False, True], ids=["same appender", "another appender"])
def test_entries_appended_on_a_forged_head_still_fail_the_signed_checkpoint(engine, signer, ledger, fresh):
    # The forger rewrites the last entry with its hash and the head, so the chain is consistent; the ledger
    # then chains new entries (and checkpoints) on the forged hash.
    _sql(engine, "UPDATE ledger_entries SET outcome = 'deny' WHERE seq = :s", s=N)
    row = _row(engine, N)
    forged = entry_hash(row["prev_hash"], row)
    _sql(engine, "UPDATE ledger_entries SET entry_hash = :h WHERE seq = :s", h=forged, s=N)
    _sql(engine, "UPDATE ledger_head SET entry_hash = :h", h=forged)
    appender = DecisionLedger(engine, signer=signer, checkpoint_every=2) if fresh else ledger

    appender.append([record(N + 1), record(N + 2)])
    appender.append([record(N + 3)])

    result = _check(engine, signer)
    assert not result.ok
    assert (result.first.kind, result.first.seq) == (Tamper.CHECKPOINT, N)


# The compliance projection: queries seek their entries there, so a copy changed, removed or added there
# would change what a compliance officer sees while the chain stays intact.


def _copied(engine, ledger) -> None:
    ledger.projector.wait(60)
    project(engine)


@pytest.mark.parametrize(
    ("column", "value"), [("outcome", "permit_redacted"), ("recipient_id", "x"), ("child", "y")]
)
def test_a_changed_copy_in_the_compliance_projection_is_named(engine, signer, ledger, column, value):
    _copied(engine, ledger)
    _sql(engine, f"UPDATE ledger_search SET {column} = :v WHERE seq = 4", v=value)  # noqa: S608

    result = _check(engine, signer)

    assert not result.ok
    assert (result.first.kind, result.first.seq) == (Tamper.MISCOPIED, 4)
    assert (
        str(result.first) == f"entry 4 miscopied: its copy in the compliance projection differs in {column}"
    )


def test_a_copy_removed_from_the_compliance_projection_is_named(engine, signer, ledger):
    _copied(engine, ledger)
    _sql(engine, "DELETE FROM ledger_search WHERE seq = 2")

    result = _check(engine, signer)

    assert (result.first.kind, result.first.seq) == (Tamper.MISCOPIED, 2)
    assert "lacks it" in result.first.detail


def test_a_copy_added_to_the_compliance_projection_is_named(engine, signer, ledger):
    _copied(engine, ledger)
    _sql(
        engine,
        "INSERT INTO ledger_search SELECT 99, message_id || 'x', recipient_id, child, event, 'deny', rule_id,"
        " rule_version, legal_basis, reason, removed, decided_at, entry_hash FROM ledger_search"
        " WHERE seq = 1",
    )

    result = _check(engine, signer)

    assert (result.first.kind, result.first.seq) == (Tamper.MISCOPIED, 99)


def test_entries_not_copied_yet_are_not_a_problem(engine, signer, ledger):
    _copied(engine, ledger)
    _sql(engine, "DELETE FROM ledger_search WHERE seq > 3")  # as if entries 4 to 6 were appended since

    assert _check(engine, signer).ok


def test_a_changed_entry_is_named_before_its_copy_that_now_differs(engine, signer, ledger):
    _copied(engine, ledger)
    _sql(engine, "UPDATE ledger_entries SET outcome = 'deny' WHERE seq = 5")

    result = _check(engine, signer)

    assert (result.first.kind, result.first.seq) == (Tamper.CHANGED, 5)
    assert [p.kind for p in result.problems][-1] is Tamper.MISCOPIED
