"""Class rasters to polygons: one row per connected area of a class (per field), seams merged.

How it stays exact and memory-bounded:

* every dask chunk is polygonised on its own, in pixel space, and clipped to the fields that
  reach into it (:mod:`agrivision.fields.polygonize`); only one chunk per worker thread is in
  memory, areas are exact pixel counts, and geometries go to the raster CRS once, at the end;
* pieces that reach an inner chunk border are merged with their continuation on the other
  side (:mod:`agrivision.fields.seams`); holes are kept;
* :func:`vectorize_batches` does the same in strips of chunk rows, top to bottom, and hands
  over the polygons of every field that ends in a strip as soon as the strip is done, so
  no more than a strip's polygons (and those of fields crossing into the next) are held.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS

from agrivision.errors import ConfigError, FieldsError, GridError
from agrivision.fields.polygonize import ClassChunks, polygonise
from agrivision.fields.prepare import prepare_fields
from agrivision.fields.seams import SEAM_EPS, Pieces, merge_seams
from agrivision.grid import grid_of, metres_per_unit, transform_geometries
from agrivision.io.fields import geodesic_ratio, local_area_ha

#: Output columns (``field_id`` only when fields are given).
COLUMNS = ("field_id", "class", "class_name", "area_ha", "geometry")


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
        ``fields``), ``class``, ``class_name``, ``area_ha`` (hectares on the WGS84 ellipsoid
        whatever the CRS, within 3e-8 of the geodesic area for polygons up to 2 km:
        :func:`agrivision.io.fields.local_area_ha`), ``geometry`` in the raster CRS. Sorted
        by field (input order), class, then top-left position. Empty (with a warning) when nothing is found.

    Raises
    ------
    MissingCRSError
        The raster (or the fields) has no CRS.
    GridError
        The raster is not 2-D, or its grid is rotated.
    ConfigError
        Invalid ``connectivity``, ``classes_to_keep``, ``min_area_ha`` or ``simplify``.
    FieldsError, InvalidGeometryError
        Fields that :func:`agrivision.fields.prepare.prepare_fields` refuses (no unique
        ``field_id``, null, empty or non-polygonal geometries).
    """
    inputs = _CheckedInputs(classes, fields, classes_to_keep, min_area_ha, simplify, connectivity)
    pieces = polygonise(inputs.source, range(len(inputs.source.chunks[0])))
    out = _finish(inputs, pieces, class_names)
    if out.empty:
        warnings.warn(inputs.empty_message(), UserWarning, stacklevel=2)
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
    inputs = _CheckedInputs(classes, fields, classes_to_keep, min_area_ha, simplify, connectivity)
    row_edges = np.cumsum((0, *inputs.source.chunks[0]))
    strips = _strips(inputs.source.chunks[0], rows if simplify is None else inputs.shape[0])
    bottom = -shapely.bounds(inputs.field_px)[:, 1]  # pixel row where each field ends
    pending = Pieces.empty()
    found = 0
    for k, strip in enumerate(strips):
        pieces = Pieces.concat([pending, polygonise(inputs.source, strip)])
        done = bottom[pieces.fidx] <= row_edges[strip.stop] + SEAM_EPS
        if k == len(strips) - 1:
            done[:] = True
        pending = pieces.take(~done)
        out = _finish(inputs, pieces.take(done), class_names)
        found += len(out)
        if len(out) or (k == len(strips) - 1 and not found):
            yield out
    if not found:
        warnings.warn(inputs.empty_message(), UserWarning, stacklevel=2)


class _CheckedInputs:
    """A vectorize call's inputs, checked: grid, class blocks, fields in pixel space, options."""

    def __init__(
        self,
        classes: xr.DataArray,
        fields: gpd.GeoDataFrame | None,
        classes_to_keep: Sequence[int] | None,
        min_area_ha: float,
        simplify: float | None,
        connectivity: int,
    ):
        grid = grid_of(classes)
        # The raster's own CRS object for the output (the grid's is a normalised copy).
        self.crs = CRS.from_user_input(classes.rio.crs)
        # World coordinates of pixel space (x = column, y = -row).
        self.pixel_to_world: Affine = grid.affine @ Affine.scale(1, -1)
        self.metres_per_unit = metres_per_unit(grid)
        nodata = classes.rio.nodata
        nodata = None if nodata is None or np.isnan(nodata) else int(nodata)
        data = _class_blocks(classes)
        self.shape = data.shape
        keep = _classes_to_keep(classes_to_keep, nodata)
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
        if simplify is not None and self.metres_per_unit is None:
            raise ConfigError(
                "simplify is in metres but the raster CRS is geographic",
                source="vectorize",
                fix="reproject the class raster to a projected CRS, or pass simplify=None",
            )
        self.keep, self.min_area_ha, self.simplify = keep, min_area_ha, simplify
        # In CRS units; metres_per_unit is known whenever simplify is given (checked above).
        self.simplify_tolerance = simplify / (self.metres_per_unit or 1.0) if simplify else None
        self.connectivity = connectivity
        self.n_fields = None if fields is None else len(fields)
        self.field_px: np.ndarray | None = None
        self.field_ids: pd.Series | None = None
        # Polygons are clipped to their field: the field's geodesic/planar ratio turns their
        # planar areas into geodesic ones without a geodesic computation per polygon.
        self.field_ratio: np.ndarray | None = None
        if fields is not None:
            prepared = prepare_fields(fields, self.crs)
            self.field_px = transform_geometries(prepared.geometry.to_numpy(), ~self.pixel_to_world)
            self.field_ids = prepared["field_id"]
            self.field_ratio = geodesic_ratio(prepared)
        self.source = ClassChunks(
            blocks=data.to_delayed(),  # computed strip by strip from one optimised graph
            chunks=(data.chunks[0], data.chunks[1]),
            nodata=nodata,
            keep=keep,
            connectivity=connectivity,
            field_px=self.field_px,
            field_tree=None if self.field_px is None else shapely.STRtree(self.field_px),
        )

    def empty_message(self) -> str:
        what = f"classes {self.keep}" if self.keep else "any class but 0/nodata"
        where = "" if self.n_fields is None else f" inside the {self.n_fields} field(s)"
        height, width = self.shape
        if (
            self.field_px is not None
            and not shapely.intersects(shapely.box(0, -height, width, 0), self.field_px).any()
        ):
            where = f": none of the {self.n_fields} field(s) overlaps the raster (check the CRS)"
        return (
            f"vectorize: no polygons of {what}{where} with min_area_ha={self.min_area_ha}; "
            "the output is empty"
        )


def _areas_ha(world: np.ndarray, fidx: np.ndarray, inputs: _CheckedInputs) -> np.ndarray:
    """Ellipsoidal areas (ha): planar area times the field's ratio, or over the areal scale
    at the polygon where there is none."""
    if inputs.field_ratio is None or not len(world):
        return local_area_ha(world, inputs.crs)
    unit = inputs.metres_per_unit or np.nan
    ratio = inputs.field_ratio[np.maximum(fidx, 0)]
    areas = shapely.area(world) * unit * unit / 1e4 * ratio
    exact = ~np.isfinite(areas)  # a geographic CRS, or a field without a usable ratio
    if exact.any():
        areas[exact] = local_area_ha(world[exact], inputs.crs)
    return areas


def _strips(row_chunks: tuple[int, ...], rows: int) -> list[range]:
    """Consecutive chunk rows grouped into strips of at least ``rows`` pixel rows."""
    strips, start, height = [], 0, 0
    for i, h in enumerate(row_chunks):
        height += h
        if height >= rows or i == len(row_chunks) - 1:
            strips.append(range(start, i + 1))
            start, height = i + 1, 0
    return strips


def _finish(
    inputs: _CheckedInputs, pieces: Pieces, class_names: Mapping[int, str] | None
) -> gpd.GeoDataFrame:
    """Merge pieces across seams; areas, minimum area, order, CRS coordinates, columns."""
    geoms, codes, fidx = merge_seams(*pieces, connectivity=inputs.connectivity)
    world = transform_geometries(geoms, inputs.pixel_to_world)
    areas = _areas_ha(world, fidx, inputs)
    keep_rows = areas >= inputs.min_area_ha
    bounds = shapely.bounds(geoms)
    order = np.lexsort((-areas, bounds[:, 0], -bounds[:, 3], codes, fidx))
    order = order[keep_rows[order]]
    geoms = world[order]
    codes, fidx, areas = codes[order], fidx[order], areas[order]
    if inputs.simplify is not None and len(geoms):
        # Cleaning first makes shared edges vertex-identical (coverage_simplify requires it:
        # a neighbour's vertex may lie mid-edge, e.g. where a field border cuts pixel edges).
        geoms = shapely.coverage_clean(geoms)
        geoms = shapely.coverage_simplify(geoms, inputs.simplify_tolerance)

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
    if inputs.field_ids is not None:
        columns = {"field_id": inputs.field_ids.take(fidx).to_numpy(), **columns}
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=inputs.crs))


def _class_blocks(classes: xr.DataArray) -> da.Array:
    """The raster as a 2-D dask array (a numpy-backed raster becomes one chunk)."""
    if "band" in classes.dims and classes.sizes["band"] == 1:
        classes = classes.squeeze("band", drop=True)
    if classes.ndim != 2:
        raise GridError(
            f"the class raster has dims {classes.dims}, expected (y, x)",
            source=str(classes.name or "classes"),
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
