"""The self-contained HTML report: interactive map, field table, cards.

Everything is inline (the vendored Leaflet library, the page's script, the data as JSON,
images as data URIs): the file opens offline, from an e-mail attachment or a USB stick, with
no network request unless the run config names a basemap tile URL (``output.map_tiles``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

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
    data: Mapping[str, Any],
    cards: Sequence[FieldCard],
    warnings: Sequence[str],
    provenance: str,
) -> str:
    """Render the report page as one HTML string.

    ``data`` is what the page's script draws (map layers, field table, series; see
    :func:`agrivision.report.page.page_data`); it is embedded as JSON with every ``<``
    escaped, and all other inputs are HTML-escaped.
    """
    return _TEMPLATE.render(
        title=title, subtitle=subtitle, n_fields=len(data["table"]["data"]), cards=list(cards),
        warnings=list(warnings), provenance=provenance, data=embed_json(data),
        leaflet_css=Markup(_leaflet_css()), leaflet_js=Markup(_leaflet_js()),
        report_js=Markup(_asset("report.js")),
    )  # fmt: skip


def embed_json(data: Mapping[str, Any]) -> Markup:
    """``data`` as JSON that is safe inside a ``<script>`` element (no ``<`` at all)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c"))


def _asset(name: str) -> str:
    return files("agrivision.report").joinpath(name).read_text(encoding="utf-8")


def _leaflet_js() -> str:
    """Leaflet, preceded by its licence (BSD-2 asks for the notice with every copy)."""
    licence = _asset("vendor/leaflet/LICENSE")
    return f"/*\n{licence}*/\n{_asset('vendor/leaflet/leaflet.js')}"


def _leaflet_css() -> str:
    """Leaflet's stylesheet with its images as data URIs (no file next to the page needed)."""
    images = files("agrivision.report").joinpath("vendor/leaflet/images")

    def inline(match: re.Match) -> str:
        png = base64.b64encode(images.joinpath(match.group(1)).read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{png})"

    return re.sub(r"url\(images/([\w.-]+\.png)\)", inline, _asset("vendor/leaflet/leaflet.css"))


def write_report(path: str | Path, html: str, *, overwrite: bool = True) -> Path:
    """Write the page atomically (temporary file, then rename)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(path)


def status_counts(statuses: Mapping[str, int]) -> str:
    """'12 good, 3 watch, 1 problem' style summary."""
    return ", ".join(f"{n} {s}" for s, n in statuses.items() if n)
