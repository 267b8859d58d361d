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

Tables too large to hold in memory (hundreds of thousands of polygons) are written from a
:class:`FeatureSpool`: batches of features spooled to a temporary Arrow IPC stream as they are
made, then streamed into each output by GDAL's Arrow writer (:func:`pyogrio.raw.write_arrow`).
The files are the same as those written from the whole table at once; memory is bounded by
one batch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pyogrio.raw
import shapely
from geopandas.array import GeometryDtype

from agrivision.errors import MissingCRSError, OutputError
from agrivision.io import geojson
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
_SPOOLED = {".geojson", ".json", ".gpkg", ".fgb"}  # formats a FeatureSpool can be written to


class FeatureSpool:
    """Features made batch by batch, kept in a temporary file instead of memory.

    Accepted by :func:`write_vector` (GeoJSON, GeoPackage, FlatGeobuf) and
    :func:`write_layers` wherever a GeoDataFrame is, and written identically; each output then
    streams the batches back from the file, one at a time. Use it as a context manager (or call
    :meth:`close`) to remove the file.

    Parameters
    ----------
    batches : iterable of GeoDataFrame
        At least one frame (empty ones are fine), all with the same columns, dtypes, active
        geometry column and CRS; 2-D geometries.
    folder : path-like, optional
        Where the temporary file goes (default: the system's temporary folder).
    """

    def __init__(
        self, batches: Iterable[gpd.GeoDataFrame], folder: str | os.PathLike | None = None
    ):
        fd, name = tempfile.mkstemp(prefix=".features-", suffix=".arrows", dir=folder)
        os.close(fd)
        self.path = Path(name)
        self.rows = 0
        self.geometry_types: set[str] = set()
        self.schema: pa.Schema | None = None
        self.crs = None
        self.geometry_name = ""
        try:
            self._spool(batches)
        except BaseException:
            self.close()
            raise

    def _spool(self, batches: Iterable[gpd.GeoDataFrame]) -> None:
        writer = None
        try:
            for frame in batches:
                table = _arrow_table(frame)
                if writer is None:
                    self.schema, self.crs = table.schema, frame.crs
                    self.geometry_name = frame.active_geometry_name
                    writer = pa.ipc.new_stream(str(self.path), self.schema)
                writer.write_table(table.cast(self.schema))
                self.rows += len(frame)
                types = frame.geometry.geom_type.dropna().unique()
                self.geometry_types.update(str(t) for t in types)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise OutputError("no batches of features to spool", source="FeatureSpool")

    def __len__(self) -> int:
        return self.rows

    @property
    def empty(self) -> bool:
        """Whether the spool holds no features."""
        return self.rows == 0

    def arrow(self) -> pa.RecordBatchReader:
        """A reader of the spooled batches (geometry as WKB), from the start."""
        return pa.ipc.open_stream(pa.OSFile(str(self.path)))

    def frames(self) -> Iterator[gpd.GeoDataFrame]:
        """The spooled batches as GeoDataFrames, one at a time (nullable Arrow dtypes)."""
        for batch in self.arrow():
            yield self._frame(pa.Table.from_batches([batch]))

    def frame(self, rows: int = 0) -> gpd.GeoDataFrame:
        """The first ``rows`` features (0: none, but the columns and dtypes)."""
        reader = self.arrow()
        batches = []
        while rows > 0 and (batch := next(reader, None)) is not None:
            batches.append(batch.slice(0, rows))
            rows -= len(batches[-1])
        return self._frame(pa.Table.from_batches(batches, schema=reader.schema))

    def _frame(self, table: pa.Table) -> gpd.GeoDataFrame:
        wkb = table.column(self.geometry_name).to_numpy(zero_copy_only=False)
        attributes = table.drop_columns([self.geometry_name]).to_pandas(types_mapper=pd.ArrowDtype)
        return gpd.GeoDataFrame(attributes, geometry=shapely.from_wkb(wkb), crs=self.crs)

    def layer_type(self, driver: str) -> tuple[str, bool]:
        """The layer geometry type pyogrio would give the whole table in ``driver``, and
        whether single geometries are promoted to multi (mixed Polygon/MultiPolygon, in
        drivers that do not allow the mix)."""
        types = self.geometry_types
        if len(types) == 1:
            return next(iter(types)), False
        single = {t.removeprefix("Multi") for t in types}
        if (
            len(types) == 2
            and len(single) == 1
            and driver in pyogrio.raw.DRIVERS_NO_MIXED_SINGLE_MULTI
        ):
            return f"Multi{single.pop()}", True
        return "Unknown", False

    def close(self) -> None:
        """Remove the temporary file."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> FeatureSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _arrow_table(frame: gpd.GeoDataFrame) -> pa.Table:
    """The frame as Arrow (WKB geometry, no index, no pandas metadata)."""
    if not isinstance(frame, gpd.GeoDataFrame) or _geometry_name(frame) is None:
        raise OutputError(
            "spooled batches must be GeoDataFrames with geometry", source="FeatureSpool"
        )
    table = pa.table(frame.to_arrow(index=False, geometry_encoding="WKB"))
    # An empty object column (string ids of a table without rows) has Arrow type null, which
    # GDAL cannot write: it is a string column.
    schema = pa.schema(
        [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
    )
    return table.cast(schema).replace_schema_metadata(None)


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
    gdf : GeoDataFrame, DataFrame or FeatureSpool
        Features in any CRS (GeoJSON output is reprojected to WGS 84). A plain DataFrame (no
        geometry) can be written to ``.csv`` and ``.parquet`` only; a :class:`FeatureSpool`
        to ``.geojson``, ``.gpkg`` and ``.fgb``.
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
        Unknown suffix, a table without geometry for a geometry format, a spool for a format
        other than GeoJSON, GeoPackage or FlatGeobuf, an existing target with
        ``overwrite=False``, or an unwritable directory.
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
    layers : mapping of str to GeoDataFrame or FeatureSpool
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
    gdf: gpd.GeoDataFrame | pd.DataFrame | FeatureSpool,
    target: Path,
    suffix: str,
    layer: str | None = None,
) -> pd.DataFrame | FeatureSpool:
    """The table as it will be written (a named index becomes a column), after checks."""
    where = target if layer is None else f"{target} (layer {layer!r})"
    if isinstance(gdf, FeatureSpool):
        if suffix not in _SPOOLED:
            raise OutputError(
                f"spooled features cannot be written as {FORMATS[suffix]}",
                source=where,
                fix="write them as .geojson, .gpkg or .fgb",
            )
        if suffix in (".geojson", ".json") and gdf.crs is None:
            raise MissingCRSError(
                "features have no CRS, so they cannot be reprojected to WGS 84 (RFC 7946)",
                source=where,
                fix="spool GeoDataFrames with a CRS",
            )
        if gdf.empty:
            warnings.warn(f"{where}: writing an empty table", UserWarning, stacklevel=3)
        return gdf
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
    # Written by io.geojson where it can (many times faster than GDAL's writer), else by
    # GDAL's RFC7946 mode, which reprojects to OGC:CRS84, orients rings (CCW shells, CW
    # holes), splits at the antimeridian and omits "crs"; the tests check the written text.
    spooled = isinstance(table, FeatureSpool)
    if geojson.supported(table.frame(0) if spooled else table):
        batches = table.frames() if spooled else geojson.table_batches(table)
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                geojson.write_feature_collection(batches, out, name=layer, precision=precision)
            return
        except geojson.CrossesAntimeridian:
            pass  # GDAL splits such geometries; it writes the whole file again
    options = {"RFC7946": "YES", "COORDINATE_PRECISION": str(precision)}
    if isinstance(table, FeatureSpool):
        _write_spool(table, tmp, layer=layer, driver="GeoJSON", layer_options=options)
    else:
        pyogrio.write_dataframe(
            table, tmp, layer=layer, driver="GeoJSON", layer_options=options, use_arrow=True
        )


def _write_fgb(table: gpd.GeoDataFrame, tmp: Path, *, layer: str, **_) -> None:
    if isinstance(table, FeatureSpool):
        _write_spool(table, tmp, layer=layer, driver="FlatGeobuf")
    else:
        pyogrio.write_dataframe(table, tmp, layer=layer, driver="FlatGeobuf", use_arrow=True)


def _write_spool(spool: FeatureSpool, tmp: Path, *, layer: str, driver: str, **options) -> None:
    """Stream a spool into a new file or layer (GDAL's Arrow writer, one batch at a time).

    The file is the one ``pyogrio.write_dataframe`` makes of the whole table, whose CRS and
    geometry-type choices this repeats: same bytes for GeoJSON and FlatGeobuf, same layer
    for GeoPackage (the tests compare them).
    """
    geometry_type, promote = spool.layer_type(driver)
    reader = spool.arrow()
    if promote:
        reader = pa.RecordBatchReader.from_batches(
            reader.schema, _promoted(reader, spool.geometry_name)
        )
    pyogrio.raw.write_arrow(
        reader,
        tmp,
        layer=layer,
        driver=driver,
        geometry_name=spool.geometry_name,
        geometry_type=geometry_type,
        crs=_crs_name(spool.crs),
        **options,
    )


#: Single geometry type ids (Point, LineString, Polygon) -> maker of their multi type.
_MULTI = {0: shapely.multipoints, 1: shapely.multilinestrings, 3: shapely.multipolygons}


def _promoted(reader: pa.RecordBatchReader, geometry_name: str) -> Iterator[pa.RecordBatch]:
    """Batches with every single geometry (WKB) made a one-part multi geometry."""
    column = reader.schema.get_field_index(geometry_name)
    for batch in reader:
        geoms = shapely.from_wkb(batch.column(column).to_numpy(zero_copy_only=False))
        kinds = shapely.get_type_id(geoms)
        for kind, make in _MULTI.items():
            which = kinds == kind
            if which.any():
                geoms[which] = make(geoms[which], indices=np.arange(which.sum()))
        wkb = pa.array(shapely.to_wkb(geoms), type=batch.schema.field(column).type)
        yield batch.set_column(column, batch.schema.field(column), wkb)


def _crs_name(crs) -> str | None:
    """The CRS as pyogrio's ``write_dataframe`` passes it to GDAL (EPSG code or WKT1)."""
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt("WKT1_GDAL")


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
            # GeoPackage 1.2, not GDAL's 1.4: GDAL < 3.7 (QGIS on Debian 12) warns on 1.4 files.
            options = {} if tmp.exists() else {"dataset_options": {"VERSION": "1.2"}}
            if isinstance(table, FeatureSpool):
                _write_spool(table, tmp, layer=name, driver="GPKG", **options)
            else:
                pyogrio.write_dataframe(
                    table, tmp, layer=name, driver="GPKG", use_arrow=True, **options
                )
