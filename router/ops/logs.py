"""Structured logs without personal data: a JSON formatter and a filter that masks identity numbers.

Log messages are written not to carry personal data; the filter is the second line of defence, masking
before a record is formatted:

* every valid personnummer or samordningsnummer (a real date, or a date with the day plus 60, and the right
  Luhn check digit; with or without the century and the ``-``/``+``);
* every LMA number as it is written (``NN-NNNNNN``, Migrationsverket's card), and one named as such
  (``LMA 12345678``, ``LMA-nummer|12-345678``);
* every reservnummer sambus can tell from other text: named by its system, as sambus keys a child
  (``<reservnummer system>|<value>``: the national system or a region's ``urn:oid:``, never an HSA-id's or
  an organisation number's), or by the word (``reservnummer``/``reservnr``), and the personnummer-shaped
  ones regions issue with letters among the last four (a real date, e.g. ``20120315-T123``). Issuers'
  formats differ (3 to 30 letters, digits and ``-``), so a bare reservnummer of another shape cannot be told
  from an id: log lines must not carry one in the first place.

Other digit runs, such as message ids, offsets and dates, are left as they are.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import TextIO

from opentelemetry import trace

from sambus.contracts.identifiers import (
    HSA_ID_SYSTEM,
    LMA_NUMBER_SYSTEM,
    NATIONAL_RESERVE_NUMBER_SYSTEM,
    ORGANISATION_NUMBER_SYSTEM,
    luhn_valid,
)

_PERSON_NUMBER = re.compile(r"(?<!\d)(\d{2})?(\d{2})(\d{2})(\d{2})[-+]?(\d{3})(\d)(?!\d)")
_SAMORDNING_DAY_OFFSET = 60
_VALUE = r"[A-Za-z0-9][A-Za-z0-9-]{2,29}"
_LMA_WRITTEN = re.compile(r"(?<![\w-])\d{2}-\d{6}(?![\w-])")
_KEYED = re.compile(
    rf"(?P<system>{re.escape(LMA_NUMBER_SYSTEM)}|{re.escape(NATIONAL_RESERVE_NUMBER_SYSTEM)}"
    rf"|urn:oid:[0-2](?:\.\d+)+)\|(?P<value>{_VALUE})"
)
_NAMED_LMA = re.compile(
    r"(?i)\b(?P<word>lma-nummer|lma-number|lma number|lma)(?P<gap>[\s:=#]+)\d{2}-?\d{6}(?![\w-])"
)
_NAMED_RESERVE = re.compile(
    rf"(?i)\b(?P<word>reservnummer|reservnr)(?P<gap>[\s:=#]+)(?=[A-Za-z-]*\d){_VALUE}"
)
_RESERVE_SHAPED = re.compile(r"(?<![\w-])(\d{2})?(\d{2})(\d{2})(\d{2})[-+]?([A-Za-z0-9]{4})(?![\w-])")
_ORGANISATION_SYSTEMS = frozenset({HSA_ID_SYSTEM, ORGANISATION_NUMBER_SYSTEM})
MASK = "[personnummer]"
LMA_MASK = "[LMA-nummer]"
RESERVE_MASK = "[reservnummer]"
LOG_FORMATS = ("text", "json")


def _real_date(century: str | None, year: str, month: str, day: str) -> bool:
    day_of_month = int(day) - (_SAMORDNING_DAY_OFFSET if int(day) > _SAMORDNING_DAY_OFFSET else 0)
    years = [int(century + year)] if century else [1900 + int(year), 2000 + int(year)]
    for full_year in years:
        try:
            dt.date(full_year, int(month), day_of_month)
        except ValueError:
            continue
        return True
    return False


def _is_person_number(match: re.Match[str]) -> bool:
    century, year, month, day, serial, check = match.groups()
    return _real_date(century, year, month, day) and luhn_valid(year + month + day + serial + check)


def _keyed(match: re.Match[str]) -> str:
    system = match["system"]
    if system in _ORGANISATION_SYSTEMS:
        return match.group(0)  # an organisation, not a person
    return f"{system}|{LMA_MASK if system == LMA_NUMBER_SYSTEM else RESERVE_MASK}"


def _reserve_shaped(match: re.Match[str]) -> str:
    century, year, month, day, serial = match.groups()
    if serial.isdigit() or not _real_date(century, year, month, day):
        return match.group(0)
    return RESERVE_MASK


def mask_personal(text: str) -> str:
    """``text`` with every identity number sambus can recognise masked.

    A valid personnummer or samordningsnummer becomes ``[personnummer]``, an LMA number ``[LMA-nummer]``
    and a reservnummer ``[reservnummer]`` (see the module's docstring for which ones are recognised).
    """
    text = _PERSON_NUMBER.sub(lambda m: MASK if _is_person_number(m) else m.group(0), text)
    text = _KEYED.sub(_keyed, text)
    text = _NAMED_LMA.sub(lambda m: f"{m['word']}{m['gap']}{LMA_MASK}", text)
    text = _NAMED_RESERVE.sub(lambda m: f"{m['word']}{m['gap']}{RESERVE_MASK}", text)
    text = _LMA_WRITTEN.sub(LMA_MASK, text)
    return _RESERVE_SHAPED.sub(_reserve_shaped, text)


class PersonalDataFilter(logging.Filter):
    """Masks identity numbers (:func:`mask_personal`) in a record's message and drops its traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        record.msg = mask_personal(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            # A traceback can quote message content: keep only the exception's type.
            record.msg = f"{record.msg} [{record.exc_info[0].__name__}]"
            record.exc_info = None
            record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the current trace and span ids."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_personal(record.getMessage()),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = f"{context.trace_id:032x}"
            entry["span_id"] = f"{context.span_id:016x}"
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    log_format: str = "text", *, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Log to ``stream`` (stderr) in ``text`` or ``json``, with personal numbers masked; returns the handler.

    Raises:
        ValueError: the format is not ``text`` or ``json``.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(PersonalDataFilter())
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # aiokafka's debug lines quote whole records (values and headers): never below INFO.
    logging.getLogger("aiokafka").setLevel(max(level, logging.INFO))
    return handler
