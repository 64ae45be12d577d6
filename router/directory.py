"""The routing directory: which organisations exist, what kind they are, and where they read deliveries."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contracts.agencies import AgencyKind
from contracts.envelope import describe_validation_error
from contracts.errors import ConfigError, RoutingError
from contracts.identifiers import normalise_system


class OrganisationIdentifier(BaseModel):
    """An identifier of an organisation: HSA-id or organisation number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str
    value: str


class Recipient(BaseModel):
    """An organisation that receives deliveries on ``deliver.<id>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,98}$", description="Also the delivery topic's suffix.")
    name: str
    kind: AgencyKind
    identifiers: tuple[OrganisationIdentifier, ...] = Field(min_length=1)
    municipality: str | None = Field(default=None, pattern=r"^\d{4}$", description="Kommunkod.")


class RoutingDirectory(BaseModel):
    """Every recipient sambus delivers to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipients: tuple[Recipient, ...]

    @model_validator(mode="after")
    def _unique(self) -> RoutingDirectory:
        ids = [r.id for r in self.recipients]
        if len(ids) != len(set(ids)):
            raise ValueError("recipient ids must be unique")
        keys = [(normalise_system(i.system), i.value) for r in self.recipients for i in r.identifiers]
        if len(keys) != len(set(keys)):
            raise ValueError("an identifier names more than one recipient")
        return self

    @classmethod
    def load(cls, path: Path) -> RoutingDirectory:
        """Read and validate a directory file (YAML).

        Raises:
            ConfigError: the file is missing or invalid; the message names the place.
        """
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the routing directory {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"the routing directory {path} is not valid YAML: {exc}") from exc
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            error = describe_validation_error(exc)
            raise ConfigError(f"the routing directory {path} is invalid: {error}") from exc

    def by_identifier(self, system: str, value: str) -> Recipient:
        """The recipient an organisation identifier names.

        Raises:
            RoutingError: no recipient has that identifier.
        """
        wanted = (normalise_system(system), value)
        for recipient in self.recipients:
            if any((normalise_system(i.system), i.value) == wanted for i in recipient.identifiers):
                return recipient
        raise RoutingError(f"no recipient in the routing directory has identifier {system}|{value}")
