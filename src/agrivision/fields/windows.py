"""The fields of a lazy raster in bands of rows, each field whole, for work that needs every pixel of a field at once.

A sieve or a per-field classification must see every pixel of a field, whatever the dask
chunks; a chunk-by-chunk pass cannot give it that. :func:`field_bands` reads the raster one
chunk row at a time (full width, every chunk once) and hands over the fields that end in that
row with the band of rows that holds them all. Chunk rows stay in memory only while a field
that still has to be handed over reaches into them, so memory is bounded by the chunk size
and by the tallest field, never by the scene.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
import xarray as xr
from affine import Affine

from agrivision.fields.polygonize import silence_memory_dataset_warning
from agrivision.fields.prepare import prepare_fields
from agrivision.fields.rasterize import field_raster, geojson_like, ids_to_codes
from agrivision.grid import grid_of


@dataclass(frozen=True)
class FieldBand:
    """A band of raster rows and the fields handed over with it.

    ``values`` is the raster's ``(..., height, width)`` band (:class:`Rows`), ``codes`` the
    field code of each pixel whose centre lies in a field (0: none; where fields overlap, the
    later one, as :func:`~agrivision.fields.rasterize.field_raster` burns them); fields of
    other bands appear in it too. ``positions``, ``field_ids``, ``geometries`` (raster CRS) and
    ``field_codes`` describe the band's own fields, ``bounds`` their touched pixels
    (``row0, row1, col0, col1`` in band pixels); ``transform`` maps band pixels to the CRS.
    """

    positions: np.ndarray
    field_ids: np.ndarray
    geometries: np.ndarray
    field_codes: np.ndarray
    bounds: np.ndarray
    values: Rows
    codes: Rows
    transform: Affine

    def split(self, max_pixels: int) -> Iterator[FieldBand]:
        """The band's fields in groups whose windows add up to at most ``max_pixels`` pixels
        (a larger field alone), in order: work on one group at a time needs memory bounded
        by ``max_pixels``, not by the width of the raster."""
        b = self.bounds
        area = (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2])
        start, total = 0, 0
        for k, a in enumerate(area.tolist()):
            if total and total + a > max_pixels:
                yield self._subset(slice(start, k))
                start, total = k, 0
            total += a
        yield self._subset(slice(start, len(area)))

    def _subset(self, which: slice) -> FieldBand:
        return FieldBand(
            self.positions[which], self.field_ids[which], self.geometries[which],
            self.field_codes[which], self.bounds[which], self.values, self.codes,
            self.transform,
        )  # fmt: skip


def field_bands(raster: xr.DataArray, fields: gpd.GeoDataFrame) -> Iterator[FieldBand]:
    """Every field that overlaps ``raster``, whole, in bands of rows (one per chunk row).

    Parameters
    ----------
    raster
        ``(y, x)`` or ``(time, y, x)`` raster with a CRS (dask-backed or numpy).
    fields
        Field polygons with a unique ``field_id``, any CRS (reprojected to the raster's).

    Yields
    ------
    FieldBand
        The fields whose last touched pixel row lies in one chunk row, in input order, with
        the rows and columns that all of them touch; bands come top to bottom. Fields that
        touch no pixel of the raster are left out.
    """
    # before any thread rasterises: rasterio's own catch_warnings on one thread would undo it
    silence_memory_dataset_warning()
    grid = grid_of(raster)
    prepared = prepare_fields(fields, raster.rio.crs)
    data = raster.data if isinstance(raster.data, da.Array) else da.from_array(raster.data)
    height, width = grid.shape
    bounds = _pixel_bounds(prepared.geometry.to_numpy(), grid.affine, height, width)
    row_edges = np.cumsum((0, *data.chunks[-2]))
    present = np.flatnonzero((bounds[:, 1] > bounds[:, 0]) & (bounds[:, 3] > bounds[:, 2]))
    first = np.searchsorted(row_edges, bounds[present, 0], side="right") - 1
    last = np.searchsorted(row_edges, bounds[present, 1] - 1, side="right") - 1
    n_rows = len(row_edges) - 1
    # the top chunk row still needed by a field handed over in chunk row k or later
    keep_from = np.full(n_rows + 1, n_rows)
    np.minimum.at(keep_from, last, first)
    keep_from = np.minimum.accumulate(keep_from[::-1])[::-1]
    fid = field_raster(prepared, raster)
    codes = ids_to_codes(fid, prepared["field_id"].to_numpy())
    fid_data = fid.data.rechunk(data.chunks[-2:])
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    ids = prepared["field_id"].to_numpy()
    geoms = prepared.geometry.to_numpy()
    for k in range(n_rows):
        batch = present[last == k]
        if not len(batch):
            continue
        for j in range(int(keep_from[k]), k + 1):
            if j not in cache:
                rows = slice(row_edges[j], row_edges[j + 1])
                cache[j] = dask.compute(data[..., rows, :], fid_data[rows, :])
        box = bounds[batch]
        r0, r1 = int(box[:, 0].min()), int(box[:, 1].max())
        c0, c1 = int(box[:, 2].min()), int(box[:, 3].max())
        values = _window([c[0] for c in cache.values()], cache, row_edges, r0, r1, c0, c1)
        inside = _window([c[1] for c in cache.values()], cache, row_edges, r0, r1, c0, c1)
        yield FieldBand(
            positions=batch, field_ids=ids[batch], geometries=geoms[batch],
            field_codes=np.asarray(codes)[batch], bounds=box - np.array([r0, r0, c0, c0]),
            values=values, codes=inside, transform=grid.affine @ Affine.translation(c0, r0),
        )  # fmt: skip
        for j in [j for j in cache if j < keep_from[k + 1]]:
            del cache[j]


def _window(arrays: list, cache: dict, row_edges: np.ndarray, r0, r1, c0, c1) -> Rows:
    """Rows r0..r1, columns c0..c1 of the cached chunk rows (``arrays`` in ``cache`` order)."""
    pieces = [
        a[
            ...,
            max(r0, row_edges[j]) - row_edges[j] : min(r1, row_edges[j + 1]) - row_edges[j],
            c0:c1,
        ]
        for j, a in zip(cache, arrays, strict=True)
        if row_edges[j] < r1 and row_edges[j + 1] > r0
    ]
    return Rows(tuple(pieces))


@dataclass(frozen=True)
class Rows:
    """A ``(..., height, width)`` raster kept as consecutive blocks of rows (views of the chunk
    rows read), read by rectangle: a band of rows is never copied whole."""

    blocks: tuple[np.ndarray, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        first = self.blocks[0]
        return (*first.shape[:-2], sum(b.shape[-2] for b in self.blocks), first.shape[-1])

    @property
    def dtype(self) -> np.dtype:
        return self.blocks[0].dtype

    def rect(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Rows ``r0..r1`` and columns ``c0..c1`` (a view where one block holds them)."""
        out, top = [], 0
        for b in self.blocks:
            lo, hi = max(r0 - top, 0), min(r1 - top, b.shape[-2])
            if lo < hi:
                out.append(b[..., lo:hi, c0:c1])
            top += b.shape[-2]
        return out[0] if len(out) == 1 else np.concatenate(out, axis=-2)


def _pixel_bounds(geoms: np.ndarray, affine: Affine, height: int, width: int) -> np.ndarray:
    """(row0, row1, col0, col1) of the pixels each geometry's bounding box touches, clipped."""
    b = shapely.bounds(geoms)
    inv = ~affine
    c0, r0 = inv @ (b[:, 0], b[:, 3])
    c1, r1 = inv @ (b[:, 2], b[:, 1])
    eps = 1e-9  # a border on a pixel edge does not touch the next pixel
    out = np.column_stack(
        (np.floor(r0 + eps), np.ceil(r1 - eps), np.floor(c0 + eps), np.ceil(c1 - eps))
    )
    out = np.nan_to_num(out, nan=0.0)
    out[:, :2] = np.clip(out[:, :2], 0, height)
    out[:, 2:] = np.clip(out[:, 2:], 0, width)
    return out.astype(np.int64)


@dataclass(frozen=True)
class PackedWindows:
    """The windows of a band's fields side by side on one canvas, each field on its own.

    A pixel the band shares between fields (an edge pixel of one, inside its neighbour)
    appears once per field, so every field can be worked on as if it were alone, and all of
    them in one pass over the canvas.

    ``values`` is the ``(..., height, width)`` canvas (NaN outside the windows), ``owner``
    the field (``1..m``, the band's order) whose window each pixel is in and that touches it
    (0 elsewhere), ``inside`` whether the pixel's centre lies in that field (as in
    :attr:`FieldBand.codes`); ``origin`` is ``(row, col)`` of each field's window on the
    canvas minus on the band, so band pixel = canvas pixel - origin; ``windows`` is
    ``(row0, row1, col0, col1)`` of each field's window on the canvas.
    """

    values: np.ndarray
    owner: np.ndarray
    inside: np.ndarray
    origin: np.ndarray
    windows: np.ndarray

    def to_band(self, geoms: np.ndarray, owner: np.ndarray, transform: Affine) -> np.ndarray:
        """Geometries in canvas pixel coordinates, each of field ``owner``, to the CRS."""
        _, index = shapely.get_coordinates(geoms, return_index=True)
        shift = self.origin[owner - 1][index]

        def move(xy: np.ndarray) -> np.ndarray:
            col, row = xy[:, 0] - shift[:, 1], xy[:, 1] - shift[:, 0]
            return np.column_stack(transform @ (col, row))

        return shapely.transform(geoms, move)

    def gather(self, which: np.ndarray) -> Gathered:
        """The windows of the fields ``which`` (``1..m``) laid out on a smaller canvas.

        Work on a few fields then costs their windows' pixels, not the whole canvas.
        """
        w = self.windows[which - 1]
        top, shape = _shelves(w[:, 1] - w[:, 0], w[:, 3] - w[:, 2])
        return Gathered(w, top, shape)


@dataclass(frozen=True)
class Gathered:
    """Windows of a canvas (``(row0, row1, col0, col1)`` each) moved to ``top`` (``(row,
    col)``) on a canvas of ``shape``."""

    windows: np.ndarray
    top: np.ndarray
    shape: tuple[int, int]

    def take(self, canvas: np.ndarray, fill: float | int = 0) -> np.ndarray:
        """The windows' pixels of ``canvas`` on the new canvas (``fill`` between them)."""
        out = np.full(self.shape, fill, canvas.dtype)
        for (r0, r1, c0, c1), (y, x) in zip(self.windows.tolist(), self.top.tolist(), strict=True):
            out[y : y + r1 - r0, x : x + c1 - c0] = canvas[r0:r1, c0:c1]
        return out

    def put(self, canvas: np.ndarray, values: np.ndarray, where: np.ndarray) -> None:
        """Copy ``values`` (new canvas) back onto ``canvas`` where ``where`` (new canvas)."""
        for (r0, r1, c0, c1), (y, x) in zip(self.windows.tolist(), self.top.tolist(), strict=True):
            rows, cols = slice(y, y + r1 - r0), slice(x, x + c1 - c0)
            np.copyto(canvas[r0:r1, c0:c1], values[rows, cols], where=where[rows, cols])


def pack_windows(band: FieldBand) -> PackedWindows:
    """The windows of ``band``'s fields packed on one canvas (shelves, tallest first).

    Parameters
    ----------
    band
        A band of :func:`field_bands`.

    Returns
    -------
    PackedWindows
        About the fields' bounding-box area in pixels, whatever their arrangement.
    """
    b = band.bounds
    heights, widths = b[:, 1] - b[:, 0], b[:, 3] - b[:, 2]
    top, shape = _shelves(heights, widths)
    origin = top - b[:, [0, 2]]
    values = np.full(band.values.shape[:-2] + shape, np.nan, band.values.dtype)
    inside = np.zeros(shape, bool)
    slot = np.zeros(shape, np.int32)
    for k, (r0, r1, c0, c1) in enumerate(b):
        rows = slice(r0 + origin[k, 0], r1 + origin[k, 0])
        cols = slice(c0 + origin[k, 1], c1 + origin[k, 1])
        values[..., rows, cols] = band.values.rect(r0, r1, c0, c1)
        inside[rows, cols] = band.codes.rect(r0, r1, c0, c1) == band.field_codes[k]
        slot[rows, cols] = k + 1
    # each field drawn in canvas pixels on its own window, cut to it at the raster's edges
    _, index = shapely.get_coordinates(band.geometries, return_index=True)
    inverse = ~band.transform

    def to_canvas(xy: np.ndarray) -> np.ndarray:
        col, row = inverse @ (xy[:, 0], xy[:, 1])
        return np.column_stack((col + origin[index, 1], row + origin[index, 0]))

    drawn = shapely.transform(band.geometries, to_canvas)
    box = shapely.box(
        b[:, 2] + origin[:, 1], b[:, 0] + origin[:, 0], b[:, 3] + origin[:, 1],
        b[:, 1] + origin[:, 0],
    )  # fmt: skip
    outside = ~shapely.contains_properly(box, drawn)
    drawn[outside] = shapely.intersection(drawn[outside], box[outside])
    silence_memory_dataset_warning()  # the canvas is a pixel grid: no transform is expected
    owner = rasterio.features.rasterize(
        zip(geojson_like(drawn), range(1, len(b) + 1), strict=True), out_shape=shape,
        all_touched=True, dtype=np.int32,
    )  # fmt: skip
    owner = np.where(owner == slot, owner, 0)
    inside &= owner > 0
    windows = np.column_stack((top[:, 0], top[:, 0] + heights, top[:, 1], top[:, 1] + widths))
    return PackedWindows(values, owner, inside, origin, windows)


def _shelves(heights: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Top-left ``(row, col)`` of rectangles laid on shelves (tallest first), and the shape.

    The canvas is about square (its width the square root of the rectangles' area, or the
    widest one): a canvas as wide as the raster would leave most of each shelf empty, and
    every pass over the canvas pays for its empty pixels. One empty pixel separates
    rectangles: a border on a pixel edge may burn the next pixel.
    """
    area = float(np.sum((heights + 1) * (widths + 1)))
    width = max(int(widths.max()), math.ceil(math.sqrt(area)))
    top = np.zeros((len(heights), 2), np.int64)
    x = y = shelf = 0
    for k in np.argsort(-heights, kind="stable"):
        if x + widths[k] > width:
            x, y, shelf = 0, y + shelf + 1, 0
        top[k] = y, x
        x, shelf = x + widths[k] + 1, max(shelf, heights[k])
    return top, (int(y + shelf), width)
