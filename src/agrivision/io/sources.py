"""Discovering what a list of raster sources holds: files, folders, STAC Items.

This module reads metadata only (GDAL headers, STAC JSON); no pixel is read here.
Each source becomes one or more :class:`BandAsset` records: one band of one file, with
the variable name it will get in the Scene and the acquisition date it belongs to.
"""

from __future__ import annotations

import datetime as dt
import glob
import itertools
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rasterio
import rasterio.crs
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from agrivision.errors import GridError, MissingCRSError, SourceError
from agrivision.limits import check_vrt
from agrivision.sensors import SensorProfile

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img")
STAC_SUFFIXES = (".json", ".geojson")
_DATE_TAGS = ("DATETIME", "ACQUISITIONDATETIME", "DATE_ACQUIRED", "DATE", "TIFFTAG_DATETIME")
_TIFF_DRIVERS = ("GTiff", "COG")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:T(\d{2})(\d{2})(\d{2}))?(?!\d)")


@dataclass
class FileInfo:
    """Header facts of one raster file (read once)."""

    path: str
    count: int
    dtype: str
    nodata: float | None
    crs: rasterio.crs.CRS
    transform: rasterio.Affine
    shape: tuple[int, int]
    descriptions: tuple[str | None, ...]
    tags: dict[str, str]
    band_tags: tuple[dict[str, str], ...]
    block_shape: tuple[int, int]

    @classmethod
    def read(cls, src: rasterio.io.DatasetReader, path: str) -> FileInfo:
        """The header facts of an open dataset ``src`` opened from ``path``."""
        return cls(
            path=path,
            count=src.count,
            dtype=src.dtypes[0],
            nodata=src.nodata,
            crs=src.crs,
            transform=src.transform,
            shape=(src.height, src.width),
            descriptions=tuple(src.descriptions),
            tags=src.tags(),
            band_tags=tuple(src.tags(i) for i in range(1, src.count + 1)),
            block_shape=tuple(src.block_shapes[0]),
        )


@dataclass
class BandAsset:
    """One band of one file, destined for a Scene variable at one acquisition date."""

    file: FileInfo
    band: int  # 1-based band index in the file
    band_id: str | None  # the sensor's id ("B04") or a common name, as found in metadata
    date: dt.datetime | None
    scale: float | None = None  # explicit scale/offset from STAC raster:bands
    offset: float | None = None
    baseline: str | None = None  # processing baseline, when the metadata says
    properties: dict = field(default_factory=dict)


#: Stand-in CRS of rasters tagged ``GEOREFERENCED=no`` while their grid is worked out.
PIXEL_GRID_CRS = rasterio.crs.CRS.from_proj4(
    "+proj=eqc +lat_ts=0 +lon_0=0 +R=6371000 +units=m +no_defs"
)


def file_info(path: str | os.PathLike, *, georeferenced: bool = True) -> FileInfo:
    """Read a raster header and check that the file is usable (georeferenced, not empty).

    With ``georeferenced=False`` (screening, which also lists raw drone frames) a raster
    without CRS, or with a rotated geotransform, is accepted as it is.

    Raises
    ------
    SourceError
        Missing, empty, corrupt or unsupported file.
    MissingCRSError
        The raster has no CRS (and is not tagged ``GEOREFERENCED=no``).
    GridError
        The geotransform is rotated or sheared.
    """
    p = str(path)
    local = "://" not in p and not p.startswith("/vsi")
    if local:
        fs = Path(p)
        if not fs.exists():
            raise SourceError("file not found", source=p, fix="check the path")
        if fs.is_file() and fs.stat().st_size == 0:
            raise SourceError(
                "file is empty (0 bytes)", source=p, fix="re-download or re-export it"
            )
        check_vrt(fs)
    try:
        with warnings.catch_warnings():
            if not georeferenced:
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(p)
        with src:
            if p.lower().endswith((".tif", ".tiff")) and src.driver not in _TIFF_DRIVERS:
                raise SourceError(
                    f"named .tif but it is a {src.driver} file, not a GeoTIFF",
                    source=p,
                    fix="convert it to a georeferenced GeoTIFF (gdal_translate) or rename it",
                )
            if local and src.driver in _TIFF_DRIVERS:
                _check_complete(src, Path(p).stat().st_size)
            info = FileInfo.read(src, p)
    except RasterioIOError as exc:
        raise SourceError(
            f"not a readable raster ({str(exc).splitlines()[0]})",
            source=p,
            fix="check that it is a complete GeoTIFF/COG (re-download if truncated)"
            if local
            else "check the URL and that the server is up (signed URLs expire)",
        ) from exc
    if info.count == 0 or 0 in info.shape:
        raise SourceError("raster has no bands or no pixels", source=p)
    if not georeferenced:
        return info
    if info.crs is None and info.tags.get("GEOREFERENCED") == "no":
        # A single drone frame from `agrivision calibrate` says it has no map position: it
        # opens on its pixel grid (x = column, y = -row, 1 unit per pixel), so that row 0
        # stays on top; open_scene removes the stand-in CRS again.
        info.crs = PIXEL_GRID_CRS
        info.transform = rasterio.Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
    if info.crs is None:
        raise MissingCRSError(
            "raster has no CRS",
            source=p,
            fix="assign one, e.g. gdal_edit.py -a_srs EPSG:32633 FILE, or rio edit-info --crs",
        )
    t = info.transform
    if t.b != 0 or t.d != 0:
        raise GridError(
            "rotated or sheared geotransform is not supported",
            source=p,
            fix="warp it north-up first (gdalwarp FILE OUT.tif)",
        )
    return info


def _check_complete(src: rasterio.io.DatasetReader, size: int) -> None:
    """Refuse a GeoTIFF whose last blocks lie beyond the end of the file (truncated copy).

    A cut-off COG keeps its header (it comes first) and would fail only when pixels are
    read, deep inside a dask computation; the block table tells now.
    """
    rows = -(-src.height // src.block_shapes[0][0])
    cols = -(-src.width // src.block_shapes[0][1])
    last = f"{cols - 1}_{rows - 1}"
    for band in range(1, src.count + 1):
        offset = src.get_tag_item(f"BLOCK_OFFSET_{last}", "TIFF", bidx=band)
        nbytes = src.get_tag_item(f"BLOCK_SIZE_{last}", "TIFF", bidx=band)
        if offset and nbytes and int(offset) + int(nbytes) > size:
            raise SourceError(
                f"file is truncated: it has {size} bytes, its last block ends at byte "
                f"{int(offset) + int(nbytes)}",
                source=src.name,
                fix="re-download or re-export it",
            )


def date_of(info: FileInfo, band: int | None = None) -> dt.datetime | None:
    """Acquisition date from band or file tags, else from the file name."""
    tag_sets = ([info.band_tags[band - 1]] if band else []) + [info.tags]
    for tags in tag_sets:
        for key in _DATE_TAGS:
            if key in tags:
                parsed = parse_date(tags[key])
                if parsed is not None:
                    return parsed
    return date_from_name(Path(info.path).name)


def parse_date(text: str) -> dt.datetime | None:
    """Parse an ISO-like or TIFF (``YYYY:MM:DD HH:MM:SS``) date; None if it is not a date."""
    text = text.strip()
    if re.match(r"^\d{4}:\d{2}:\d{2}", text):
        text = text.replace(":", "-", 2)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return date_from_name(text)
    return parsed.replace(tzinfo=None) if parsed.tzinfo else parsed


def date_from_name(name: str) -> dt.datetime | None:
    """First plausible ``YYYYMMDD[THHMMSS]`` or ``YYYY-MM-DD`` found in a file name."""
    for m in _DATE_IN_NAME.finditer(name):
        y, mo, d, hh, mm, ss = m.groups()
        try:
            when = dt.datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
        except ValueError:
            continue
        if 1970 <= when.year <= 2100:
            return when
    return None


def band_token(text: str | None, profile: SensorProfile | None, known: Iterable[str]) -> str | None:
    """Find a band id or common name in a description or file name.

    ``"B04 red 665nm"`` -> ``"B04"``; ``"T33UUU_20170216_B8A_20m"`` -> ``"B8A"``;
    ``"nir"`` -> ``"nir"``. Band ids of the profile win over common names.
    """
    if not text:
        return None
    tokens = [t for t in re.split(r"[^A-Za-z0-9]+", Path(text).stem if "." in text else text) if t]
    upper = [t.upper() for t in tokens]
    if profile is not None:
        ids = {b.upper(): b for b in (*profile.bands, *profile.masks)}
        for t in upper:
            if t in ids:
                return ids[t]
        # Landsat names files ..._SR_B4.TIF: the id spans two tokens.
        for a, b in itertools.pairwise(upper):
            if f"{a}_{b}" in ids:
                return ids[f"{a}_{b}"]
    names = {n.upper(): n for n in known}
    for t in upper:
        if t in names:
            return names[t]
    return None


def expand_sources(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Expand folders (raster files and STAC JSON inside) and globs into a sorted file list."""
    items = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    if not items:
        raise SourceError(
            "no sources given", fix="pass at least one raster file, folder or STAC item"
        )
    out: list[str] = []
    for item in items:
        text = str(item)
        path = Path(text)
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise SourceError("pattern matches no file", source=text)
            out.extend(matches)
        elif path.is_dir():
            found = sorted(
                str(p)
                for p in path.iterdir()
                if p.suffix.lower() in RASTER_SUFFIXES and not p.name.startswith(".")
            )
            if not found:
                found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in STAC_SUFFIXES)
            if not found:
                raise SourceError(
                    "folder holds no raster (.tif, .tiff, .jp2, .vrt) or STAC JSON", source=text
                )
            out.extend(found)
        else:
            out.append(text)
    return out


def is_stac(path: str) -> bool:
    """True for a local STAC Item / ItemCollection / FeatureCollection JSON file."""
    return path.lower().endswith(STAC_SUFFIXES)


def stac_items(path: str) -> list[dict]:
    """Load STAC Items from an Item, an ItemCollection or a FeatureCollection file."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"cannot read STAC JSON ({exc})", source=path) from exc
    if not isinstance(doc, dict):
        raise SourceError("STAC JSON must be an object", source=path)
    if doc.get("type") == "Feature":
        items = [doc]
    elif doc.get("type") == "FeatureCollection":
        items = list(doc.get("features") or [])
    else:
        raise SourceError(
            "not a STAC Item or ItemCollection (no 'type': 'Feature'/'FeatureCollection')",
            source=path,
        )
    if not items:
        raise SourceError("STAC ItemCollection has no items", source=path)
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("assets"), dict):
            raise SourceError("STAC Item without 'assets'", source=path)
    return items


def resolve_href(href: str, base: str) -> str:
    """Resolve an asset href relative to the STAC file; remote hrefs go through GDAL /vsicurl/."""
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if href.startswith("s3://"):
        return "/vsis3/" + href[5:]
    if href.startswith("file://"):
        href = href[7:]
    p = Path(href)
    return str(p if p.is_absolute() else (Path(base).parent / p).resolve())
