"""The report's layers from a model's own classes (``agrivision report --model``): patches of
chosen classes (weeds, by default) and class shares per grid cell inside each field.

A patch is a connected area (4-connected pixels, clipped to its field) of one model class, at
least ``output.patch_min_area_m2`` large; smaller specks are not drawn (they are still in the
shares). The name is the model's class name: a "weed" patch is what a weed model predicted,
not a verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import xarray as xr

from agrivision.errors import ConfigError
from agrivision.fields.class_shares import class_shares, grid_cells, probability_shares
from agrivision.fields.vectorize import vectorize_batches
from agrivision.io.vector import FeatureSpool
from agrivision.segment.model_classes import class_key as _key
from agrivision.segment.nodata import NODATA

#: Model classes drawn as patches when ``output.patch_classes`` is not set.
WEED_NAMES = ("weed", "weeds")


def patch_codes(names: list[str], requested: list[str] | None) -> dict[int, str]:
    """``{model code: name}`` of the classes to draw as patches.

    ``requested`` None: the classes named weed or weeds (none if the model has none).

    Raises
    ------
    ConfigError
        A requested class the model does not have.
    """
    keys = [_key(n) for n in names]
    if requested is None:
        return {i: n for i, (n, k) in enumerate(zip(names, keys, strict=True)) if k in WEED_NAMES}
    unknown = [r for r in requested if _key(r) not in keys]
    if unknown:
        raise ConfigError(
            f"output.patch_classes names {unknown}, which the model does not have",
            fix=f"use the model's classes: {', '.join(names)}",
        )
    wanted = {_key(r) for r in requested}
    return {i: n for i, (n, k) in enumerate(zip(names, keys, strict=True)) if k in wanted}


def patches(
    predictions: xr.DataArray,
    fields: gpd.GeoDataFrame,
    codes: dict[int, str],
    *,
    min_area_m2: float,
    folder: Path,
) -> FeatureSpool:
    """Patch polygons of the model classes ``codes`` inside each field, spooled to ``folder``.

    Parameters
    ----------
    predictions
        :func:`agrivision.segment.model_classes.model_predictions` (255 = none), projected CRS.
    fields
        Fields with ``field_id`` (those with enough data for a verdict).
    codes
        ``{model code: class name}`` (:func:`patch_codes`).
    min_area_m2
        Smaller patches are not drawn.
    folder
        Where the polygons wait until they are written.

    Returns
    -------
    FeatureSpool
        Rows ``field_id, class`` (the model's code), ``class_name, area_ha`` (geodesic) and
        the geometry, in the raster's CRS.
    """
    # vectorize never draws code 0 (background): shift the model's codes by one.
    shifted = xr.apply_ufunc(
        _shift, predictions, dask="parallelized", output_dtypes=[np.uint8]
    ).rio.write_nodata(0)
    if not codes or fields.empty:  # an empty layer, with its columns
        empty = gpd.GeoDataFrame(
            {"field_id": fields["field_id"].iloc[:0], "class": np.array([], np.int64),
             "class_name": np.array([], object), "area_ha": np.array([], float)},
            geometry=gpd.GeoSeries([], crs=predictions.rio.crs),
        )  # fmt: skip
        return FeatureSpool([empty], folder=folder)
    batches = vectorize_batches(
        shifted, fields, classes_to_keep=[c + 1 for c in codes],
        class_names={c + 1: n for c, n in codes.items()}, min_area_ha=min_area_m2 / 1e4,
    )  # fmt: skip
    return FeatureSpool(_unshift(batches), folder=folder)


def cells(
    predictions: xr.DataArray,
    fields: gpd.GeoDataFrame,
    size: float,
    *,
    probabilities: xr.DataArray | None = None,
) -> gpd.GeoDataFrame:
    """Share of each model class per grid cell of ``size`` metres inside each field.

    With ``probabilities`` (:func:`agrivision.segment.model_classes.model_outputs`) the shares
    are expected shares (:func:`agrivision.fields.class_shares.probability_shares`), else
    shares of the predicted classes.

    Returns
    -------
    GeoDataFrame
        :func:`agrivision.fields.class_shares.grid_cells` (``cell_id, field_id, row, col,
        area_ha``) with ``valid_pixels`` and ``<class>_pct`` of
        :func:`agrivision.fields.class_shares.class_shares`.
    """
    names = json.loads(predictions.attrs["class_names"])
    grid = grid_cells(fields.to_crs(predictions.rio.crs), size)
    if grid.empty:
        return grid
    if probabilities is not None:
        shares = probability_shares(probabilities, grid, names, id_column="cell_id")
    else:
        shares = class_shares(predictions, grid, names, id_column="cell_id")
    return grid.merge(shares, on="cell_id", how="left")[[*grid.columns[:-1], *shares.columns[1:],
                                                         "geometry"]]  # fmt: skip


def _shift(values: np.ndarray) -> np.ndarray:
    return np.where(values == NODATA, 0, values + 1).astype(np.uint8)


def _unshift(batches: Iterator[gpd.GeoDataFrame]) -> Iterator[gpd.GeoDataFrame]:
    for batch in batches:
        yield batch.assign(**{"class": batch["class"] - 1})
