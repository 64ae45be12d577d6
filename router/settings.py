"""Settings, from the environment (``SAMBUS_*``) or a ``.env`` file. Secrets never live in the repository."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sambus.contracts.errors import ConfigError
from sambus.contracts.topics import Topics


def host_instance_id(hostname: str | None = None) -> str:
    """An instance id from the host name: its first label, other characters as ``-``, at most its last 40.

    The last characters, so that a StatefulSet pod's ordinal (``…-0``, ``…-1``) survives; ``0`` when the
    name has nothing usable.
    """
    label = (hostname if hostname is not None else socket.gethostname()).split(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]", "-", label)[-40:] or "0"


class Settings(BaseSettings):
    """Everything sambus needs to run; every field can be set as ``SAMBUS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SAMBUS_", env_file=".env", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SAMBUS_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port]; unset means the local development broker (`sambus kafka up`).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"] = Field(
        default="PLAINTEXT",
        description="How Kafka clients connect: PLAINTEXT, SSL, SASL_SSL or SASL_PLAINTEXT (not with PLAIN).",
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM file of the CA(s) the brokers' certificates are checked against."
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="PEM file of sambus's client certificate (mutual TLS)."
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="PEM file of the client certificate's key."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of the client certificate's key, when it is encrypted."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="Whether the broker's certificate must name the host connected to."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] | None = Field(
        default=None, description="SASL mechanism with SASL_SSL or SASL_PLAINTEXT."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
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
        default="",
        validate_default=True,
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description="Tells instances apart (consumer group members, the deadline timers' owner); unique and "
        "stable per instance. Unset: the host name (a StatefulSet pod's name, e.g. sambus-delivery-0).",
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
    guardian_access_ack_hours: float = Field(
        default=4.0,
        gt=0,
        description="Within how many hours each care unit and its care provider (vårdgivare) must "
        "acknowledge a guardian-access block (hidden residence) before the deciding social services are told "
        "it was not.",
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
    ledger_anchor_file: Path | None = Field(
        default=None,
        description="Append-only file that keeps every signed checkpoint outside the database "
        "(protect it like the signing key; `sambus consent verify` checks the database against it).",
    )
    dlq_encryption_keys: SecretStr | None = Field(
        default=None,
        description="AES-256 keys that seal dead letters' originals and the child's identifier an open "
        "deadline keeps for its reminders: id1:<64 hex>,id2:<64 hex> (new ones use the last). Without them a "
        "dead letter keeps no content and cannot be replayed, and reminders do not name the child.",
    )
    dlq_encryption_key_id: str | None = Field(
        default=None, description="The key id new dead letters are sealed with (default: the last)."
    )
    dlq_retention_days: float = Field(
        default=30.0, gt=0, description="How long the dead-letter topic keeps a dead letter (retention.ms)."
    )
    web_tokens: SecretStr | None = Field(
        default=None, description="Bearer tokens of the web service: name:role:sha256hex, comma-separated."
    )
    web_cookie_secure: bool = Field(
        default=True,
        description="Cookies only over HTTPS (Secure); false only for plain-HTTP development on one machine.",
    )
    web_login_attempts: int = Field(
        default=10, ge=1, description="Failed logins allowed per minute from one address (then 429)."
    )
    web_host: str = Field(default="127.0.0.1", description="Address `sambus serve` listens on.")
    web_port: int = Field(default=8080, ge=1, le=65535, description="Port `sambus serve` listens on.")

    @field_validator("instance_id", mode="before")
    @classmethod
    def _host_when_unset(cls, value: object) -> object:
        return value or host_instance_id()

    @model_validator(mode="after")
    def _replicas_fit(self) -> Self:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(
                "SAMBUS_TOPIC_MIN_INSYNC_REPLICAS cannot exceed SAMBUS_TOPIC_REPLICATION_FACTOR: "
                "no write with acks=all would ever succeed"
            )
        return self

    @model_validator(mode="after")
    def _kafka_security_fits(self) -> Self:
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            if (
                self.kafka_sasl_mechanism is None
                or not self.kafka_sasl_username
                or self.kafka_sasl_password is None
            ):
                raise ValueError(
                    f"SAMBUS_KAFKA_SECURITY_PROTOCOL={protocol} needs SAMBUS_KAFKA_SASL_MECHANISM, "
                    "SAMBUS_KAFKA_SASL_USERNAME and SAMBUS_KAFKA_SASL_PASSWORD"
                )
            if protocol == "SASL_PLAINTEXT" and self.kafka_sasl_mechanism == "PLAIN":
                raise ValueError(
                    "SASL PLAIN sends the password as it is: use it only over TLS "
                    "(SAMBUS_KAFKA_SECURITY_PROTOCOL=SASL_SSL)"
                )
        elif self.kafka_sasl_mechanism is not None:
            raise ValueError(
                f"SAMBUS_KAFKA_SASL_MECHANISM is set but SAMBUS_KAFKA_SECURITY_PROTOCOL={protocol} uses no "
                "SASL (use SASL_SSL)"
            )
        tls_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if protocol not in {"SSL", "SASL_SSL"} and any(f is not None for f in tls_files):
            raise ValueError(
                f"Kafka TLS files are set but SAMBUS_KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS "
                "(use SSL or SASL_SSL)"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("SAMBUS_KAFKA_SSL_CERTFILE and SAMBUS_KAFKA_SSL_KEYFILE go together")
        return self

    def topics(self) -> Topics:
        """This sambus's topics: names with :attr:`topic_prefix`, created with the topic settings."""
        return Topics(
            prefix=self.topic_prefix,
            partitions=self.topic_partitions,
            replication_factor=self.topic_replication_factor,
            min_insync_replicas=self.topic_min_insync_replicas,
            dlq_retention_days=self.dlq_retention_days,
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
