"""Removing fields from a message Bundle by path, for ``permit_redacted`` decisions.

Paths name a field from the Bundle's root with dots and list indexes, e.g. ``entry[2].resource.address`` or
``entry[4]`` (a whole entry). Residence-revealing data appears only in known places (``Patient.address``,
resources tagged ``residence``; see :data:`sambus.contracts.fhir.codes.DATA_CATEGORY_SYSTEM`), so the paths
are known
when the decision is made.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.split("."):
        position = 0
        for match in _STEP.finditer(part):
            name, index = match.groups()
            if match.start() != position or (name is not None and position > 0):
                break
            steps.append(name if name is not None else int(index))
            position = match.end()
        if position != len(part) or not part:
            raise ValueError(f"not a redaction path: {path!r}")
    return steps


def redact(bundle: Mapping[str, Any], removed: Iterable[str]) -> dict[str, Any]:
    """A copy of ``bundle`` without the fields at ``removed``; a path that is not there is ignored.

    Whole entries are removed after fields, highest index first, so indexes name the original Bundle.

    Raises:
        ValueError: a path is malformed.
    """
    result: dict[str, Any] = copy.deepcopy(dict(bundle))
    parsed = sorted((_steps(path) for path in removed), key=lambda s: [(isinstance(x, int), x) for x in s])
    for steps in reversed(parsed):
        parent: Any = result
        holder: Any = None
        for step in steps[:-1]:
            try:
                holder, parent = parent, parent[step]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        last = steps[-1]
        if isinstance(parent, dict) and isinstance(last, str):
            parent.pop(last, None)
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            del parent[last]
            if not parent and isinstance(holder, dict) and len(steps) > 1:
                # FHIR has no empty arrays: the field goes with its last item
                holder.pop(steps[-2], None)
    return result
