"""JSON parsing with limits: no message may make a stage run out of memory, stack or time.

:func:`load_json` refuses a message larger than :data:`MAX_JSON_BYTES` before reading it, and one nested
deeper than :data:`MAX_JSON_DEPTH` (Python's parser would raise ``RecursionError`` on a few thousand
levels; sambus's own messages are never deeper than a dozen).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from sambus.contracts.errors import InvalidEventError, TooDeepError, TooLargeError

MAX_JSON_BYTES = 512 * 1024
"""The largest inbound event or intent sambus reads (bytes)."""
MAX_JSON_DEPTH = 64
"""The deepest nesting of objects and arrays sambus reads."""


def json_depth(document: Any, *, stop_after: int = MAX_JSON_DEPTH) -> int:  # noqa: ANN401 - any JSON value
    """How deeply ``document``'s objects and arrays nest (a scalar is 0), counted up to ``stop_after + 1``.

    Walks only the objects and arrays (each scalar costs one type check) and goes no deeper than
    ``stop_after + 1`` levels, stopping at the first container that deep.
    """
    if isinstance(document, dict):
        return _deepest(document.values(), 1, stop_after)
    if isinstance(document, list):
        return _deepest(document, 1, stop_after)
    return 0


def _deepest(children: Iterable[Any], depth: int, stop_after: int) -> int:
    """The depth of the deepest container among ``children`` of a container at ``depth`` (or ``depth``)."""
    if depth > stop_after:
        return depth
    deepest = depth
    for child in children:
        if isinstance(child, dict):
            found = _deepest(child.values(), depth + 1, stop_after)
        elif isinstance(child, list):
            found = _deepest(child, depth + 1, stop_after)
        else:
            continue
        if found > deepest:
            deepest = found
            if deepest > stop_after:
                break
    return deepest


def load_json(value: bytes, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:  # noqa: ANN401 - any JSON value
    """Parse ``value`` as JSON within the limits.

    Raises:
        TooLargeError: ``value`` is longer than ``max_bytes``.
        TooDeepError: the document nests objects and arrays deeper than ``max_depth``.
        InvalidEventError: ``value`` is not UTF-8 JSON (the message says where, never what).
    """
    return _load(value, max_bytes=max_bytes, max_depth=max_depth, floats=True)


def load_json_noting_floats(
    value: bytes, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> tuple[Any, bool]:
    """:func:`load_json`, and whether the document holds a non-integer number (``1.5``, ``1e-05``, ``NaN``).

    The same document and the same errors as :func:`load_json`. A document without such numbers can be
    written back with :func:`dump_json` ``(floats=False)``.
    """
    try:
        return _load(value, max_bytes=max_bytes, max_depth=max_depth, floats=False), False
    except _FloatFoundError:
        return _load(value, max_bytes=max_bytes, max_depth=max_depth, floats=True), True


class _FloatFoundError(Exception):
    """The document has a non-integer number (raised by the parser's hook, read again with floats)."""


def _no_floats(text: str) -> Any:  # noqa: ANN401 - stands for the parser's number
    raise _FloatFoundError(text)


def _load(value: bytes, *, max_bytes: int, max_depth: int, floats: bool) -> Any:  # noqa: ANN401 - any JSON value
    if len(value) > max_bytes:
        raise TooLargeError(f"the message is {len(value):,} bytes; at most {max_bytes:,} bytes are read")
    too_deep = TooDeepError(f"the message is nested deeper than {max_depth} levels")
    try:
        document = (
            json.loads(value)
            if floats
            else json.loads(value, parse_float=_no_floats, parse_constant=_no_floats)
        )
    except RecursionError as exc:
        raise too_deep from exc
    except UnicodeDecodeError as exc:
        raise InvalidEventError("the message is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise InvalidEventError(
            f"the message is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    if _opened(value) > max_depth and json_depth(document, stop_after=max_depth) > max_depth:
        raise too_deep
    return document


def _opened(value: bytes) -> int:
    """How many ``{`` and ``[`` bytes ``value`` holds: at least as many as its objects and arrays.

    Each object or array opens with one such character, and each such character is that byte in UTF-8,
    UTF-16 and UTF-32 alike (the encodings ``json.loads`` reads); one inside a string or a code unit only
    adds to the count. A document cannot nest deeper than its containers number, so when this count is
    within the limit the walk of :func:`json_depth` is not needed (sambus's own messages: a few dozen).
    """
    return value.count(b"{") + value.count(b"[")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_ORJSON_REFUSES = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _not_json(value: object) -> Any:  # noqa: ANN401 - orjson's default hook
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dump_json(document: Any, *, floats: bool = True) -> bytes:  # noqa: ANN401 - any JSON value
    """``json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")``, byte for byte.

    ``floats=False`` says the document holds no float (nor ``NaN``/``Infinity``): it is then written by
    orjson, twelve times faster, which writes every such document exactly as the standard library does
    (strings, escapes, integers, key order; ``tests/property/test_dump_json.py`` holds it to that). Floats
    it writes differently (``0.00001`` for ``1e-05``), so a document that may hold one goes the standard
    way. What orjson refuses (an integer beyond 64 bits, a key that is not a string, a lone surrogate,
    nesting beyond 255, a date or time, a dataclass, any other object it does not know) goes the standard
    way too, which writes it or raises as it always did. Two kinds of object orjson writes where the
    standard library raises: a ``uuid.UUID`` and an ``Enum`` that is neither ``str`` nor ``int``; sambus's
    messages are parsed JSON and the strings, objects and lists its builders add, so neither occurs.
    """
    if not floats:
        try:
            return orjson.dumps(document, default=_not_json, option=_ORJSON_REFUSES)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return _ENCODER.encode(document).encode("utf-8")
