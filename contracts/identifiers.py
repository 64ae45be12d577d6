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
