"""Class shares per field or per grid cell: what share of the observed ground each class of a
categorical raster (e.g. a weed model's ``soil, crop, weed``) covers.

A share is coverage-weighted among the valid pixels of the polygon (exactextract's
``frac``: pixels count by the share of their area inside it), so shares of a field add up to
100 % and a field's edge pixels count by how much of them lies inside. Grid cells are squares
of a fixed size on a grid anchored at the CRS origin (so that the cells of two flights over
the same field coincide), cut by each field.

With a model's class probabilities (:func:`probability_shares`) a share is instead the
*expected* share: the mean of the class's probability over the polygon's valid pixels. A pixel
the model is unsure of (weed 0.6, crop 0.4) then counts 0.6 for weed and 0.4 for crop, not
wholly for weed: a plant the model half takes for the wrong class moves the shares half as
far.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import CRS

from agrivision.errors import ConfigError
from agrivision.fields.zonal import zonal_stats
from agrivision.io.fields import area_ha

_VALUES = "__class"  # internal variable names in zonal_stats
_VALID = "__valid"


def share_columns(names: Sequence[str], taken: Iterable[str] = ()) -> list[str]:
    """Column name of each class's share: ``<class>_pct`` (lower case, other characters
    ``_``), ``model_<class>_pct`` where that name is ``taken`` by another column."""
    taken = set(taken)
    columns = []
    for name in names:
        column = re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_") + "_pct"
        columns.append(f"model_{column}" if column in taken else column)
    if len(set(columns)) != len(columns):
        raise ConfigError(
            f"class names {list(names)} give duplicate columns {columns}",
            fix="give the classes names that differ in more than case and punctuation",
        )
    return columns


def class_shares(
    classes: xr.DataArray,
    zones: gpd.GeoDataFrame,
    names: Sequence[str],
    *,
    id_column: str = "field_id",
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Share (%) of each class among the valid pixels of each polygon.

    Parameters
    ----------
    classes
        ``(y, x)`` integer class raster, lazy, with a CRS; ``classes.rio.nodata`` (e.g. 255)
        is no data. Code ``i`` is class ``names[i]``.
    zones
        Polygons with a unique ``id_column`` (fields, grid cells), any CRS.
    names
        Class names by code.
    id_column
        The polygons' identifier.
    columns
        Output column per class (default :func:`share_columns`).

    Returns
    -------
    pandas.DataFrame
        One row per polygon, in input order: ``id_column``, ``valid_pixels`` (coverage-weighted
        count of pixels with a class) and a share column per class (0..100; NaN without a
        valid pixel).
    """
    columns = list(columns or share_columns(names))
    nodata = classes.rio.nodata
    plain = classes.rename(None).drop_attrs(deep=False)
    # One pass, one byte per pixel each: the classes (shares) and a validity mask (count).
    valid = plain != nodata if nodata is not None else xr.ones_like(plain, dtype=bool)
    data = xr.Dataset({
        _VALUES: plain.rio.write_nodata(nodata),
        _VALID: valid.astype(np.uint8).rio.write_nodata(0),
    })  # fmt: skip
    stats = zonal_stats(
        data, zones, stats=["count"], id_column=id_column,
        fractions={_VALUES: range(len(names))},
    )  # fmt: skip
    out = pd.DataFrame({id_column: zones[id_column].to_numpy()})
    out["valid_pixels"] = stats[f"{_VALID}_count"].fillna(0.0).to_numpy()
    for code, column in enumerate(columns):
        out[column] = 100.0 * stats[f"{_VALUES}_frac_{code}"].to_numpy()
    return out


def probability_shares(
    probabilities: xr.DataArray,
    zones: gpd.GeoDataFrame,
    names: Sequence[str],
    *,
    id_column: str = "field_id",
    columns: Sequence[str] | None = None,
    scale: float | None = None,
) -> pd.DataFrame:
    """Expected share (%) of each class in each polygon: the coverage-weighted mean of the
    class's probability over the polygon's valid pixels.

    Parameters
    ----------
    probabilities
        ``(class, y, x)`` integer probabilities (``value * scale`` is the probability, e.g.
        :func:`agrivision.segment.segment`'s uint8 ``value / 254``), lazy, with a CRS;
        ``probabilities.rio.nodata`` (e.g. 255) is no data. Layer ``i`` is class
        ``names[i]``.
    zones
        Polygons with a unique ``id_column`` (fields, grid cells), any CRS.
    names
        Class names by layer.
    id_column
        The polygons' identifier.
    columns
        Output column per class (default :func:`share_columns`).
    scale
        Probability per unit of the stored values (default: ``attrs["probability_scale"]``,
        else 1/254). Only the layers' sum matters: the means are divided by their sum, so a
        polygon's shares add up to 100 % although rounded probabilities do not add up to
        exactly one.

    Returns
    -------
    pandas.DataFrame
        As :func:`class_shares`: ``id_column``, ``valid_pixels`` (coverage-weighted count of
        pixels with probabilities) and a share column per class (0..100; NaN without a valid
        pixel).
    """
    columns = list(columns or share_columns(names))
    if scale is None:
        scale = float(probabilities.attrs.get("probability_scale", 1 / 254))
    if probabilities.sizes[probabilities.dims[0]] != len(names):
        raise ConfigError(
            f"{probabilities.sizes[probabilities.dims[0]]} probability layers for "
            f"{len(names)} class names {list(names)}"
        )
    nodata = probabilities.rio.nodata
    plain = probabilities.rename(None).drop_attrs(deep=False)
    layer_dim = str(plain.dims[0])
    layers = {
        f"{_VALUES}{i}": plain[i].drop_vars(layer_dim, errors="ignore").rio.write_nodata(nodata)
        for i in range(len(names))
    }
    stats = zonal_stats(
        xr.Dataset(layers).rio.write_crs(probabilities.rio.crs), zones,
        stats=["count", "mean"], id_column=id_column,
    )  # fmt: skip
    means = np.stack([stats[f"{v}_mean"].to_numpy(float) * scale for v in layers], axis=1)
    total = means.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = 100.0 * means / total
    out = pd.DataFrame({id_column: zones[id_column].to_numpy()})
    out["valid_pixels"] = stats[f"{_VALUES}0_count"].fillna(0.0).to_numpy()
    for k, column in enumerate(columns):
        out[column] = shares[:, k]
    return out


def grid_cells(fields: gpd.GeoDataFrame, size: float) -> gpd.GeoDataFrame:
    """Square cells of ``size`` metres inside each field (cut by its boundary).

    Parameters
    ----------
    fields
        Polygons with a unique ``field_id``, in a projected CRS in metres (the scene's).
    size
        Cell edge in metres; cells lie on a grid anchored at the CRS origin.

    Returns
    -------
    GeoDataFrame
        ``cell_id`` (1..n), ``field_id``, ``row``, ``col`` (the cell's index on the grid:
        ``x = col * size``, ``y = row * size`` at its lower-left corner), ``area_ha``
        (geodesic) and the geometry (the cell cut by the field), in the fields' CRS; only
        cells with an area inside the field.

    Raises
    ------
    ConfigError
        ``size`` not positive, or fields in a geographic CRS (cells in degrees are not
        squares of a size in metres).
    """
    if not size > 0:
        raise ConfigError(f"grid cell size must be > 0 m, got {size}", fix="e.g. 10")
    crs = CRS.from_user_input(fields.crs) if fields.crs is not None else None
    if crs is None or not crs.is_projected:
        raise ConfigError(
            "grid cells need fields in a projected CRS in metres",
            source="fields", fix="reproject the fields to the scene's (projected) CRS",
        )  # fmt: skip
    step = size / crs.axis_info[0].unit_conversion_factor
    rows = []
    for field_id, geom in zip(fields["field_id"], fields.geometry, strict=True):
        x0, y0, x1, y1 = geom.bounds
        cols = np.arange(math.floor(x0 / step), math.ceil(x1 / step))
        lines = np.arange(math.floor(y0 / step), math.ceil(y1 / step))
        cc, rr = (a.ravel() for a in np.meshgrid(cols, lines))
        boxes = shapely.box(cc * step, rr * step, (cc + 1) * step, (rr + 1) * step)
        cut = shapely.intersection(boxes, geom)
        # Polygonal parts only: a cell that only touches the field shares a line with it.
        polys = np.array([_polygonal(g) for g in cut], dtype=object)
        keep = ~shapely.is_empty(polys)
        rows.append(pd.DataFrame({"field_id": field_id, "row": rr[keep], "col": cc[keep],
                                  "geometry": polys[keep]}))  # fmt: skip
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["field_id", "row", "col", "geometry"])  # fmt: skip
    cells = gpd.GeoDataFrame(table, geometry="geometry", crs=fields.crs)
    cells.insert(0, "cell_id", np.arange(1, len(cells) + 1))
    cells.insert(4, "area_ha", area_ha(cells).to_numpy() if len(cells) else [])
    return cells


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon) and p.area > 0]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
