"""Vector exporters: field tables and problem polygons to GIS formats, chosen by file suffix.

Every write is atomic (:func:`agrivision.io.atomic.atomic_path`): the data go to a temporary
file beside the target, renamed onto it on success. Adding a layer to an existing GeoPackage
therefore copies the file first and writes the layer into the copy (copy-then-rename), so a
failure never leaves a half-updated GeoPackage; the price is one copy of the file per write,
and two processes updating the same GeoPackage at once keep only one update.

Formats
-------
``.geojson`` / ``.json``
    RFC 7946 through GDAL's GeoJSON driver (``RFC7946=YES``): reprojected to WGS 84 with
    longitude/latitude order, exterior rings counter-clockwise and holes clockwise, no
    ``crs`` member, ``precision`` decimals per coordinate; NaN and missing values are null.
``.gpkg``
    GeoPackage; :func:`write_vector` adds or replaces one layer and keeps the others,
    :func:`write_layers` writes several layers in one atomic step. Polygon layers that mix
    Polygon and MultiPolygon are stored as MultiPolygon (GDAL's default).
``.parquet``
    GeoParquet (geopandas), geometry and CRS stored losslessly; a plain table as Parquet.
``.fgb``
    FlatGeobuf (with a spatial index).
``.csv``
    Attributes only; ``wkt=True`` adds a ``wkt`` column (coordinates in the table's CRS).

A named index is written as a column, an unnamed one is dropped.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from geopandas.array import GeometryDtype

from agrivision.errors import MissingCRSError, OutputError
from agrivision.io.atomic import atomic_path

#: Supported suffixes (lower case) and the format each one selects.
FORMATS: Mapping[str, str] = {
    ".geojson": "GeoJSON (RFC 7946)",
    ".json": "GeoJSON (RFC 7946)",
    ".gpkg": "GeoPackage",
    ".parquet": "GeoParquet",
    ".fgb": "FlatGeobuf",
    ".csv": "CSV",
}
_TABLE_ONLY = {".csv", ".parquet"}  # formats that accept a table without geometry


def write_vector(
    gdf: gpd.GeoDataFrame | pd.DataFrame,
    path: str | os.PathLike,
    *,
    layer: str | None = None,
    precision: int = 7,
    overwrite: bool = True,
    wkt: bool = False,
) -> Path:
    """Write a table of features atomically, in the format named by the file suffix.

    Parameters
    ----------
    gdf : GeoDataFrame or DataFrame
        Features in any CRS (GeoJSON output is reprojected to WGS 84). A plain DataFrame (no
        geometry) can be written to ``.csv`` and ``.parquet`` only.
    path : path-like
        Target file; its suffix selects the format (see :data:`FORMATS`).
    layer : str, optional
        Layer name inside the file (GeoPackage, FlatGeobuf, GeoJSON ``name``); default the
        file's stem. Writing a GeoPackage layer keeps the file's other layers.
    precision : int
        Decimals per coordinate in GeoJSON (degrees: 7 is about 1 cm) and in the CSV ``wkt``
        column; the binary formats keep full precision.
    overwrite : bool
        Replace an existing file (for GeoPackage: an existing layer of that name).
    wkt : bool
        CSV only: add the geometry as a ``wkt`` column.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputError
        Unknown suffix, a table without geometry for a geometry format, an existing target
        with ``overwrite=False``, or an unwritable directory.
    MissingCRSError
        GeoJSON output from features without a CRS (RFC 7946 needs WGS 84).
    """
    target = Path(path)
    suffix = _suffix(target)
    name = layer or target.stem
    table = _prepared(gdf, target, suffix)
    if suffix == ".gpkg":
        _write_gpkg({name: table}, target, overwrite=overwrite, keep_layers=True)
        return target
    writer = _WRITERS[suffix]
    with atomic_path(target, overwrite=overwrite) as tmp:
        writer(table, tmp, layer=name, precision=precision, wkt=wkt)
    return target


def write_layers(
    layers: Mapping[str, gpd.GeoDataFrame],
    path: str | os.PathLike,
    *,
    overwrite: bool = True,
) -> Path:
    """Write several layers into one GeoPackage in a single atomic step.

    The file holds exactly ``layers`` afterwards (an existing file is replaced, not
    extended; use :func:`write_vector` with ``layer=`` to add one layer to a file).

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame
        Layer name to features, e.g. ``{"fields": table, "problems": polygons}``; written in
        this order, each in its own CRS.
    path : path-like
        Target ``.gpkg`` file.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputError
        The suffix is not ``.gpkg``, no layers are given, a layer has no geometry, or the
        target exists with ``overwrite=False``.
    """
    target = Path(path)
    if _suffix(target) != ".gpkg":
        raise OutputError(
            "several layers need a GeoPackage", source=target, fix="use a .gpkg file name"
        )
    if not layers:
        raise OutputError("no layers to write", source=target, fix="pass at least one layer")
    tables = {name: _prepared(gdf, target, ".gpkg", layer=name) for name, gdf in layers.items()}
    _write_gpkg(tables, target, overwrite=overwrite, keep_layers=False)
    return target


# --------------------------------------------------------------------------- preparation


def _suffix(target: Path) -> str:
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        supported = ", ".join(FORMATS)
        raise OutputError(
            f"unknown vector format {target.suffix or '(no suffix)'!r}",
            source=target,
            fix=f"use one of {supported}",
        )
    return suffix


def _prepared(
    gdf: gpd.GeoDataFrame | pd.DataFrame, target: Path, suffix: str, layer: str | None = None
) -> pd.DataFrame:
    """The table as it will be written (a named index becomes a column), after checks."""
    where = target if layer is None else f"{target} (layer {layer!r})"
    spatial = _geometry_name(gdf) is not None
    if not spatial and suffix not in _TABLE_ONLY:
        raise OutputError(
            f"a table without geometry cannot be written as {FORMATS[suffix]}",
            source=where,
            fix="use a GeoDataFrame, or write .csv/.parquet",
        )
    if spatial and suffix in (".geojson", ".json") and gdf.crs is None:
        raise MissingCRSError(
            "features have no CRS, so they cannot be reprojected to WGS 84 (RFC 7946)",
            source=where,
            fix="set it with gdf.set_crs(...)",
        )
    if gdf.empty:
        warnings.warn(f"{where}: writing an empty table", UserWarning, stacklevel=3)
    return gdf.reset_index() if any(n is not None for n in gdf.index.names) else gdf


def _geometry_name(table: pd.DataFrame) -> str | None:
    """Name of the active geometry column, or None for a table without one."""
    if not isinstance(table, gpd.GeoDataFrame):
        return None
    name = table.active_geometry_name
    return name if name in table.columns else None


# --------------------------------------------------------------------------- writers


def _write_geojson(table: gpd.GeoDataFrame, tmp: Path, *, layer: str, precision: int, **_) -> None:
    # GDAL's RFC7946 mode reprojects to OGC:CRS84, orients rings (CCW shells, CW holes) and
    # omits "crs"; the tests check all of it on the written text.
    pyogrio.write_dataframe(
        table,
        tmp,
        layer=layer,
        driver="GeoJSON",
        layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": str(precision)},
    )


def _write_fgb(table: gpd.GeoDataFrame, tmp: Path, *, layer: str, **_) -> None:
    pyogrio.write_dataframe(table, tmp, layer=layer, driver="FlatGeobuf")


def _write_parquet(table: pd.DataFrame, tmp: Path, **_) -> None:
    table.to_parquet(tmp, index=False)


def _write_csv(table: pd.DataFrame, tmp: Path, *, precision: int, wkt: bool, **_) -> None:
    geometry_columns = [c for c in table.columns if isinstance(table[c].dtype, GeometryDtype)]
    out = pd.DataFrame(table.drop(columns=geometry_columns))
    if wkt and _geometry_name(table) is not None:
        out["wkt"] = shapely.to_wkt(table.geometry.to_numpy(), rounding_precision=precision)
    out.to_csv(tmp, index=False)


_WRITERS: Mapping[str, Callable[..., None]] = {
    ".geojson": _write_geojson,
    ".json": _write_geojson,
    ".fgb": _write_fgb,
    ".parquet": _write_parquet,
    ".csv": _write_csv,
}


def _write_gpkg(
    tables: Mapping[str, gpd.GeoDataFrame], target: Path, *, overwrite: bool, keep_layers: bool
) -> None:
    """Write layers into a copy of ``target`` (or a new file) and rename it onto ``target``."""
    keep = keep_layers and target.exists()
    if keep and not overwrite:
        existing = {str(name) for name, _ in pyogrio.list_layers(target)}
        clash = sorted(existing & set(tables))
        if clash:
            raise OutputError(
                f"layer {clash[0]!r} exists",
                source=target,
                fix="pass overwrite=True or choose another layer name",
            )
    with atomic_path(target, overwrite=True if keep else overwrite) as tmp:
        if keep:
            shutil.copyfile(target, tmp)
        for name, table in tables.items():
            pyogrio.write_dataframe(table, tmp, layer=name, driver="GPKG")
