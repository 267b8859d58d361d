"""Exact, coverage-weighted per-field statistics of lazy rasters (zonal statistics).

Every pixel counts by the share of its area inside the field, as in exactextract, whose
definitions this module reproduces (see :mod:`agrivision.fields.zonal_kernels`). Differences,
all below exactextract's own float32 resolution: coverage fractions are exact in float64
(exactextract rounds them to float32, so means differ by ~1e-9) and quantiles are not rounded
to the raster dtype; exactextract occasionally drops a sliver cell covered by less than ~1e-7
of its area, which can shift that field's min/max/quantiles (never its mean, beyond 1e-8).

How it stays fast and memory-bounded:

* field polygons become pixel-space rings once (:mod:`agrivision.fields.coverage`);
* fields are grouped by the dask chunks they touch: fields inside one chunk are reduced from
  that chunk as it is; fields crossing chunk borders are computed whole (hence exactly) from
  a window that is the union of their boxes, a strip along the border. Only chunks that
  fields touch are read, each once, and memory stays bounded by chunk size (or by the
  largest field);
* exact coverage fractions are computed once per group (numba) and reused for every variable
  and date; the statistics kernel then gathers each field's pixels and reduces them,
  quantiles included, in one pass per date.
"""

from __future__ import annotations

import itertools
import logging
import re
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence

import dask
import dask.threaded
import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor used below)
import xarray as xr

from agrivision.errors import ConfigError, GridError, MissingCRSError
from agrivision.fields.coverage import PixelRings, group_coverage, pixel_rings
from agrivision.fields.prepare import prepare_fields
from agrivision.fields.zonal_kernels import BASE_STATS, window_fractions, window_stats
from agrivision.grid import grid_of

log = logging.getLogger(__name__)

DEFAULT_STATS = (
    "count",
    "valid_fraction",
    "mean",
    "std",
    "min",
    "max",
    "median",
    "p10",
    "p90",
)
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")


def zonal_stats(
    data: xr.DataArray | xr.Dataset,
    fields: gpd.GeoDataFrame,
    *,
    stats: Sequence[str] = DEFAULT_STATS,
    id_column: str = "field_id",
    fractions: Mapping[Hashable, Sequence[int]] | None = None,
) -> pd.DataFrame:
    """Coverage-weighted statistics of raster values inside each field (and date).

    Parameters
    ----------
    data : xr.DataArray or xr.Dataset
        Values on a north-up (unrotated) grid with a CRS (rioxarray), dims ``(y, x)`` or
        ``(time, y, x)`` (other length-1 dims such as ``band`` are dropped), preferably
        dask-backed. NaN and the encoded nodata value (``data.rio.nodata``) are no data.
        Only chunks that fields touch are read.
    fields : GeoDataFrame
        Polygons or MultiPolygons with a unique ``id_column``, checked and reprojected to the
        raster's CRS by :func:`agrivision.fields.prepare.prepare_fields` (invalid ones are
        repaired with ``make_valid``).
    stats : sequence of str
        Any of ``count`` (sum of coverage of valid pixels, in pixels), ``pixel_count`` (valid
        pixels touched), ``valid_fraction`` (``count`` / coverage of all the field's pixels in
        the raster: the cloud-free share), ``sum``, ``mean``, ``std`` (population, weighted),
        ``min``, ``max`` (over pixels with coverage > 0), ``median`` and ``pNN`` percentiles
        (e.g. ``p10``, ``p2.5``), all with exactextract's definitions.
    id_column : str
        Name of the fields' identifier column.
    fractions : mapping of variable name to class codes, optional
        Categorical variables (class rasters, e.g. uint8 health classes; for a DataArray its
        name) and the codes to report: instead of ``stats``, the coverage-weighted share of
        each code among the variable's valid pixels (not NaN, not nodata), exactextract's
        ``frac``, as column ``{variable}_frac_{code}`` (NaN without valid pixels). One byte
        per pixel instead of one float32 indicator raster per code, read in the same pass.

    Returns
    -------
    pandas.DataFrame
        One row per field (in input order) and, with a ``time`` dim, per date. Columns:
        ``field_id``, ``time`` (only with a time dim), ``coverage`` (share of the field's area
        inside the raster extent, 0..1; 0 for fields wholly outside, whose statistics are NaN
        with count 0), then one column per statistic: ``{stat}`` for a DataArray and
        ``{variable}_{stat}`` for each data variable of a Dataset; then the ``fractions``
        columns.

    Raises
    ------
    MissingCRSError
        The raster or the fields have no CRS.
    InvalidGeometryError
        Null, empty or non-polygonal fields (``read_fields`` drops them).
    FieldsError
        No ``id_column``, or missing or duplicate field ids.
    GridError
        A rotated grid or an unsupported extra dimension.
    ConfigError
        An unknown statistic, or ``fractions`` naming no variable of ``data``.
    """
    variables = _variables(data)
    codes = _fraction_codes(fractions, variables, data)
    first = next(iter(variables.values()))
    grid = grid_of(first)
    qs = _quantile_levels(stats)
    prepared = prepare_fields(fields, grid.crs, id_column=id_column)
    ids = prepared[id_column].to_numpy()

    rings = pixel_rings(prepared.geometry.to_numpy(), grid.affine, (grid.height, grid.width))
    times = _times(data)
    n_time = first.shape[0]
    chunks = first.data.chunks  # dask-backed (see _variables)
    time_chunks = np.cumsum((0, *chunks[0]))

    groups = _group_fields(rings.bbox, chunks[1], chunks[2])
    row_edges, col_edges = np.cumsum((0, *chunks[1])), np.cumsum((0, *chunks[2]))
    nodatas = [np.nan if v.rio.nodata is None else float(v.rio.nodata) for v in variables.values()]
    # The chunks themselves go to the tasks (windows are cut there): slicing the dask array
    # instead would make dask re-read a whole chunk for every slice.
    blocks = [var.data.to_delayed(optimize_graph=False) for var in variables.values()]
    # One task per group computes the group's coverage once and reduces every variable and
    # date with it, so no sparse coverage outlives its task. (As separate tasks feeding every
    # variable, the coverage of all groups was held at once, 16 B per field pixel: dask runs
    # such dependency-free tasks far ahead of their consumers.)
    tasks = []
    for members, window, (i0, i1, j0, j1) in groups:
        origins = [
            (row_edges[i], col_edges[j]) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)
        ]
        pieces = [
            [
                [b[k, i, j] for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]
                for k in range(len(time_chunks) - 1)
            ]
            for b in blocks
        ]
        tasks.append(
            dask.delayed(_group_stats, pure=True)(
                rings.subset(members), window, origins, pieces, nodatas, qs, codes
            )
        )
    log.debug("zonal_stats: %d fields in %d windows", len(ids), len(groups))
    (results,) = dask.compute(tasks, scheduler=_scheduler())

    n_fields = len(ids)
    total_cov = np.zeros(n_fields)
    for (members, *_), (total, _) in zip(groups, results, strict=True):
        total_cov[members] = total
    per_var = {}
    for v, name in enumerate(variables):
        var_codes = codes[v]
        if var_codes is None:
            out = np.full((n_fields, n_time, len(BASE_STATS) + len(qs)), np.nan)
            out[:, :, [0, 1, 2]] = 0.0  # count, pixel_count, sum of fields outside the raster
        else:
            out = np.full((n_fields, n_time, len(var_codes)), np.nan)
        for (members, *_), (_, per_chunk) in zip(groups, results, strict=True):
            for (t0, t1), result in zip(itertools.pairwise(time_chunks), per_chunk[v], strict=True):
                out[members, t0:t1] = result
        per_var[name] = out
    return _table(ids, times, total_cov, rings.area_px, per_var, stats, qs, codes)


def _scheduler() -> Callable | None:
    """The threaded scheduler when no other can be meant, else None (dask's own choice).

    Without a configured scheduler dask imports ``distributed`` to look for a Client (~0.6 s
    on the first compute of a process); when it has never been imported, none can exist.
    """
    if dask.config.get("scheduler", None) is None and "distributed" not in sys.modules:
        return dask.threaded.get
    return None


def _variables(data: xr.DataArray | xr.Dataset) -> dict[Hashable | None, xr.DataArray]:
    """Split ``data`` into (time, y, x) DataArrays with unified dask chunks."""
    if isinstance(data, xr.Dataset):
        names = [n for n, v in data.data_vars.items() if v.ndim >= 2]
        if not names:
            raise GridError("the dataset has no raster variables", fix="pass a Scene with bands")
        arrays = [
            a for a in xr.unify_chunks(*[data[n] for n in names]) if isinstance(a, xr.DataArray)
        ]
    elif isinstance(data, xr.DataArray):
        names, arrays = [None], [data]
    else:
        raise TypeError(f"data must be an xarray DataArray or Dataset, not {type(data).__name__}")
    if data.rio.crs is None and arrays[0].rio.crs is None:
        raise MissingCRSError(
            "the raster has no CRS",
            source=_name(data),
            fix="set it with data.rio.write_crs(...) (or open the scene with its CRS)",
        )
    out: dict[Hashable | None, xr.DataArray] = {}
    for name, arr in zip(names, arrays, strict=True):
        if arr.rio.crs is None:
            arr = arr.rio.write_crs(data.rio.crs)
        y, x = arr.rio.y_dim, arr.rio.x_dim
        extra = [d for d in arr.dims if d not in (y, x, "time")]
        if any(arr.sizes[d] != 1 for d in extra):
            raise GridError(
                f"unsupported dimension(s) {extra} beside time, y and x",
                source=_name(arr),
                fix="select one element (e.g. .sel(band=...)) or make each a variable",
            )
        arr = arr.squeeze(extra, drop=True)
        if "time" not in arr.dims:
            arr = arr.expand_dims("time")
        arr = arr.transpose("time", y, x)
        if arr.chunks is None:
            arr = arr.chunk()  # in-memory data: one block, already in RAM
        first = next(iter(out.values()), arr)
        if arr.shape != first.shape or arr.chunks != first.chunks:
            raise GridError(
                f"variable {name!r} has shape {arr.shape} / chunks unlike {first.shape}",
                source=_name(data),
                fix="give all variables the same (time, y, x) grid and chunks",
            )
        out[name] = arr
    return out


def _times(data: xr.DataArray | xr.Dataset) -> np.ndarray | None:
    """The time coordinate's values (positions when it has none), or None without time."""
    if "time" not in data.dims:
        return None
    return data["time"].values if "time" in data.coords else np.arange(data.sizes["time"])


def _name(obj: object) -> str:
    name = getattr(obj, "name", None)
    return f"raster {name!r}" if name is not None else "raster"


def _fraction_codes(
    fractions: Mapping[Hashable, Sequence[int]] | None,
    variables: Mapping[Hashable | None, object],
    data: xr.DataArray | xr.Dataset,
) -> list[np.ndarray | None]:
    """Per variable (in order): the class codes whose shares it reports, or None for stats."""
    fractions = dict(fractions or {})
    if isinstance(data, xr.DataArray) and data.name in fractions:  # a DataArray: by its name
        fractions[None] = fractions.pop(data.name)
    unknown = [k for k in fractions if k not in variables]
    if unknown:
        raise ConfigError(
            f"fractions name unknown variable(s) {unknown}",
            source="zonal_stats",
            fix=f"use variables of the raster: {[k for k in variables if k is not None]}",
        )
    return [
        None if name not in fractions else np.asarray(fractions[name], dtype=np.float64)
        for name in variables
    ]


def _quantile_levels(stats: Sequence[str]) -> np.ndarray:
    """Validate statistic names; return the quantile levels they need (in stats order)."""
    if isinstance(stats, str):
        stats = [stats]
    plain = {*BASE_STATS, "valid_fraction", "coverage"}
    qs = []
    for s in stats:
        m = _PERCENTILE.fullmatch(s)
        if s == "median":
            qs.append(0.5)
        elif m and float(m.group(1)) <= 100:
            qs.append(float(m.group(1)) / 100)
        elif s not in plain:
            raise ConfigError(
                f"unknown statistic {s!r}",
                source="zonal_stats",
                fix=f"use any of {sorted(plain)}, 'median' or percentiles like 'p10', 'p90'",
            )
    return np.array(qs, dtype=np.float64)


def _group_fields(
    bbox: np.ndarray, row_chunks: tuple[int, ...], col_chunks: tuple[int, ...]
) -> list[tuple[np.ndarray, tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Group fields by the set of chunks their bounding boxes touch.

    Returns ``(member positions, (row0, row1, col0, col1) window, (i0, i1, j0, j1) chunk
    span)`` per group. Fields inside one chunk share that chunk as window (used as it is);
    fields crossing chunk borders are grouped by the chunks they span, with the union of their
    boxes as window (a strip along the border). Fields wholly outside the raster belong to no
    group.
    """
    r0, r1, c0, c1 = bbox.T
    inside = np.flatnonzero((r1 > r0) & (c1 > c0))
    if len(inside) == 0:
        return []
    row_edges = np.cumsum((0, *row_chunks))
    col_edges = np.cumsum((0, *col_chunks))
    span = np.stack(
        [
            np.searchsorted(row_edges, r0[inside], side="right") - 1,
            np.searchsorted(row_edges, r1[inside] - 1, side="right") - 1,
            np.searchsorted(col_edges, c0[inside], side="right") - 1,
            np.searchsorted(col_edges, c1[inside] - 1, side="right") - 1,
        ],
        axis=1,
    )
    keys, group_of = np.unique(span, axis=0, return_inverse=True)
    order = np.argsort(group_of, kind="stable")
    bounds = np.flatnonzero(np.diff(group_of[order])) + 1
    groups = []
    for (i0, i1, j0, j1), part in zip(keys, np.split(inside[order], bounds), strict=True):
        if i0 == i1 and j0 == j1:
            window = (
                row_edges[i0],
                row_edges[i0 + 1],
                col_edges[j0],
                col_edges[j0 + 1],
            )
        else:
            window = (r0[part].min(), r1[part].max(), c0[part].min(), c1[part].max())
        r_0, r_1, c_0, c_1 = (int(v) for v in window)
        groups.append((part, (r_0, r_1, c_0, c_1), (int(i0), int(i1), int(j0), int(j1))))
    return groups


def _coverage(rings: PixelRings, window: tuple[int, int, int, int]) -> tuple:
    """Sparse exact coverage of a group's fields within its window (runs in a dask task)."""
    row0, _, col0, col1 = window
    return group_coverage(
        rings.cols,
        rings.rows,
        rings.ring_ptr,
        rings.ring_sign,
        rings.field_ptr,
        rings.bbox,
        row0,
        col0,
        col1 - col0,
    )


def _group_stats(
    rings: PixelRings,
    window: tuple[int, int, int, int],
    origins: list[tuple[int, int]],
    pieces: list[list[list[np.ndarray]]],
    nodatas: list[float],
    qs: np.ndarray,
    codes: list[np.ndarray | None],
) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Coverage totals and the statistics (or class shares, where ``codes``) of one group's
    fields for every variable and time chunk (``pieces[variable][time chunk]`` are the chunks
    its window spans)."""
    coverage = _coverage(rings, window)
    stats = [
        [_stats(window, origins, p, nodata, coverage, qs, c) for p in per_time]
        for per_time, nodata, c in zip(pieces, nodatas, codes, strict=True)
    ]
    return coverage[3], stats


def _stats(
    window: tuple[int, int, int, int],
    origins: list[tuple[int, int]],
    pieces: list[np.ndarray],
    nodata: float,
    coverage: tuple,
    qs: np.ndarray,
    codes: np.ndarray | None = None,
) -> np.ndarray:
    """Statistics (or the shares of ``codes``) of a group's fields over its window, cut from
    the chunks (time, y, x)."""
    r0, r1, c0, c1 = window
    if len(pieces) == 1 and pieces[0].shape[1:] == (r1 - r0, c1 - c0):
        values = np.ascontiguousarray(pieces[0])  # a whole chunk: no copy
    else:
        values = np.empty((pieces[0].shape[0], r1 - r0, c1 - c0), dtype=pieces[0].dtype)
        for (pr, pc), piece in zip(origins, pieces, strict=True):
            h, w = piece.shape[1:]
            a0, a1 = max(r0, pr), min(r1, pr + h)
            b0, b1 = max(c0, pc), min(c1, pc + w)
            values[:, a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] = piece[
                :, a0 - pr : a1 - pr, b0 - pc : b1 - pc
            ]
    cell_ptr, cell_idx, cell_cov, _ = coverage
    flat = values.reshape(values.shape[0], -1)
    if codes is not None:
        return window_fractions(flat, nodata, cell_ptr, cell_idx, cell_cov, codes)
    return window_stats(flat, nodata, cell_ptr, cell_idx, cell_cov, qs)


def _table(
    ids: np.ndarray,
    times: np.ndarray | None,
    total_cov: np.ndarray,
    area_px: np.ndarray,
    per_var: dict[Hashable | None, np.ndarray],
    stats: Sequence[str],
    qs: np.ndarray,
    codes: list[np.ndarray | None],
) -> pd.DataFrame:
    """Assemble the long table (fields x dates) from the per-variable result arrays."""
    n_fields = len(ids)
    n_time = 1 if times is None else len(times)
    columns: dict[str, np.ndarray] = {"field_id": np.repeat(ids, n_time)}
    if times is not None:
        columns["time"] = np.tile(times, n_fields)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(area_px > 0, np.minimum(total_cov / area_px, 1.0), 0.0)
    columns["coverage"] = np.repeat(share, n_time)
    if isinstance(stats, str):
        stats = [stats]
    for (name, out), shares_of in zip(per_var.items(), codes, strict=True):
        if shares_of is not None:
            continue
        q_iter = iter(range(len(BASE_STATS), len(BASE_STATS) + len(qs)))
        for s in stats:
            if s == "coverage":
                continue
            if s == "valid_fraction":
                with np.errstate(invalid="ignore", divide="ignore"):
                    col = out[:, :, 0] / total_cov[:, None]
            elif s in BASE_STATS:
                col = out[:, :, BASE_STATS.index(s)]
            else:
                col = out[:, :, next(q_iter)]
            columns[s if name is None else f"{name}_{s}"] = col.reshape(-1)
    for (name, out), shares_of in zip(per_var.items(), codes, strict=True):
        for m, code in enumerate([] if shares_of is None else shares_of.astype(np.int64)):
            prefix = "frac" if name is None else f"{name}_frac"
            columns[f"{prefix}_{code}"] = out[:, :, m].reshape(-1)
    return pd.DataFrame(columns)
