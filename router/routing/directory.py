"""The routing directory: which organisations exist, what kind they are, where they are, and where they read.

Each recipient has identifiers (HSA-id, organisation number, school unit code), an agency kind (school,
social services, or a health care unit kind such as BVC, BU-hälsan or BUP), a municipality (kommunkod), a
county (länskod, the first two digits of a kommunkod) and optionally a county part, capabilities (e.g.
``cosmic_link``: the school takes part in SIP through the region's Cosmic Link) and its delivery topic.

One directory may hold several counties: a file may ``include`` other directory files (paths relative to
it), whose county parts and recipients it adds to its own. A child placed across a county border is then
routed to the region where it lives (a routing address resolves near the child's home municipality), while
the placing municipality stays the requester.
"""

from __future__ import annotations

from enum import StrEnum
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sambus.contracts.agencies import AgencyKind, CareGroup, health_care_kinds
from sambus.contracts.envelope import describe_validation_error
from sambus.contracts.errors import ConfigError, RoutingError
from sambus.contracts.identifiers import normalise_system

_TOPIC_SUFFIX = r"^[a-z0-9][a-z0-9-]{0,98}$"

COUNTY_CODES = {"vastmanland": "19", "vasterbotten": "24"}
"""The counties sambus has agreements for (``SAMBUS_COUNTY``) and their länskoder."""

_DEFAULTS: Traversable = files("sambus.router.routing") / "defaults"
PACKAGED_DIRECTORY: Traversable = _DEFAULTS / "directory.yaml"
"""The example directory packaged with sambus (read with importlib.resources), used when none is set."""
PACKAGED_VASTERBOTTEN_DIRECTORY: Traversable = _DEFAULTS / "directory-vasterbotten.yaml"
"""The Västerbotten example directory, packaged beside the (Västmanland) default."""
PACKAGED_TWO_COUNTY_DIRECTORY: Traversable = _DEFAULTS / "directory-two-counties.yaml"
"""Both example directories in one (it includes them): children placed across the county border."""
MAX_INCLUDE_DEPTH = 4
"""How deep directory files may include one another (a cycle is refused long before)."""


class Capability(StrEnum):
    """What an organisation can do beyond what its kind says."""

    COSMIC_LINK = "cosmic_link"
    """The school or unit works in the region's SIP tool (Cosmic Link) and takes SIP messages itself."""
    SIP_DIRECT = "sip_direct"
    """The school takes SIP messages itself without Cosmic Link: a county whose SIP routine has no relay
    (Västerbotten's "SIP Barnets plan", where every school is an equal party)."""
    PLACED_CHILD_HEALTH_EXAM = "placed_child_health_exam"
    """The health care unit examines children placed outside the home (lag 2017:209)."""


CARE_UNIT_KINDS = health_care_kinds(CareGroup.KEEPS_PATIENT_RECORD)
"""Care units whose record a guardian-access block closes to the guardians: each names its care provider."""

GUARDIAN_FACING_KINDS = frozenset({AgencyKind.PRESCHOOL, AgencyKind.SCHOOL, AgencyKind.BVC})
"""Kinds that reach guardians through their portals (schools, preschools, child health centres): they count
as guardian-facing unless the directory says otherwise."""


class OrganisationIdentifier(BaseModel):
    """An identifier of an organisation: HSA-id, organisation number or school unit code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str
    value: str


class Recipient(BaseModel):
    """An organisation that receives deliveries on ``deliver.<delivery topic>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_TOPIC_SUFFIX, description="The organisation's id in sambus.")
    name: str
    kind: AgencyKind
    identifiers: tuple[OrganisationIdentifier, ...] = Field(min_length=1)
    municipality: str | None = Field(default=None, pattern=r"^\d{4}$", description="Kommunkod.")
    county: str | None = Field(
        default=None,
        pattern=r"^\d{2}$",
        description="Länskod; defaults to the municipality's first two digits.",
    )
    county_part: str | None = Field(default=None, description="A county part named in ``county_parts``.")
    capabilities: frozenset[Capability] = frozenset()
    delivery_topic: str | None = Field(
        default=None, pattern=_TOPIC_SUFFIX, description="Suffix of the delivery topic; defaults to ``id``."
    )
    private: bool = Field(
        default=False,
        description="A private provider (independent school, private care or dental unit), not an authority: "
        "professional confidentiality (tystnadsplikt) binds it in place of OSL, and the ledger says so.",
    )
    care_provider: str | None = Field(
        default=None,
        pattern=_TOPIC_SUFFIX,
        description="The id (in this directory) of the vårdgivare (kind care_provider) that runs this care "
        "unit: guardians' e-access to the record is set per care provider, so a guardian-access block "
        "goes to it as well as to the unit.",
    )
    guardian_facing: bool | None = Field(
        default=None,
        description="It shows what it receives to the guardians (e.g. a guardian portal): under hidden "
        "residence it never receives residence-revealing data. Unset: schools, preschools and BVC do "
        "(they reach guardians through their portals), other kinds do not.",
    )

    @model_validator(mode="after")
    def _county_from_municipality(self) -> Recipient:
        if self.county is None and self.municipality is not None:
            object.__setattr__(self, "county", self.municipality[:2])
        if self.county is not None and self.municipality is not None and self.municipality[:2] != self.county:
            raise ValueError(
                f"recipient {self.id}: municipality {self.municipality} is not in county {self.county}"
            )
        return self

    @property
    def faces_guardians(self) -> bool:
        """Whether the guardians see what it receives: as the directory says, else by its kind."""
        if self.guardian_facing is not None:
            return self.guardian_facing
        return self.kind in GUARDIAN_FACING_KINDS

    @property
    def topic_suffix(self) -> str:
        """What follows ``deliver.`` in this recipient's delivery topic."""
        return self.delivery_topic or self.id

    def has(self, capability: Capability) -> bool:
        """Whether the organisation has ``capability``."""
        return capability in self.capabilities

    @property
    def takes_sip_itself(self) -> bool:
        """Whether SIP messages reach it directly (Cosmic Link, or a county with no relay for schools)."""
        return self.has(Capability.COSMIC_LINK) or self.has(Capability.SIP_DIRECT)


class RoutingDirectory(BaseModel):
    """Every recipient sambus delivers to, and the county parts (groups of municipalities) they serve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    county_parts: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="County part name -> the kommunkoder it covers."
    )
    recipients: tuple[Recipient, ...]

    @model_validator(mode="after")
    def _consistent(self) -> RoutingDirectory:
        ids = [r.id for r in self.recipients]
        if len(ids) != len(set(ids)):
            raise ValueError("recipient ids must be unique")
        topics = [r.topic_suffix for r in self.recipients]
        if len(topics) != len(set(topics)):
            raise ValueError("two recipients share a delivery topic")
        keys = [(normalise_system(i.system), i.value) for r in self.recipients for i in r.identifiers]
        if len(keys) != len(set(keys)):
            raise ValueError("an identifier names more than one recipient")
        for recipient in self.recipients:
            if recipient.county_part is not None and recipient.county_part not in self.county_parts:
                raise ValueError(f"recipient {recipient.id}: unknown county part {recipient.county_part!r}")
        for name, codes in self.county_parts.items():
            if not codes or any(len(code) != 4 or not code.isdigit() for code in codes):  # noqa: PLR2004
                raise ValueError(f"county part {name!r} must list four-digit kommunkoder")
        return self

    @model_validator(mode="after")
    def _care_providers_known(self) -> RoutingDirectory:
        kinds = {r.id: r.kind for r in self.recipients}
        for recipient in self.recipients:
            if recipient.care_provider is None:
                continue
            if kinds.get(recipient.care_provider) is not AgencyKind.CARE_PROVIDER:
                raise ValueError(
                    f"recipient {recipient.id}: care_provider {recipient.care_provider!r} is not a recipient "
                    "of kind care_provider in this directory"
                )
            if recipient.kind is AgencyKind.CARE_PROVIDER:
                raise ValueError(f"recipient {recipient.id}: a care provider names no care_provider")
        return self

    def check_care_providers(self) -> None:
        """Refuse a directory where a care unit that takes guardian-access blocks names no care provider.

        Guardians' e-access to the record is set per care provider (vårdgivare), so a block sent only to
        the unit may leave the access open: every unit of :data:`CARE_UNIT_KINDS` must name its care
        provider (``care_provider``).

        Raises:
            ConfigError: the units without one, by id.
        """
        missing = [r.id for r in self.recipients if r.kind in CARE_UNIT_KINDS and r.care_provider is None]
        if missing:
            raise ConfigError(
                f"the routing directory names no care_provider (vårdgivare) for {', '.join(missing)}: a "
                "guardian-access block (hidden residence) must reach the care provider as well as the unit"
            )

    def care_provider_of(self, recipient: Recipient) -> Recipient | None:
        """The care provider (vårdgivare) that runs ``recipient``, when the directory names one."""
        return None if recipient.care_provider is None else self.by_id(recipient.care_provider)

    @classmethod
    def load(cls, path: Path | Traversable | None = None) -> RoutingDirectory:
        """Read and validate a directory file (YAML); without ``path``, the example packaged with sambus.

        The file may ``include`` other directory files (paths relative to its folder): their county parts
        and recipients join its own, and the whole is validated as one directory (an id, topic or
        identifier named twice is refused, as is a county part two files define differently).

        Raises:
            ConfigError: a file is missing or invalid, or the files include one another in a cycle; the
                message names the place.
        """
        source: Traversable = PACKAGED_DIRECTORY if path is None else path
        raw = _read_with_includes(source, folder=_folder_of(source), seen=())
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            error = describe_validation_error(exc, hide_unknown_keys=False)
            raise ConfigError(f"the routing directory {source} is invalid: {error}") from exc

    def by_identifier(self, system: str, value: str) -> Recipient:
        """The recipient an organisation identifier names.

        Raises:
            RoutingError: no recipient has that identifier.
        """
        recipient = self._indexes()[0].get((normalise_system(system), value))
        if recipient is not None:
            return recipient
        raise RoutingError(
            "no recipient in the routing directory has the organisation identifier the message names"
        )

    def by_id(self, recipient_id: str) -> Recipient:
        """The recipient with id ``recipient_id``.

        Raises:
            RoutingError: there is none.
        """
        recipient = self._indexes()[1].get(recipient_id)
        if recipient is not None:
            return recipient
        raise RoutingError(f"no recipient in the routing directory has id {recipient_id}")

    def _indexes(self) -> tuple[dict[tuple[str, str], Recipient], dict[str, Recipient]]:
        """The recipients by (normalised system, value) of each identifier, and by id (made once).

        Kept with the ``recipients`` they were made of, and made again for another (a copy's), so they never
        answer for recipients that are no longer this directory's.
        """
        made = self.__dict__.get("_sambus_indexes")
        if made is None or made[0] is not self.recipients:
            by_identifier: dict[tuple[str, str], Recipient] = {}
            for recipient in self.recipients:
                for identifier in recipient.identifiers:
                    by_identifier.setdefault(
                        (normalise_system(identifier.system), identifier.value), recipient
                    )
            by_id: dict[str, Recipient] = {}
            for recipient in self.recipients:
                by_id.setdefault(recipient.id, recipient)
            made = (self.recipients, by_identifier, by_id)
            self.__dict__["_sambus_indexes"] = made  # frozen model: its fields stay as they are
        return made[1], made[2]

    @property
    def counties(self) -> frozenset[str]:
        """The länskoder of the counties the directory's organisations are in."""
        return frozenset(r.county for r in self.recipients if r.county is not None)

    def check_county(self, county: str) -> None:
        """Refuse a directory with no organisation in ``county`` (a name of :data:`COUNTY_CODES`).

        Raises:
            ConfigError: the county is unknown, or the directory holds none of its organisations.
        """
        code = COUNTY_CODES.get(county)
        if code is None:
            known = ", ".join(COUNTY_CODES)
            raise ConfigError(f"SAMBUS_COUNTY={county} is not a county sambus knows ({known})")
        if code not in self.counties:
            held = ", ".join(sorted(self.counties)) or "none"
            raise ConfigError(
                f"SAMBUS_COUNTY={county} (län {code}) but the routing directory has no organisation there "
                f"(its counties: {held}): point SAMBUS_DIRECTORY at {county}'s directory"
            )

    def county_part_of(self, municipality: str) -> str | None:
        """The county part a municipality belongs to, if the directory names one."""
        for name, codes in self.county_parts.items():
            if municipality in codes:
                return name
        return None


def _folder_of(source: Traversable) -> Traversable:
    """The folder a directory file's includes are relative to."""
    if isinstance(source, Path):
        return source.parent
    return _DEFAULTS  # a packaged directory includes packaged ones


def _read_with_includes(source: Traversable, *, folder: Traversable, seen: tuple[str, ...]) -> object:
    """A directory file's YAML with the county parts and recipients of the files it includes merged in."""
    name = str(source)
    if name in seen or len(seen) > MAX_INCLUDE_DEPTH:
        chain = " -> ".join((*seen, name))
        raise ConfigError(f"the routing directory includes itself or nests too deep: {chain}")
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the routing directory {source}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"the routing directory {source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or "include" not in raw:
        return raw
    includes = raw.pop("include")
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        raise ConfigError(f"the routing directory {source}: include must be a list of file paths")
    parts: dict[str, object] = dict(raw.get("county_parts") or {})
    recipients: list[object] = list(raw.get("recipients") or [])
    for relative in includes:
        included = folder / relative
        sub = _read_with_includes(included, folder=_folder_of_included(folder, relative), seen=(*seen, name))
        if not isinstance(sub, dict):
            raise ConfigError(f"the routing directory {included} (included by {source}) is not a mapping")
        for part, codes in (sub.get("county_parts") or {}).items():
            if part in parts and parts[part] != codes:
                raise ConfigError(
                    f"the routing directory {source}: county part {part!r} is defined differently in "
                    f"{included}"
                )
            parts[part] = codes
        recipients += list(sub.get("recipients") or [])
    return {**raw, "county_parts": parts, "recipients": recipients}


def _folder_of_included(folder: Traversable, relative: str) -> Traversable:
    """The folder of an included file (its own includes are relative to it)."""
    for part in Path(relative).parts[:-1]:
        folder = folder / part
    return folder
