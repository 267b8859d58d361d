"""``screen``: one row of quality measures per scene (and date), duplicates and ``keep``."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from agrivision.masks import MaskConfig
from agrivision.screening.automask import auto_mask_layer
from agrivision.screening.config import KeepConfig, ScreenConfig
from agrivision.screening.duplicates import find_duplicates
from agrivision.screening.quality import Quality, fields_mask, measure
from agrivision.screening.scenes import Reader, SceneRef, discover

logger = logging.getLogger(__name__)

#: Columns of the screening table, in order (the CSV's API).
COLUMNS = (
    "scene_id",
    "source",
    "band",
    "date",
    "drone",
    "crs",
    "width",
    "height",
    "read_width",
    "read_height",
    "nodata_fraction",
    "valid_fraction",
    "field_valid_fraction",
    "cloud_fraction",
    "shadow_fraction",
    "saturation_fraction",
    "sharpness",
    "hash",
    "duplicate_of",
    "duplicate_reason",
    "keep",
    "reason",
)


@dataclass
class ScreenResult:
    """The screening table (one row per scene, :data:`COLUMNS`) and the scenes behind it."""

    table: pd.DataFrame
    scenes: list[SceneRef]


def screen(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    fields: gpd.GeoDataFrame | None = None,
    config: ScreenConfig | None = None,
    sensor: str | None = None,
    bands: Sequence[str] | None = None,
) -> ScreenResult:
    """Screen an image collection: quality per scene and date, duplicates, keep/drop.

    Parameters
    ----------
    sources
        Files, folders, globs or STAC JSON (as for :func:`agrivision.open_scene`), plus
        non-georeferenced drone frames and dates-as-bands quality rasters (one row per band).
    fields
        Field polygons (any CRS; reprojected per scene) for ``field_valid_fraction``.
    config
        Settings (:class:`~agrivision.screening.config.ScreenConfig`); defaults if None.
    sensor, bands
        As for :func:`agrivision.open_scene`: they name the bands of scenes without a quality
        band, whose clouds and shadows then come from the sensor's detector (``mask.method``
        ``auto``, see :mod:`agrivision.masks.auto`) run on the decimated read.

    Returns
    -------
    ScreenResult
        ``table`` with one row per scene in input order; fractions 0..1 (NaN = unknown);
        ``date`` ISO 8601; ``hash`` hexadecimal dHash; ``duplicate_of`` the ``scene_id`` of the
        copy that is kept; ``keep`` per the rules; ``reason`` why a scene is dropped.

    Notes
    -----
    Every band is read decimated to at most ``config.read.max_pixels`` pixels (overviews
    when the file has them), so the cost per scene is bounded whatever the file size.
    """
    config = config or ScreenConfig()
    mask_config = MaskConfig(
        exclude=tuple(config.mask.exclude),
        cloud_probability_threshold=config.mask.cloud_probability_threshold,
        method=config.mask.method,
    )
    scenes = discover(sources)
    rows = []
    qualities: list[Quality] = []
    with Reader(config.read.max_pixels) as reader:
        for scene in scenes:
            arrays, shape = reader.read(scene)
            if config.mask.method != "off":
                codes, _ = auto_mask_layer(
                    scene, arrays, shape, mask_config, sensor=sensor,
                    bands=list(bands) if bands else None,
                )  # fmt: skip
                if codes is not None:
                    arrays["auto_mask"] = [codes]
            nodata = {la.var: la.nodata for la in scene.layers}
            dtypes = {la.var: la.dtype for la in scene.layers}
            q = measure(
                arrays,
                nodata,
                mask_config=mask_config,
                dtypes=dtypes,
                saturation_level=config.quality.saturation_level,
                hash_size=config.duplicates.hash_size,
                fields=_fields_on(scene, fields, shape),
            )
            qualities.append(q)
            rows.append(_row(scene, shape, q, config))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    dup = find_duplicates(
        [(s.bounds, s.crs) if s.georeferenced else None for s in scenes],
        [s.date for s in scenes],
        [q.hash for q in qualities],
        [_rank(q) for q in qualities],
        [tuple(sorted(la.var for la in s.layers)) for s in scenes],
        footprint_iou_min=config.duplicates.footprint_iou,
        hash_max_distance=config.duplicates.hash_max_distance,
        max_days_apart=config.duplicates.max_days_apart,
        content_min_iou=config.duplicates.content_min_iou,
    )
    table["duplicate_of"] = [scenes[d[0]].scene_id if d else "" for d in dup]
    table["duplicate_reason"] = [d[1] if d else "" for d in dup]
    reasons = keep_reasons(table, config.keep)
    table["reason"] = reasons
    table["keep"] = [not r for r in reasons]
    return ScreenResult(table=table, scenes=scenes)


def keep_reasons(table: pd.DataFrame, rules: KeepConfig) -> list[str]:
    """Why each scene fails the keep rules (``"; "``-joined; empty: kept).

    A rule whose measure is NaN (unknown) does not apply. The sharpness rule compares drone
    frames with the median drone frame of the table (needs at least three).
    """
    checks = [
        ("valid_fraction", rules.min_valid_fraction, "min"),
        ("field_valid_fraction", rules.min_field_valid_fraction, "min"),
        ("cloud_fraction", rules.max_cloud_fraction, "max"),
        ("nodata_fraction", rules.max_nodata_fraction, "max"),
        ("saturation_fraction", rules.max_saturation_fraction, "max"),
    ]
    drone_sharp = table.loc[table["drone"], "sharpness"].dropna()
    median_sharp = float(drone_sharp.median()) if len(drone_sharp) >= 3 else math.nan
    out = []
    for _, row in table.iterrows():
        why = []
        for col, limit, kind in checks:
            value = row[col]
            if limit is None or pd.isna(value):
                continue
            if kind == "min" and value < limit:
                why.append(f"{col} {value:.3f} < {limit}")
            if kind == "max" and value > limit:
                why.append(f"{col} {value:.3f} > {limit}")
        ratio = rules.min_relative_sharpness
        if (
            ratio is not None
            and row["drone"]
            and not pd.isna(row["sharpness"])
            and not math.isnan(median_sharp)
            and row["sharpness"] < ratio * median_sharp
        ):
            why.append(f"sharpness {row['sharpness'] / median_sharp:.2f} of median < {ratio}")
        if rules.drop_duplicates and row["duplicate_of"]:
            why.append(f"duplicate of {row['duplicate_of']}")
        out.append("; ".join(why))
    return out


def _row(scene: SceneRef, shape: tuple[int, int], q: Quality, config: ScreenConfig) -> dict:
    drone = (
        scene.drone_hint
        or scene.crs is None
        or (scene.crs.is_projected and scene.pixel_size < config.quality.drone_max_pixel_m)
    )
    return {
        "scene_id": scene.scene_id,
        "source": scene.source,
        "band": scene.band if scene.band is not None else pd.NA,
        "date": scene.date.isoformat() if scene.date else "",
        "drone": bool(drone),
        "crs": scene.crs.to_string() if scene.crs else "",
        "width": scene.shape[1],
        "height": scene.shape[0],
        "read_width": shape[1],
        "read_height": shape[0],
        "nodata_fraction": q.nodata_fraction,
        "valid_fraction": q.valid_fraction,
        "field_valid_fraction": q.field_valid_fraction,
        "cloud_fraction": q.cloud_fraction,
        "shadow_fraction": q.shadow_fraction,
        "saturation_fraction": q.saturation_fraction,
        "sharpness": q.sharpness,
        "hash": _hex(q.hash),
        "duplicate_of": "",
        "duplicate_reason": "",
        "keep": True,
        "reason": "",
    }


def _fields_on(
    scene: SceneRef, fields: gpd.GeoDataFrame | None, shape: tuple[int, int]
) -> np.ndarray | None:
    if fields is None or not scene.georeferenced:
        return None
    local = fields.to_crs(scene.crs) if fields.crs != scene.crs else fields
    return fields_mask(local.geometry, scene.transform, scene.shape, shape)


def _rank(q: Quality) -> float:
    return q.valid_fraction if not math.isnan(q.valid_fraction) else -1.0


def _hex(bits: np.ndarray | None) -> str:
    if bits is None:
        return ""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()
