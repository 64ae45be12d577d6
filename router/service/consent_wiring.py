"""Consent and ledger parts as the settings configure them: county policy, rules, keys, the ledger.

Shared by :mod:`sambus.router.service.bootstrap` (the running service), ``sambus consent`` and the web
service.
"""

from __future__ import annotations

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sambus.consent import (
    VASTERBOTTEN,
    VASTMANLAND,
    CheckpointSigner,
    CountyPolicy,
    DecisionLedger,
    FieldCipher,
)
from sambus.consent.anchor import Anchor, AnchorFile
from sambus.consent.keys import verify_keys
from sambus.router.settings import Settings

_COUNTIES = {"vastmanland": VASTMANLAND, "vasterbotten": VASTERBOTTEN}


def county_policy(settings: Settings) -> CountyPolicy:
    """The county agreement ``SAMBUS_COUNTY`` names."""
    return _COUNTIES[settings.county]


def checkpoint_signer(settings: Settings) -> CheckpointSigner | None:
    """The checkpoint signer from ``SAMBUS_LEDGER_SIGNING_KEY``, or ``None`` when it is not set."""
    key = settings.ledger_signing_key
    return None if key is None else CheckpointSigner.from_hex(key.get_secret_value())


def ledger_public_keys(settings: Settings) -> dict[str, Ed25519PublicKey] | None:
    """The public keys that verify the ledger's checkpoints: earlier keys' and the current signer's."""
    keys = verify_keys(settings.ledger_verify_keys)
    signer = checkpoint_signer(settings)
    if signer is not None:
        keys[signer.key_id] = signer.public
    return keys or None


def field_cipher(settings: Settings) -> FieldCipher | None:
    """The identity cipher from ``SAMBUS_LEDGER_ENCRYPTION_KEYS``, or ``None`` when it is not set."""
    keys = settings.ledger_encryption_keys
    if keys is None:
        return None
    return FieldCipher.from_spec(keys.get_secret_value(), settings.ledger_encryption_key_id)


def dead_letter_cipher(settings: Settings) -> FieldCipher | None:
    """The cipher that seals dead letters' originals (``SAMBUS_DLQ_ENCRYPTION_KEYS``), or ``None``.

    Raises:
        ConfigError: the keys are malformed.
    """
    keys = settings.dlq_encryption_keys
    if keys is None:
        return None
    return FieldCipher.from_spec(
        keys.get_secret_value(), settings.dlq_encryption_key_id, setting="SAMBUS_DLQ_ENCRYPTION_KEYS"
    )


def decision_ledger(settings: Settings, engine: sa.Engine) -> DecisionLedger:
    """The ledger as settings configure it (signing key, encryption keys, checkpoint interval)."""
    return DecisionLedger(
        engine,
        signer=checkpoint_signer(settings),
        cipher=field_cipher(settings),
        checkpoint_every=settings.ledger_checkpoint_every,
        anchors=[] if settings.ledger_anchor_file is None else [AnchorFile(settings.ledger_anchor_file)],
    )


def ledger_anchors(settings: Settings) -> list[Anchor] | None:
    """The anchored checkpoints ``SAMBUS_LEDGER_ANCHOR_FILE`` holds, or ``None`` when no anchor is set.

    Raises:
        ConfigError: the anchor file cannot be read or is not an anchor file.
    """
    if settings.ledger_anchor_file is None:
        return None
    return AnchorFile(settings.ledger_anchor_file).read()
