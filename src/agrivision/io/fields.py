"""Reading field boundaries into a clean Fields table; field areas, crops and scene overlap.

Fields = a GeoDataFrame with a unique ``field_id`` column and valid, non-empty (Multi)Polygons.
Vector formats are read with pyogrio (GDAL); GeoParquet with geopandas/pyarrow because
GDAL's Parquet driver is optional and usually absent from wheels.
"""

from __future__ import annotations

import warnings
import zipfile
from itertools import pairwise
from os import PathLike
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import xarray as xr
from pyproj import CRS, Geod, Proj, Transformer
from pyproj.aoi import BBox
from rasterio.warp import transform_bounds

from agrivision.errors import FieldsError, MissingCRSError, NoOverlapError

_PARQUET = (".parquet", ".geoparquet")
_POLYGONAL = (3, 6)  # shapely type ids of Polygon, MultiPolygon
#: Longest attribute value accepted, in characters (a boundary file is no place for blobs).
MAX_ATTRIBUTE_CHARS = 1_000_000
_GEOD = Geod(ellps="WGS84")
_LONLAT = CRS.from_epsg(4326)
#: Crop columns looked for when none is named, in this order: fiboa (``crop:code``,
#: ``crop:name``), generic names, Austria INVEKOS (``SNAR_CODE``, ``SNAR_BEZEICHNUNG``),
#: Netherlands BRP (``gewascode``, ``gewas``), Denmark (``Afgkode``, ``Afgroede``), France RPG
#: (``CODE_CULTU``). Codes come before names: a code groups exactly where names vary in
#: spelling.
CROP_COLUMNS = (
    "crop:code", "crop:name", "crop_code", "crop_name", "crop", "SNAR_CODE", "SNAR_BEZEICHNUNG",
    "gewascode", "gewas", "Afgkode", "Afgroede", "CODE_CULTU",
)  # fmt: skip


class FieldsWarning(UserWarning):
    """Fields were usable only after a change: repaired, dropped, or given generated ids."""


def read_fields(
    path: str | PathLike,
    *,
    layer: str | int | None = None,
    id_column: str | None = None,
    crs: object = None,
    to_crs: object = None,
) -> gpd.GeoDataFrame:
    """Read field polygons from a vector file into a clean Fields GeoDataFrame.

    Parameters
    ----------
    path : str or PathLike
        GeoJSON, GeoPackage, Shapefile (also zipped: ``.zip`` / ``.shp.zip``), FlatGeobuf,
        GeoParquet (``.parquet``), or any other vector format GDAL reads.
    layer : str or int, optional
        Layer to read from a multi-layer source (GeoPackage). Required when the source has
        several layers with geometries.
    id_column : str, optional
        Column holding the field identifiers (copied to ``field_id``); default ``field_id``.
    crs : optional
        CRS (anything pyproj accepts) of files that carry none; it overrides a declared CRS
        with a warning. GeoJSON without a CRS is EPSG:4326 (RFC 7946); a legacy GeoJSON
        ``crs`` member is honoured as GDAL reads it.
    to_crs : optional
        Reproject the fields to this CRS (e.g. ``scene.rio.crs``).

    Returns
    -------
    GeoDataFrame
        A ``field_id`` column first, the file's attributes, valid (Multi)Polygon geometries,
        a fresh RangeIndex. Invalid polygons are repaired with ``shapely.make_valid`` (their
        polygonal parts kept); null, empty and non-polygonal features are dropped; missing,
        null or duplicate ids are replaced by 1..n (the old column kept as
        ``original_field_id``). Each kind of change is reported by one :class:`FieldsWarning`.

    Raises
    ------
    FieldsError
        Missing, unreadable or corrupt file, ambiguous layer, unknown ``id_column``, no
        polygon features, coordinates that are not finite or (in degrees) outside
        longitude -180..360 / latitude -90..90, or an attribute value longer than
        :data:`MAX_ATTRIBUTE_CHARS`.
    MissingCRSError
        The file has no CRS and ``crs`` was not given.
    """
    path = Path(path)
    if not path.exists():
        raise FieldsError("file not found", source=path, fix="check the path")
    gdf = _read(path, layer)
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise FieldsError(
            "the file has no geometry column", source=path, fix="export the fields with geometries"
        )
    if len(gdf) == 0:
        raise FieldsError("the file has no features", source=path, fix="check the file/layer")
    if crs is not None:
        crs = CRS.from_user_input(crs)
        if gdf.crs is not None and not gdf.crs.equals(crs):
            warnings.warn(
                f"{path}: crs={crs.to_string()} overrides the file's CRS {gdf.crs.to_string()}",
                FieldsWarning,
                stacklevel=2,
            )
        gdf = gdf.set_crs(crs, allow_override=True)
    if gdf.crs is None:
        raise MissingCRSError(
            "the fields file has no CRS",
            source=path,
            fix="pass crs= (e.g. read_fields(path, crs='EPSG:32633')) or add a .prj/CRS to it",
        )
    _check_coordinates(gdf, path)
    _check_attributes(gdf, path)
    if to_crs is not None:
        gdf = gdf.to_crs(to_crs)
        _check_coordinates(gdf, path, f" after reprojection to {gdf.crs.to_string()}")
    gdf = _clean_geometries(gdf, path)
    return _with_ids(gdf, id_column, path)


def area_ha(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> pd.Series:
    """Geodesic area of each geometry in hectares, on the WGS84 ellipsoid, whatever the CRS.

    The vertices are transformed to lon/lat and the area is that of the polygon with geodesic
    edges (pyproj ``Geod``), so a field far from its CRS's zone keeps its true area.

    Raises
    ------
    MissingCRSError
        The geometries have no CRS.
    """
    if gdf.crs is None:
        raise MissingCRSError(
            "cannot compute areas without a CRS", source="fields", fix="set one with set_crs()"
        )
    # Counter-clockwise exteriors and clockwise holes: the signed ring areas then add up.
    lonlat = shapely.orient_polygons(gdf.geometry.to_crs(_LONLAT).to_numpy())
    parts, part_owner = shapely.get_parts(lonlat, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    owner = part_owner[ring_part]
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    ends = np.searchsorted(ring_of, np.arange(len(rings) + 1))
    x, y = xy[:, 0], xy[:, 1]
    ring_m2 = [_GEOD.polygon_area_perimeter(x[a:b], y[a:b])[0] for a, b in pairwise(ends)]
    area = np.bincount(owner, weights=ring_m2, minlength=len(lonlat)) / 1e4
    return pd.Series(area, index=gdf.index, name="area_ha")


def local_area_ha(geometries: np.ndarray, crs: CRS) -> np.ndarray:
    """Area in hectares on the WGS84 ellipsoid of many small geometries at once.

    The planar area in ``crs`` divided by the projection's areal scale at each geometry's
    centroid (PROJ's factors): the scale varies smoothly, so over a polygon its centroid's
    value is its mean to first order. Within 1e-9 of :func:`area_ha` (geodesic edges) for
    200 m polygons, 3e-8 at 2 km, 2e-7 at 5 km (UTM). One vectorised call for all the
    geometries, where :func:`area_ha` computes each ring on its own (about 20 microseconds a
    ring); and, being planar, the same for any vertices added along straight edges (chunk
    seams). Geometries in a geographic CRS go through :func:`area_ha`.

    Parameters
    ----------
    geometries
        Shapely geometries (None allowed: area 0).
    crs
        Their CRS (any).

    Returns
    -------
    numpy.ndarray
        float64 hectares, aligned with ``geometries``.
    """
    crs = CRS.from_user_input(crs)
    if not crs.is_projected:
        return area_ha(gpd.GeoSeries(geometries, crs=crs)).to_numpy()
    planar = np.nan_to_num(shapely.area(geometries))
    area = np.zeros(len(planar))
    some = np.flatnonzero(planar > 0)
    if not len(some):
        return area
    centroids = shapely.centroid(np.asarray(geometries)[some])
    lon, lat = Transformer.from_crs(crs, _LONLAT, always_xy=True).transform(
        shapely.get_x(centroids), shapely.get_y(centroids)
    )
    scale = Proj(crs).get_factors(lon, lat, errcheck=False).areal_scale
    unit = crs.axis_info[0].unit_conversion_factor
    area[some] = planar[some] * unit * unit / np.asarray(scale) / 1e4
    return area


def geodesic_ratio(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> np.ndarray:
    """Geodesic area over planar area (in the geometries' projected CRS) of each geometry.

    A polygon drawn inside one of these (a problem or zone polygon inside its field) has the
    geodesic area ``planar area * ratio`` to within the variation of the CRS's areal scale
    across the outer geometry: below 1e-7 for a field inside its UTM zone, 2e-5 for a 1 km
    field 75 degrees of longitude outside it. :func:`area_ha` on hundreds of thousands of
    pixel polygons costs about 65 microseconds each; this costs one per outer geometry.

    Returns
    -------
    numpy.ndarray
        float64, aligned with ``gdf``; NaN for empty geometries or a geographic CRS.
    """
    planar = gdf.geometry.area.to_numpy() if gdf.crs is not None and gdf.crs.is_projected else None
    if planar is None:
        return np.full(len(gdf), np.nan)
    unit = gdf.crs.axis_info[0].unit_conversion_factor
    with np.errstate(invalid="ignore", divide="ignore"):
        return area_ha(gdf).to_numpy() * 1e4 / (planar * unit * unit)


def crop_column(
    fields: gpd.GeoDataFrame, name: str | None = None, *, source: str | PathLike = "fields"
) -> str | None:
    """The column holding each field's crop: ``name`` when given, else a known one or None.

    Parameters
    ----------
    fields
        Fields as read by :func:`read_fields` (the file's attributes kept).
    name
        Column named by the user (``--crop-column``, ``fields.crop_column``).
    source
        The fields file, for the error message.

    Returns
    -------
    str or None
        ``name``, or the first of :data:`CROP_COLUMNS` present with at least one value, or
        None when the file has none of them.

    Raises
    ------
    FieldsError
        ``name`` is not a column of the fields (the message lists the columns).
    """
    columns = [c for c in fields.columns if c not in ("field_id", fields.geometry.name)]
    if name is not None:
        if name not in fields.columns or name == fields.geometry.name:
            raise FieldsError(
                f"no crop column {name!r} (columns: {', '.join(map(str, columns))})",
                source=source,
                fix="pass one of these columns as --crop-column (fields.crop_column)",
            )
        return name
    return next((c for c in CROP_COLUMNS if c in columns and fields[c].notna().any()), None)


def check_overlap(
    fields: gpd.GeoDataFrame, scene: xr.Dataset | xr.DataArray, *, source: str | PathLike
) -> None:
    """Refuse fields of which none overlaps the scene's extent (usually a CRS mix-up).

    Parameters
    ----------
    fields
        Fields in the scene's CRS (``read_fields(..., to_crs=scene.rio.crs)``).
    scene
        The raster (any georeferenced xarray object with ``rio.bounds()``).
    source
        The fields file, for the error message.

    Raises
    ------
    NoOverlapError
        No field intersects the scene's bounding box; the message gives both extents in
        lon/lat. Fields partly or wholly outside, beside others inside, are not an error (the
        field table flags them).
    """
    bounds = scene.rio.bounds()
    if shapely.intersects(fields.geometry.to_numpy(), shapely.box(*bounds)).any():
        return
    f = BBox(*fields.to_crs(_LONLAT).total_bounds)
    s = BBox(*transform_bounds(scene.rio.crs, _LONLAT, *bounds))
    raise NoOverlapError(
        f"no field overlaps the scene: the fields lie at {_lonlat(f)}; the scene covers "
        f"{_lonlat(s)}",
        source=source,
        fix="check the fields' CRS (.prj / crs member) and that fields and scene are the same area",
    )


def _lonlat(box: BBox) -> str:
    return f"lon {box.west:.3f}..{box.east:.3f}, lat {box.south:.3f}..{box.north:.3f}"


def _read(path: Path, layer: str | int | None) -> gpd.GeoDataFrame:
    """Read one layer of ``path`` (zipped Shapefiles through GDAL's /vsizip/)."""
    name = path.name.lower()
    try:
        if name.endswith(_PARQUET):
            return gpd.read_parquet(path)
        source = _zip_source(path) if name.endswith(".zip") else str(path)
        if layer is None:
            layers = [n for n, kind in pyogrio.list_layers(source) if kind is not None]
            if len(layers) > 1:
                raise FieldsError(
                    f"{len(layers)} layers: {', '.join(layers)}",
                    source=path,
                    fix="choose one with layer=",
                )
            layer = layers[0] if layers else None
        return pyogrio.read_dataframe(source, layer=layer)
    except FieldsError:
        raise
    except Exception as exc:  # GDAL, pyarrow and geopandas raise many types for bad files
        raise FieldsError(
            f"cannot read fields ({type(exc).__name__}: {exc})".replace("\n", " "),
            source=path,
            fix="check that it is a valid vector file (and the layer name)",
        ) from exc


def _check_coordinates(gdf: gpd.GeoDataFrame, path: Path, when: str = "") -> None:
    """Refuse infinite/NaN coordinates, and degrees beyond the globe (a wrong CRS, usually)."""
    xy = shapely.get_coordinates(gdf.geometry.to_numpy())
    if not len(xy):
        return
    if not np.isfinite(xy).all():
        raise FieldsError(
            f"coordinates are not finite{when}",
            source=path,
            fix="check the file's CRS and the geometries (NaN/inf coordinates)",
        )
    if gdf.crs is not None and gdf.crs.is_geographic:
        (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
        if x0 < -180 or x1 > 360 or y0 < -90 or y1 > 90:
            raise FieldsError(
                f"coordinates ({x0:g}..{x1:g}, {y0:g}..{y1:g}) are outside longitude/latitude "
                f"range but the CRS is {gdf.crs.to_string()} (degrees)",
                source=path,
                fix="the file is probably in a projected CRS: pass crs= (e.g. EPSG:32633)",
            )


def _check_attributes(gdf: gpd.GeoDataFrame, path: Path) -> None:
    for column in gdf.columns:
        values = gdf[column]
        if column == gdf.geometry.name or not (
            values.dtype == object or pd.api.types.is_string_dtype(values)
        ):
            continue
        longest = values.map(lambda v: len(v) if isinstance(v, str | bytes) else 0).max()
        if longest > MAX_ATTRIBUTE_CHARS:
            raise FieldsError(
                f"attribute {column!r} holds a value of {longest:,} characters "
                f"(limit {MAX_ATTRIBUTE_CHARS:,})",
                source=path,
                fix=f"drop or shorten column {column!r}",
            )


def _zip_source(path: Path) -> str:
    """GDAL path of a zipped vector file: its only Shapefile, wherever it sits in the zip."""
    with zipfile.ZipFile(path) as zf:
        shapefiles = [n for n in zf.namelist() if n.lower().endswith(".shp")]
    return f"/vsizip/{path}/{shapefiles[0]}" if len(shapefiles) == 1 else f"/vsizip/{path}"


def polygonal_parts(geoms: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Fields' geometries reduced to (Multi)Polygons: the one repair rule of every consumer.

    Invalid geometries are repaired with ``shapely.make_valid`` and geometry collections
    reduced, both keeping only their polygonal parts; valid (Multi)Polygons are returned as
    they are. Coordinates stay in their CRS.

    Returns
    -------
    tuple
        The geometries (a new object array; None where nothing polygonal is left, null,
        empty, points and lines unchanged), the number repaired and the number of
        collections reduced.
    """
    geoms = np.array(geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    collections = np.flatnonzero(~missing & (shapely.get_type_id(geoms) == 7))
    for i in collections:
        geoms[i] = _polygonal(geoms[i])
    invalid = np.flatnonzero(~missing & ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms))
    for i in invalid:
        fixed = shapely.make_valid(geoms[i])
        geoms[i] = fixed if shapely.get_type_id(fixed) in _POLYGONAL else _polygonal(fixed)
    return geoms, len(invalid), len(collections)


def is_polygonal(geoms: np.ndarray) -> np.ndarray:
    """Whether each geometry is a non-empty Polygon or MultiPolygon."""
    return (
        ~shapely.is_missing(geoms)
        & ~shapely.is_empty(geoms)
        & np.isin(shapely.get_type_id(geoms), _POLYGONAL)
    )


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The polygonal part of a geometry collection (None when it has none)."""
    parts = shapely.get_parts(shapely.get_parts(geom))  # collections may nest multipolygons
    polys = parts[np.isin(shapely.get_type_id(parts), _POLYGONAL) & ~shapely.is_empty(parts)]
    if len(polys) == 0:
        return None
    return polys[0] if len(polys) == 1 else shapely.make_valid(shapely.union_all(polys))


def _clean_geometries(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """Repair invalid polygons, reduce collections to polygons, drop everything else."""
    original = gdf.geometry.to_numpy()
    missing = shapely.is_missing(original) | shapely.is_empty(original)
    geoms, n_invalid, n_collections = polygonal_parts(original)
    keep = is_polygonal(geoms)
    if n_invalid or n_collections:
        warnings.warn(
            f"{path}: repaired {n_invalid} invalid geometries with make_valid and reduced "
            f"{n_collections} geometry collections (kept their polygonal parts)",
            FieldsWarning,
            stacklevel=3,
        )
    dropped = int((~keep).sum())
    if dropped:
        n_null = int(missing.sum())
        warnings.warn(
            f"{path}: dropped {dropped} features without polygons ({n_null} null or "
            f"empty, {dropped - n_null} points, lines or degenerate)",
            FieldsWarning,
            stacklevel=3,
        )
    if not keep.any():
        raise FieldsError(
            "no polygon features", source=path, fix="fields must be Polygons or MultiPolygons"
        )
    gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
    return gdf[keep].reset_index(drop=True)


def _with_ids(gdf: gpd.GeoDataFrame, id_column: str | None, path: Path) -> gpd.GeoDataFrame:
    """Put a unique ``field_id`` first: the given/existing ids, or 1..n with a warning."""
    source = id_column or "field_id"
    if id_column is not None and id_column not in gdf.columns:
        columns = [c for c in gdf.columns if c != gdf.geometry.name]
        raise FieldsError(
            f"no column {id_column!r} (columns: {columns})",
            source=path,
            fix="pass one of the columns as id_column=",
        )
    generated = np.arange(1, len(gdf) + 1)
    replaced = True
    if source not in gdf.columns:
        warnings.warn(
            f"{path}: no {source!r} column; generated field_id 1..{len(gdf)}",
            FieldsWarning,
            stacklevel=3,
        )
        ids = generated
    else:
        ids = gdf[source]
        if bad := [v for v in ids if isinstance(v, list | dict | tuple | set | np.ndarray)][:1]:
            raise FieldsError(
                f"{source!r} holds lists or objects (e.g. {str(bad[0])[:40]}), not ids",
                source=path,
                fix="give each field a number or a text id, or pass another id_column=",
            )
        dup = ids[ids.duplicated(keep=False) & ids.notna()].unique()
        if len(dup) or ids.isna().any():
            warnings.warn(
                f"{path}: {source!r} has {len(dup)} duplicated ids (e.g. {dup[:5].tolist()}) "
                f"and {int(ids.isna().sum())} missing ones; generated field_id 1..{len(gdf)} "
                "(old ids in 'original_field_id')",
                FieldsWarning,
                stacklevel=3,
            )
            ids = generated
        else:
            replaced = source != "field_id"
    if "field_id" in gdf.columns and replaced:  # keep the file's own ids beside the new ones
        gdf = gdf.rename(columns={"field_id": "original_field_id"})
    gdf = gdf.drop(columns=["field_id"], errors="ignore")
    gdf.insert(0, "field_id", np.asarray(ids))
    return gdf
