"""JSON parsing with limits: no message may make a stage run out of memory, stack or time.

:func:`load_json` refuses a message larger than :data:`MAX_JSON_BYTES` before reading it, and one nested
deeper than :data:`MAX_JSON_DEPTH` (Python's parser would raise ``RecursionError`` on a few thousand
levels; sambus's own messages are never deeper than a dozen).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

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
    if len(value) > max_bytes:
        raise TooLargeError(f"the message is {len(value):,} bytes; at most {max_bytes:,} bytes are read")
    too_deep = TooDeepError(f"the message is nested deeper than {max_depth} levels")
    try:
        document = json.loads(value)
    except RecursionError as exc:
        raise too_deep from exc
    except UnicodeDecodeError as exc:
        raise InvalidEventError("the message is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise InvalidEventError(
            f"the message is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    if json_depth(document, stop_after=max_depth) > max_depth:
        raise too_deep
    return document
