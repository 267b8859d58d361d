"""Management zones: a few contiguous zones per field, from one date or a season, as polygons.

Every field is zoned on its own window of pixels, so the result depends on the field's
pixels only, never on the dask chunks or on its neighbours. The fields that end in one chunk
row (:func:`~agrivision.fields.windows.field_bands`) have their windows packed side by side on
one canvas (:func:`~agrivision.fields.windows.pack_windows`), and each step below runs once
over the canvas for all of them:

1. **Values.** One date: the index. A season (a ``time`` dimension): each usable date's
   index divided by the field's median that date, averaged per pixel over the usable dates
   (a *productivity* map: 1.1 = 10 % above the field's typical value). A date is usable for
   a field when at least ``min_valid_fraction`` of its pixels are valid and, if ``usable``
   names dates, it is one of them (the report passes the clear, not cloud-suspect dates).
2. **Classes** from the field's own distribution (:mod:`~agrivision.health.zone_classes`):
   ``n`` fixed, or ``"auto"``: n = 2, 3, ... up to 6 is zoned and cleaned for the fields
   still undecided, and each keeps the smallest n after which one more clean zone explains
   less than ``min_gain`` of its variance (or whose zones' means would differ by less than
   ``min_step``: noise).
3. **Contiguity** (:mod:`~agrivision.health.zone_cleaning`): majority filter, nearest zone for
   edge pixels and small gaps, patches below ``min_area_ha`` merged into a neighbour.
4. **Polygons** of the zone patches (one polygonize of the canvas; a field of one zone
   inside the raster is its own polygon), clipped to the field: the zone areas of a field
   sum to its area (less any masked gap of at least ``min_area_ha``, which stays unzoned).
   Zones are numbered ``1..zones_n`` in each field, 1 = lowest values.

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
import shapely
import xarray as xr
from affine import Affine

from agrivision.errors import ConfigError, GridError
from agrivision.fields.config import ProblemsConfig, TimeSeriesConfig
from agrivision.fields.prepare import prepare_fields
from agrivision.fields.trace import label_polygons
from agrivision.fields.windows import (
    FieldBand,
    Gathered,
    PackedWindows,
    field_bands,
    pack_windows,
)
from agrivision.grid import grid_of, metres_per_unit
from agrivision.health._perfield import pixel_area_ha
from agrivision.health.zone_classes import (
    METHODS,
    FieldHistograms,
    Method,
    bin_classes,
    class_breaks,
    zone_stats,
)
from agrivision.health.zone_cleaning import fill_plan, majority, merge_small_parts, sieve
from agrivision.health.zone_kernels import copy_fields, fill_nearest, zone_codes
from agrivision.io.fields import area_ha, geodesic_ratio
from agrivision.runtime.threads import in_order

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
#: Most pixels of field windows on one canvas: about 80 bytes each in all, THREADS canvases at once.
CANVAS_PIXELS = 2**20
#: Canvases zoned at once, each on its own thread (the kernels release the GIL).
THREADS = 2
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
        extent = shapely.box(*index.rio.bounds())
        self._within = shapely.within(self.fields.geometry.to_numpy(), extent)

    def __iter__(self) -> Iterator[gpd.GeoDataFrame]:
        quality = []
        found = 0
        groups = (
            g for band in field_bands(self.index, self.fields) for g in band.split(CANVAS_PIXELS)
        )
        for frame, rows in in_order(self._group, groups, THREADS):
            quality += rows
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
            yield self._frame({})

    def _group(self, band: FieldBand) -> tuple[gpd.GeoDataFrame, list]:
        with rasterio.Env():  # one GDAL environment per group, on its own thread
            return self._band(band)

    def _band(self, band: FieldBand) -> tuple[gpd.GeoDataFrame, list]:
        """The zone polygons (a table) and quality rows of the fields of one band."""
        rules = self.rules
        m = len(band.positions)
        packed = pack_windows(band)  # every field on its own window, all in one array
        owner, inside, values = packed.owner, packed.inside, packed.values
        if values.ndim == 3:
            allowed = None
            if self._no_dates is not None:
                allowed = np.array([self.dates.get(f, self._no_dates) for f in band.field_ids])
            values = _season(values, np.where(inside, owner, 0), allowed, m, rules)
        valid = inside & np.isfinite(values)
        supported = np.bincount(owner[valid], minlength=m + 1) >= rules.min_pixels
        supported[0] = False
        if not supported[1:].all():
            owner = np.where(supported[owner], owner, 0).astype(np.int32)
            inside &= owner > 0
            valid &= owner > 0
        zoned = np.flatnonzero(supported)  # owners of the fields that get zones
        if not len(zoned):
            return self._frame({}), []
        touched = np.bincount(owner.ravel(), minlength=m + 1)
        min_pixels = np.maximum(self.min_pixels_zone, np.ceil(rules.min_share * touched))
        min_pixels = min_pixels.astype(np.int64)
        sel = np.flatnonzero(valid.ravel())
        field = owner.ravel()[sel]
        v = values.ravel()[sel].astype(np.float64)
        plan = fill_plan(owner, inside, valid, min_pixels)
        zone, made = self._zones(packed, owner, plan, sel, v, zoned, min_pixels)
        final = zone.ravel()[sel]
        reduction = np.zeros(m + 1)
        reduction[zoned] = made
        group = field.astype(np.int64) * 256 + final
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.bincount(group, v, 256 * (m + 1)) / np.bincount(group, None, 256 * (m + 1))
        geoms, codes = self._polygons(band, packed, owner, zone, min_pixels)
        owners = codes // 256
        # zones numbered 1..k per field, as they rank (zone 1 = lowest values)
        present, rank = np.unique(codes, return_inverse=True)
        first = np.r_[True, present[1:] // 256 != present[:-1] // 256]
        number = (
            np.arange(len(present))
            - np.maximum.accumulate(np.where(first, np.arange(len(present)), 0))
            + 1
        )
        n_zones = np.zeros(m + 1, np.int64)
        np.maximum.at(n_zones, present // 256, number)
        n_polys = np.bincount(owners, minlength=m + 1)
        columns = {
            "field_id": band.field_ids[owners - 1],
            "zone": number[rank].astype(np.int32),
            self.value_column: means[codes],
            "area_ha": self._areas(geoms, band.positions[owners - 1]),
            "zones_n": n_zones[owners],
            "zones_polygons": n_polys[owners],
            "zones_variance_reduction": reduction[owners],
            "geometry": geoms,
        }
        rows = [
            (band.field_ids[k - 1], int(n_zones[k]), int(n_polys[k]), float(reduction[k]))
            for k in zoned
            if n_polys[k]
        ]
        return self._frame(columns), rows

    def _zones(
        self, packed, owner, plan, sel, v, zoned, min_pixels
    ) -> tuple[np.ndarray, np.ndarray]:
        """The clean zones (``uint8`` canvas) of the fields ``zoned`` (owners), ``n`` fixed or
        chosen, and the variance reduction of each field's zones.

        ``plan`` are the pixels that take the nearest zone (:func:`fill_plan`), ``sel`` the
        valid pixels (flat indices), ``v`` their values. ``"auto"`` tries n = 2, 3, ... on
        the fields still undecided and keeps, per field, the smallest n after which one
        more clean zone explains less than ``min_gain`` of the variance; each n after the
        first works on the windows of the undecided fields only (:meth:`PackedWindows.gather`).
        """
        rules = self.rules
        auto = rules.n == "auto"
        row_of = np.full(len(min_pixels), -1, np.int32)  # owner 0 -> the last: padding
        row_of[zoned] = np.arange(len(zoned))
        row = row_of[owner.ravel()[sel]]  # 0..len(zoned) - 1
        hist = FieldHistograms.of(v, row, len(zoned))
        # one zone: what a uniform field gets when even two zones would split noise
        best = np.zeros(owner.shape, np.uint8)
        best.ravel()[sel] = 1
        best = fill_nearest(best, owner, plan)
        made = np.zeros(len(zoned) + 1)  # variance reduction of the chosen zones (+ padding)
        undecided = np.r_[np.ones(len(zoned), bool), False]
        work = _Canvas(owner, plan, sel, np.arange(len(sel)), None)
        position = None
        for n in AUTO_N if auto else [int(rules.n)]:
            if work.moved is not None or not undecided[:-1].all():
                if position is None:
                    position = np.full(owner.shape, -1, np.int32)
                    position.ravel()[sel] = np.arange(len(sel), dtype=np.int32)
                work = _Canvas.of(packed, owner, plan, position, zoned[undecided[:-1]])
            breaks = class_breaks(hist, n, rules.method, undecided[:-1])
            zone = np.zeros(work.owner.shape, np.uint8)
            zone.ravel()[work.sel] = bin_classes(hist, breaks)[hist.where[work.at]]
            zone = majority(zone, work.owner, rules.smooth)
            zone = fill_nearest(zone, work.owner, work.plan)
            zone = sieve(zone, work.owner, min_pixels)
            reduction, step = zone_stats(
                v[work.at], row[work.at], zone.ravel()[work.sel], len(zoned)
            )
            reduction = np.r_[reduction, 0.0]
            take = undecided.copy()
            if auto:
                apart = np.r_[step >= rules.min_step, False]
                pays = reduction - made >= rules.min_gain if n > 2 else apart
                take &= apart & pays  # too close (noise) or not worth it: keep n - 1
                undecided = take
            work.put(best, zone, take[row_of])
            made = np.where(take, reduction, made)
            if not undecided.any():
                break
        return best, made[:-1]

    def _polygons(self, band, packed, owner, zone, min_pixels) -> tuple[np.ndarray, np.ndarray]:
        """Zone patches as polygons clipped to their field, and ``owner * 256 + zone`` of each.

        Parts of a patch that clipping leaves below the field's minimum join a neighbour
        (:func:`merge_small_parts`).
        """
        # a field all of one zone is its own polygon unless the raster's edge cuts it
        code, first = zone_codes(zone, owner, np.r_[False, self._within[band.positions]])
        whole = first > 0
        geoms, codes = label_polygons(code, Affine.identity(), mask=code > 0)
        codes = codes.astype(np.int64)
        if len(codes):
            geoms = packed.to_band(geoms, codes // 256, band.transform)
            geoms = shapely.intersection(geoms, band.geometries[codes // 256 - 1])
        single = np.flatnonzero(whole)
        geoms = np.concatenate([geoms, band.geometries[single - 1]])
        codes = np.concatenate([codes, first[single]])
        if not len(codes):
            return np.empty(0, object), np.empty(0, np.int64)
        parts, which = shapely.get_parts(geoms, return_index=True)
        codes = codes[which]
        # Clipping can leave lines and points where a patch only touches the border.
        keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1e-6 * self._pixel_area)
        parts, codes = parts[keep], codes[keep]
        owners = codes // 256
        min_area = min_pixels[owners] * self._pixel_area
        small = np.unique(owners[shapely.area(parts) < min_area])
        crowded = small[np.bincount(owners, minlength=len(min_pixels))[small] > 1]
        if len(crowded):
            redo = np.isin(owners, crowded)
            merged = [
                merge_small_parts(
                    parts[owners == k], codes[owners == k], min_pixels[k] * self._pixel_area
                )
                for k in crowded
            ]
            parts = np.concatenate([parts[~redo], *(p for p, _ in merged)])
            codes = np.concatenate([codes[~redo], *(c for _, c in merged)])
        # top to bottom, then left to right: an order that does not depend on the tracer's
        bounds = shapely.bounds(parts)
        order = np.lexsort((bounds[:, 0], -bounds[:, 3], codes))
        return parts[order], codes[order]

    def _areas(self, geoms: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Geodesic areas (ha) of polygons inside the fields at ``positions``."""
        ratio = self._ratio[positions]
        out = shapely.area(geoms) * self._metres**2 / 1e4 * ratio
        exact = ~np.isfinite(ratio)  # a geographic CRS: no planar area to scale
        if exact.any():
            out[exact] = area_ha(gpd.GeoSeries(geoms[exact], crs=self._crs)).to_numpy()
        return out

    def _frame(self, data: dict) -> gpd.GeoDataFrame:
        columns = ["field_id", "zone", self.value_column, "area_ha", *QUALITY, "geometry"]
        data = {k: data.get(k, np.empty(0)) for k in columns}
        table = pd.DataFrame({k: v for k, v in data.items() if k != "geometry"})
        table = table.astype({"field_id": self.fields["field_id"].dtype}, errors="ignore")
        return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(data["geometry"], crs=self._crs))


@dataclass(frozen=True)
class _Canvas:
    """The pixels one round of zoning works on: a band's canvas, or some of its windows.

    ``sel`` are the valid pixels (flat indices), ``at`` their positions among the band's
    valid pixels, ``moved`` the windows taken from the band's canvas (None: the canvas).
    """

    owner: np.ndarray
    plan: np.ndarray
    sel: np.ndarray
    at: np.ndarray
    moved: Gathered | None

    @classmethod
    def of(cls, packed: PackedWindows, owner, plan, position, which: np.ndarray) -> _Canvas:
        """The windows of the fields ``which`` (owners) of the band canvas; ``position`` is
        the band's canvas of valid pixel positions (-1: not valid)."""
        moved = packed.gather(which)
        at = moved.take(position, -1).ravel()
        sel = np.flatnonzero(at >= 0)
        return cls(moved.take(owner), moved.take(plan), sel, at[sel], moved)

    def put(self, canvas: np.ndarray, zone: np.ndarray, chosen: np.ndarray) -> None:
        """Copy ``zone`` (this canvas) into the band's ``canvas`` at the pixels of the fields
        ``chosen`` (boolean per owner)."""
        if self.moved is None:
            copy_fields(canvas, zone, self.owner, chosen)
        else:
            self.moved.put(canvas, zone, chosen[self.owner])


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


def _season(
    values: np.ndarray, owner: np.ndarray, allowed: np.ndarray | None, m: int, rules: ZoneRules
) -> np.ndarray:
    """Mean over usable dates of each pixel's index divided by its field's median that date.

    ``owner`` gives the field (1..m) of each pixel, ``allowed`` the dates each field may use
    (``(m, time)``; None: all).
    """
    n_inside = np.maximum(np.bincount(owner.ravel(), minlength=m + 1), 1)
    total = np.zeros(values.shape[1:], np.float64)
    count = np.zeros(values.shape[1:], np.int32)
    for t in range(values.shape[0]):
        day = values[t].astype(np.float64).ravel()
        idx = np.flatnonzero((owner.ravel() > 0) & np.isfinite(day))
        field, d = owner.ravel()[idx], day[idx]
        n_ok = np.bincount(field, minlength=m + 1)
        use = (n_ok >= rules.min_valid_fraction * n_inside) & (n_ok > 0)
        if allowed is not None:
            use[1:] &= allowed[:, t]
        median = _medians(d, field, m + 1)
        use &= median > 0  # bare soil or water: no productivity to compare with
        keep = use[field]
        total.ravel()[idx[keep]] += d[keep] / median[field[keep]]
        count.ravel()[idx[keep]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _medians(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """Median of the values of each group ``0..n - 1`` (NaN for an empty group)."""
    order = np.lexsort((values, group))
    ranked = values[order]
    count = np.bincount(group, minlength=n)
    start = np.searchsorted(group[order], np.arange(n))
    low = np.minimum(start + (count - 1) // 2, len(ranked) - 1)
    high = np.minimum(start + count // 2, len(ranked) - 1)
    if not len(ranked):
        return np.full(n, np.nan)
    return np.where(count > 0, (ranked[low] + ranked[high]) / 2, np.nan)


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
