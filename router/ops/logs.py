"""Structured logs without personal data: a JSON formatter and a filter that masks identity numbers.

Log messages are written not to carry personal data; the filter is the second line of defence, masking
every valid personnummer or samordningsnummer (a real date, or a date with the day plus 60, and the right
Luhn check digit; with or without the century and the ``-``/``+``) before a record is formatted. Other
digit runs, such as message ids and offsets, are left as they are.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import TextIO

from opentelemetry import trace

from sambus.contracts.identifiers import luhn_valid

_PERSON_NUMBER = re.compile(r"(?<!\d)(\d{2})?(\d{2})(\d{2})(\d{2})[-+]?(\d{3})(\d)(?!\d)")
_SAMORDNING_DAY_OFFSET = 60
MASK = "[personnummer]"
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


def mask_personal(text: str) -> str:
    """``text`` with every valid personnummer and samordningsnummer replaced by ``[personnummer]``."""
    return _PERSON_NUMBER.sub(lambda m: MASK if _is_person_number(m) else m.group(0), text)


class PersonalDataFilter(logging.Filter):
    """Masks personnummer-shaped numbers in a record's message and drops its traceback text."""

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
