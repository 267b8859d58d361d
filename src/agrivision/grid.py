"""The grid of a raster as one value object: odc-geo's ``GeoBox`` (CRS, affine, shape).

Every module that needs a raster's CRS or transform takes it from :func:`grid_of`, so the
checks (a CRS, a north-up transform) and their messages are the same everywhere.
"""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401 - registers the .rio accessor
import shapely
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox

from agrivision.errors import GridError, MissingCRSError


def grid_of(raster: xr.DataArray | xr.Dataset | GeoBox) -> GeoBox:
    """The north-up grid of a georeferenced raster.

    Parameters
    ----------
    raster
        A DataArray or Dataset with a CRS and ``y``/``x`` coordinates (rioxarray), or a
        ``GeoBox`` (returned as it is). The transform comes from the coordinates.

    Returns
    -------
    odc.geo.geobox.GeoBox
        CRS, pixel-to-world affine (CRS units, top-left corner) and ``(height, width)``.

    Raises
    ------
    MissingCRSError
        The raster has no CRS.
    GridError
        The transform is rotated or sheared.
    """
    if isinstance(raster, GeoBox):
        return raster
    name = getattr(raster, "name", None)
    source = f"raster {name!r}" if name is not None else "raster"
    if raster.rio.crs is None:
        raise MissingCRSError(
            "raster has no CRS",
            source=source,
            fix="set it with .rio.write_crs(...) (or open the scene with its CRS)",
        )
    stored = raster.rio.transform()
    if stored.b or stored.d:
        raise GridError("the raster grid is rotated", source=source, fix="reproject to north-up")
    # From the coordinates: a stored GeoTransform may be stale after slicing.
    transform = raster.rio.transform(recalc=True)
    return GeoBox((raster.rio.height, raster.rio.width), transform, raster.rio.crs)


def metres_per_unit(grid: GeoBox) -> float | None:
    """Metres per CRS unit of a projected grid; None for a geographic CRS (or none)."""
    if grid.crs is None or not grid.crs.proj.is_projected:
        return None
    return float(grid.crs.proj.axis_info[0].unit_conversion_factor)


def transform_geometries(geoms: np.ndarray, affine: Affine) -> np.ndarray:
    """Shapely geometries with ``affine`` applied to every vertex (e.g. pixel to CRS units)."""

    # Column arithmetic: 9x faster than ``xy @ matrix.T`` on (n, 2) arrays.
    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack(
            (affine.a * x + affine.b * y + affine.c, affine.d * x + affine.e * y + affine.f)
        )

    return shapely.transform(geoms, apply)


def check_same_grid(a: xr.DataArray, b: xr.DataArray) -> None:
    """Raise GridError unless ``a`` and ``b`` share the ``y``/``x`` size and coordinates."""
    same = all(a.sizes.get(d) == b.sizes.get(d) for d in ("y", "x"))
    if same:
        same = all(
            d not in a.coords or d not in b.coords or np.allclose(a[d].values, b[d].values)
            for d in ("y", "x")
        )
    if not same:
        raise GridError(
            f"{a.name or 'raster'} and {b.name or 'field ids'} are not on the same y/x grid",
            fix="build the field-id raster with field_raster(fields, like=<the index>)",
        )
