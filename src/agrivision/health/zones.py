"""Management zones: a few contiguous zones per field, from one date or a season, as polygons.

Every field is zoned on its own window of pixels (:func:`~agrivision.fields.windows.field_windows`),
so the result depends on the field's pixels only, never on the dask chunks:

1. **Values.** One date: the index. A season (a ``time`` dimension): each usable date's
   index divided by the field's median that date, averaged per pixel over the usable dates
   (a *productivity* map: 1.1 = 10 % above the field's typical value). A date is usable for
   a field when at least ``min_valid_fraction`` of its pixels are valid and, if ``usable``
   names dates, it is one of them (the report passes the clear, not cloud-suspect dates).
2. **Classes** from the field's own distribution (:mod:`~agrivision.health.zone_classes`):
   ``n`` fixed, or ``"auto"``: every n in 2..6 is zoned and the smallest one after which one
   more zone explains less than ``min_gain`` of the field's variance is kept.
3. **Contiguity** (:mod:`~agrivision.health.zone_cleaning`): majority filter, nearest zone for
   edge pixels and small gaps, patches below ``min_area_ha`` merged into a neighbour.
4. **Polygons** of the zone patches, clipped to the field: the zone areas of a field sum to
   its area (less any masked gap of at least ``min_area_ha``, which stays unzoned).

Fields with fewer than ``min_pixels`` valid pixels get no zones: their classes would be noise
(see :class:`agrivision.fields.config.ProblemsConfig` for the default).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import shapely
import xarray as xr

from agrivision.errors import ConfigError, GridError
from agrivision.fields.config import ProblemsConfig, TimeSeriesConfig
from agrivision.fields.prepare import prepare_fields
from agrivision.fields.windows import FieldWindow, field_windows
from agrivision.grid import grid_of, metres_per_unit
from agrivision.health._perfield import pixel_area_ha
from agrivision.health.zone_classes import (
    METHODS,
    Method,
    choose_n,
    class_breaks,
    classify_values,
    variance_reduction,
)
from agrivision.health.zone_cleaning import GapFill, clean_zones, merge_small_parts
from agrivision.io.fields import area_ha, geodesic_ratio

#: Candidates of ``n="auto"``: two zones at least; more than six no spreader can follow.
AUTO_N = range(2, 7)
#: Default minimum zone area (ha): 50 m x 50 m, two passes of a 24 m spreader or sprayer
#: over the 50 m a rate controller needs to settle; smaller zones cannot be applied.
MIN_ZONE_HA = 0.25
#: Default gain of ``n="auto"``: one more zone must explain 5 % more of the field's variance.
MIN_GAIN = 0.05
#: Default minimum zone area as a share of the field: a patch under 5 % of a field changes
#: its total product by under 5 % of the step between two rates, not worth a rate change
#: (and a 50 ha field then has a handful of patches, not dozens of 0.25 ha ones).
MIN_SHARE = 0.05
#: Default smallest difference of ``n="auto"`` between the mean index of two zones (index
#: units; season zones: ratio to the field median): below it zones split noise, e.g.
#: Sentinel-2 NDVI varies by about 0.02 between neighbouring pixels of a uniform canopy.
MIN_STEP = 0.02
#: Per-field quality columns, in the zones output and the report's field table.
QUALITY = ("zones_n", "zones_polygons", "zones_variance_reduction")


@dataclass(frozen=True)
class ZoneRules:
    """How zones are made (see the module docstring for each step)."""

    n: int | Literal["auto"] = "auto"
    method: Method = "quantile"
    min_area_ha: float = MIN_ZONE_HA
    smooth: int = 3
    min_pixels: int = ProblemsConfig().min_pixels
    min_gain: float = MIN_GAIN
    min_share: float = MIN_SHARE
    min_step: float = MIN_STEP
    min_valid_fraction: float = TimeSeriesConfig().min_valid_fraction

    def check(self) -> None:
        """Raise ConfigError for impossible settings."""
        n_ok = self.n == "auto" or (isinstance(self.n, int) and 2 <= self.n <= 254)
        if not (
            n_ok
            and self.method in METHODS
            and self.smooth >= 0
            and self.min_area_ha >= 0
            and 0 <= self.min_gain <= 1
            and 0 <= self.min_share < 1
            and self.min_step >= 0
        ):
            raise ConfigError(
                f"invalid zones settings n={self.n!r}, method={self.method!r}, "
                f"smooth={self.smooth}, min_area_ha={self.min_area_ha}, min_gain={self.min_gain}",
                source="zones",
                fix="n in 2..254 or 'auto', method 'quantile' or 'kmeans', smooth >= 0, "
                "min_area_ha >= 0, min_gain in 0..1",
            )


def zones(
    index: xr.DataArray,
    fields: gpd.GeoDataFrame,
    *,
    usable: pd.DataFrame | None = None,
    **rules,
) -> gpd.GeoDataFrame:
    """Management-zone polygons per field.

    Parameters
    ----------
    index
        ``(y, x)`` index raster of one date, or ``(time, y, x)`` for season zones; lazy,
        projected CRS (metres). NaN where masked.
    fields
        Field polygons with a unique ``field_id`` (any CRS; reprojected to the raster's).
    usable
        Season zones only: ``field_id, date`` rows naming the dates each field may use
        (e.g. its clear dates); default every date with enough valid pixels.
    **rules
        The fields of :class:`ZoneRules`: ``n`` (2..254 or ``"auto"``; zone 1 has the
        lowest values), ``method`` (``"quantile"``, ``"kmeans"``), ``min_area_ha`` (minimum
        zone area, ha), ``smooth`` (majority window, pixels), ``min_pixels``, ``min_gain``
        (of ``"auto"``), ``min_valid_fraction`` (of a season date).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per connected zone polygon, fields in input order: ``field_id``, ``zone``,
        ``mean_<index>`` (one date: mean index of the zone's valid pixels) or
        ``relative_<index>`` (season: mean ratio to the field's median), ``area_ha``
        (geodesic), ``zones_n``, ``zones_polygons``, ``zones_variance_reduction`` (of the
        field), ``geometry`` in the raster's CRS.
    """
    batches = ZoneBatches(index, fields, usable=usable, **rules)
    parts = list(batches)
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    order = {fid: k for k, fid in enumerate(fields["field_id"])}
    out = out.sort_values("field_id", kind="stable", key=lambda s: s.map(order))
    return gpd.GeoDataFrame(out.reset_index(drop=True), crs=out.crs)


class ZoneBatches:
    """:func:`zones` handed over in batches of fields (one per chunk row), top to bottom.

    Iterate once to get the polygons (GeoDataFrames with the columns of :func:`zones`,
    fields in input order within a batch); :attr:`quality` then holds one row per zoned
    field: ``field_id`` and the :data:`QUALITY` columns. Parameters are those of
    :func:`zones`.
    """

    def __init__(
        self,
        index: xr.DataArray,
        fields: gpd.GeoDataFrame,
        *,
        usable: pd.DataFrame | None = None,
        **rules,
    ) -> None:
        self.rules = ZoneRules(**rules)
        self.rules.check()
        if tuple(index.dims) not in (("y", "x"), ("time", "y", "x")):
            raise GridError(
                f"zones need a (y, x) or (time, y, x) index, got dims {index.dims}",
                source=str(index.name), fix="select a date (.isel(time=-1)) or transpose",
            )  # fmt: skip
        self.index = index
        self.fields = prepare_fields(fields, index.rio.crs)
        name = str(index.name or "index")
        self.value_column = f"relative_{name}" if index.ndim == 3 else f"mean_{name}"
        self.min_pixels_zone = max(
            1, math.ceil(self.rules.min_area_ha / pixel_area_ha(index) - 1e-9)
        )
        self.dates = _usable_dates(index, usable)
        # with ``usable`` given, a field it does not name has no usable date
        self._no_dates = None if usable is None else np.zeros(index.shape[0], bool)
        self.quality = pd.DataFrame(columns=["field_id", *QUALITY])
        self._crs = self.fields.crs
        self._ratio = geodesic_ratio(self.fields)
        grid = grid_of(index)
        self._pixel_area = abs(grid.affine.a * grid.affine.e)  # CRS units squared
        self._metres = metres_per_unit(grid) or np.nan  # geographic: exact areas below

    def __iter__(self) -> Iterator[gpd.GeoDataFrame]:
        quality = []
        found = 0
        env = rasterio.Env()  # one GDAL environment, not one per polygonised field
        for batch in field_windows(self.index, self.fields):
            with env:
                rows = [self._field(w) for w in batch]
            rows = [r for r in rows if r is not None]
            quality += [r[1] for r in rows]
            frame = self._frame([r[0] for r in rows])
            found += len(frame)
            if len(frame):
                yield frame
        self.quality = pd.DataFrame(quality, columns=["field_id", *QUALITY])
        if not found:
            warnings.warn(
                f"zones: no field has {self.rules.min_pixels} valid pixels to zone; "
                "the output is empty",
                UserWarning, stacklevel=2,
            )  # fmt: skip
            yield self._frame([])

    def _field(self, win: FieldWindow):
        """One field's polygons (a table) and its quality row, or None without support."""
        rules = self.rules
        values = win.values
        if values.ndim == 3:
            values = _season(
                values, win.inside, self.dates.get(win.field_id, self._no_dates), rules
            )
        valid = win.inside & np.isfinite(values)
        if valid.sum() < rules.min_pixels:
            return None
        v = values[valid].astype(np.float64)
        min_pixels = max(self.min_pixels_zone, math.ceil(rules.min_share * win.touched.sum()))
        fill = GapFill(valid, win.inside, win.touched, min_pixels)
        auto = rules.n == "auto"
        tried = list(AUTO_N) if rules.n == "auto" else [int(rules.n)]
        # one zone: what a uniform field gets when even two zones would split noise
        made = {1: (fill(valid.astype(np.uint8)), 0.0)}
        chosen = 1
        for n in tried:
            zone = np.zeros(valid.shape, np.uint8)
            zone[valid] = classify_values(v, class_breaks(v, n, rules.method))
            zone = clean_zones(zone, fill, smooth=rules.smooth, min_pixels=min_pixels)
            if auto and _closest_means(v, zone[valid]) < rules.min_step:
                break  # zones this close are noise, not management units
            made[n] = (zone, variance_reduction(v, zone[valid]))
            chosen = choose_n({k: r for k, (_, r) in made.items() if k > 1}, rules.min_gain)
            if chosen < n:  # one more zone did not pay: more zones need not be tried
                break
        zone, reduction = made[chosen]
        codes = zone[valid]
        means = np.bincount(codes, v) / np.maximum(np.bincount(codes), 1)
        geoms, zone_of = _polygons(zone, win, min_pixels * self._pixel_area)
        planar = shapely.area(geoms) * self._metres**2
        ratio = self._ratio[win.position]
        areas = planar / 1e4 * ratio if np.isfinite(ratio) else (
            area_ha(gpd.GeoSeries(geoms, crs=self._crs)).to_numpy()
        )  # fmt: skip
        n_zones, n_polys = len(np.unique(zone_of)), len(geoms)
        columns = {
            "field_id": np.full(n_polys, win.field_id, dtype=object),
            "zone": zone_of.astype(np.int32),
            self.value_column: means[zone_of],
            "area_ha": areas,
            "zones_n": np.full(n_polys, n_zones),
            "zones_polygons": np.full(n_polys, n_polys),
            "zones_variance_reduction": np.full(n_polys, reduction),
            "geometry": geoms,
        }
        return (win.position, columns), (win.field_id, n_zones, n_polys, reduction)

    def _frame(self, parts: list) -> gpd.GeoDataFrame:
        columns = ["field_id", "zone", self.value_column, "area_ha", *QUALITY, "geometry"]
        parts = [c for _, c in sorted(parts, key=lambda p: p[0])]
        data = {k: np.concatenate([p[k] for p in parts]) if parts else np.empty(0) for k in columns}
        table = pd.DataFrame({k: v for k, v in data.items() if k != "geometry"})
        table = table.astype({"field_id": self.fields["field_id"].dtype}, errors="ignore")
        return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(data["geometry"], crs=self._crs))


def _polygons(zone: np.ndarray, win: FieldWindow, min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Zone patches as polygons in the raster CRS, clipped to the field, one per part."""
    # Without a mask (a second in-memory dataset per call, which costs more than the
    # polygons of zone 0 it would skip).
    shapes = rasterio.features.shapes(zone, connectivity=4, transform=win.transform)
    found = [(_polygon(g["coordinates"]), int(k)) for g, k in shapes if k > 0]
    if not found:
        return np.empty(0, object), np.empty(0, np.int64)
    geoms = shapely.intersection(np.array([g for g, _ in found]), win.geometry)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    # Clipping can leave lines and points where a patch only touches the border.
    pixel = abs(win.transform.a * win.transform.e)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1e-6 * pixel)
    codes = np.array([k for _, k in found])[owner[keep]]
    parts, codes = merge_small_parts(parts[keep], codes, min_area)
    order = np.lexsort((-shapely.bounds(parts)[:, 3], codes)) if len(parts) else np.empty(0, int)
    return parts[order], codes[order]


def _closest_means(values: np.ndarray, zones: np.ndarray) -> float:
    """Smallest difference between the mean values of two zones present (inf with one)."""
    count = np.bincount(zones)
    present = count > 0
    means = np.bincount(zones, values)[present] / count[present]
    return float(np.diff(np.sort(means)).min()) if len(means) > 1 else np.inf


def _polygon(rings: list) -> shapely.Polygon:
    """A GeoJSON polygon's rings as a shapely Polygon (faster than ``shapely.geometry.shape``)."""
    shell, *holes = (shapely.linearrings(np.asarray(r, dtype=np.float64)) for r in rings)
    return shapely.polygons(shell, holes=holes or None)


def _usable_dates(index: xr.DataArray, usable: pd.DataFrame | None) -> dict:
    """field_id -> boolean mask of the index's dates that field may use (empty: all)."""
    if usable is None or index.ndim != 3:
        return {}
    times = pd.to_datetime(index[index.dims[0]].values).normalize()
    dates = pd.to_datetime(usable["date"]).dt.normalize()
    out: dict = {}
    for fid, group in dates.groupby(usable["field_id"].to_numpy()):
        out[fid] = times.isin(group.to_numpy())
    return out


def _season(values: np.ndarray, inside: np.ndarray, allowed, rules: ZoneRules) -> np.ndarray:
    """Mean over usable dates of each pixel's index divided by the field's median that date."""
    n_inside = max(int(inside.sum()), 1)
    total = np.zeros(values.shape[1:], np.float64)
    count = np.zeros(values.shape[1:], np.int32)
    for t in range(values.shape[0]):
        if allowed is not None and not allowed[t]:
            continue
        day = values[t].astype(np.float64)
        ok = inside & np.isfinite(day)
        if ok.sum() < rules.min_valid_fraction * n_inside or not ok.any():
            continue
        median = float(np.median(day[ok]))
        if not median > 0:  # bare soil or water: no productivity to compare with
            continue
        total[ok] += day[ok] / median
        count[ok] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def with_zone_quality(table: pd.DataFrame, quality: pd.DataFrame) -> pd.DataFrame:
    """The field table with the :data:`QUALITY` columns of :attr:`ZoneBatches.quality`.

    Fields without zones get ``zones_n = zones_polygons = 0`` and no variance reduction.
    """
    by_id = quality.set_index("field_id").reindex(table["field_id"].to_numpy())
    out = table.copy()
    for column in QUALITY:
        out[column] = by_id[column].to_numpy()
    out["zones_n"] = out["zones_n"].fillna(0).astype(np.int64)
    out["zones_polygons"] = out["zones_polygons"].fillna(0).astype(np.int64)
    out["zones_variance_reduction"] = out["zones_variance_reduction"].astype(np.float64)
    return out
