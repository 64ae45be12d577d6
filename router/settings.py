"""Settings, from the environment (``SAMBUS_*``) or a ``.env`` file. Secrets never live in the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sambus.contracts.errors import ConfigError
from sambus.contracts.topics import Topics


class Settings(BaseSettings):
    """Everything sambus needs to run; every field can be set as ``SAMBUS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SAMBUS_", env_file=".env", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SAMBUS_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port]; unset means the local development broker (`sambus kafka up`).",
    )
    topic_prefix: str = Field(default="", description="Put in front of every topic name.")
    topic_partitions: int = Field(
        default=3, ge=1, description="Partitions of each topic sambus creates (a few logs keep one)."
    )
    topic_replication_factor: int = Field(
        default=1, ge=1, description="Copies of each partition of the topics sambus creates."
    )
    topic_min_insync_replicas: int = Field(
        default=1, ge=1, description="Copies that must have a record before a write counts (acks=all)."
    )
    database_url: str = Field(
        default="sqlite:///.sambus/sambus.db", description="SQLAlchemy URL of the registry."
    )
    pseudonym_key: SecretStr | None = Field(
        default=None, description="Secret key for child pseudonyms (>= 32 bytes)."
    )
    directory: Path | None = Field(
        default=None,
        description="The routing directory (YAML); unset means the example packaged with sambus.",
    )
    instance_id: str = Field(
        default="0",
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="Tells instances apart (transactional ids).",
    )
    local_kafka_port: int = Field(
        default=19092,
        ge=1024,
        le=65530,
        description="Port of the local development broker (the n-th of n brokers: +n-1; controllers follow).",
    )
    local_kafka_brokers: int = Field(
        default=1, ge=1, le=5, description="Brokers of the local development cluster (3: replicated)."
    )
    retry_delays_s: tuple[float, ...] = Field(
        default=(2.0, 10.0, 30.0),
        description="Wait before each retry of a retriable failure (seconds, <= 45).",
    )
    parked_expire_after_s: float = Field(
        default=14 * 24 * 3600.0, gt=0, description="How long a message waits for consent before it expires."
    )
    deadline_scan_s: float = Field(
        default=5.0, gt=0, description="How often due deadline reminders and escalations are looked for."
    )
    parked_recheck_s: float = Field(
        default=10.0, gt=0, le=45, description="How often a parked message's consent is decided again."
    )
    # Consent and the decision ledger (issue 4)
    rules: Path | None = Field(
        default=None, description="The secrecy rule file (YAML); unset means the rules packaged with sambus."
    )
    county: Literal["vastmanland", "vasterbotten"] = Field(
        default="vastmanland", description="Whose county agreement sets the consent ages."
    )
    ledger_signing_key: SecretStr | None = Field(
        default=None, description="Ed25519 seed (64 hex digits) that signs ledger checkpoints."
    )
    ledger_encryption_keys: SecretStr | None = Field(
        default=None, description="AES-256 keys for recoverable identities: id1:<64 hex>,id2:<64 hex>."
    )
    ledger_encryption_key_id: str | None = Field(
        default=None, description="The key id new identities are encrypted with (default: the last)."
    )
    ledger_verify_keys: str = Field(
        default="",
        description="Public keys (hex, comma-separated) of earlier signing keys.",
    )
    ledger_checkpoint_every: int = Field(default=100, ge=1, description="Entries between signed checkpoints.")
    web_tokens: SecretStr | None = Field(
        default=None, description="Bearer tokens of the web service: name:role:sha256hex, comma-separated."
    )
    web_host: str = Field(default="127.0.0.1", description="Address `sambus serve` listens on.")
    web_port: int = Field(default=8080, ge=1, le=65535, description="Port `sambus serve` listens on.")

    @model_validator(mode="after")
    def _replicas_fit(self) -> Self:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(
                "SAMBUS_TOPIC_MIN_INSYNC_REPLICAS cannot exceed SAMBUS_TOPIC_REPLICATION_FACTOR: "
                "no write with acks=all would ever succeed"
            )
        return self

    def topics(self) -> Topics:
        """This sambus's topics: names with :attr:`topic_prefix`, created with the topic settings."""
        return Topics(
            prefix=self.topic_prefix,
            partitions=self.topic_partitions,
            replication_factor=self.topic_replication_factor,
            min_insync_replicas=self.topic_min_insync_replicas,
        )

    def require_pseudonym_key(self) -> bytes:
        """The pseudonym key as bytes.

        Raises:
            ConfigError: the key is not set or is too short.
        """
        if self.pseudonym_key is None:
            raise ConfigError(
                "SAMBUS_PSEUDONYM_KEY is not set: give a secret of at least 32 bytes "
                "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        key = self.pseudonym_key.get_secret_value().encode("utf-8")
        if len(key) < 32:  # noqa: PLR2004 - the minimum key size, said in the message
            raise ConfigError("SAMBUS_PSEUDONYM_KEY must be at least 32 bytes long")
        return key
