"""Fields made ready for a raster: one rule set for zonal statistics, rasterising and polygons.

:func:`~agrivision.io.fields.read_fields` forgives a file (it repairs, drops and renumbers,
with warnings); the functions that take a GeoDataFrame instead refuse what they cannot use,
all with the same errors, through :func:`prepare_fields`.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
from pyproj import CRS

from agrivision.errors import FieldsError, InvalidGeometryError, MissingCRSError
from agrivision.io.fields import is_polygonal, polygonal_parts

log = logging.getLogger(__name__)


def prepare_fields(
    fields: gpd.GeoDataFrame, crs: Any, *, id_column: str = "field_id"
) -> gpd.GeoDataFrame:
    """Check field polygons and bring them to a raster's CRS.

    Parameters
    ----------
    fields
        Polygons or MultiPolygons with a unique, non-null ``id_column``, in any CRS.
    crs
        The raster's CRS (anything pyproj accepts); fields in another CRS are reprojected
        (logged at INFO level).
    id_column
        The field identifier column.

    Returns
    -------
    GeoDataFrame
        The same rows and columns in input order (fresh RangeIndex), in ``crs``; invalid
        geometries repaired with ``shapely.make_valid`` (their polygonal parts kept).

    Raises
    ------
    FieldsError
        Not a GeoDataFrame, no ``id_column``, or missing or duplicate ids.
    MissingCRSError
        The fields have no CRS.
    InvalidGeometryError
        Null or empty geometries, or ones without a polygonal part (points, lines).
    """
    if not isinstance(fields, gpd.GeoDataFrame):
        raise FieldsError(
            f"fields must be a GeoDataFrame, not {type(fields).__name__}",
            source="fields",
            fix="read them with agrivision.io.fields.read_fields",
        )
    if id_column not in fields.columns:
        columns = ", ".join(str(c) for c in fields.columns if c != fields.geometry.name)
        raise FieldsError(
            f"no column {id_column!r} (columns: {columns})",
            source="fields",
            fix="name the field id column (id_column=/column=) or read them with read_fields()",
        )
    ids = fields[id_column]
    duplicated = ids[ids.duplicated() & ids.notna()].unique()
    if len(duplicated) or ids.isna().any():
        raise FieldsError(
            f"column {id_column!r} has {len(duplicated)} duplicate ids (e.g. "
            f"{duplicated[:5].tolist()}) and {int(ids.isna().sum())} missing ones",
            source="fields",
            fix="give every field its own id (read_fields generates unique ids)",
        )
    if fields.crs is None:
        raise MissingCRSError(
            "fields have no CRS",
            source="fields",
            fix="set it with fields.set_crs(...) or read_fields(path, crs=...)",
        )
    target = CRS.from_user_input(crs)
    if not fields.crs.equals(target):
        log.info(
            "reprojecting %d fields from %s to the raster CRS %s",
            len(fields),
            fields.crs.to_string(),
            target.to_string(),
        )
        fields = fields.to_crs(target)
    geoms, _, _ = polygonal_parts(fields.geometry.to_numpy())
    bad = ~is_polygonal(geoms)
    if bad.any():
        raise InvalidGeometryError(
            f"{int(bad.sum())} fields are null, empty or not polygons "
            f"(field ids {ids.to_numpy()[bad][:5].tolist()})",
            source="fields",
            fix="drop or fix them (read_fields() drops them with a warning)",
        )
    name = fields.geometry.name
    out = fields.set_geometry(gpd.GeoSeries(geoms, index=fields.index, crs=fields.crs, name=name))
    return out.reset_index(drop=True)
