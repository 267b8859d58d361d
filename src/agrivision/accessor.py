"""``.agri`` on xarray objects: one-line wrappers over the free functions.

Registered on ``import agrivision``::

    scene.agri.index("NDVI")                       # agrivision.indices.compute(scene, "NDVI")["NDVI"]
    scene.agri.mask().agri.indices(["NDVI", "NDRE"]).agri.classify(fields)
    ndvi.agri.zones(fields, n=3)
    classes.agri.vectorize(fields, min_area_ha=0.01)

Each method takes the free function's parameters after its first (the object itself) and
returns what the free function returns; the free functions are the documented API and are
imported on first use, so the accessor adds no import cost.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from agrivision.masks import MaskConfig
    from agrivision.segment import Segmenter

NAME = "agri"


@xr.register_dataset_accessor(NAME)
class DatasetAccessor:
    """``Dataset.agri``: a Scene (reflectance bands by common name) or index variables."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def index(self, name: str, **options: Any) -> xr.DataArray:
        """One spectral index (:func:`agrivision.indices.compute`, its variable)."""
        from agrivision.indices import compute

        return compute(self._obj, [name], **options)[name]

    def indices(self, names: str | Sequence[str] = (), **options: Any) -> xr.Dataset:
        """Spectral indices as variables (:func:`agrivision.indices.compute`)."""
        from agrivision.indices import compute

        return compute(self._obj, names, **options)

    def mask(self, config: MaskConfig | None = None) -> xr.Dataset:
        """Reflectance NaN where not usable (:func:`agrivision.masks.apply_mask`)."""
        from agrivision.masks import apply_mask

        return apply_mask(self._obj, config)

    def valid_mask(self, config: MaskConfig | None = None) -> xr.DataArray:
        """True where usable (:func:`agrivision.masks.valid_mask`)."""
        from agrivision.masks import valid_mask

        return valid_mask(self._obj, config)

    def valid_fraction(self, config: MaskConfig | None = None) -> xr.DataArray:
        """Usable share (0..1) per date (:func:`agrivision.masks.valid_fraction`)."""
        from agrivision.masks import valid_fraction

        return valid_fraction(self._obj, config)

    def classify(self, fields: gpd.GeoDataFrame | None = None, **options: Any) -> xr.DataArray:
        """Health classes from index variables (:func:`agrivision.health.classify`)."""
        from agrivision.health import classify

        return classify(self._obj, fields, **options)

    def zonal(self, fields: gpd.GeoDataFrame, **options: Any) -> pd.DataFrame:
        """Per-field statistics of every variable (:func:`agrivision.fields.zonal.zonal_stats`)."""
        from agrivision.fields.zonal import zonal_stats

        return zonal_stats(self._obj, fields, **options)

    def segment(self, model: Segmenter | str | os.PathLike, **options: Any) -> xr.Dataset:
        """U-Net classes (and probabilities) (:func:`agrivision.segment.segment`)."""
        from agrivision.segment import segment

        return segment(self._obj, model, **options)

    def to_cog(self, path: str | os.PathLike, **options: Any) -> Path:
        """Write the variables as bands of one COG (:func:`agrivision.io.cog.to_cog`)."""
        from agrivision.io.cog import to_cog

        return to_cog(self._obj, path, **options)


@xr.register_dataarray_accessor(NAME)
class DataArrayAccessor:
    """``DataArray.agri``: one index, or a class raster."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def zonal(self, fields: gpd.GeoDataFrame, **options: Any) -> pd.DataFrame:
        """Per-field statistics (:func:`agrivision.fields.zonal.zonal_stats`)."""
        from agrivision.fields.zonal import zonal_stats

        return zonal_stats(self._obj, fields, **options)

    def zones(self, fields: gpd.GeoDataFrame, **options: Any) -> gpd.GeoDataFrame:
        """Management zones per field of this index (:func:`agrivision.health.zones`)."""
        from agrivision.health import zones

        return zones(self._obj, fields, **options)

    def vectorize(self, fields: gpd.GeoDataFrame | None = None, **options: Any) -> gpd.GeoDataFrame:
        """Class raster to polygons (:func:`agrivision.fields.vectorize.vectorize`)."""
        from agrivision.fields.vectorize import vectorize

        return vectorize(self._obj, fields, **options)

    def to_cog(self, path: str | os.PathLike, **options: Any) -> Path:
        """Write as a Cloud-Optimised GeoTIFF (:func:`agrivision.io.cog.to_cog`)."""
        from agrivision.io.cog import to_cog

        return to_cog(self._obj, path, **options)
