"""Class rasters polygonised chunk by chunk, in pixel space, clipped to the fields.

Every dask chunk is polygonised on its own (one task per chunk; 4-connected regions by the
GIL-free tracer of :mod:`agrivision.fields.trace`, 8-connected ones by
:func:`rasterio.features.shapes`), so only one chunk per worker thread is ever in memory. Geometry stays in pixel space
(x = column, y = -row; y is negated because GDAL warns about an identity transform), so that
pieces of neighbouring chunks meet on integer seam lines (:mod:`agrivision.fields.seams`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any, NamedTuple

import dask
import numpy as np
import rasterio.features
import shapely
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from agrivision.fields.seams import Intervals, Pieces, components, seam_intervals, union_groups
from agrivision.fields.trace import label_polygons

# dtypes GDAL's polygoniser reads directly; other integer rasters are cast to int32.
_SHAPES_DTYPES = {np.dtype(t) for t in ("uint8", "int16", "uint16", "int32")}
# Pieces thinner than this (mean width 2 * area / perimeter, pixels) after clipping are
# floating-point noise, not areas: slivers left by field borders that run along pixel edges
# up to rounding (reprojection). Width, not area: such slivers can be thousands of pixels long.
_SLIVER_PX = 1e-6


class ClassChunks(NamedTuple):
    """What the chunk tasks need: the raster's blocks and chunking, the classes, the fields."""

    blocks: np.ndarray  # dask.delayed blocks of the 2-D class raster
    chunks: tuple[tuple[int, ...], tuple[int, ...]]
    nodata: int | None
    keep: list[int]  # class codes to polygonise; empty: all but 0 and nodata
    connectivity: int
    field_px: np.ndarray | None  # field polygons in pixel space
    field_tree: shapely.STRtree | None


def silence_memory_dataset_warning() -> None:
    """Ignore rasterio's warning about its own temporary dataset in ``features.shapes`` (and
    ``rasterize`` on a pixel grid).

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


def polygonise(source: ClassChunks, rows: range) -> Pieces:
    """Pieces of every chunk in the chunk rows ``rows`` (pixel space), with seam intervals."""
    silence_memory_dataset_warning()
    field_px = source.field_px
    height, width = (sum(c) for c in source.chunks)
    row_edges = np.cumsum((0, *source.chunks[0]))
    col_edges = np.cumsum((0, *source.chunks[1]))
    tasks = []
    for i in rows:
        for j in range(len(col_edges) - 1):
            r0, r1, c0, c1 = row_edges[i], row_edges[i + 1], col_edges[j], col_edges[j + 1]
            chunk_fields = None
            if source.field_tree is not None and field_px is not None:
                window = shapely.box(c0, -r1, c1, -r0)
                hit = np.sort(source.field_tree.query(window, predicate="intersects"))
                if len(hit) == 0:
                    continue  # no field reaches into this chunk: nothing to read
                chunk_fields = (field_px[hit], hit)
            seams = (c0 > 0, r1 < height, c1 < width, r0 > 0)  # left, bottom, right, top
            tasks.append(
                dask.delayed(_chunk_pieces)(
                    source.blocks[i, j],
                    (r0, c0),
                    seams,
                    source.nodata,
                    source.keep,
                    source.connectivity,
                    chunk_fields,
                )
            )
    return Pieces.concat([Pieces(*result) for result in dask.compute(*tasks)])


def _chunk_pieces(
    block: np.ndarray,
    offset: tuple[int, int],
    seams: tuple[bool, bool, bool, bool],
    nodata: int | None,
    keep: list[int],
    connectivity: int,
    chunk_fields: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Intervals]:
    """Polygonise one chunk (pixel space), clip to its fields, find where pieces meet seams."""
    geoms, codes = _shapes(block, offset, nodata, keep, connectivity)
    if chunk_fields is None:
        fidx = np.full(len(geoms), -1, dtype=np.int64)
    else:
        geoms, codes, fidx = _clip(geoms, codes, *chunk_fields, connectivity)
    r0, c0 = offset
    rows, cols = block.shape
    borders = (c0, r0 + rows, c0 + cols, r0)  # left, bottom, right, top (column / row)
    return geoms, codes, fidx, seam_intervals(geoms, borders, seams, connectivity)


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
    transform = Affine(1, 0, c0, 0, -1, -r0)
    if connectivity == 4:
        geoms, codes = label_polygons(values, transform, valid)
        return geoms, codes.astype(np.int64)
    found = rasterio.features.shapes(values, mask=valid, connectivity=8, transform=transform)
    geoms, codes = _polygons(found)
    # GDAL's 8-connected rings touch themselves at diagonal corners (invalid in OGC terms);
    # make_valid turns them into MultiPolygons of corner-joined parts, same area.
    bad = ~shapely.is_valid(geoms)
    geoms[bad] = shapely.make_valid(geoms[bad], method="structure")
    return geoms, codes


def _polygons(found: Iterable[tuple[dict[str, Any], float]]) -> tuple[np.ndarray, np.ndarray]:
    """Shapely polygons from GeoJSON-like ``shapes`` output, built in vectorised calls.

    Faster than ``shapely.geometry.shape`` per polygon, which matters because building
    geometries costs as much as polygonising.
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
    # corruption seen at random on a full Sentinel-2 tile).
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
        label = components(parts, pair)
        parts, first = union_groups(
            parts, label, union=lambda group, _: shapely.multipolygons(group)
        )
        pair = pair[first]
    return parts, codes[g[pair]], field_index[f[pair]]
