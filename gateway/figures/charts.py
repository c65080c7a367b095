"""Server-side SVG bar charts: no script, no inline style, no fonts or files from outside.

A chart is an inline `<svg role="img">` whose colours come from classes in the theme's
stylesheet (the CSP forbids inline styles); every chart stands next to a table with
the same numbers, which is what a screen reader reads (the SVG has a title only).
A count below the threshold is drawn as a hatched stub labelled "< t", a cell left out
to protect another as "x" without a bar: neither is ever drawn to scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 720
LABEL_WIDTH = 260
BAR_HEIGHT = 22
GAP = 8
#: The stub of a suppressed bar: visibly a marker, not a length.
STUB = 12


@dataclass(frozen=True)
class Bar:
    label: str
    #: The count; None: below the threshold; `hidden`: left out to protect another cell.
    count: int | None
    hidden: bool = False


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], threshold: int) -> Markup:
    """A horizontal bar chart, one bar per label, scaled to the largest published count."""
    largest = max((b.count for b in bars if b.count is not None and not b.hidden), default=0)
    scale = (WIDTH - LABEL_WIDTH - 70) / largest if largest else 0.0
    height = max(1, len(bars)) * (BAR_HEIGHT + GAP) + GAP
    parts = [
        f'<svg class="kp-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="{_attr(chart_id)}-title">',
        f'<title id="{_attr(chart_id)}-title">{escape(title)}</title>',
        f'<defs><pattern id="{_attr(chart_id)}-hatch" width="6" height="6" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="3" height="6" class="kp-chart__hatch"/></pattern></defs>',
    ]
    for i, bar in enumerate(bars):
        y = GAP + i * (BAR_HEIGHT + GAP)
        middle = y + BAR_HEIGHT / 2 + 5
        parts.append(
            f'<text class="kp-chart__label" x="{LABEL_WIDTH - 8}" y="{middle}" '
            f'text-anchor="end">{escape(bar.label)}</text>'
        )
        if bar.hidden:
            parts.append(
                f'<text class="kp-chart__value" x="{LABEL_WIDTH + 4}" y="{middle}">x</text>'
            )
            continue
        if bar.count is None:
            parts.append(
                f'<rect class="kp-chart__stub" x="{LABEL_WIDTH}" y="{y}" '
                f'width="{STUB}" height="{BAR_HEIGHT}" fill="url(#{_attr(chart_id)}-hatch)"/>'
            )
            parts.append(
                f'<text class="kp-chart__value" x="{LABEL_WIDTH + STUB + 6}" y="{middle}">'
                f"&lt; {threshold}</text>"
            )
            continue
        width = max(1.0, bar.count * scale)
        parts.append(
            f'<rect class="kp-chart__bar" x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" '
            f'height="{BAR_HEIGHT}"/>'
        )
        parts.append(
            f'<text class="kp-chart__value" x="{LABEL_WIDTH + width + 6:.1f}" y="{middle}">'
            f"{bar.count}</text>"
        )
    parts.append("</svg>")
    # Every caller-given text above (id, title, labels) went through `html.escape`, the
    # rest are numbers we format; tests/figures/test_chart_escaping.py holds it to that.
    return Markup("".join(parts))  # noqa: S704  # nosec B704
