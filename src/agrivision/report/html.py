"""The self-contained HTML report: overview map, sortable field table, one card per field.

Everything is inline (PNG data URIs, CSS and a few lines of JavaScript): the file opens
offline, from an e-mail attachment or a USB stick, with no network request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from agrivision.io.atomic import atomic_path


@dataclass
class FieldCard:
    """What one field's card shows; images are PNG data URIs."""

    field_id: str
    status: str
    facts: dict[str, str]
    flags: list[str]
    images: list[tuple[str, str]] = field(default_factory=list)  # (caption, data URI)
    class_areas: list[tuple[str, float, float]] = field(default_factory=list)  # name, ha, %


_TEMPLATE = jinja2.Environment(
    loader=jinja2.PackageLoader("agrivision.report", "."),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
).get_template("report.html.j2")


def render_report(
    *,
    title: str,
    subtitle: str,
    overview: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    cards: Sequence[FieldCard],
    warnings: Sequence[str],
    provenance: str,
) -> str:
    """Render the report page as one HTML string (all inputs are escaped)."""
    return _TEMPLATE.render(
        title=title, subtitle=subtitle, overview=overview, columns=list(columns),
        rows=[["" if v is None else v for v in r] for r in rows], cards=list(cards),
        warnings=list(warnings), provenance=provenance,
    )  # fmt: skip


def write_report(path: str | Path, html: str, *, overwrite: bool = True) -> Path:
    """Write the page atomically (temporary file, then rename)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(path)


def format_cell(value: object, digits: int = 3) -> str:
    """Table cell text: floats rounded, booleans as yes/'' , None/NaN empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return "" if value != value else f"{value:.{digits}f}"
    return str(value)


def status_counts(statuses: Mapping[str, int]) -> str:
    """'12 good, 3 watch, 1 problem' style summary."""
    return ", ".join(f"{n} {s}" for s, n in statuses.items() if n)
