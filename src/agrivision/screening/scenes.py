"""What a collection holds, scene by scene, and decimated reads of each scene.

A *scene* is one acquisition to screen:

- a STAC Item (all its raster assets);
- a group of single-band files of one date that differ only by their band token
  (``T33UVP_20170216_B04_10m.jp2``, ``..._SCL_20m.jp2``: a Sentinel-2 or Landsat folder);
- any other raster file (all its bands), georeferenced or not (raw drone frames);
- one band of a *dates-as-bands* file (band descriptions are dates, or a ``DATETIMES`` tag
  lists one date per band), e.g. a cloud-mask time series.

Pixels are read decimated (``out_shape``; GDAL uses the file's overviews when it has them),
at most ``max_pixels`` per band, nearest-neighbour so that quality codes stay codes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning

from agrivision.errors import SourceError
from agrivision.io.sources import (
    FileInfo,
    date_of,
    expand_sources,
    file_info,
    is_stac,
    parse_date,
    resolve_href,
    stac_items,
)
from agrivision.limits import check_remote_reference

#: Tokens that name a band or a resolution in a file name; removing them leaves the scene key.
_BAND_TOKEN = re.compile(
    r"^(B\d{1,2}A?|SR|ST|QA|PIXEL|RADSAT|AEROSOL|SCL|AOT|WVP|TCI|FMASK|CLM|CLP|\d{2,3}M|"
    r"COASTAL|BLUE|GREEN|RED|REDEDGE\d?|NIR\d*|SWIR\d*|MASK)$",
    re.IGNORECASE,
)
#: Words in a band description, file name or CONTENT tag that identify a quality band.
_MASK_WORDS = (
    ("cloud_probability", ("cloud_probability", "cloud probability", "clp", "cldprb")),
    ("cloud_mask", ("cloud_mask", "cloud mask", "clm")),
    ("qa_pixel", ("qa_pixel",)),
    ("fmask", ("fmask",)),
    ("scl", ("scl", "scene classification")),
)
_ISO_DATE = re.compile(r"^\s*\d{4}-?\d{2}-?\d{2}([T ]\d{2}:?\d{2}(:?\d{2})?.*)?$")


@dataclass(frozen=True)
class Layer:
    """One band of one file in a scene; ``var`` is a quality-band name or ``"data"``."""

    path: str
    band: int
    var: str
    dtype: str
    nodata: float | None


@dataclass
class SceneRef:
    """One scene of a collection: where its layers are, its date and footprint."""

    scene_id: str
    source: str
    date: dt.datetime | None
    layers: list[Layer]
    shape: tuple[int, int]
    crs: CRS | None
    transform: rasterio.Affine
    band: int | None = None  # band number for a date of a dates-as-bands file
    drone_hint: bool = False  # camera metadata says drone (Make/Model/SENSOR)
    item: dict | None = None  # the STAC Item it came from
    files: list[str] = field(default_factory=list)

    @property
    def georeferenced(self) -> bool:
        """True when the scene has a CRS (a footprint on the map)."""
        return self.crs is not None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the scene's CRS units."""
        t, (h, w) = self.transform, self.shape
        xs = (t.c, t.c + t.a * w)
        ys = (t.f, t.f + t.e * h)
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def pixel_size(self) -> float:
        """Pixel edge in CRS units (metres for projected CRSs)."""
        return abs(self.transform.a)


def discover(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> list[SceneRef]:
    """Expand sources (files, folders, globs, STAC JSON) into scenes, in input order.

    Raises
    ------
    SourceError
        Missing, unreadable or empty sources.
    """
    scenes: list[SceneRef] = []
    singles: list[FileInfo] = []
    for path in expand_sources(sources):
        if is_stac(path):
            scenes += [_from_item(path, item) for item in stac_items(path)]
            continue
        info = file_info(path, georeferenced=False)
        if _dates_as_bands(info):
            scenes += _per_band_dates(info)
        elif info.count == 1:
            singles.append(info)
        else:
            scenes.append(_from_files(Path(path).stem, path, [info]))
    groups: dict[tuple[str, str, dt.date | None], list[FileInfo]] = {}
    for info in singles:
        when = date_of(info)
        key = (str(Path(info.path).parent), _scene_key(info.path), when.date() if when else None)
        groups.setdefault(key, []).append(info)
    for (_, stem, _), infos in groups.items():
        name = stem if len(infos) > 1 and stem else Path(infos[0].path).stem
        scenes.append(_from_files(name, infos[0].path, infos))
    _unique_ids(scenes)
    return scenes


def decimated_shape(shape: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """Largest ``(rows, cols)`` at most ``max_pixels`` with an integer decimation factor."""
    rows, cols = shape
    factor = max(1, math.ceil(math.sqrt(rows * cols / max_pixels)))
    while math.ceil(rows / factor) * math.ceil(cols / factor) > max_pixels:
        factor += 1
    return math.ceil(rows / factor), math.ceil(cols / factor)


class Reader:
    """Decimated reads with each file opened once; use as a context manager."""

    def __init__(self, max_pixels: int):
        self.max_pixels = max_pixels
        self._open: dict[str, rasterio.io.DatasetReader] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def read(self, scene: SceneRef) -> tuple[dict[str, list[np.ndarray]], tuple[int, int]]:
        """All layers of ``scene`` on one decimated grid.

        Returns
        -------
        tuple
            ``({var: [array, ...]}, (rows, cols))``: arrays in the file's dtype, quality
            layers under their variable name, everything else under ``"data"``.
        """
        out_shape = decimated_shape(scene.shape, self.max_pixels)
        arrays: dict[str, list[np.ndarray]] = {}
        for layer in scene.layers:
            src = self._dataset(layer.path)
            data = src.read(layer.band, out_shape=out_shape, resampling=Resampling.nearest)
            arrays.setdefault(layer.var, []).append(data)
        return arrays, out_shape

    def _dataset(self, path: str) -> rasterio.io.DatasetReader:
        if path not in self._open:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._open[path] = self._stack.enter_context(rasterio.open(path))
        return self._open[path]


# --------------------------------------------------------------------------- discovery


def _dates_as_bands(info: FileInfo) -> bool:
    if info.count < 2:
        return False
    listed = [d for d in info.tags.get("DATETIMES", "").split(",") if d.strip()]
    if len(listed) == info.count:
        return True
    return all(d and _ISO_DATE.match(d) and parse_date(d) for d in info.descriptions)


def _band_dates(info: FileInfo) -> list[dt.datetime | None]:
    listed = [d for d in info.tags.get("DATETIMES", "").split(",") if d.strip()]
    if len(listed) == info.count:
        return [parse_date(d) for d in listed]
    return [parse_date(d) if d else None for d in info.descriptions]


def _mask_kind(*texts: str | None) -> str | None:
    """The quality-band variable a description / file name / CONTENT tag names, if any."""
    for text in texts:
        if not text:
            continue
        low = text.lower()
        tokens = set(re.split(r"[^a-z0-9]+", low))
        for var, words in _MASK_WORDS:
            for w in words:
                if (w in tokens) or (("_" in w or " " in w) and w in low):
                    return var
    return None


def _is_drone(info: FileInfo) -> bool:
    text = " ".join(
        info.tags.get(k, "") for k in ("TIFFTAG_MAKE", "TIFFTAG_MODEL", "SENSOR", "PLATFORM")
    ).lower()
    return any(w in text for w in ("micasense", "dji", "parrot", "sequoia", "uav", "drone"))


def _per_band_dates(info: FileInfo) -> list[SceneRef]:
    kind = _mask_kind(info.tags.get("CONTENT"), Path(info.path).stem) or "data"
    stem = Path(info.path).stem
    out = []
    for band, when in enumerate(_band_dates(info), start=1):
        label = when.strftime("%Y%m%dT%H%M%S") if when else f"b{band}"
        out.append(
            SceneRef(
                scene_id=f"{stem}@{label}",
                source=info.path,
                date=when,
                layers=[Layer(info.path, band, kind, info.dtype, info.nodata)],
                shape=info.shape,
                crs=info.crs,
                transform=info.transform,
                band=band,
                drone_hint=_is_drone(info),
                files=[info.path],
            )
        )
    return out


def _from_files(name: str, source: str, infos: list[FileInfo]) -> SceneRef:
    layers: list[Layer] = []
    for info in infos:
        file_kind = _mask_kind(Path(info.path).stem) if info.count == 1 else None
        for band in range(1, info.count + 1):
            kind = file_kind or _mask_kind(info.descriptions[band - 1]) or "data"
            layers.append(Layer(info.path, band, kind, info.dtype, info.nodata))
    # The grid of the finest data layer is the scene's (band files come at 10/20/60 m).
    finest = min(infos, key=lambda i: abs(i.transform.a) if i.crs else 0.0)
    when = next((d for d in (date_of(i) for i in infos) if d is not None), None)
    return SceneRef(
        scene_id=name,
        source=source,
        date=when,
        layers=layers,
        shape=finest.shape,
        crs=finest.crs,
        transform=finest.transform,
        drone_hint=any(_is_drone(i) for i in infos),
        files=[i.path for i in infos],
    )


def _from_item(path: str, item: dict) -> SceneRef:
    props = item.get("properties", {})
    infos = []
    mask_assets: dict[str, str] = {}
    for key, asset in item["assets"].items():
        href = asset.get("href", "")
        roles = asset.get("roles", ["data"])
        if not href.lower().split("?")[0].endswith((".tif", ".tiff", ".jp2")):
            continue
        if "data" not in roles and not _mask_kind(key):
            continue
        check_remote_reference(href, container=path)
        info = file_info(resolve_href(href, path), georeferenced=False)
        infos.append(info)
        kind = _mask_kind(key)
        if kind:
            mask_assets[info.path] = kind
    if not infos:
        raise SourceError(f"STAC Item {item.get('id')!r} has no raster asset", source=path)
    ref = _from_files(str(item.get("id") or Path(path).stem), path, infos)
    ref.layers = [
        Layer(la.path, la.band, mask_assets.get(la.path, la.var), la.dtype, la.nodata)
        for la in ref.layers
    ]
    when = parse_date(str(props.get("datetime") or props.get("start_datetime") or ""))
    ref.date = when or ref.date
    ref.item = item
    return ref


def _scene_key(path: str) -> str:
    tokens = [t for t in re.split(r"[_\-.]+", Path(path).stem) if t]
    kept = [t for t in tokens if not _BAND_TOKEN.match(t)]
    return "_".join(kept)


def _unique_ids(scenes: list[SceneRef]) -> None:
    seen: dict[str, int] = {}
    for s in scenes:
        n = seen.get(s.scene_id, 0)
        seen[s.scene_id] = n + 1
        if n:
            s.scene_id = f"{s.scene_id}~{n + 1}"
