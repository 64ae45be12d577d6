"""Swedish identifiers: systems per HL7 Sweden's base profiles, validation and normalisation.

Personnummer and samordningsnummer are validated at the boundary (12 digits, a real date, the Luhn
check digit). Error messages never repeat the number itself.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

PERSONNUMMER_SYSTEM = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER_SYSTEM = "http://electronichealth.se/identifier/samordningsnummer"
LMA_NUMBER_SYSTEM = "http://electronichealth.se/identifier/LMA-nummer"
"""Migrationsverket's LMA number (dossiernummer) of an asylum seeker (HL7 Sweden SEBaseLMANummer)."""
NATIONAL_RESERVE_NUMBER_SYSTEM = "http://electronichealth.se/identifier/nationelltReservnummer"
"""The national reservnummer (HL7 Sweden base NamingSystem ``SE-NationelltReservnummer``)."""
HSA_ID_SYSTEM = "urn:oid:1.2.752.29.4.19"
ORGANISATION_NUMBER_SYSTEM = "urn:oid:2.5.4.97"

# Older RIV-TA / Inera OIDs, accepted on input and normalised to the systems above.
_LEGACY_SYSTEMS = {
    "1.2.752.129.2.1.3.1": PERSONNUMMER_SYSTEM,
    "1.2.752.129.2.1.3.3": SAMORDNINGSNUMMER_SYSTEM,
    "1.2.752.129.2.1.4.1": HSA_ID_SYSTEM,
    "1.2.752.29.4.19": HSA_ID_SYSTEM,
    "2.5.4.97": ORGANISATION_NUMBER_SYSTEM,
}

_PERSON_NUMBER = re.compile(r"^(\d{8})[-+]?(\d{4})$")
_HSA_ID = re.compile(r"^SE\d{10}-[A-Za-z0-9]{1,31}$")
_ORGANISATION_NUMBER = re.compile(r"^(\d{6})-?(\d{4})$")
_SAMORDNING_DAY_OFFSET = 60


def normalise_system(system: str) -> str:
    """Return the HL7 Sweden base system for ``system``, mapping older OIDs (with or without ``urn:oid:``)."""
    bare = system.removeprefix("urn:oid:")
    return _LEGACY_SYSTEMS.get(bare, system)


def luhn_valid(digits: str) -> bool:
    """Return whether ``digits`` ends in a correct Luhn (mod 10) check digit."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:  # noqa: PLR2004 - the Luhn rule: add the two digits of a doubled digit
                value -= 9
        total += value
    return total % 10 == 0


def _birth_date(date_digits: str, *, day_offset: int) -> dt.date | None:
    year, month, day = int(date_digits[:4]), int(date_digits[4:6]), int(date_digits[6:8]) - day_offset
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _parse_person_number(value: str, *, samordning: bool) -> str:
    kind = "samordningsnummer" if samordning else "personnummer"
    match = _PERSON_NUMBER.match(value.strip())
    if match is None:
        raise ValueError(
            f"a {kind} must have 12 digits (YYYYMMDDNNNC), optionally with '-' before the last four"
        )
    digits = match.group(1) + match.group(2)
    day_offset = _SAMORDNING_DAY_OFFSET if samordning else 0
    if _birth_date(digits[:8], day_offset=day_offset) is None:
        raise ValueError(f"the {kind} does not start with a real date")
    if not luhn_valid(digits[2:]):
        raise ValueError(f"the {kind} has a wrong check digit")
    return digits


def parse_personnummer(value: str) -> str:
    """Validate a personnummer and return its 12 digits without separator.

    Raises:
        ValueError: with a message that names the problem but not the number.
    """
    return _parse_person_number(value, samordning=False)


def parse_samordningsnummer(value: str) -> str:
    """Validate a samordningsnummer (birth day + 60) and return its 12 digits without separator.

    Raises:
        ValueError: with a message that names the problem but not the number.
    """
    return _parse_person_number(value, samordning=True)


def birth_date(person_number: str) -> dt.date:
    """Return the birth date encoded in a validated personnummer or samordningsnummer."""
    day = int(person_number[6:8])
    offset = _SAMORDNING_DAY_OFFSET if day > _SAMORDNING_DAY_OFFSET else 0
    date = _birth_date(person_number[:8], day_offset=offset)
    if date is None:
        raise ValueError("not a validated personnummer or samordningsnummer")
    return date


def parse_hsa_id(value: str) -> str:
    """Validate the shape of an HSA-id (``SE`` + 10-digit organisation number + ``-`` + local part)."""
    if not _HSA_ID.match(value):
        raise ValueError("an HSA-id looks like SE2321000016-1234 (SE, ten digits, '-', a local part)")
    return value


def parse_organisation_number(value: str) -> str:
    """Validate a Swedish organisation number (10 digits, Luhn) and return it as NNNNNN-NNNN."""
    match = _ORGANISATION_NUMBER.match(value.strip())
    if match is None:
        raise ValueError("an organisation number has ten digits, NNNNNN-NNNN")
    digits = match.group(1) + match.group(2)
    if not luhn_valid(digits):
        raise ValueError("the organisation number has a wrong check digit")
    return f"{match.group(1)}-{match.group(2)}"


_PERSON_NUMBER_SCHEMA = r"^\d{8}[-+]?\d{4}$"

Personnummer = Annotated[
    str,
    AfterValidator(parse_personnummer),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _PERSON_NUMBER_SCHEMA,
            "description": "Personnummer, 12 digits (YYYYMMDDNNNC, optionally '-' before the last four); "
            "a real date and a correct Luhn check digit.",
            "examples": ["20120315-0006"],
        }
    ),
]
"""A validated personnummer, normalised to 12 digits."""

HsaId = Annotated[
    str,
    AfterValidator(parse_hsa_id),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _HSA_ID.pattern,
            "description": "HSA-id: SE, the ten-digit organisation number, '-', a local part.",
            "examples": ["SE2321000206-1001"],
        }
    ),
]
"""A validated HSA-id."""

OrganisationNumber = Annotated[
    str,
    AfterValidator(parse_organisation_number),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _ORGANISATION_NUMBER.pattern,
            "description": "Organisation number: ten digits (NNNNNN-NNNN) with a correct Luhn check digit.",
            "examples": ["212000-2080"],
        }
    ),
]
"""A validated organisation number, normalised to NNNNNN-NNNN."""


def parse_person_identity(value: str) -> str:
    """Validate a personnummer or a samordningsnummer (day + 60) and return its 12 digits.

    Raises:
        ValueError: with a message that names the problem but not the number.
    """
    match = _PERSON_NUMBER.match(value.strip())
    if match is not None and int(match.group(1)[6:8]) > _SAMORDNING_DAY_OFFSET:
        return parse_samordningsnummer(value)
    return parse_personnummer(value)


def person_identity_system(person_number: str) -> str:
    """The HL7 Sweden base system of a validated personnummer or samordningsnummer."""
    return (
        SAMORDNINGSNUMMER_SYSTEM if int(person_number[6:8]) > _SAMORDNING_DAY_OFFSET else PERSONNUMMER_SYSTEM
    )


PersonIdentity = Annotated[
    str,
    AfterValidator(parse_person_identity),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _PERSON_NUMBER_SCHEMA,
            "description": "Personnummer or samordningsnummer (birth day + 60), 12 digits; a real date and a "
            "correct Luhn check digit.",
            "examples": ["20120315-0006"],
        }
    ),
]
"""A validated personnummer or samordningsnummer, normalised to 12 digits."""


_LMA_NUMBER = re.compile(r"^(\d{2})-?(\d{6})$")
_RESERVE_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,29}$")
_OID_SYSTEM = re.compile(r"^urn:oid:[0-2](\.(0|[1-9]\d*))+$")
PERSON_NUMBER_SYSTEMS = frozenset({PERSONNUMMER_SYSTEM, SAMORDNINGSNUMMER_SYSTEM})
"""Skatteverket's identity numbers: a child is known inside sambus by the bare 12 digits of these."""


def parse_lma_number(value: str) -> str:
    """Validate an LMA number (eight digits, written NN-NNNNNN) and return it as NN-NNNNNN.

    Raises:
        ValueError: with a message that names the problem but not the number.
    """
    match = _LMA_NUMBER.match(value.strip())
    if match is None:
        raise ValueError("an LMA number has eight digits, NN-NNNNNN (as on the LMA card)")
    return f"{match.group(1)}-{match.group(2)}"


def parse_reserve_number(value: str) -> str:
    """Validate the shape of a reservnummer (3 to 30 letters, digits and '-'; issuers' formats differ).

    Raises:
        ValueError: with a message that names the problem but not the number.
    """
    if not _RESERVE_NUMBER.match(value):
        raise ValueError("a reservnummer has 3 to 30 letters, digits or '-', starting with a letter or digit")
    return value


def parse_reserve_number_system(system: str) -> str:
    """Validate a reservnummer's issuing system: the national one, or a region's as ``urn:oid:``.

    Raises:
        ValueError: the system is not a reservnummer system (e.g. personnummer's or the LMA number's).
    """
    if system == NATIONAL_RESERVE_NUMBER_SYSTEM:
        return system
    normalised = normalise_system(system)
    if normalised in {*PERSON_NUMBER_SYSTEMS, LMA_NUMBER_SYSTEM, HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM}:
        raise ValueError("a reservnummer's system cannot be that of another kind of identifier")
    if not _OID_SYSTEM.match(system):
        raise ValueError(
            f"a reservnummer's system is {NATIONAL_RESERVE_NUMBER_SYSTEM} or the issuing region's urn:oid:..."
        )
    return system


def child_key(system: str, value: str) -> str:
    """The one string a child is known by inside sambus, before it is pseudonymised.

    A personnummer or samordningsnummer is its bare 12 digits (the two never collide: a samordningsnummer's
    day is 61-91). Any other identifier (LMA number, reservnummer) is ``<system>|<value>``: it never equals
    a 12-digit number, nor another system's identifier with the same value, so two identifier kinds are
    never taken for one child. A child who later gets a personnummer has a new key: nothing is linked by
    guessing (consents given under the LMA number do not follow; the registry fails closed).

    Raises:
        ValueError: ``system`` is not a child identifier system sambus knows.
    """
    system = normalise_system(system)
    if system in PERSON_NUMBER_SYSTEMS:
        return value
    if system == LMA_NUMBER_SYSTEM:
        return f"{system}|{parse_lma_number(value)}"
    return f"{parse_reserve_number_system(system)}|{parse_reserve_number(value)}"


def child_identifier(key: str) -> tuple[str, str]:
    """The FHIR ``(system, value)`` of a child known inside sambus by ``key`` (see :func:`child_key`)."""
    system, separator, value = key.rpartition("|")
    if separator:
        return system, value
    return person_identity_system(key), key


LmaNumber = Annotated[
    str,
    AfterValidator(parse_lma_number),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _LMA_NUMBER.pattern,
            "description": "LMA number (Migrationsverket's dossiernummer, on the LMA card): eight digits, "
            "NN-NNNNNN.",
            "examples": ["12-345678"],
        }
    ),
]
"""A validated LMA number, normalised to NN-NNNNNN."""
