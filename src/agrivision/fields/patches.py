"""Anomaly patches: the connected areas of a class inside each field, and the largest of them.

A hotspot is a place to walk to, so it needs a contiguous area, not a share: a scatter of
isolated anomaly pixels (noise, mixed pixels) adds up to a share but never to a patch. The
patches are the polygons of :func:`~agrivision.fields.vectorize.vectorize_batches`
(4-connected pixels, clipped to the field, seams between chunks merged), i.e. exactly the
polygons of that class in the report's ``problems.geojson``; they are made strip by strip,
so memory stays bounded by the chunk size and one strip of polygons.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import pandas as pd
import xarray as xr

from agrivision.fields.vectorize import vectorize_batches


def largest_patch_ha(
    classes: xr.DataArray, fields: gpd.GeoDataFrame, *, code: int, rows: int = 2048
) -> pd.Series:
    """Area of each field's largest connected patch of class ``code``, in hectares.

    Parameters
    ----------
    classes
        ``(y, x)`` integer class raster (e.g. :func:`agrivision.health.classify`), lazy,
        projected CRS in metres.
    fields
        Field polygons with a unique ``field_id`` (any CRS; reprojected to the raster's).
    code
        The class whose patches are measured (e.g. ``DEFAULT_SCHEMA.code("anomaly")``).
    rows
        Pixel rows per strip of ``vectorize_batches`` (memory grows with it).

    Returns
    -------
    pandas.Series
        Indexed by ``field_id`` in the order of ``fields``: hectares (0.0 where a field has
        no pixel of the class). Computed eagerly: one pass over ``classes``.
    """
    largest: dict = {}
    with warnings.catch_warnings():
        # "no polygons" is the common, good answer here, not something to warn about
        warnings.filterwarnings("ignore", message="vectorize: no polygons", category=UserWarning)
        for batch in vectorize_batches(classes, fields, classes_to_keep=[code], rows=rows):
            largest.update(batch.groupby("field_id")["area_ha"].max())
    ids = pd.Index(fields["field_id"], name="field_id")
    return pd.Series(largest, dtype=float).reindex(ids, fill_value=0.0).rename("patch_ha")
