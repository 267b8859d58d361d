"""Management zones: each field split into ``n`` zones of low to high index, as polygons.

Breaks are per field, from its own histogram (:func:`~agrivision.health.anomaly.field_histograms`):

* ``"quantile"``: the ``k/n`` quantiles, so zones have (nearly) equal areas;
* ``"kmeans"``: 1-D k-means (scikit-learn ``KMeans``, k-means++ seeded with 0, 3 inits) of the
  histogram bin centres weighted by their pixel counts; the breaks are the midpoints between
  the sorted cluster centres, i.e. every pixel goes to its nearest centre.

A uniform field (or one with fewer distinct values than ``n``) can get fewer zones. A field
with fewer than ``min_pixels`` valid pixels gets none: its breaks would be noise (see
:class:`agrivision.fields.config.ProblemsConfig` for the default).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage
from threadpoolctl import threadpool_limits

from agrivision.errors import ConfigError, GridError
from agrivision.fields.config import ProblemsConfig
from agrivision.fields.rasterize import codes_to_ids, field_raster
from agrivision.fields.vectorize import vectorize, vectorize_batches
from agrivision.health._perfield import as_dask, dense_codes, per_field_sums
from agrivision.health.anomaly import field_histograms, histogram_quantiles

Method = Literal["quantile", "kmeans"]


def zones(
    index: xr.DataArray,
    fields: gpd.GeoDataFrame,
    *,
    n: int = 3,
    method: Method = "quantile",
    min_area_ha: float = 0.0,
    smooth: int = 0,
    bins: int = 2000,
    range: tuple[float, float] = (-1.0, 1.0),
    min_pixels: int | None = None,
) -> gpd.GeoDataFrame:
    """Management-zone polygons per field.

    Parameters
    ----------
    index
        ``(y, x)`` index raster (e.g. NDVI of one date), dask-backed, projected CRS.
    fields
        Field polygons with a unique ``field_id`` (any CRS; reprojected to the raster's).
    n
        Zones per field (2..254); zone 1 has the lowest index values, zone ``n`` the highest.
    method
        ``"quantile"`` or ``"kmeans"`` (see the module docstring).
    min_area_ha
        Polygons smaller than this are dropped by ``vectorize``.
    smooth
        Majority-filter size in pixels (0 or 1: none); see :func:`zone_raster`.
    bins, range
        Histogram resolution of the breaks (index units).
    min_pixels
        Fields with fewer valid pixels get no zones (default ``ProblemsConfig().min_pixels``).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per connected polygon (a zone may have several, see ``vectorize``):
        ``field_id``, ``zone`` (1..n), ``mean_<index name>`` (mean index of all the zone's
        pixels in that field), ``area_ha``, ``geometry`` in the raster's CRS. Polygons are
        clipped to the field boundary, so (unless ``min_area_ha`` drops some) the zone
        areas of a field sum to the part of the field covered by its zoned pixels, not to
        their pixel count x pixel area.

    Notes
    -----
    Computed eagerly: the breaks (one pass over ``index``), the zone means (a second pass)
    and the polygons (``vectorize``, a third).
    """
    zone, means = _zones_and_means(index, fields, n, method, smooth, bins, range, min_pixels)
    polygons = vectorize(zone, fields, class_names=_names(n), min_area_ha=min_area_ha)
    return _with_means(polygons, means)


def zone_batches(
    index: xr.DataArray,
    fields: gpd.GeoDataFrame,
    *,
    n: int = 3,
    method: Method = "quantile",
    min_area_ha: float = 0.0,
    smooth: int = 0,
    bins: int = 2000,
    range: tuple[float, float] = (-1.0, 1.0),
    min_pixels: int | None = None,
    rows: int = 2048,
) -> Iterator[gpd.GeoDataFrame]:
    """:func:`zones` handed over in batches of fields, for tables too large to hold at once.

    Parameters are those of :func:`zones`, plus ``rows``, the pixel rows per strip of
    :func:`~agrivision.fields.vectorize.vectorize_batches`, which makes the polygons: each
    field's zones are those of :func:`zones`; batches come in strip order, fields within a
    batch in input order. The breaks and zone means are computed (eagerly) before the first
    batch.
    """
    zone, means = _zones_and_means(index, fields, n, method, smooth, bins, range, min_pixels)
    batches = vectorize_batches(
        zone, fields, class_names=_names(n), min_area_ha=min_area_ha, rows=rows
    )
    for polygons in batches:
        yield _with_means(polygons, means)


def zone_raster(
    index: xr.DataArray,
    fields: gpd.GeoDataFrame,
    *,
    n: int = 3,
    method: Method = "quantile",
    smooth: int = 0,
    bins: int = 2000,
    range: tuple[float, float] = (-1.0, 1.0),
    min_pixels: int | None = None,
) -> xr.DataArray:
    """Lazy uint8 zone raster on the index's grid: 1 (lowest) .. ``n`` (highest), 0 outside.

    Parameters are those of :func:`zones`. ``smooth`` is a majority filter of ``smooth x
    smooth`` pixels that only looks at pixels of the same field (zones never leak across
    field borders) and keeps a pixel's zone on ties; it runs per chunk with a halo of
    ``smooth // 2`` pixels (``dask.array.map_overlap``), so chunk seams do not show.

    Computed eagerly: the per-field breaks (one pass over ``index``); the raster is lazy.
    """
    return _zones(index, fields, n, method, smooth, bins, range, min_pixels)[0]


def _zones(index, fields, n, method, smooth, bins, range, min_pixels):
    if index.dims != ("y", "x"):
        raise GridError(
            f"zones need a (y, x) index, got dims {index.dims}",
            source=index.name, fix="select a date (.isel(time=-1)) or reduce (.median('time'))",
        )  # fmt: skip
    if not 2 <= n <= 254 or method not in ("quantile", "kmeans") or smooth < 0:
        raise ConfigError(
            f"invalid zones settings n={n}, method={method!r}, smooth={smooth}",
            source="zones", fix="n in 2..254, method 'quantile' or 'kmeans', smooth >= 0",
        )  # fmt: skip
    fid = field_raster(fields, index)
    sums = field_histograms(index, fid, bins=bins, range=range)
    min_pixels = ProblemsConfig().min_pixels if min_pixels is None else min_pixels
    pixels = sums.groupby("code")["count"].transform("sum")
    sums = sums[pixels.to_numpy() >= min_pixels]  # fields without support get no zones
    codes = np.unique(sums["code"].to_numpy())
    if method == "quantile":
        breaks = histogram_quantiles(sums, bins, range, (np.arange(1, n) / n).tolist())
    else:
        breaks = _kmeans_breaks(sums, n, bins, range)
    data = as_dask(index)
    fid_data = as_dask(fid).rechunk(data.chunks)
    zone = da.map_blocks(_zone_block, data, fid_data, codes, breaks, dtype=np.uint8)
    if smooth > 1:
        zone = da.map_overlap(
            _majority, zone, fid_data, depth=smooth // 2, boundary="none", dtype=np.uint8,
            size=smooth, n=n,
        )  # fmt: skip
    out = index.copy(data=zone)
    out.name = "zone"
    out.encoding = {}
    out.attrs = {
        "long_name": f"management zone of {index.name or 'index'} (1 = lowest)",
        "zones": n,
        "method": method,
        "smooth": smooth,
    }
    return out.rio.write_nodata(0), fid


def _zones_and_means(index, fields, n, method, smooth, bins, range, min_pixels):
    """The lazy zone raster and the mean index of every (field, zone)."""
    zone, fid = _zones(index, fields, n, method, smooth, bins, range, min_pixels)
    sums = per_field_sums(fid, zone.copy(data=as_dask(zone).astype(np.int32) - 1), n, index)
    means = pd.DataFrame(
        {
            "field_id": codes_to_ids(fid, sums["code"].to_numpy()),
            "zone": sums["key"].to_numpy() + 1,
            f"mean_{index.name or 'index'}": (sums["sum"] / sums["count"]).to_numpy(),
        }
    )
    return zone, means


def _names(n: int) -> dict[int, str]:
    return {k: f"zone {k}" for k in np.arange(1, n + 1).tolist()}


def _with_means(polygons: gpd.GeoDataFrame, means: pd.DataFrame) -> gpd.GeoDataFrame:
    """Zone polygons (``vectorize`` output) with their zone's mean index, in their order."""
    polygons = polygons.rename(columns={"class": "zone"})
    # the ids' type, also when no field has zones (an empty table has no ids to infer it from)
    means = means.astype({"field_id": polygons["field_id"].dtype})
    polygons = polygons.merge(means, on=["field_id", "zone"], how="left")
    return polygons[["field_id", "zone", means.columns[-1], "area_ha", "geometry"]]


def _kmeans_breaks(sums: pd.DataFrame, n: int, bins: int, range) -> np.ndarray:
    from sklearn.cluster import KMeans  # here: importing sklearn costs ~1 s at every start-up

    width = (range[1] - range[0]) / bins
    out = []
    # sklearn starts an OpenMP pool per fit: about 30 ms per tiny fit instead of about 1 ms.
    with threadpool_limits(1):
        for _, hist in sums.groupby("code", sort=True):
            centres = range[0] + width * (hist["key"].to_numpy() + 0.5)
            k = min(n, len(centres))
            model = KMeans(k, n_init=3, random_state=0)
            model.fit(centres[:, None], sample_weight=hist["count"].to_numpy())
            c = np.sort(model.cluster_centers_[:, 0])
            # fewer distinct values than zones: the top zones stay empty
            out.append(np.concatenate([(c[1:] + c[:-1]) / 2, np.full(n - k, np.inf)]))
    return np.array(out).reshape(-1, n - 1)


def _zone_block(x, fid, codes, breaks):
    if not len(codes):
        return np.zeros(x.shape, np.uint8)
    pos = np.clip(np.searchsorted(codes, fid), 0, len(codes) - 1)
    known = (codes[pos] == fid) & (fid > 0) & np.isfinite(x)
    zone = 1 + (x[..., None] >= breaks[pos]).sum(axis=-1)
    return np.where(known, zone, 0).astype(np.uint8)


def _majority(zone: np.ndarray, fid: np.ndarray, *, size: int, n: int) -> np.ndarray:
    """Majority of each field pixel's zone among same-field pixels of a size x size window."""
    out = zone.copy()
    ids, labels = dense_codes(fid.ravel())
    labels = labels.reshape(fid.shape)
    for i, window in enumerate(ndimage.find_objects(labels + 1)):
        if window is None or ids[i] == 0:
            continue
        z = zone[window]
        target = (labels[window] == i) & (z > 0)
        counts = np.stack([_box_count((z == k) & target, size) for k in np.arange(1, n + 1)])
        score = 2 * counts + (np.arange(1, n + 1)[:, None, None] == z)  # ties keep own zone
        best = (score.argmax(axis=0) + 1).astype(np.uint8)
        view = out[window]  # a view: other fields' pixels in this box stay as they are
        view[target] = best[target]
    return out


def _box_count(mask: np.ndarray, size: int) -> np.ndarray:
    """True pixels in each size x size window (zero outside the array)."""
    # Integer sums (two 1-D passes) are exact, so ties break the same way in every chunk.
    ones = np.ones(size, np.int32)
    rows = ndimage.correlate1d(mask, ones, axis=0, output=np.int32, mode="constant")
    return ndimage.correlate1d(rows, ones, axis=1, output=np.int32, mode="constant")
