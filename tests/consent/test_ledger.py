"""The decision ledger: append-only, idempotent, hash-chained, checkpoints signed, identities encrypted."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from sambus.consent import (
    CheckpointSigner,
    ConsentPolicy,
    DecisionLedger,
    DecisionRequest,
    FieldCipher,
    LedgerKeyError,
    RuleSet,
    ledger_record,
    verify,
)
from sambus.consent.keys import verify_keys
from sambus.consent.ledger import HASHED, canonical, entry_body
from sambus.contracts.agencies import AgencyKind
from sambus.contracts.errors import ConfigError
from sambus.contracts.fhir import EventCode
from sambus.router.service.schema import upgrade

from .ledger_records import T0, record

CHILD = "201203150006"


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner.generate()


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher({"k1": b"\x01" * 32}, "k1")


@pytest.fixture
def ledger(engine, signer, cipher) -> DecisionLedger:
    upgrade(engine)
    return DecisionLedger(engine, signer=signer, cipher=cipher, checkpoint_every=3)


def _rows(engine, table="ledger_entries"):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY seq")).mappings()]  # noqa: S608


def test_a_batch_is_appended_in_order(ledger, engine):
    assert ledger.append([record(1), record(2), record(3)]) == 3

    rows = _rows(engine)
    assert [r["message_id"] for r in rows] == ["m1", "m2", "m3"]
    assert [r["seq"] for r in rows] == [1, 2, 3]


def test_appending_the_same_message_and_recipient_again_writes_nothing(ledger):
    ledger.append([record(1), record(2)])

    assert ledger.append([record(2), record(1)]) == 0
    assert ledger.append([record(1, outcome="deny")]) == 0
    assert ledger.count() == 2


def test_a_replayed_batch_writes_only_what_is_new(ledger):
    ledger.append([record(1)])

    assert ledger.append([record(1), record(2), record(2)]) == 1
    assert ledger.count() == 2


def test_a_batch_partly_in_the_ledger_is_chained_without_gaps(ledger, engine, signer):
    ledger.append([record(1), record(2)])

    assert ledger.append([record(3), record(2), record(4)]) == 2  # a batch read again after a crash

    rows = _rows(engine)
    assert [(r["seq"], r["message_id"]) for r in rows] == [(1, "m1"), (2, "m2"), (3, "m3"), (4, "m4")]
    assert all(b["prev_hash"] == a["entry_hash"] for a, b in itertools.pairwise(rows))
    result = verify(engine, {signer.key_id: signer.public})
    assert result.ok, result.problems


def test_a_new_batch_is_appended_without_looking_for_duplicates_first(ledger, engine):
    ledger.append([record(1)])
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def seen(*args) -> None:  # conn, cursor, statement, parameters, context, executemany
        statements.append(" ".join(args[2].split()))

    assert ledger.append([record(2), record(3)]) == 2

    reads = [s for s in statements if s.startswith("SELECT") and "FROM ledger_entries" in s]
    assert reads == []  # the unique constraint refuses a duplicate; nothing is looked up first
    inserts = [s for s in statements if s.startswith("INSERT INTO ledger_entries")]
    assert len(inserts) == 1  # one executemany for the batch (not a statement per entry)


def test_the_same_message_for_another_recipient_is_another_entry(ledger):
    assert ledger.append([record(1), record(1, recipient="vastmanland-bu-halsan")]) == 2


def test_each_entry_names_the_hash_of_the_one_before(ledger, engine):
    ledger.append([record(1), record(2)])
    ledger.append([record(3)])

    rows = _rows(engine)
    assert rows[0]["prev_hash"] == "0" * 64
    assert rows[1]["prev_hash"] == rows[0]["entry_hash"]
    assert rows[2]["prev_hash"] == rows[1]["entry_hash"]
    assert len({r["entry_hash"] for r in rows}) == 3


def test_an_intact_ledger_verifies(ledger, engine, signer):
    for start in range(1, 10, 2):
        ledger.append([record(start), record(start + 1)])

    result = verify(engine, {signer.key_id: signer.public})

    assert result.ok, result.problems
    assert result.entries == 10
    assert result.checkpoints == 2  # every 3 entries, at a batch's end: after entries 4 and 8


@pytest.mark.usefixtures("ledger")
def test_an_empty_ledger_verifies(engine, signer):
    result = verify(engine, {signer.key_id: signer.public})

    assert result.ok
    assert result.entries == 0


def test_checkpoints_are_signed_every_n_entries(ledger, engine):
    ledger.append([record(1), record(2)])
    assert _rows(engine, "ledger_checkpoints") == []

    ledger.append([record(3)])
    ledger.append([record(4), record(5), record(6), record(7)])

    assert [c["seq"] for c in _rows(engine, "ledger_checkpoints")] == [3, 7]


def test_a_checkpoint_can_be_forced(ledger, engine):
    ledger.append([record(1)])

    assert ledger.checkpoint() == 1
    assert [c["seq"] for c in _rows(engine, "ledger_checkpoints")] == [1]


def test_a_checkpoint_from_an_unknown_key_is_reported(ledger, engine):
    ledger.append([record(1), record(2), record(3)])
    other = CheckpointSigner.generate()

    result = verify(engine, {other.key_id: other.public})

    assert not result.ok
    assert "unknown key" in str(result.first)


def test_the_identity_is_stored_encrypted_and_can_be_revealed(ledger, engine):
    ledger.append([record(1, identity=CHILD)])

    rows = _rows(engine)
    assert CHILD not in repr(rows)
    assert rows[0]["identity_key_id"] == "k1"
    assert ledger.reveal("m1", "vasteras-socialtjanst") == CHILD


def test_after_key_rotation_old_identities_still_open(engine):
    old = FieldCipher({"k1": b"\x01" * 32}, "k1")
    upgrade(engine)
    DecisionLedger(engine, cipher=old).append([record(1, identity=CHILD)])
    rotated = FieldCipher({"k1": b"\x01" * 32, "k2": b"\x02" * 32}, "k2")
    ledger = DecisionLedger(engine, cipher=rotated)

    ledger.append([record(2, identity="201001010008")])

    assert [r["identity_key_id"] for r in _rows(engine)] == ["k1", "k2"]
    assert ledger.reveal("m1", "vasteras-socialtjanst") == CHILD
    assert ledger.reveal("m2", "vasteras-socialtjanst") == "201001010008"


def test_an_identity_does_not_open_under_another_entry(ledger, engine):
    ledger.append([record(1, identity=CHILD), record(2)])
    with engine.begin() as conn:
        token = conn.execute(sa.text("SELECT identity FROM ledger_entries WHERE seq = 1")).scalar()
        conn.execute(
            sa.text("UPDATE ledger_entries SET identity = :t, identity_key_id = 'k1' WHERE seq = 2"),
            {"t": token},
        )

    with pytest.raises(LedgerKeyError):
        ledger.reveal("m2", "vasteras-socialtjanst")


def test_an_identity_without_a_cipher_is_refused(engine):
    upgrade(engine)
    ledger = DecisionLedger(engine)

    with pytest.raises(ValueError, match="only encrypted"):
        ledger.append([record(1, identity=CHILD)])
    assert ledger.count() == 0


def test_ledger_record_carries_the_decision(registry, pseudonymizer):
    request = DecisionRequest(
        message_id="m9",
        event=EventCode.CONCERN_REPORTED,
        child=pseudonymizer.of(CHILD),
        recipient_id="vasteras-socialtjanst",
        recipient_kind=AgencyKind.SOCIAL_SERVICES,
        at=T0,
        bundle={"resourceType": "Bundle"},
        sender_kind=AgencyKind.SCHOOL,
    )
    decision = ConsentPolicy(registry, RuleSet.load()).decide(request)

    made = ledger_record(request, decision)

    assert (made.message_id, made.recipient_id, made.child) == ("m9", "vasteras-socialtjanst", request.child)
    assert (made.outcome, made.rule_id, made.rule_version) == ("permit", "report-of-concern", 2)
    assert made.legal_basis == decision.legal_basis
    assert made.decided_at == T0


def test_naive_times_are_refused(ledger):
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.append([record(1, decided_at=dt.datetime(2026, 1, 1))])  # noqa: DTZ001


@pytest.mark.parametrize("text", ["", "zz", "00" * 31, "00" * 33])
def test_a_bad_signing_key_is_a_config_error(text):
    with pytest.raises(ConfigError, match="SAMBUS_LEDGER_SIGNING_KEY"):
        CheckpointSigner.from_hex(text)


def test_a_signing_key_round_trips_through_hex():
    signer = CheckpointSigner.generate()

    assert CheckpointSigner.from_hex(signer.seed_hex()).key_id == signer.key_id
    assert signer.seed_hex() not in repr(signer)


@pytest.mark.parametrize("spec", ["", "k1", "k1:zz", ":" + "00" * 32, "k1:" + "00" * 16])
def test_a_bad_encryption_key_spec_is_a_config_error(spec):
    with pytest.raises(ConfigError):
        FieldCipher.from_spec(spec)


def test_the_encryption_key_spec_names_the_current_key():
    cipher = FieldCipher.from_spec("a:" + "01" * 32 + ",b:" + "02" * 32)

    assert cipher.current == "b"
    assert FieldCipher.from_spec("a:" + "01" * 32 + ",b:" + "02" * 32, "a").current == "a"
    assert "01" * 32 not in repr(cipher)


def test_concurrent_appenders_keep_one_unbroken_chain(ledger, engine, signer):
    def write(worker: int) -> None:
        for batch in range(5):
            ledger.append([record(1000 * worker + 10 * batch + n) for n in range(5)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, range(4)))

    result = verify(engine, {signer.key_id: signer.public})
    assert result.ok, result.problems
    assert result.entries == 4 * 5 * 5


def test_verify_keys_are_read_by_key_id():
    signer = CheckpointSigner.generate()

    assert list(verify_keys(f" {signer.public_hex()} ,")) == [signer.key_id]
    assert verify_keys("") == {}
    with pytest.raises(ConfigError, match="SAMBUS_LEDGER_VERIFY_KEYS"):
        verify_keys("abc")


def test_appenders_in_two_processes_sign_checkpoints_where_one_would(engine, signer):
    # Each remembers the last checkpoint it made or read; the other's later ones are read before signing.
    upgrade(engine)
    one = DecisionLedger(engine, signer=signer, checkpoint_every=3)
    two = DecisionLedger(engine, signer=signer, checkpoint_every=3)

    one.append([record(1), record(2)])
    two.append([record(3), record(4)])  # 4 since none: signed
    one.append([record(5), record(6)])  # 2 since 4 (one had seen none): not signed
    two.append([record(7)])  # 3 since 4
    one.append([record(8), record(9)])  # 2 since 7
    one.append([record(10)])  # 3 since 7

    assert [c["seq"] for c in _rows(engine, "ledger_checkpoints")] == [4, 7, 10]
    result = verify(engine, {signer.key_id: signer.public})
    assert result.ok, result.problems


_VALUES = st.one_of(st.text(), st.none(), st.integers(), st.booleans(), st.floats(allow_nan=False))


@given(st.fixed_dictionaries(dict.fromkeys(HASHED, _VALUES)))
def test_an_entrys_body_is_the_canonical_json_of_its_hashed_columns(row):
    # entry_body writes the JSON itself for speed; what it hashes must stay byte for byte what canonical
    # gives, or every ledger written before would no longer verify
    assert entry_body(row) == canonical({name: row[name] for name in HASHED})


def test_an_entrys_body_is_the_same_bytes_as_before_it_was_written_out_by_hand():
    row = {name: f'{name} ö \u2028 \x00 " \\ 😀' for name in HASHED} | {"rule_version": 3, "identity": None}
    assert entry_body(row) == json.dumps(
        {name: row[name] for name in HASHED}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def test_a_ledger_chains_on_the_head_it_left_without_reading_it_again(ledger, engine):
    ledger.append([record(1)])
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def seen(*args) -> None:
        statements.append(" ".join(args[2].split()))

    ledger.append([record(2), record(3)])

    head_statements = [s for s in statements if "ledger_head" in s]
    assert len(head_statements) == 1, head_statements  # moved on condition it is still where it was left
    assert "RETURNING" not in head_statements[0]


def test_two_ledgers_appending_in_turn_each_chain_on_the_others_head(engine, signer):
    # each one's remembered head is stale after the other's append: the moved-on-condition fails, nothing is
    # written, and it locks and reads the head as usual
    upgrade(engine)
    one = DecisionLedger(engine, signer=signer, checkpoint_every=3)
    two = DecisionLedger(engine, signer=signer, checkpoint_every=3)

    for n in range(1, 13, 2):
        assert one.append([record(n)]) == 1
        assert two.append([record(n + 1)]) == 1
    assert one.append([record(13), record(14)]) == 2

    rows = _rows(engine)
    assert [r["seq"] for r in rows] == list(range(1, 15))
    assert all(b["prev_hash"] == a["entry_hash"] for a, b in itertools.pairwise(rows))
    result = verify(engine, {signer.key_id: signer.public})
    assert result.ok, result.problems


def test_a_head_changed_behind_a_ledgers_back_is_read_again_not_written_over(ledger, engine, signer):
    ledger.append([record(1), record(2)])
    with engine.begin() as conn:  # e.g. a forged head
        conn.execute(sa.text("UPDATE ledger_head SET entry_hash = :h"), {"h": "f" * 64})

    ledger.append([record(3)])

    rows = _rows(engine)
    assert rows[2]["prev_hash"] == "f" * 64  # chained on the head there is, not the one remembered
    assert not verify(engine, {signer.key_id: signer.public}).ok
