"""The field table's settings: which column is the crop, support rules, trajectories.

Owned here because :mod:`agrivision.fields.table`, :mod:`~agrivision.fields.peers` and
:mod:`~agrivision.fields.timeseries` read them; the report config
(:class:`agrivision.report.config.ReportConfig`) has these sections under the same names.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import Field

from agrivision.config import Section


class FieldsConfig(Section):
    """How field boundaries are read."""

    layer: str | None = None
    id_column: str | None = None
    # Column of each field's crop (peer groups); None: a known crop column when there is one
    # (agrivision.io.fields.CROP_COLUMNS), else every field is compared with all fields.
    crop_column: str | None = None


class ProblemsConfig(Section):
    """Problem polygons (stressed and anomaly areas), hotspots and the per-field status.

    Support rules (a verdict needs evidence):

    ``min_pixels`` (default 30)
        Fewest usable pixels (in the scene, cloud-free and classified: interior pixels, as
        edge pixels get no class with ``health.edge: exclude``) a field needs for any
        classes-derived verdict: z-scores and so anomalies, hotspots, management zones and a
        status other than ``insufficient data``. The robust
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


class TimeSeriesConfig(Section):
    """Trajectories and the ``declining`` flag."""

    index: str = "NDVI"
    # Decline of a field's index relative to the median change of its peer group.
    decline_threshold: float = Field(default=0.05, ge=0)
    min_valid_fraction: float = Field(default=0.5, ge=0, le=1)
    # A date whose field mean lies this far below both clear neighbours is cloud-suspect.
    cloud_dip: float = Field(default=0.15, gt=0)


class FieldTableConfig(Section):
    """The sections :func:`agrivision.fields.table.field_table` reads (all defaults)."""

    fields: FieldsConfig = FieldsConfig()
    problems: ProblemsConfig = ProblemsConfig()
    timeseries: TimeSeriesConfig = TimeSeriesConfig()


class FieldTableSettings(Protocol):
    """Any config with the field table's sections (a :class:`FieldTableConfig`, a report's)."""

    @property
    def fields(self) -> FieldsConfig: ...

    @property
    def problems(self) -> ProblemsConfig: ...

    @property
    def timeseries(self) -> TimeSeriesConfig: ...
