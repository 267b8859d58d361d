"""Run configurations: safe YAML loading and validation with messages that name the key.

YAML is read with a loader that builds only plain data (no Python object tags) and refuses
alias bombs (more than :data:`MAX_ALIASES` alias uses).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agrivision.errors import ConfigError

MAX_ALIASES = 16
MAX_CONFIG_BYTES = 1_000_000


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases: a billion-laughs document fails fast."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} YAML aliases")
        return super().compose_node(parent, index)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping safely.

    Raises
    ------
    ConfigError
        Unreadable, too large, not a mapping, Python tags, or too many aliases.
    """
    p = Path(path)
    try:
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError("config file is larger than 1 MB", source=p)
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("config file not found", source=p, fix="check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config ({exc})", source=p) from exc
    try:
        data = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"invalid YAML ({str(exc).splitlines()[0]})",
            source=p,
            fix="plain YAML only: no Python tags, at most 16 aliases",
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("a config must be a YAML mapping (key: value)", source=p)
    return data


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SceneConfig(_Section):
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


class FieldsConfig(_Section):
    """How field boundaries are read."""

    layer: str | None = None
    id_column: str | None = None
    # Column of each field's crop (peer groups); None: a known crop column when there is one
    # (agrivision.io.fields.CROP_COLUMNS), else every field is compared with all fields.
    crop_column: str | None = None


class ZonesConfig(_Section):
    """Management zones per field."""

    n: int = Field(default=3, ge=2, le=10)
    method: Literal["quantile", "kmeans"] = "quantile"
    index: str = "NDVI"
    smooth: int = Field(default=0, ge=0, le=25)


class ProblemsConfig(_Section):
    """Problem polygons (stressed and anomaly areas), hotspots and the per-field status.

    Support rules (a verdict needs evidence):

    ``min_pixels`` (default 30)
        Fewest usable pixels (in the scene, cloud-free and classified: interior pixels, as
        edge pixels get no class with ``health.edge: exclude``) a field needs for any classes-derived verdict: z-scores and so anomalies,
        hotspots, management zones and a status other than ``insufficient data``. The robust
        z of a pixel is judged against its field's median and MAD; estimated from n pixels
        of a uniform normal field they are off by 1.25/sqrt(n) and 1.17/sqrt(n) standard
        deviations, which inflates the false-anomaly rate of ``z < -3`` (0.13 % with exact
        statistics) to 1.4 % per pixel at n = 10 (a 0.1 ha parcel at 10 m: more than the
        1 % hotspot share), 0.7 % at 20 and 0.5 % at 30 (simulated). 30 pixels is 0.3 ha at
        Sentinel-2's 10 m, 2.7 ha at Landsat's 30 m and 3 cm² at 1 cm: at drone resolution
        neighbouring pixels see the same plant and are not independent samples, so drone
        configs raise it to cover several plants (``config/drone-micasense.yaml``).
    ``hotspot_min_ha`` (default 0.05)
        A hotspot is an anomaly *patch*: a connected area (4-connected, i.e. one polygon of
        ``problems.geojson``) of at least this many hectares, in a field whose anomaly share
        is at least ``hotspot_pct``. 0.05 ha is five 10 m pixels (about 22 m across, twice
        Sentinel-2's geolocation error, so the patch is there when the farmer walks to it);
        isolated anomaly pixels, however many, are noise or mixed pixels, not a place to go.
    """

    min_area_ha: float = Field(default=0.01, ge=0)
    simplify_m: float | None = Field(default=None, ge=0)
    min_pixels: int = Field(default=30, ge=1)
    hotspot_min_ha: float = Field(default=0.05, ge=0)
    hotspot_pct: float = Field(default=1.0, ge=0, le=100)
    watch_pct: float = Field(default=10.0, ge=0, le=100)
    problem_pct: float = Field(default=30.0, ge=0, le=100)
    # A field whose index mean lies this many robust SDs below its crop's fields is "watch"
    # (uniform stress, failed emergence, a wrong crop declared); only within a crop group.
    peer_watch_z: float = Field(default=-3.0, le=0)


class TimeSeriesConfig(_Section):
    """Trajectories and the ``declining`` flag."""

    index: str = "NDVI"
    # Decline of a field's index relative to the median change of its peer group.
    decline_threshold: float = Field(default=0.05, ge=0)
    min_valid_fraction: float = Field(default=0.5, ge=0, le=1)
    # A date whose field mean lies this far below both clear neighbours is cloud-suspect.
    cloud_dip: float = Field(default=0.15, gt=0)


class OutputConfig(_Section):
    """What is written and how."""

    precision: int = Field(default=7, ge=0, le=15)
    max_cards: int = Field(default=60, ge=0)
    max_field_pixels: int = Field(default=4_000_000, ge=1000)


class RuntimeConfig(_Section):
    """Where the dask graph runs."""

    scheduler: str | None = None
    workers: int | None = Field(default=None, ge=1)


class ReportConfig(_Section):
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
    # (see agrivision.health.model_classes).
    model_classes: dict[str, str] = Field(default_factory=dict)


def validate(model: type[BaseModel], data: dict[str, Any], source: str | os.PathLike | None):
    """Validate ``data`` against ``model``; the error names the key and what is allowed."""
    try:
        return model(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent = model
            for part in err["loc"][:-1]:
                field = parent.model_fields.get(str(part))
                parent = field.annotation if field is not None else parent
            allowed = ", ".join(getattr(parent, "model_fields", {}))
            raise ConfigError(
                f"unknown key {key!r}", source=source, fix=f"allowed: {allowed}"
            ) from exc
        raise ConfigError(f"{key}: {err['msg']}", source=source) from exc


def load_report_config(
    path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None
) -> ReportConfig:
    """Load a report config file (or the defaults) and apply command-line overrides.

    ``overrides`` uses dotted keys (``{"zones.n": 4}``); None values are ignored.
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
        from agrivision.health.model_classes import check_mapping

        try:
            check_mapping(config.model_classes)
        except ConfigError as exc:
            raise ConfigError(exc.problem, source=path, fix=exc.fix) from None
    return config
