"""The crop-health class schema: codes, names, labels and colours of a class raster.

The schema travels with every class raster (``attrs["class_schema"]``, JSON) and every model
checkpoint, so that a file read years later still says what its codes mean. Code ``0`` is
reserved for background/nodata; codes are ``0..254`` (255 stays free as a nodata sentinel
for tools that want one). Colours are RGBA 0..255, written as a GDAL colour table so that
QGIS shows the raster as "Paletted/Unique values" with the right colours straight away.

The default schema is ``0 background, 1 healthy, 2 stressed, 3 anomaly, 4 bare_soil``. It is
the only place where the project names its classes: the rules, the field-table columns
(``<slug>_pct``), the problem polygons, the synthetic truth and the training tiles all read
it. Names claim only what the evidence shows: a pixel far below its own field's median is an
``anomaly`` to scout (pests, disease, drought, lodging, waterlogging or a headland look
alike in a spectrum); pest, weed or disease names come only from a trained model's classes
(:mod:`agrivision.segment.model_classes` relabels the schema with them).

Schemas may carry more classes (synthetic truth rasters add non-crop classes such as water
or roads); :func:`agrivision.health.classify` only needs the names in :data:`HEALTH_CLASSES`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agrivision.errors import ConfigError

RGBA = tuple[int, int, int, int]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class HealthClass:
    """One class: raster ``code``, machine ``name`` (snake_case), human ``label``, RGBA colour
    and the ``slug`` that prefixes its field-table columns (default: the name)."""

    code: int
    name: str
    label: str
    colour: RGBA
    slug: str = ""


@dataclass(frozen=True)
class ClassSchema:
    """An ordered, validated set of classes (see the module docstring for the rules).

    Raises
    ------
    ConfigError
        Codes outside 0..254 or repeated, code 0 not ``background``, names not unique
        snake_case, colours not four ints 0..255.
    """

    classes: tuple[HealthClass, ...]

    def __post_init__(self) -> None:
        codes = [c.code for c in self.classes]
        names = [c.name for c in self.classes]
        problem = None
        if any(not isinstance(c, int) or isinstance(c, bool) or not 0 <= c <= 254 for c in codes):
            problem = f"class codes must be integers 0..254, got {codes}"
        elif len(set(codes)) != len(codes) or len(set(names)) != len(names):
            problem = "class codes and names must be unique"
        elif dict(zip(codes, names, strict=True)).get(0) != "background":
            problem = "code 0 must be the class named 'background' (it is reserved for nodata)"
        elif bad_names := [n for n in [*names, *self.slugs.values()] if not _NAME.match(str(n))]:
            problem = f"class names and slugs must be snake_case identifiers, got {bad_names}"
        elif bad_colours := [c.colour for c in self.classes if not _is_rgba(c.colour)]:
            problem = f"colours must be four integers 0..255 (RGBA), got {bad_colours}"
        if problem:
            raise ConfigError(problem, source="class schema", fix="fix the class list")

    def code(self, name: str) -> int:
        """Raster code of the class called ``name``."""
        for c in self.classes:
            if c.name == name:
                return c.code
        raise ConfigError(
            f"no class named {name!r} (classes: {', '.join(c.name for c in self.classes)})",
            source="class schema", fix=f"add a class named {name!r}",
        )  # fmt: skip

    @property
    def names(self) -> dict[int, str]:
        """``{code: name}``."""
        return {c.code: c.name for c in self.classes}

    @property
    def labels(self) -> dict[int, str]:
        """``{code: human label}``."""
        return {c.code: c.label for c in self.classes}

    @property
    def slugs(self) -> dict[int, str]:
        """``{code: column prefix}`` (``anomaly`` -> ``anomaly_pct``, ``anomaly_ha``)."""
        return {c.code: c.slug or c.name for c in self.classes}

    def relabel(self, labels: Mapping[int, str]) -> ClassSchema:
        """The same schema with the labels of some codes replaced (names and codes stay)."""
        return ClassSchema(
            tuple(replace(c, label=labels.get(c.code, c.label)) for c in self.classes)
        )

    @property
    def colormap(self) -> dict[int, RGBA]:
        """``{code: (r, g, b, a)}`` for ``rasterio``'s ``write_colormap`` (a GDAL colour table)."""
        return {c.code: c.colour for c in self.classes}

    @property
    def hex_colours(self) -> dict[int, str]:
        """``{code: "#rrggbbaa"}`` for matplotlib and HTML."""
        return {c.code: "#{:02x}{:02x}{:02x}{:02x}".format(*c.colour) for c in self.classes}

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form: ``{"classes": [{"code", "name", "label", "colour", "slug"}]}``
        (``slug`` only where set)."""
        return {
            "classes": [
                {"code": c.code, "name": c.name, "label": c.label, "colour": list(c.colour)}
                | ({"slug": c.slug} if c.slug else {})
                for c in self.classes
            ]
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as a compact JSON string (stored in raster tags and checkpoints)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> ClassSchema:
        """Build from :meth:`to_dict`'s form; colours may also be ``"#rrggbb[aa]"`` strings.

        Raises
        ------
        ConfigError
            Missing keys, wrong types, or a schema that fails validation.
        """
        where = source or "class schema"
        items = data.get("classes") if isinstance(data, Mapping) else None
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise ConfigError("expected a mapping with a 'classes' list", source=where)
        try:
            classes = tuple(
                HealthClass(
                    code=item["code"],
                    name=item["name"],
                    label=str(item.get("label", item["name"])),
                    colour=_rgba(item["colour"]),
                    slug=str(item.get("slug", "")),
                )
                for item in items
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"invalid class entry ({exc!r})",
                source=where, fix="each class needs code, name and colour (label optional)",
            ) from exc  # fmt: skip
        try:
            return cls(classes)
        except ConfigError as exc:
            raise ConfigError(exc.problem, source=where, fix=exc.fix) from exc

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None) -> ClassSchema:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON ({exc})", source=source or "class schema") from exc
        return cls.from_dict(data, source=source)


def _is_rgba(colour: Any) -> bool:
    return (
        isinstance(colour, tuple)
        and len(colour) == 4
        and all(isinstance(v, int) and 0 <= v <= 255 for v in colour)
    )


def _rgba(value: Any) -> RGBA:
    if isinstance(value, str):
        text = value.removeprefix("#")
        if len(text) not in (6, 8):
            raise ValueError(f"colour {value!r} is not #rrggbb or #rrggbbaa")
        text = text if len(text) == 8 else text + "ff"
        return tuple(int(text[i : i + 2], 16) for i in range(0, 8, 2))  # type: ignore[return-value]
    values = tuple(value)
    if len(values) == 3:
        values = (*values, 255)
    if not all(isinstance(v, int) for v in values):
        raise ValueError(f"colour {value!r} must be integers 0..255")
    return values


DEFAULT_SCHEMA = ClassSchema(
    (
        HealthClass(0, "background", "background/nodata", (0, 0, 0, 0)),
        HealthClass(1, "healthy", "healthy", (26, 150, 65, 255), "healthy"),
        HealthClass(2, "stressed", "stressed", (253, 174, 97, 255), "stressed"),
        HealthClass(3, "anomaly", "anomaly – scout here", (215, 25, 28, 255), "anomaly"),
        HealthClass(4, "bare_soil", "bare soil", (140, 81, 10, 255), "bare"),
    )
)
"""0 background (transparent), 1 healthy (green), 2 stressed (orange), 3 anomaly – scout here
(red), 4 bare soil (brown)."""

#: The classes :func:`agrivision.health.classify` assigns, in the order of its rule codes.
HEALTH_CLASSES = ("healthy", "stressed", "anomaly", "bare_soil")
#: The classes that make problem polygons and count as the field's problem area.
PROBLEM_CLASSES = ("stressed", "anomaly")
