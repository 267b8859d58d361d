"""Class rasters to polygons: one row per connected area of a class (per field), seams merged.

How it stays exact and memory-bounded:

* every dask chunk is polygonised on its own (:func:`rasterio.features.shapes`, one task per
  chunk), so only one chunk per worker thread is ever in memory;
* all geometry work happens in *pixel space* (x = column, y = -row: whole numbers at pixel
  corners; y is negated because GDAL warns about an identity transform), where the seam line
  between two chunks is the same integer for both sides: shared edges match exactly and areas
  are exact pixel counts. Geometries go to the raster CRS once, at the end;
* with fields, each chunk clips its own polygons to the fields that reach into it;
* only pieces that reach an inner chunk border are candidates for merging: each chunk reports
  the stretches of its borders that its pieces cover; pieces of the same class (and field)
  whose stretches overlap from both sides of a border (or, with 8-connectivity, touch) are
  grouped (connected components) and unioned; holes are kept;
* :func:`vectorize_batches` does the same in strips of chunk rows, top to bottom, and hands
  over the polygons of every field that ends in a strip as soon as the strip is done, so
  no more than a strip's polygons (and those of fields crossing into the next) are held.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import rioxarray  # noqa: F401 - registers the .rio accessor
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS
from rasterio.errors import NotGeoreferencedWarning
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from agrivision.errors import ConfigError, FieldsError, GridError, MissingCRSError
from agrivision.io.fields import area_ha, geodesic_ratio

#: Output columns (``field_id`` only when fields are given).
COLUMNS = ("field_id", "class", "class_name", "area_ha", "geometry")

# dtypes GDAL's polygoniser reads directly; other integer rasters are cast to int32.
_SHAPES_DTYPES = {np.dtype(t) for t in ("uint8", "int16", "uint16", "int32")}
# Pieces thinner than this (mean width 2 * area / perimeter, pixels) after clipping are
# floating-point noise, not areas: slivers left by field borders that run along pixel edges
# up to rounding (reprojection). Width, not area: such slivers can be thousands of pixels long.
_SLIVER_PX = 1e-6
# Tolerance (pixels) for "a vertex lies on a chunk border" and "stretches overlap".
_SEAM_EPS = 1e-9
_EMPTY_GEOMS = np.empty(0, dtype=object)
_EMPTY_INTS = np.empty(0, dtype=np.int64)


def vectorize(
    classes: xr.DataArray,
    fields: gpd.GeoDataFrame | None = None,
    *,
    classes_to_keep: Sequence[int] | None = None,
    class_names: Mapping[int, str] | None = None,
    min_area_ha: float = 0.0,
    simplify: float | None = None,
    connectivity: int = 4,
) -> gpd.GeoDataFrame:
    """Polygons of connected areas of each class, clipped to fields, seams between chunks merged.

    Parameters
    ----------
    classes : xr.DataArray
        Integer class raster, dims ``(y, x)`` (a ``band`` dim of size 1 is dropped), with a
        CRS and transform (rioxarray); dask-backed rasters are polygonised chunk by chunk.
        Class 0 and the raster's nodata value are never vectorised. Float rasters (masked
        reads) are accepted: NaN is nodata, other values are truncated to integers.
    fields : GeoDataFrame, optional
        Polygons with a unique ``field_id`` column; reprojected to the raster CRS if needed.
        Output polygons are clipped to each field (a polygon crossing a field border is split
        there). Fields are assumed not to overlap; where they do, a pixel counts in both.
    classes_to_keep : sequence of int, optional
        Class codes to vectorise; default all codes present except 0 and nodata.
    class_names : mapping of int to str, optional
        Names for the ``class_name`` column; default the labels of the health-class schema
        (:data:`agrivision.health.schema.DEFAULT_SCHEMA`). Codes missing from the mapping
        get a null name.
    min_area_ha : float
        Polygons smaller than this (hectares, after merging and clipping) are dropped.
    simplify : float, optional
        Tolerance in metres for topology-preserving coverage simplification
        (:func:`shapely.coverage_simplify`): neighbouring polygons keep a common edge, no gaps
        or overlaps appear. ``area_ha`` is always the unsimplified (exact) area.
    connectivity : {4, 8}
        Pixel neighbourhood defining "connected". With 8, polygons joined only at a corner
        are one row (a MultiPolygon).

    Returns
    -------
    GeoDataFrame
        One row per connected polygon per (field and) class: ``field_id`` (only with
        ``fields``), ``class``, ``class_name``, ``area_ha`` (hectares, geodesic on the WGS84
        ellipsoid whatever the CRS: :func:`agrivision.io.fields.area_ha`), ``geometry`` in the raster CRS. Sorted by field (input order), class, then
        top-left position. Empty (with a warning) when nothing is found.

    Raises
    ------
    MissingCRSError
        The raster (or the fields) has no CRS.
    GridError
        The raster is not 2-D.
    ConfigError
        Invalid ``connectivity``, ``classes_to_keep``, ``min_area_ha`` or ``simplify``.
    FieldsError
        ``fields`` lacks a unique ``field_id`` column.
    """
    job = _Job(classes, fields, classes_to_keep, min_area_ha, simplify, connectivity)
    pieces = _polygonise(job, range(len(job.data.chunks[0])))
    out = _finish(job, pieces, class_names)
    if out.empty:
        warnings.warn(job.empty_message(), UserWarning, stacklevel=2)
    return out


def vectorize_batches(
    classes: xr.DataArray,
    fields: gpd.GeoDataFrame,
    *,
    classes_to_keep: Sequence[int] | None = None,
    class_names: Mapping[int, str] | None = None,
    min_area_ha: float = 0.0,
    simplify: float | None = None,
    connectivity: int = 4,
    rows: int = 2048,
) -> Iterator[gpd.GeoDataFrame]:
    """:func:`vectorize` with fields, handed over in batches: for outputs too large to hold.

    The raster is polygonised in strips of whole chunk rows (at least ``rows`` pixel rows
    each), top to bottom, every chunk once. After each strip, the polygons of the fields
    that end in it are merged across seams, finished and yielded; pieces of fields that
    reach further down wait for the next strip. Every field's polygons are those of
    :func:`vectorize`, in its order (class, then top-left position); batches come in strip
    order, and within a batch fields keep their input order. With ``simplify`` (a coverage
    simplification, which must see every neighbour at once) there is a single batch.

    Parameters
    ----------
    classes, fields, classes_to_keep, class_names, min_area_ha, simplify, connectivity
        As for :func:`vectorize`; ``fields`` are required.
    rows : int
        Pixel rows per strip (rounded up to whole chunk rows). Memory grows with it.

    Yields
    ------
    GeoDataFrame
        The columns of :func:`vectorize`; at least one frame, possibly empty. A warning says
        so when no polygon is found at all.
    """
    if fields is None:
        raise FieldsError(
            "vectorize_batches needs fields (it hands over whole fields)",
            source="vectorize",
            fix="pass fields, or call vectorize() for a raster without fields",
        )
    job = _Job(classes, fields, classes_to_keep, min_area_ha, simplify, connectivity)
    row_edges = np.cumsum((0, *job.data.chunks[0]))
    strips = _strips(job.data.chunks[0], rows if simplify is None else job.data.shape[0])
    # Pixel row where each field ends (its pieces lie above it); fields without polygonal
    # parts have none to wait for.
    bottom = np.nan_to_num(-shapely.bounds(job.field_px)[:, 1], nan=-np.inf)
    pending = _Pieces.empty()
    found = 0
    for k, strip in enumerate(strips):
        pieces = _Pieces.concat([pending, _polygonise(job, strip)])
        done = bottom[pieces.fidx] <= row_edges[strip.stop] + _SEAM_EPS
        if k == len(strips) - 1:
            done[:] = True
        pending = pieces.take(~done)
        out = _finish(job, pieces.take(done), class_names)
        found += len(out)
        if len(out) or (k == len(strips) - 1 and not found):
            yield out
    if not found:
        warnings.warn(job.empty_message(), UserWarning, stacklevel=2)


class _Job:
    """The checked inputs of a vectorize call."""

    def __init__(self, classes, fields, classes_to_keep, min_area_ha, simplify, connectivity):
        self.grid = grid = _Grid(classes)
        self.data = _class_blocks(classes)
        self.keep = _classes_to_keep(classes_to_keep, grid.nodata)
        if connectivity not in (4, 8):
            raise ConfigError(
                f"connectivity={connectivity!r}", source="vectorize", fix="use 4 or 8 (pixels)"
            )
        if not min_area_ha >= 0:
            raise ConfigError(
                f"min_area_ha={min_area_ha!r}",
                source="vectorize",
                fix="use a number >= 0 (hectares)",
            )
        if simplify is not None and not simplify > 0:
            raise ConfigError(
                f"simplify={simplify!r}", source="vectorize", fix="use a tolerance > 0 in metres"
            )
        if simplify is not None and grid.metres_per_unit is None:
            raise ConfigError(
                "simplify is in metres but the raster CRS is geographic",
                source="vectorize",
                fix="reproject the class raster to a projected CRS, or pass simplify=None",
            )
        self.connectivity, self.min_area_ha, self.simplify = connectivity, min_area_ha, simplify
        self.n_fields = None if fields is None else len(fields)
        self.field_px, self.field_ids = (
            (None, None) if fields is None else _fields_in_pixels(fields, grid)
        )
        self.field_tree = None if fields is None else shapely.STRtree(self.field_px)
        # Polygons are clipped to their field: the field's geodesic/planar ratio turns their
        # planar areas into geodesic ones without a geodesic computation per polygon.
        self.field_ratio = None if fields is None else geodesic_ratio(_in_crs(fields, grid.crs))
        # Computed strip by strip from one optimised graph.
        self.blocks = self.data.to_delayed()
        _silence_memory_dataset_warning()

    def empty_message(self) -> str:
        what = f"classes {self.keep}" if self.keep else "any class but 0/nodata"
        where = "" if self.n_fields is None else f" inside the {self.n_fields} field(s)"
        height, width = self.data.shape
        if (
            self.field_px is not None
            and not shapely.intersects(shapely.box(0, -height, width, 0), self.field_px).any()
        ):
            where = f": none of the {self.n_fields} field(s) overlaps the raster (check the CRS)"
        return (
            f"vectorize: no polygons of {what}{where} with min_area_ha={self.min_area_ha}; "
            "the output is empty"
        )


def _areas_ha(world: np.ndarray, fidx: np.ndarray, job: _Job) -> np.ndarray:
    """Geodesic areas (ha): planar area times the field's ratio, exact where there is none."""
    if job.field_ratio is None or not len(world):
        return area_ha(gpd.GeoSeries(world, crs=job.grid.crs)).to_numpy()
    unit = job.grid.metres_per_unit or np.nan
    ratio = job.field_ratio[np.maximum(fidx, 0)]
    areas = shapely.area(world) * unit * unit / 1e4 * ratio
    exact = ~np.isfinite(areas)  # a geographic CRS, or a field without a usable ratio
    if exact.any():
        areas[exact] = area_ha(gpd.GeoSeries(world[exact], crs=job.grid.crs)).to_numpy()
    return areas


def _in_crs(fields: gpd.GeoDataFrame, crs) -> gpd.GeoSeries:
    return fields.geometry if fields.crs == crs else fields.geometry.to_crs(crs)


def _strips(row_chunks: tuple[int, ...], rows: int) -> list[range]:
    """Consecutive chunk rows grouped into strips of at least ``rows`` pixel rows."""
    strips, start, height = [], 0, 0
    for i, h in enumerate(row_chunks):
        height += h
        if height >= rows or i == len(row_chunks) - 1:
            strips.append(range(start, i + 1))
            start, height = i + 1, 0
    return strips


def _finish(job: _Job, pieces: _Pieces, class_names: Mapping[int, str] | None) -> gpd.GeoDataFrame:
    """Merge pieces across seams; areas, minimum area, order, CRS coordinates, columns."""
    grid = job.grid
    geoms, codes, fidx = _merge_seams(*pieces, connectivity=job.connectivity)
    world = _to_world(geoms, grid.pixel_to_world)
    areas = _areas_ha(world, fidx, job)
    keep_rows = areas >= job.min_area_ha
    bounds = shapely.bounds(geoms)
    order = np.lexsort((-areas, bounds[:, 0], -bounds[:, 3], codes, fidx))
    order = order[keep_rows[order]]
    geoms = world[order]
    codes, fidx, areas = codes[order], fidx[order], areas[order]
    if job.simplify is not None and len(geoms):
        # Cleaning first makes shared edges vertex-identical (coverage_simplify requires it:
        # a neighbour's vertex may lie mid-edge, e.g. where a field border cuts pixel edges).
        geoms = shapely.coverage_clean(geoms)
        geoms = shapely.coverage_simplify(geoms, job.simplify / grid.metres_per_unit)

    if class_names is None:
        # imported here: agrivision.health imports this module
        from agrivision.health.schema import DEFAULT_SCHEMA

        class_names = DEFAULT_SCHEMA.labels
    names = class_names
    columns = {
        "class": codes.astype(np.int32),
        "class_name": pd.array([names.get(int(c)) for c in codes], dtype="string"),
        "area_ha": areas,
    }
    if job.field_ids is not None:
        columns = {"field_id": job.field_ids.take(fidx).to_numpy(), **columns}
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=grid.crs))


# --------------------------------------------------------------------------- the grid


class _Grid:
    """CRS, pixel-space transform, nodata and linear unit of the class raster."""

    def __init__(self, classes: xr.DataArray):
        if classes.rio.crs is None:
            raise MissingCRSError(
                "the class raster has no CRS",
                source=classes.name or "classes",
                fix="set one with classes.rio.write_crs(...)",
            )
        self.crs = crs = CRS.from_user_input(classes.rio.crs)
        self.transform: Affine = classes.rio.transform(recalc=True)
        # World coordinates of pixel space (x = column, y = -row).
        self.pixel_to_world: Affine = self.transform @ Affine.scale(1, -1)
        nodata = classes.rio.nodata
        self.nodata = None if nodata is None or np.isnan(nodata) else int(nodata)
        # None for geographic CRSs (simplification needs a tolerance in metres).
        self.metres_per_unit = crs.axis_info[0].unit_conversion_factor if crs.is_projected else None


def _class_blocks(classes: xr.DataArray) -> da.Array:
    """The raster as a 2-D dask array (a numpy-backed raster becomes one chunk)."""
    if "band" in classes.dims and classes.sizes["band"] == 1:
        classes = classes.squeeze("band", drop=True)
    if classes.ndim != 2:
        raise GridError(
            f"the class raster has dims {classes.dims}, expected (y, x)",
            source=classes.name or "classes",
            fix="vectorise one date or band at a time, e.g. classes.isel(time=-1)",
        )
    ydim, xdim = classes.rio.y_dim, classes.rio.x_dim
    return da.asarray(classes.transpose(ydim, xdim).data)


def _classes_to_keep(classes_to_keep: Sequence[int] | None, nodata: int | None) -> list[int]:
    if classes_to_keep is None:
        return []
    keep = sorted({int(c) for c in classes_to_keep})
    bad = [c for c in keep if c == 0 or c == nodata]
    if bad:
        raise ConfigError(
            f"classes_to_keep contains {bad}, which is background/nodata",
            source="vectorize",
            fix="leave 0 and the nodata value out; they are never vectorised",
        )
    return keep


def _to_pixels(geoms: np.ndarray, pixel_to_world: Affine) -> np.ndarray:
    """CRS coordinates to pixel space (x = column, y = -row)."""
    return _affine(geoms, ~pixel_to_world)


def _to_world(geoms: np.ndarray, pixel_to_world: Affine) -> np.ndarray:
    """Pixel space to CRS coordinates."""
    return _affine(geoms, pixel_to_world)


def _affine(geoms: np.ndarray, t: Affine) -> np.ndarray:
    # Column arithmetic: 9x faster than ``xy @ matrix.T`` on (n, 2) arrays.
    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack((t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f))

    return shapely.transform(geoms, apply)


def _fields_in_pixels(fields: gpd.GeoDataFrame, grid: _Grid) -> tuple[np.ndarray, pd.Series]:
    """Valid field polygons in pixel space, and their ids (same order)."""
    if "field_id" not in fields.columns:
        raise FieldsError(
            "no 'field_id' column", source="fields", fix="read them with read_fields()"
        )
    if not fields["field_id"].is_unique:
        raise FieldsError(
            "'field_id' values are not unique", source="fields", fix="give each field its own id"
        )
    if fields.crs is None:
        raise MissingCRSError("fields have no CRS", source="fields", fix="set one with set_crs()")
    if fields.crs != grid.crs:
        fields = fields.to_crs(grid.crs)
    geoms = shapely.make_valid(fields.geometry.to_numpy())
    geoms = shapely.get_parts(geoms, return_index=True)
    polygonal = shapely.get_type_id(geoms[0]) == shapely.GeometryType.POLYGON
    # Re-assemble each field from its polygonal parts (make_valid may add lines/points).
    parts, owner = geoms[0][polygonal], geoms[1][polygonal]
    clean = np.full(len(fields), None, dtype=object)
    single = np.bincount(owner, minlength=len(fields)) == 1
    clean[owner[single[owner]]] = parts[single[owner]]
    for i in np.flatnonzero(np.bincount(owner, minlength=len(fields)) > 1):
        clean[i] = shapely.union_all(parts[owner == i])
    return _to_pixels(clean, grid.pixel_to_world), fields["field_id"].reset_index(drop=True)


# --------------------------------------------------------------------------- per chunk


def _silence_memory_dataset_warning() -> None:
    """Ignore rasterio's warning about its own temporary dataset in ``features.shapes``.

    rasterio hides it with ``warnings.catch_warnings()``, which is not thread-safe: with dask
    threads (ours, or rioxarray's reads) it escapes at random. It never concerns the user's
    data. Added per call (``filterwarnings`` replaces its own duplicate) because test runners
    reset the filters around each test.
    """
    warnings.filterwarnings(
        "ignore",
        message="Dataset has no geotransform",
        category=NotGeoreferencedWarning,
        module=r"rasterio\.features",
    )


def _polygonise(job: _Job, rows: range) -> _Pieces:
    """Pieces of every chunk in the chunk rows ``rows`` (pixel space), with seam intervals."""
    data, field_px = job.data, job.field_px
    height, width = data.shape
    row_edges = np.cumsum((0, *data.chunks[0]))
    col_edges = np.cumsum((0, *data.chunks[1]))
    tasks = []
    for i in rows:
        for j in range(len(col_edges) - 1):
            r0, r1, c0, c1 = row_edges[i], row_edges[i + 1], col_edges[j], col_edges[j + 1]
            chunk_fields = None
            if job.field_tree is not None:
                window = shapely.box(c0, -r1, c1, -r0)
                hit = np.sort(job.field_tree.query(window, predicate="intersects"))
                if len(hit) == 0:
                    continue  # no field reaches into this chunk: nothing to read
                chunk_fields = (field_px[hit], hit)
            seams = (c0 > 0, r1 < height, c1 < width, r0 > 0)  # left, bottom, right, top
            tasks.append(
                dask.delayed(_chunk_pieces)(
                    job.blocks[i, j],
                    (r0, c0),
                    seams,
                    job.grid.nodata,
                    job.keep,
                    job.connectivity,
                    chunk_fields,
                )
            )
    return _Pieces.concat([_Pieces(*result) for result in dask.compute(*tasks)])


def _chunk_pieces(
    block: np.ndarray,
    offset: tuple[int, int],
    seams: tuple[bool, bool, bool, bool],
    nodata: int | None,
    keep: list[int],
    connectivity: int,
    chunk_fields: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Intervals]:
    """Polygonise one chunk (pixel space), clip to its fields, find where pieces meet seams."""
    geoms, codes = _shapes(block, offset, nodata, keep, connectivity)
    if chunk_fields is None:
        fidx = np.full(len(geoms), -1, dtype=np.int64)
    else:
        geoms, codes, fidx = _clip(geoms, codes, *chunk_fields, connectivity)
    r0, c0 = offset
    rows, cols = block.shape
    borders = (c0, r0 + rows, c0 + cols, r0)  # left, bottom, right, top (column / row)
    return geoms, codes, fidx, _seam_intervals(geoms, borders, seams, connectivity)


def _shapes(
    block: np.ndarray,
    offset: tuple[int, int],
    nodata: int | None,
    keep: list[int],
    connectivity: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Valid pixel-space polygons of the connected regions of one chunk, and their codes."""
    values = np.asarray(block)
    valid = np.ones(values.shape, dtype=bool)
    if values.dtype.kind == "f":
        valid = ~np.isnan(values)
        values = np.where(valid, values, 0)
    if values.dtype not in _SHAPES_DTYPES:
        values = values.astype(np.int32)
    valid &= values != 0
    if nodata is not None:
        valid &= values != nodata
    if keep:
        valid &= np.isin(values, keep)
    if not valid.any():
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    r0, c0 = offset
    found = rasterio.features.shapes(
        values, mask=valid, connectivity=connectivity, transform=Affine(1, 0, c0, 0, -1, -r0)
    )
    geoms, codes = _polygons(found)
    if connectivity == 8:
        # GDAL's 8-connected rings touch themselves at diagonal corners (invalid in OGC terms);
        # make_valid turns them into MultiPolygons of corner-joined parts, same area.
        bad = ~shapely.is_valid(geoms)
        geoms[bad] = shapely.make_valid(geoms[bad], method="structure")
    return geoms, codes


def _polygons(found) -> tuple[np.ndarray, np.ndarray]:
    """Shapely polygons from GeoJSON-like ``shapes`` output, built in vectorised calls.

    About 1.7x faster than ``shapely.geometry.shape`` per polygon (26k polygons: 0.7 s vs
    1.25 s), which matters because building geometries costs as much as polygonising.
    """
    rings, ring_sizes, poly_rings, codes = [], [], [], []
    for geojson, value in found:
        coords = geojson["coordinates"]
        poly_rings.append(len(coords))
        codes.append(value)
        for ring in coords:
            rings.append(np.asarray(ring, dtype=np.float64))
            ring_sizes.append(len(ring))
    ring_geoms = shapely.linearrings(
        np.concatenate(rings), indices=np.repeat(np.arange(len(ring_sizes)), ring_sizes)
    )
    geoms = shapely.polygons(ring_geoms, indices=np.repeat(np.arange(len(poly_rings)), poly_rings))
    return geoms, np.asarray(codes, dtype=np.int64)


def _clip(
    geoms: np.ndarray,
    codes: np.ndarray,
    fields: np.ndarray,
    field_index: np.ndarray,
    connectivity: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces of ``geoms`` inside each field: one per connected part, with the field index."""
    # Own copies: a field reaching into several chunks is shared by their tasks, and GEOS
    # prepared geometries build their indexes lazily, unsafely across threads (heap
    # corruption seen at random on the 10980² benchmark).
    fields = shapely.from_wkb(shapely.to_wkb(fields))
    pairs = shapely.STRtree(fields).query(geoms, predicate="intersects")
    g, f = pairs[0], pairs[1]
    shapely.prepare(fields)
    inside = shapely.covers(fields[f], geoms[g])
    clipped = geoms[g].copy()
    clipped[~inside] = shapely.intersection(geoms[g][~inside], fields[f][~inside])
    parts, pair = shapely.get_parts(clipped, return_index=True)
    # Intersections along a shared border add lines and points; keep areas above float noise.
    polygonal = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    candidates = parts[polygonal]
    width = 2 * shapely.area(candidates) / np.maximum(shapely.length(candidates), 1e-300)
    polygonal[polygonal] = width > _SLIVER_PX
    parts, pair = parts[polygonal], pair[polygonal]
    if connectivity == 8 and len(parts):
        # Parts of one clipped polygon that meet at a corner stay one (MultiPolygon) row.
        label = _components(parts, pair)
        parts, first = _union_groups(
            parts, label, union=lambda group, _: shapely.multipolygons(group)
        )
        pair = pair[first]
    return parts, codes[g[pair]], field_index[f[pair]]


# --------------------------------------------------------------------------- seams


class _Intervals(NamedTuple):
    """Where pieces lie on inner chunk borders, one row per stretch of border.

    ``line`` names a global border line (``2 * column`` for the vertical line at that column,
    ``2 * row + 1`` for the horizontal one), ``side`` is 0 for the piece left of / above the
    line, 1 for right of / below, and ``lo``..``hi`` the stretch along the line (pixels).
    """

    piece: np.ndarray
    line: np.ndarray
    side: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def empty(cls) -> _Intervals:
        return cls(_EMPTY_INTS, _EMPTY_INTS, _EMPTY_INTS, np.empty(0), np.empty(0))


class _Pieces(NamedTuple):
    """Polygon pieces (pixel space) with their class, field index (-1: none) and intervals."""

    geoms: np.ndarray
    codes: np.ndarray
    fidx: np.ndarray
    intervals: _Intervals

    @classmethod
    def empty(cls) -> _Pieces:
        return cls(_EMPTY_GEOMS, _EMPTY_INTS, _EMPTY_INTS, _Intervals.empty())

    @classmethod
    def concat(cls, parts: Sequence[_Pieces]) -> _Pieces:
        """One set of pieces, in order; interval piece ids renumbered to match."""
        if not parts:
            return cls.empty()
        start = np.cumsum([0, *(len(p.geoms) for p in parts[:-1])])
        intervals = [
            p.intervals._replace(piece=p.intervals.piece + s)
            for p, s in zip(parts, start, strict=True)
        ]
        return cls(
            np.concatenate([p.geoms for p in parts]),
            np.concatenate([p.codes for p in parts]),
            np.concatenate([p.fidx for p in parts]),
            _Intervals(*map(np.concatenate, zip(*intervals, strict=True))),
        )

    def take(self, mask: np.ndarray) -> _Pieces:
        """The pieces where ``mask``, in order, with their intervals (renumbered)."""
        new_id = np.cumsum(mask) - 1
        iv = self.intervals
        keep = mask[iv.piece]
        return _Pieces(
            self.geoms[mask],
            self.codes[mask],
            self.fidx[mask],
            _Intervals(
                new_id[iv.piece[keep]], iv.line[keep], iv.side[keep], iv.lo[keep], iv.hi[keep]
            ),
        )


def _seam_intervals(
    geoms: np.ndarray,
    borders: tuple[int, int, int, int],
    seams: tuple[bool, bool, bool, bool],
    connectivity: int,
) -> _Intervals:
    """The stretches of the chunk's inner borders covered by each piece's boundary."""
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    xy, vertex_of = shapely.get_coordinates(rings, return_index=True)
    piece = part_of[ring_of[vertex_of]]
    segment = vertex_of[:-1] == vertex_of[1:]  # consecutive vertices of one ring
    found = []
    # left, bottom, right, top: lines x = c0, y = -r1, x = c1, y = -r0 in pixel space
    for index, (border, inner) in enumerate(zip(borders, seams, strict=True)):
        if not inner:
            continue
        vertical = index % 2 == 0
        across, along = (0, 1) if vertical else (1, 0)
        on = np.abs(xy[:, across] - (border if vertical else -border)) < _SEAM_EPS
        both = segment & on[:-1] & on[1:]
        a, b = xy[:-1][both, along], xy[1:][both, along]
        lo, hi, who = np.minimum(a, b), np.maximum(a, b), piece[:-1][both]
        if connectivity == 8:
            # a piece may reach the line in a single vertex: a corner touch, a link with 8
            lo, hi, who = np.r_[lo, xy[on, along]], np.r_[hi, xy[on, along]], np.r_[who, piece[on]]
        line = 2 * border + (0 if vertical else 1)
        side = 1 if index in (0, 3) else 0  # the chunk lies right of its left border, etc.
        found.append(_Intervals(who, np.full(len(who), line), np.full(len(who), side), lo, hi))
    if not found:
        return _Intervals.empty()
    return _Intervals(*map(np.concatenate, zip(*found, strict=True)))


def _merge_seams(
    geoms: np.ndarray,
    codes: np.ndarray,
    fidx: np.ndarray,
    intervals: _Intervals,
    *,
    connectivity: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union pieces of the same class and field that continue across chunk borders.

    Two pieces continue each other when their stretches on one border line, from opposite
    sides, overlap (a shared edge); with 8-connectivity touching (a corner) is enough.
    Stretches are 1-D, so pairs come from an STRtree of degenerate boxes, without polygon
    predicates (which cost seconds on large polygons).
    """
    piece, line, side, lo, hi = intervals
    if len(piece) == 0:
        return geoms, codes, fidx
    key = (fidx[piece] + 1) * (int(codes.max()) + 1) + codes[piece]  # >= 0, -1 is no field
    group = np.unique(line * (int(key.max()) + 1) + key, return_inverse=True)[1]
    boxes = shapely.box(lo, group, hi, group)  # envelopes meet: same group, stretches meet
    low, high = np.flatnonzero(side == 0), np.flatnonzero(side == 1)
    i, j = shapely.STRtree(boxes[high]).query(boxes[low])
    a, b = low[i], high[j]
    if connectivity == 4:
        shared = np.minimum(hi[a], hi[b]) - np.maximum(lo[a], lo[b]) > _SEAM_EPS
        a, b = a[shared], b[shared]
    on_seam = np.unique(piece)
    n = len(on_seam)
    u, v = np.searchsorted(on_seam, piece[a]), np.searchsorted(on_seam, piece[b])
    graph = coo_array((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n))
    label = connected_components(graph, directed=False)[1]
    # Groups whose border stretches all end on pixel corners (no field cuts) become
    # edge-matched coverages once their border edges get a vertex at every pixel corner;
    # GEOS then dissolves them without noding: the whole merge takes 2.1 s instead of 3.7 s
    # with union_all (10980^2 benchmark, 36 chunks). Groups with field cuts (vertices not
    # exactly matched across the border) take union_all.
    cut = np.zeros(n, dtype=bool)
    cut[np.searchsorted(on_seam, piece[(lo != np.round(lo)) | (hi != np.round(hi))])] = True
    exact = (np.bincount(label) > 1) & (np.bincount(label, weights=cut) == 0)
    seam_geoms = geoms[on_seam]
    xs = np.unique(line[line % 2 == 0] // 2).astype(np.float64)  # border lines, pixel space
    ys = np.sort(-np.unique(line[line % 2 == 1] // 2).astype(np.float64))
    dense = exact[label]
    if dense.any():
        seam_geoms[dense] = _split_border_edges(seam_geoms[dense], xs, ys)
    merged, first = _union_groups(
        seam_geoms, label, union=lambda group, g: _dissolve(group, exact[g], xs, ys)
    )
    rest = np.ones(len(geoms), dtype=bool)
    rest[on_seam] = False
    return (
        np.concatenate([geoms[rest], merged]),
        np.concatenate([codes[rest], codes[on_seam][first]]),
        np.concatenate([fidx[rest], fidx[on_seam][first]]),
    )


def _dissolve(group: np.ndarray, exact: bool, xs: np.ndarray, ys: np.ndarray) -> shapely.Geometry:
    """Union of pieces that continue each other across chunk borders, holes kept.

    A piece's holes cannot reach its chunk border (a gap there is outside the piece), bar a
    corner touch, so merging cannot change them: they are taken off before the union and
    given back after it. GEOS then dissolves outlines only: 2.4 s instead of 37 s for the
    largest group of the 10980^2 benchmark (144 pieces, 2.1M vertices, 98,000 holes).
    ``exact``: the group is an edge-matched coverage (see ``_split_border_edges``).
    """
    parts = shapely.get_parts(group)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    bounds = shapely.bounds(rings)
    on_border = (
        _on_lines(bounds[:, 0], xs)
        | _on_lines(bounds[:, 2], xs)
        | _on_lines(bounds[:, 1], ys)
        | _on_lines(bounds[:, 3], ys)
    )
    free = np.r_[False, ring_of[1:] == ring_of[:-1]] & ~on_border  # holes off the borders
    outlines = shapely.polygons(rings[~free], indices=ring_of[~free])  # one per part
    merged = (shapely.coverage_union_all if exact else shapely.union_all)(outlines)
    if not free.any():
        return merged
    # Each hole goes to the merged polygon that holds its piece.
    out = shapely.get_parts(merged)
    inside = shapely.point_on_surface(outlines)
    which, holder = shapely.STRtree(out).query(inside, predicate="intersects")
    holder_of_part = np.empty(len(outlines), dtype=np.intp)
    holder_of_part[which] = holder
    hole_holder = holder_of_part[ring_of[free]]
    holes = rings[free]
    for target in np.unique(hole_holder):
        own = shapely.get_rings(out[target])
        extra = holes[hole_holder == target]
        out[target] = shapely.polygons(own[0], holes=np.concatenate([own[1:], extra]))
    return out[0] if len(out) == 1 else shapely.multipolygons(out)


def _on_lines(values: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Whether each value lies on one of the sorted ``lines`` (within ``_SEAM_EPS``)."""
    if len(lines) == 0:
        return np.zeros(len(values), dtype=bool)
    i = np.searchsorted(lines, values)
    below, above = lines[np.maximum(i - 1, 0)], lines[np.minimum(i, len(lines) - 1)]
    return np.minimum(np.abs(values - below), np.abs(values - above)) < _SEAM_EPS


def _split_border_edges(geoms: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pixel-space polygons with a vertex at every pixel corner of their edges on the vertical
    lines ``x in xs`` and horizontal lines ``y in ys`` (chunk borders; integer vertices)."""
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    xy, vertex_of = shapely.get_coordinates(rings, return_index=True)
    a, b = xy[:-1], xy[1:]
    same = vertex_of[:-1] == vertex_of[1:]
    vertical = same & (a[:, 0] == b[:, 0]) & np.isin(a[:, 0], xs)
    horizontal = same & (a[:, 1] == b[:, 1]) & np.isin(a[:, 1], ys)
    along = np.r_[vertical.astype(np.intp), 0]  # the coordinate that changes along the edge
    delta = np.r_[(b - a)[np.arange(len(a)), along[:-1]], 0.0]
    extra = np.where(np.r_[vertical | horizontal, False], np.abs(delta) - 1, 0)
    counts = 1 + np.maximum(extra, 0).astype(np.intp)  # each vertex, then the corners after it
    out = np.repeat(xy, counts, axis=0)
    source = np.repeat(np.arange(len(xy)), counts)
    k = np.arange(len(out)) - np.repeat(np.cumsum(counts) - counts, counts)
    out[np.arange(len(out)), along[source]] += np.sign(delta)[source] * k
    rings = shapely.linearrings(out, indices=np.repeat(vertex_of, counts))
    return shapely.multipolygons(shapely.polygons(rings, indices=ring_of), indices=part_of)


def _components(geoms: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Connected-component label of each geometry; geometries link if they touch, same key."""
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    link = (left < right) & (key[left] == key[right])
    n = len(geoms)
    graph = coo_array((np.ones(link.sum(), dtype=np.int8), (left[link], right[link])), (n, n))
    return connected_components(graph, directed=False)[1]


def _union_groups(geoms: np.ndarray, label: np.ndarray, *, union) -> tuple[np.ndarray, np.ndarray]:
    """One geometry per label (``union(members, label)``) and the index of each group's first.

    ``label`` must number the groups 0..n-1 (as connected components do)."""
    order = np.argsort(label, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(label[order]) != 0])
    sizes = np.diff(np.r_[starts, len(order)])
    out = geoms[order[starts]].copy()
    for g in np.flatnonzero(sizes > 1):
        out[g] = union(geoms[order[starts[g] : starts[g] + sizes[g]]], g)
    return out, order[starts]
