"""The data of the report's interactive map: vector layers and raster overlays, ready to embed.

Leaflet shows lon/lat on Web Mercator, so vectors are reprojected to EPSG:4326 and rasters
warped to EPSG:3857 (where an image overlay is placed exactly by its corners). Shapes are
simplified for display with a tolerance of one screen pixel at the map's deepest zoom
(:func:`display_zoom`), each shape kept valid (Douglas-Peucker with topology preserved), and
coordinates are sent as integers of 1e-6 degree (about 0.1 m), delta-encoded per ring: the
page decodes them (``report.js``).
"""

from __future__ import annotations

import base64
import io
import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pyogrio.raw
import rasterio
import shapely
from PIL import Image
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from agrivision.fields.coverage import group_coverage, pixel_rings
from agrivision.health.schema import ClassSchema
from agrivision.report.palette import (
    INDEX_RANGE,
    PATCH_COLOUR,
    SHARE_RAMP,
    ZONE_SHADES,
    hex_rgb,
    ramp_rgb,
    zone_colours,
    zone_shade,
)

#: Longest side (pixels) of a raster overlay: the scene's overviews are read at this size.
MAP_RASTER_PX = 2048
#: A zones or problems layer with more vertices than this is sent as an image (rasterised at
#: :data:`DENSE_RASTER_PX`): as vectors, a full tile's hundreds of thousands of polygons
#: would take about 100 MB of page and minutes of drawing.
MAX_LAYER_VERTICES = 1_000_000
#: Longest side (pixels) of a zones or problems layer sent as an image.
DENSE_RASTER_PX = 4096
#: Screen pixels that one scene pixel spans at the deepest zoom.
MAX_ZOOM_PIXELS = 8
#: Coordinates are integers of this many degrees.
QUANTUM_DEG = 1e-6
#: Web Mercator metres per screen pixel at zoom 0 on the equator (256-pixel tiles).
_ZOOM0_M = 156543.03392804097
_WEB_MERCATOR = CRS.from_epsg(3857)
#: Map layers made at once (each on a thread of its own).
LAYER_THREADS = 2
_BATCH = 50_000  # features per read from the GeoPackage: bounds memory on a full tile
_BURN_CELLS = 2**21  # bounding-box cells burnt at once (32 MB of coverage arrays)
_INDEX_COLOURS = 254  # palette entries of the index overlay (0 is transparent)
_NO_SHARE = 255  # palette entry of a grid cell without a valid pixel (grey)


def display_zoom(resolution_m: float, latitude: float) -> tuple[int, float]:
    """The map's deepest zoom and the display tolerance in metres.

    Parameters
    ----------
    resolution_m
        Scene pixel size in metres (projected CRS).
    latitude
        Latitude of the scene centre in degrees (Web Mercator's scale depends on it).

    Returns
    -------
    (int, float)
        The zoom at which one scene pixel spans at least :data:`MAX_ZOOM_PIXELS` screen
        pixels, and the ground size of one screen pixel there (metres): shapes simplified
        within it differ from the originals by less than a pixel at any zoom.
    """
    ground = _ZOOM0_M * math.cos(math.radians(latitude))
    zoom = max(0, math.ceil(math.log2(ground * MAX_ZOOM_PIXELS / resolution_m)))
    return zoom, ground / 2**zoom


def vector_layer(frame: gpd.GeoDataFrame, columns: list[str], tolerance_m: float) -> dict[str, Any]:
    """One layer, simplified within ``tolerance_m`` (``frame``'s CRS, metres) and encoded.

    Returns
    -------
    dict
        ``props`` (column -> list of values), ``xy`` (lat, lon integers of
        :data:`QUANTUM_DEG`, delta-encoded within each ring, closing vertex dropped) and the
        offsets ``ring`` (vertex pairs), ``poly`` (rings) and ``part`` (polygons) per
        feature, as in ``shapely.to_ragged_array``.
    """
    return _merge([_encode(frame, columns, tolerance_m)])


def gpkg_layer(path: Path, layer: str, columns: list[str], tolerance_m: float) -> dict[str, Any]:
    """:func:`vector_layer` of a GeoPackage layer, read in batches (bounded memory)."""
    return _merge(
        [_encode(batch, columns, tolerance_m) for batch in _batches(path, layer, columns)]
    )


def dense_layer(
    path: Path,
    layer: str,
    columns: list[str],
    tolerance_m: float,
    *,
    value: str | Callable[[gpd.GeoDataFrame], np.ndarray],
    palette: np.ndarray,
    like: Path,
) -> dict[str, Any]:
    """A GeoPackage layer as vectors (:func:`gpkg_layer`) up to :data:`MAX_LAYER_VERTICES`,
    else as an image overlay on the grid of the raster ``like``, decimated to
    :data:`DENSE_RASTER_PX` a side, each pixel a feature covers coloured by
    ``palette[feature[value]]`` (or ``palette[value(batch)]``; 0 transparent: small patches
    stay visible, drawn at least one pixel wide: a pixel covered in part counts). Both carry
    ``count``, the number of polygons. One pass over the layer."""
    with rasterio.open(like) as src:
        shape, transform = _decimated_grid(src, DENSE_RASTER_PX)
        crs = src.crs
    codes = np.zeros(shape, dtype=np.uint8)
    parts: list[dict[str, Any]] = []
    vertices = count = 0
    read = [*columns, value] if isinstance(value, str) else columns
    for batch in _batches(path, layer, list(dict.fromkeys(read))):
        count += len(batch)
        geometry = batch.geometry.to_numpy()
        burnt = batch[value] if isinstance(value, str) else value(batch)
        _burn(codes, geometry, np.asarray(burnt), transform)
        vertices += int(shapely.get_num_coordinates(geometry).sum())
        if vertices <= MAX_LAYER_VERTICES:
            parts.append(_encode(batch, columns, tolerance_m))
    if vertices <= MAX_LAYER_VERTICES:
        return {**_merge(parts), "count": count}
    return {**_overlay(codes, transform, crs, palette), "count": count}


def _burn(codes: np.ndarray, geometry: np.ndarray, values: np.ndarray, transform) -> None:
    """Set the pixels of ``codes`` that each polygon covers in part to its value (later
    polygons win): exact cell coverage (:mod:`agrivision.fields.coverage`), with no Python
    object per vertex, which dominates GDAL's rasterisation of hundreds of thousands of
    polygons through rasterio."""
    keep = ~(shapely.is_empty(geometry) | shapely.is_missing(geometry))
    geometry, values = geometry[keep], values[keep]
    if len(geometry) == 0:
        return
    if values.dtype.kind == "f":
        values = np.nan_to_num(values, nan=0)  # no value: transparent
    values = values.astype(codes.dtype)
    rings = pixel_rings(geometry, transform, codes.shape)
    # group_coverage allocates 16 bytes per cell of every polygon's bounding box: burnt at
    # once, a full tile's zones (every pixel of a 4096² image) took ~270 MB and more. Groups
    # of polygons, in order (later polygons still win), bound that by _BURN_CELLS.
    bbox = rings.bbox
    cells_in_box = np.maximum((bbox[:, 1] - bbox[:, 0]) * (bbox[:, 3] - bbox[:, 2]), 0)
    group = (np.cumsum(cells_in_box) - cells_in_box) // _BURN_CELLS
    for first, last in _runs(group):
        part = rings.subset(np.arange(first, last))
        ptr, cells, _, _ = group_coverage(
            part.cols, part.rows, part.ring_ptr, part.ring_sign, part.field_ptr, part.bbox,
            0, 0, codes.shape[1],
        )  # fmt: skip
        codes.reshape(-1)[cells] = np.repeat(values[first:last], np.diff(ptr))


def _runs(labels: np.ndarray) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each run of equal values in ``labels``."""
    edges = np.flatnonzero(np.diff(labels)) + 1
    bounds = np.concatenate([[0], edges, [len(labels)]])
    yield from zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)


def _batches(path: Path, layer: str, columns: list[str]) -> Iterator[gpd.GeoDataFrame]:
    """The layer in batches of :data:`_BATCH` features, streamed in one pass."""
    with pyogrio.raw.open_arrow(
        path, layer=layer, columns=columns, batch_size=_BATCH, use_pyarrow=True
    ) as (meta, reader):
        crs, geometry = meta["crs"], meta["geometry_name"] or "wkb_geometry"
        for batch in reader:
            frame = batch.to_pandas()
            shapes = shapely.from_wkb(frame.pop(geometry).to_numpy())
            yield gpd.GeoDataFrame(frame, geometry=shapes, crs=crs)


def _encode(frame: gpd.GeoDataFrame, columns: list[str], tolerance_m: float) -> dict[str, Any]:
    frame = frame[~(frame.geometry.is_empty | frame.geometry.isna())]
    shapes = shapely.simplify(frame.geometry.to_numpy(), tolerance_m, preserve_topology=True)
    lonlat = gpd.GeoSeries(shapes, crs=frame.crs).to_crs(4326).to_numpy()
    props = {
        c: [None if v != v else v for v in frame[c].tolist()]  # NaN -> null
        for c in columns
    }
    if len(lonlat) == 0:
        return {"props": props, "xy": [], "ring": [0], "poly": [0], "part": [0]}
    coords, (ring, poly, part) = _ragged(lonlat)
    q = np.round(coords[:, ::-1] / QUANTUM_DEG).astype(np.int64)  # (lat, lon)
    keep = np.ones(len(q), dtype=bool)
    keep[ring[1:] - 1] = False  # closing vertex of each ring
    starts = np.zeros(len(q), dtype=bool)
    starts[ring[:-1]] = True
    delta = q - np.roll(q, 1, axis=0)
    delta[starts] = q[starts]
    counts = np.diff(ring) - 1
    return {
        "props": props,
        "xy": delta[keep].ravel().tolist(),
        "ring": np.concatenate([[0], np.cumsum(counts)]).tolist(),
        "poly": poly.tolist(),
        "part": part.tolist(),
    }


def _ragged(shapes: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    # Polygons and MultiPolygons together come back as MultiPolygons (three offset levels).
    _, coords, offsets = shapely.to_ragged_array(shapes)
    if len(offsets) == 2:  # Polygons only: every feature is one part
        offsets = (*offsets, np.arange(len(shapes) + 1))
    return coords, offsets


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"props": {}, "xy": [], "ring": [0], "poly": [0], "part": [0]}
    for p in parts:
        for c, values in p["props"].items():
            out["props"].setdefault(c, []).extend(values)
        pairs, rings, polys = len(out["xy"]) // 2, len(out["ring"]) - 1, len(out["poly"]) - 1
        out["xy"].extend(p["xy"])
        out["ring"].extend(v + pairs for v in p["ring"][1:])
        out["poly"].extend(v + rings for v in p["poly"][1:])
        out["part"].extend(v + polys for v in p["part"][1:])
    return out


def index_overlay(indices_tif: Path) -> dict[str, Any]:
    """The first band of ``indices_tif`` on the index ramp (:data:`INDEX_RANGE`), as an image
    overlay: ``{"name", "uri" (PNG data URI), "bounds" [[south, west], [north, east]]}``."""
    with rasterio.open(indices_tif) as src:
        name = src.descriptions[0] or "index"
        band, transform, crs = _decimated(src, Resampling.average)
    lo, hi = INDEX_RANGE
    codes = 1 + np.round(np.clip((band - lo) / (hi - lo), 0, 1) * (_INDEX_COLOURS - 1))
    codes = np.where(np.isfinite(band), codes, 0).astype(np.uint8)
    palette = ramp_rgb(np.linspace(0, 1, _INDEX_COLOURS))
    return {"name": name, **_overlay(codes, transform, crs, np.vstack([[0, 0, 0], palette]))}


def class_overlay(classes_tif: Path, schema: ClassSchema) -> dict[str, Any]:
    """The class raster in the schema's colours (code 0 transparent), as an image overlay."""
    with rasterio.open(classes_tif) as src:
        codes, transform, crs = _decimated(src, Resampling.mode)
    palette = _class_palette(schema)
    return {"name": "health classes", **_overlay(codes.astype(np.uint8), transform, crs, palette)}


def _class_palette(schema: ClassSchema) -> np.ndarray:
    palette = np.zeros((256, 3), dtype=np.uint8)
    for code, (r, g, b, _) in schema.colormap.items():
        palette[code] = (r, g, b)
    return palette


def _decimated(src, resampling: Resampling) -> tuple[np.ndarray, Any, Any]:
    """Band 1 read at most :data:`MAP_RASTER_PX` on a side (from the COG's overviews)."""
    shape, transform = _decimated_grid(src, MAP_RASTER_PX)
    data = src.read(1, out_shape=shape, resampling=resampling, masked=True)
    values = data.astype(np.float32).filled(np.nan) if data.dtype.kind == "f" else data.filled(0)
    return values, transform, src.crs


def _decimated_grid(src, max_px: int) -> tuple[tuple[int, int], Any]:
    """Shape and transform of ``src``'s grid with at most ``max_px`` pixels a side."""
    step = max(1.0, max(src.width, src.height) / max_px)
    shape = (max(1, round(src.height / step)), max(1, round(src.width / step)))
    return shape, src.transform @ rasterio.Affine.scale(src.width / shape[1], src.height / shape[0])


def _overlay(codes: np.ndarray, transform, crs, palette: np.ndarray) -> dict[str, Any]:
    """Palette codes (0 transparent) warped to Web Mercator and encoded as an indexed PNG."""
    height, width = codes.shape
    left, top = transform @ (0, 0)
    right, bottom = transform @ (width, height)
    dst_transform, w, h = calculate_default_transform(
        crs, _WEB_MERCATOR, width, height, left=left, bottom=bottom, right=right, top=top
    )
    warped = np.zeros((h, w), dtype=np.uint8)
    reproject(
        codes, warped, src_transform=transform, src_crs=crs, dst_transform=dst_transform,
        dst_crs=_WEB_MERCATOR, resampling=Resampling.nearest, src_nodata=0, dst_nodata=0,
    )  # fmt: skip
    image = Image.fromarray(warped, mode="P")
    image.putpalette(palette.astype(np.uint8).ravel().tolist())
    buf = io.BytesIO()
    # zlib's run-length strategy: palette images are long runs of one code; as small as
    # the default level within a fifth, and about a hundred times faster than optimize=True.
    image.save(buf, format="PNG", compress_type=zlib.Z_RLE, transparency=0)
    to_lonlat = Transformer.from_crs(_WEB_MERCATOR, 4326, always_xy=True)
    west, north = to_lonlat.transform(*(dst_transform @ (0, 0)))
    east, south = to_lonlat.transform(*(dst_transform @ (w, h)))
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return {"uri": uri, "bounds": [[south, west], [north, east]]}


def share_top(values: np.ndarray) -> float:
    """The top of the share legend (%): the largest share rounded up to ten, at least 10
    (a weed map whose cells all hold under 10 % is not painted dark red)."""
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 0.0
    return float(min(100, max(10, 10 * math.ceil(top / 10))))


def _share(cells: gpd.GeoDataFrame, columns: Sequence[str]) -> np.ndarray:
    """The summed share (%) of ``columns`` per cell; NaN where the cell has no valid pixel."""
    return cells[list(columns)].to_numpy(dtype=np.float64).sum(axis=1)


def _share_codes(share: np.ndarray, top: float) -> np.ndarray:
    """Palette codes of shares on :data:`SHARE_RAMP` (``1..254`` for 0..top, 255 none)."""
    with np.errstate(invalid="ignore"):
        codes = 1 + np.round(np.clip(share / top, 0, 1) * (_INDEX_COLOURS - 1))
    return np.where(np.isfinite(share), codes, _NO_SHARE).astype(np.uint8)


def model_layers(
    gpkg: Path, shares: Sequence[str], tolerance_m: float, *, like: Path
) -> dict[str, Any]:
    """The map layers of a model run (``agrivision report --model``) that ``gpkg`` holds.

    Parameters
    ----------
    gpkg
        ``report.gpkg``: its layers ``cells`` (``cell_id, field_id, <class>_pct``, the
        scene's projected CRS) and ``patches`` (``field_id, class, class_name, area_ha``),
        where present.
    shares
        The ``cells`` columns whose sum colours a cell (the patch classes' shares, e.g.
        ``["weed_pct"]``).
    tolerance_m
        Display tolerance (:func:`display_zoom`).
    like
        A raster of the report's grid (dense layers become images on it).

    Returns
    -------
    dict
        ``cells`` (:func:`dense_layer` with every ``_pct`` column, ``shares`` and ``top``,
        the share at the ramp's dark end) and ``patches`` (:func:`dense_layer`), each only
        where ``gpkg`` has the layer, and ``model_label``, the classes that ``shares`` name.
    """
    present = set(pyogrio.list_layers(gpkg)[:, 0])
    out: dict[str, Any] = {
        "model_label": " + ".join(c.removesuffix("_pct") for c in shares) or "model"
    }
    if "cells" in present and shares:
        columns = [
            c for c in pyogrio.read_info(gpkg, layer="cells")["fields"] if c.endswith("_pct")
        ]
        attributes = pyogrio.read_dataframe(gpkg, layer="cells", columns=list(shares),
                                            read_geometry=False)  # fmt: skip
        top = share_top(_share(attributes, shares))
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[1:_NO_SHARE] = ramp_rgb(np.linspace(0, 1, _INDEX_COLOURS), SHARE_RAMP)
        palette[_NO_SHARE] = (158, 158, 158)
        out["cells"] = {
            **dense_layer(
                gpkg, "cells", ["cell_id", "field_id", *columns], tolerance_m,
                value=lambda c: _share_codes(_share(c, shares), top), palette=palette, like=like,
            ),
            "shares": list(shares),
            "top": top,
        }  # fmt: skip
    if "patches" in present:
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[1] = hex_rgb(PATCH_COLOUR)
        out["patches"] = dense_layer(
            gpkg, "patches", ["field_id", "class_name", "area_ha"], tolerance_m,
            value=lambda p: np.ones(len(p), dtype=np.uint8), palette=palette, like=like,
        )  # fmt: skip
    return out


def map_layers(
    table: gpd.GeoDataFrame,
    gpkg: Path,
    indices_tif: Path,
    classes_tif: Path,
    schema: ClassSchema,
    shares: Sequence[str] = (),
) -> dict[str, Any]:
    """Every layer of the report map.

    Parameters
    ----------
    table
        The field table (projected scene CRS, metres).
    gpkg
        ``report.gpkg`` with the layers ``zones`` (``field_id, zone, area_ha``) and
        ``problems`` (``field_id, class, class_name, area_ha``).
    indices_tif, classes_tif
        The report's COGs (first index band; health classes).
    schema
        Class colours of the class overlay.
    shares
        With a model: the ``cells`` columns that colour a grid cell (:func:`model_layers`).

    Returns
    -------
    dict
        ``max_zoom``, the vector layers ``fields``, ``zones``, ``problems``
        (:func:`vector_layer`), the overlays ``index`` and ``classes``, ``zone_colours`` and,
        from a model run, ``cells`` and ``patches`` (:func:`model_layers`).
    """
    with rasterio.open(indices_tif) as src:
        resolution = abs(src.transform.a)
    bounds = gpd.GeoSeries([shapely.box(*table.total_bounds)], crs=table.crs).to_crs(4326)
    _, south, _, north = bounds.total_bounds
    zoom, tolerance = display_zoom(resolution, float(south + north) / 2)
    colours = zone_colours()  # by shade: a zone's rank in its field (palette.zone_shade)
    zone_palette = np.zeros((256, 3), dtype=np.uint8)
    for k, colour in colours.items():
        zone_palette[k] = hex_rgb(colour)
    # The layers are independent and their work (GDAL reads, WKB parsing, the numba burn)
    # releases the GIL: on a thread pool they take the cores there are.
    with ThreadPoolExecutor(LAYER_THREADS) as pool:
        layers = {
            "zones": pool.submit(
                dense_layer, gpkg, "zones", ["field_id", "zone", "zones_n", "area_ha"],
                tolerance, value=lambda z: zone_shade(z["zone"], z["zones_n"]),
                palette=zone_palette, like=indices_tif,
            ),
            "problems": pool.submit(
                dense_layer, gpkg, "problems", ["field_id", "class", "class_name", "area_ha"],
                tolerance, value="class", palette=_class_palette(schema), like=indices_tif,
            ),
            "index": pool.submit(index_overlay, indices_tif),
            "classes": pool.submit(class_overlay, classes_tif, schema),
        }  # fmt: skip
        fields = vector_layer(table, ["field_id"], tolerance)
        model = model_layers(gpkg, shares, tolerance, like=indices_tif)
        return {
            "max_zoom": zoom,
            "fields": fields,
            **{name: layer.result() for name, layer in layers.items()},
            "zone_colours": {str(k): v for k, v in colours.items()},
            "zone_shades": ZONE_SHADES,
            **model,
        }
