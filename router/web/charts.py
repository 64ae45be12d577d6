"""Small server-rendered SVG bar charts (no JavaScript, no external assets)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

_BAR_WIDTH = 46
_GAP = 14
_HEIGHT = 120


def bar_chart(title: str, values: Sequence[tuple[str, float | None]]) -> Markup:
    """A bar chart of ``values``; a suppressed value (None) is drawn as a hatched stub marked ``<5``."""
    top = max([v for _, v in values if v is not None] or [1.0]) or 1.0
    width = len(values) * (_BAR_WIDTH + _GAP) + _GAP
    parts = [
        (
            f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
            f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{_HEIGHT + 36}" '
            f'viewBox="0 0 {width} {_HEIGHT + 36}">'
        )
    ]
    for i, (label, value) in enumerate(values):
        x = _GAP + i * (_BAR_WIDTH + _GAP)
        if value is None:
            height, text, css = 6.0, "<5", "bar suppressed"
        else:
            height, text, css = max(1.0, _HEIGHT * value / top), f"{value:g}", "bar"
        y = _HEIGHT - height + 14
        parts.append(
            f'<rect class="{css}" x="{x}" y="{y:.1f}" width="{_BAR_WIDTH}" height="{height:.1f}"></rect>'
            f'<text x="{x + _BAR_WIDTH / 2}" y="{y - 3:.1f}" text-anchor="middle">{escape(text)}</text>'
            f'<text x="{x + _BAR_WIDTH / 2}" y="{_HEIGHT + 30}" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg></figure>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
