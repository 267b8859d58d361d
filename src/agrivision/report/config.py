"""The report's config: every section of ``agrivision report --config FILE``.

The field table's sections (``fields``, ``problems``, ``timeseries``) are owned by
:mod:`agrivision.fields.config` and re-exported here; the health rules and the model-class
mapping are checked by their owners when the file is loaded, so a bad value is named after
the file before the run starts.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Literal

from pydantic import Field, field_validator

from agrivision.config import Section, load_yaml, validate
from agrivision.errors import ConfigError
from agrivision.fields.config import FieldsConfig, ProblemsConfig, TimeSeriesConfig

__all__ = [
    "FieldsConfig",
    "OutputConfig",
    "ProblemsConfig",
    "ReportConfig",
    "RuntimeConfig",
    "SceneConfig",
    "TimeSeriesConfig",
    "ZonesConfig",
    "load_report_config",
]


class SceneConfig(Section):
    """How imagery is opened (see :func:`agrivision.open_scene`)."""

    sensor: str | None = None
    bands: list[str] | None = None
    resolution: float | None = Field(default=None, gt=0)
    crs: str | None = None
    chunks: int = Field(default=1024, ge=64, le=16384)
    #: ``auto`` (quality band, else the sensor's detector), a forced method, or ``off``;
    #: true/false mean auto/off (see :mod:`agrivision.masks.auto`).
    mask: Literal["auto", "quality", "s2cloudless", "spectral", "off"] = "auto"
    mask_exclude: list[str] | None = None
    cloud_probability_threshold: float = Field(default=0.4, ge=0, le=1)

    @field_validator("mask", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return {True: "auto", False: "off"}.get(value, value) if isinstance(value, bool) else value


class ZonesConfig(Section):
    """Management zones per field (see :mod:`agrivision.health.zones`)."""

    #: Zones per field, or ``auto``: 2..6 chosen per field by variance reduction.
    n: int | str = "auto"
    method: Literal["quantile", "kmeans"] = "quantile"
    index: str = "NDVI"
    #: Majority-filter window (pixels), applied twice; 0 or 1: none.
    smooth: int = Field(default=3, ge=0, le=25)
    #: Minimum zone area (ha); smaller patches merge into a neighbour.
    min_area_ha: float = Field(default=0.25, ge=0)
    #: ... and at least this share of the field (0..1).
    min_share: float = Field(default=0.05, ge=0, lt=1)
    #: Working width of the machine (m): when set, the minimum zone area is its square.
    working_width_m: float | None = Field(default=None, gt=0)
    #: ``n: auto``: one more zone must explain this much more of the field's variance.
    min_gain: float = Field(default=0.05, ge=0, le=1)
    #: ``n: auto``: zones whose mean index differs by less are noise (index units).
    min_step: float = Field(default=0.02, ge=0)
    #: Season (productivity) zones from every clear date instead of the last date.
    season: bool = False
    start: dt.date | None = None
    end: dt.date | None = None

    @field_validator("n")
    @classmethod
    def _zone_count(cls, value: int | str) -> int | str:
        if value == "auto" or (isinstance(value, int) and 2 <= value <= 10):
            return value
        raise ValueError("must be a number of zones in 2..10, or 'auto'")

    def rules(self) -> dict[str, Any]:
        """Keyword arguments of :func:`agrivision.health.zones` (the minimum area resolved)."""
        width = self.working_width_m
        return {
            "n": self.n, "method": self.method, "smooth": self.smooth,
            "min_area_ha": width * width / 1e4 if width else self.min_area_ha,
            "min_share": self.min_share, "min_gain": self.min_gain, "min_step": self.min_step,
        }  # fmt: skip


class OutputConfig(Section):
    """What is written and how."""

    precision: int = Field(default=7, ge=0, le=15)
    max_cards: int = Field(default=60, ge=0)
    max_field_pixels: int = Field(default=4_000_000, ge=1000)
    #: Basemap of the report map: an XYZ tile URL (``https://.../{z}/{x}/{y}.png``). None:
    #: no basemap, and the page makes no network request.
    map_tiles: str | None = Field(default=None, pattern=r"^https?://.*\{z\}.*\{x\}.*\{y\}")
    #: With a model: its class shares also per square cell of this edge (metres, on a grid
    #: anchored at the scene CRS's origin) inside each field: ``cells.geojson``, layer
    #: ``cells``. None: per field only.
    grid_cell_m: float | None = Field(default=None, gt=0)
    #: With a model: how its class shares (``<class>_pct``, percent of the valid pixels of a
    #: field or cell, 0..100) are counted. ``classes``: the share of pixels whose most
    #: probable class it is (the shares of the drawn class map). ``probabilities``: the
    #: expected share, the mean of the class's probability over the pixels: a plant the
    #: model is unsure of counts partly for each class instead of wholly for the likelier
    #: one (3 bytes more per pixel kept in memory). On CWFID's validation blocks (144 of up
    #: to 256 x 256 pixels, six trained models) the weed share's RMS error fell 3-11 % (1.27-
    #: 1.43 points) for every model, and the worst of 64 test cells of 0.4 m went from
    #: 2.3-5.8 to 2.4-4.9 points; see the README, "Weed pressure from drone imagery".
    model_shares: Literal["classes", "probabilities"] = "classes"
    #: With a model: its classes drawn as patch polygons (``patches.geojson``, layer
    #: ``patches``). None: the classes named weed or weeds.
    patch_classes: list[str] | None = None
    #: Patches smaller than this (m^2) are not drawn (0.01 m^2: a 10 cm square).
    patch_min_area_m2: float = Field(default=0.01, ge=0)


class RuntimeConfig(Section):
    """Where the dask graph runs."""

    scheduler: str | None = None
    workers: int | None = Field(default=None, ge=1)


class ReportConfig(Section):
    """Everything ``agrivision report`` needs besides sources and fields."""

    # None: NDVI, plus NDRE when the scene has a red-edge band; named indices are required.
    indices: list[str] | None = None
    scene: SceneConfig = SceneConfig()
    fields: FieldsConfig = FieldsConfig()
    health: dict[str, Any] = Field(default_factory=dict)
    problems: ProblemsConfig = ProblemsConfig()
    zones: ZonesConfig = ZonesConfig()
    timeseries: TimeSeriesConfig = TimeSeriesConfig()
    output: OutputConfig = OutputConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    # U-Net checkpoint folder: the health classes then come from it instead of the rules.
    model: str | None = None
    # Checkpoint class -> report class, for class names the built-in rules do not know
    # (see agrivision.segment.model_classes).
    model_classes: dict[str, str] = Field(default_factory=dict)


def load_report_config(
    path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None
) -> ReportConfig:
    """Load a report config file (or the defaults) and apply command-line overrides.

    Parameters
    ----------
    path
        YAML file (see ``config/*.yaml``); None: the defaults.
    overrides
        Dotted keys (``{"zones.n": 4}``); None values are ignored.

    Raises
    ------
    ConfigError
        Unknown keys, impossible values, health rules or model classes that do not check.
    """
    data = load_yaml(path) if path is not None else {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{part!r} must be a mapping", source=path)
        node[leaf] = value
    config = validate(ReportConfig, data, path)
    if config.health:  # checked now, not mid-run, and named after the file
        from agrivision.health import HealthRules

        try:
            HealthRules(**config.health)
        except ConfigError as exc:
            raise ConfigError(f"health.{exc.problem}", source=path, fix=exc.fix) from None
    if config.model_classes:
        from agrivision.segment.model_classes import check_mapping

        try:
            check_mapping(config.model_classes)
        except ConfigError as exc:
            raise ConfigError(exc.problem, source=path, fix=exc.fix) from None
    return config
