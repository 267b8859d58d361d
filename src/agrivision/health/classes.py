"""Rule-based crop-health classes from NDVI (and NDRE), judged against each field's own pixels.

The rules, in order of precedence (the first that holds wins), with the defaults of
:class:`HealthRules` and ``config/health-default.yaml``:

====  ====================  ==============================================================
code  class                 rule
====  ====================  ==============================================================
0     background            NDVI (or NDRE, when used) is NaN, the pixel is in no field,
                            or it is an edge pixel (``edge="exclude"``, below)
4     bare_soil             ``NDVI < bare_ndvi`` (0.25)
3     anomaly               ``z < anomaly_z`` (-3.0): far below its field's median
2     stressed              ``NDVI < stressed_ndvi`` (0.55) or ``NDRE < stressed_ndre``
                            (0.25, when the indices have NDRE) or ``z < stressed_z`` (-1.5)
1     healthy               otherwise
====  ====================  ==============================================================

``z`` is the robust z-score of NDVI against the pixel's own field (median and MAD of that
field on that date; :func:`agrivision.health.anomaly.robust_z`, MAD floor ``mad_floor``).
So a field that is uniformly weaker is "stressed" by the absolute thresholds but not an
anomaly: its pixels sit at its own median. A patch far below an otherwise good field is an
anomaly to scout; what caused it (pests, disease, drought, lodging, waterlogging, a
headland) the spectrum cannot say.

Support: ``z`` exists only where it means something.

* With ``edge="exclude"`` (the default) the median, the MAD and ``z`` use only the field's
  *interior* pixels, those wholly inside its polygon (``field_raster(..., interior=True)``),
  shrunk by ``inner_buffer_m`` when the imagery's blur or geolocation error reaches further.
  An edge pixel mixes the field with its neighbour (a road, bare soil, another crop): it
  would be the field's most extreme "anomaly", and beside a road or bare soil it would be
  "stressed" or "bare soil" by the absolute thresholds too. So edge pixels get no class
  (0): no share, polygon or status rests on them. The field's index statistics
  (``agrivision.fields.zonal_stats``) still use every pixel, weighted by its coverage.
* A field with fewer than ``min_pixels`` such pixels gets no z at all, so no anomaly and no
  z-based stress (see :class:`agrivision.fields.config.ProblemsConfig` for the default and why).
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Literal

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agrivision.config import load_yaml
from agrivision.errors import ConfigError, SpectralIndexError
from agrivision.fields.config import ProblemsConfig
from agrivision.fields.rasterize import field_raster
from agrivision.health._perfield import (
    as_dask,
    id_columns,
    per_field_sums,
    pixel_area_ha,
    with_field_ids,
)
from agrivision.health.anomaly import field_statistics, robust_z
from agrivision.health.schema import DEFAULT_SCHEMA, HEALTH_CLASSES, ClassSchema

#: Keys that were renamed: an old config gets a one-line error naming the new key.
RENAMED_KEYS = {"pest_z": "anomaly_z"}


class HealthRules(BaseModel):
    """Thresholds of :func:`classify` (NDVI/NDRE unitless, z in robust standard deviations).

    Invalid values raise :class:`~agrivision.errors.ConfigError` naming the key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bare_ndvi: float = Field(0.25, ge=-1, le=1, description="NDVI below: bare soil/weeds")
    stressed_ndvi: float = Field(0.55, ge=-1, le=1, description="NDVI below: stressed")
    stressed_ndre: float | None = Field(
        0.25, ge=-1, le=1, description="NDRE below: stressed (None: NDRE not used)"
    )
    stressed_z: float = Field(-1.5, lt=0, description="within-field z below: stressed")
    anomaly_z: float = Field(-3.0, lt=0, description="within-field z below: anomaly to scout")
    mad_floor: float = Field(0.01, gt=0, description="smallest MAD used for z (NDVI units)")
    edge: Literal["exclude", "include"] = Field(
        "exclude", description="exclude: only interior pixels get a class and make z statistics"
    )
    inner_buffer_m: float = Field(
        0.0, ge=0, description="with edge: exclude, pixels this close to the border are edge too"
    )

    def __init__(self, **data: object) -> None:
        if old := [k for k in RENAMED_KEYS if k in data]:
            raise ConfigError(
                f"{old[0]} was renamed to {RENAMED_KEYS[old[0]]}",
                source="health rules", fix=f"write {RENAMED_KEYS[old[0]]}: {data[old[0]]}",
            )  # fmt: skip
        try:
            super().__init__(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "health"
            fix = (
                f"allowed: {', '.join(type(self).model_fields)}"
                if err["type"] == "extra_forbidden"
                else "see config/health-default.yaml"
            )
            raise ConfigError(f"{key}: {err['msg']}", source="health rules", fix=fix) from None

    @model_validator(mode="after")
    def _ordered(self) -> HealthRules:
        if not self.anomaly_z < self.stressed_z:
            raise ValueError("anomaly_z must be below stressed_z")
        if not self.bare_ndvi < self.stressed_ndvi:
            raise ValueError("bare_ndvi must be below stressed_ndvi")
        return self

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> HealthRules:
        """Read rules from a YAML file: the keys at top level or under a ``health:`` key.

        Raises
        ------
        ConfigError
            Unreadable or unsafe YAML, unknown keys, invalid values (message names the file).
        """
        data = load_yaml(path)
        if set(data) == {"health"}:
            data = data["health"] or {}
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(exc.problem, source=path, fix=exc.fix) from None


def classify(
    indices: xr.Dataset,
    fields: gpd.GeoDataFrame | None = None,
    *,
    rules: HealthRules | None = None,
    schema: ClassSchema = DEFAULT_SCHEMA,
    min_pixels: int | None = None,
) -> xr.DataArray:
    """Crop-health class raster from NDVI (and NDRE when present); lazy uint8.

    Parameters
    ----------
    indices
        Dataset with an ``NDVI`` variable (and optionally ``NDRE``), ``(y, x)`` or
        ``(time, y, x)``, dask-backed, CRS via rioxarray (as from ``agrivision.indices``).
    fields
        Field polygons with a unique ``field_id`` (any CRS; reprojected to the raster's).
        Pixels outside every field become 0 and z-scores are per field. Without fields, the
        whole valid raster is one field (right for a drone image of a single field).
    rules
        Thresholds (defaults: :class:`HealthRules`); the rules are listed in the module doc.
    schema
        Class codes; needs classes named healthy, stressed, pest_disease and bare_soil.

    Returns
    -------
    xarray.DataArray
        ``health_class``, uint8, dims and grid of NDVI, 0 = background/nodata (also the rio
        nodata); ``attrs["class_schema"]`` (JSON) and ``attrs["health_rules"]`` (JSON).

    Notes
    -----
    Eagerly computed: only :func:`~agrivision.health.anomaly.field_statistics` of NDVI (one
    pass over NDVI and the lazy field-id raster, reduced to per-field histograms). The class
    raster itself is lazy; computing it reads NDVI (and NDRE) again.

    Raises
    ------
    SpectralIndexError
        ``indices`` has no NDVI.
    ConfigError
        The schema lacks one of the crop-health class names.
    """
    rules = rules or HealthRules()
    min_pixels = ProblemsConfig().min_pixels if min_pixels is None else min_pixels
    codes = tuple(schema.code(name) for name in HEALTH_CLASSES)
    if "NDVI" not in indices.data_vars:
        raise SpectralIndexError(
            f"classify needs NDVI; the indices have {', '.join(map(str, indices.data_vars))}",
            source="indices", fix="compute it: agrivision.indices.compute(scene, ['NDVI'])",
        )  # fmt: skip
    ndvi = indices["NDVI"]
    use_ndre = "NDRE" in indices.data_vars and rules.stressed_ndre is not None
    fid = field_raster(fields, ndvi) if fields is not None else _one_field(ndvi)
    core = fid
    if fields is not None and rules.edge == "exclude":
        core = field_raster(fields, ndvi, interior=True, inner_buffer=rules.inner_buffer_m)
    stats = field_statistics(ndvi, core)
    if stats.empty:
        warnings.warn(
            "classify: no valid NDVI pixel inside any field; the class raster is all background",
            UserWarning, stacklevel=2,
        )  # fmt: skip
    stats = stats[stats["count"] >= min_pixels]
    z = robust_z(ndvi, core, stats, mad_floor=rules.mad_floor)
    ndvi_data = as_dask(ndvi)
    # Edge pixels mix the field with its neighbour: with ``edge: exclude`` they get no class
    # (0), so no verdict, share or polygon rests on them.
    in_field = as_dask(core).rechunk(ndvi_data.chunks[-2:])
    extra = [as_dask(indices["NDRE"]).rechunk(ndvi_data.chunks)] if use_ndre else []
    data = da.map_blocks(
        _classes_block, ndvi_data, as_dask(z), in_field, *extra, dtype=np.uint8,
        rules=rules.model_dump(), codes=codes,
    )  # fmt: skip
    out = ndvi.copy(data=data)
    out.name = "health_class"
    out.encoding = {}
    out.attrs = {
        "long_name": "crop-health class",
        "class_schema": schema.to_json(),
        "health_rules": json.dumps({**rules.model_dump(), "min_pixels": min_pixels}),
    }
    return out.rio.write_nodata(0)


def class_areas(
    classes: xr.DataArray,
    field_ids: xr.DataArray,
    *,
    schema: ClassSchema = DEFAULT_SCHEMA,
) -> pd.DataFrame:
    """Pixels, hectares and share of each class per field (and time step); eager, one pass.

    Parameters
    ----------
    classes
        Class raster (:func:`classify`), projected CRS in metres.
    field_ids
        Field-id raster on the same grid (:func:`agrivision.fields.field_raster`).

    Returns
    -------
    pandas.DataFrame
        ``field_id``, [``<time dim>``], ``class``, ``class_name``, ``pixels``, ``area_ha``
        (pixels x pixel area), ``share`` (of the field's classified pixels); class 0 is
        left out, classes absent from a field have no row.
    """
    area = pixel_area_ha(classes)
    keys = classes.copy(data=as_dask(classes).astype(np.int32) - 1)  # class 0 -> -1: skipped
    sums = per_field_sums(field_ids, keys, 255)
    table = with_field_ids(sums, classes, field_ids)
    table["class"] = table["key"] + 1
    table["class_name"] = table["class"].map(schema.names)
    table["pixels"] = table["count"]
    table["area_ha"] = table["count"] * area
    table["share"] = table["count"] / table.groupby(["code", "t"])["count"].transform("sum")
    return table[[*id_columns(classes), "class", "class_name", "pixels", "area_ha", "share"]]


def _classes_block(
    ndvi, z, fid, *ndre, rules: dict[str, Any], codes: tuple[int, int, int, int]
) -> np.ndarray:
    healthy, stressed, anomaly, bare = codes
    with np.errstate(invalid="ignore"):
        # z is NaN on edge pixels and in fields without support: comparisons are then False
        valid = np.isfinite(ndvi) & (fid > 0)
        weak = (ndvi < rules["stressed_ndvi"]) | (z < rules["stressed_z"])
        if ndre:
            valid &= np.isfinite(ndre[0])
            weak |= ndre[0] < rules["stressed_ndre"]
        out = np.where(weak, stressed, healthy).astype(np.uint8)
        out[z < rules["anomaly_z"]] = anomaly
        out[ndvi < rules["bare_ndvi"]] = bare
    out[~valid] = 0
    return out


def _one_field(ndvi: xr.DataArray) -> xr.DataArray:
    """A field-id raster that puts every pixel in field 1."""
    data = as_dask(ndvi)
    ones = da.ones(data.shape[-2:], dtype=np.int32, chunks=data.chunks[-2:])
    return xr.DataArray(ones, dims=("y", "x"), coords={"y": ndvi["y"], "x": ndvi["x"]})
