"""``run_report``: imagery + field boundaries -> every output of the per-field report.

Stages (timed, and named in ``summary.json``): open -> indices -> classes -> write rasters ->
zonal -> problems -> zones -> write vectors -> html. The indices of the last date are
written first (``indices.tif``, the one pass over the imagery), the classes are computed from
them and written next (``classes.tif``), and every later stage reads both back from the COGs
instead of recomputing them. All outputs are written
into a hidden staging folder beside ``outdir`` and moved into place only when every one of
them is complete, so a failed or interrupted run leaves nothing partial in ``outdir``.

Memory stays bounded on a whole Sentinel-2 tile: pixels are reduced chunk by chunk, problem
and zone polygons (hundreds of thousands) are made in strips of the scene and spooled to a
temporary file in the staging folder as they come, then streamed into the GeoJSON and
GeoPackage outputs; GDAL's block cache is capped (:data:`GDAL_CACHE_MB`) unless the user
set ``GDAL_CACHEMAX``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning

from agrivision._version import __version__
from agrivision.errors import OutputError
from agrivision.fields.class_shares import share_columns
from agrivision.fields.table import INSUFFICIENT, PROBLEM_CODES, field_table
from agrivision.fields.timeseries import clear_dates
from agrivision.fields.vectorize import vectorize_batches
from agrivision.health import DEFAULT_SCHEMA, ClassSchema, HealthRules, classify
from agrivision.health.zones import ZoneBatches, with_zone_quality
from agrivision.indices import compute
from agrivision.io.cog import gdal_cache_limit, to_cog
from agrivision.io.fields import check_overlap, crop_column, read_fields
from agrivision.io.remote import reads_remote
from agrivision.io.scene import open_scene
from agrivision.io.vector import FeatureSpool, write_layers, write_vector
from agrivision.masks import MaskConfig
from agrivision.report import model_layers
from agrivision.report.cards import build_cards
from agrivision.report.config import ReportConfig
from agrivision.report.html import render_report, write_report
from agrivision.report.page import page_data
from agrivision.report.styles import write_gpkg_styles, write_raster_style
from agrivision.runtime import compute_context, return_freed_memory, trim_heap
from agrivision.segment.model_classes import (
    classes_provenance,
    model_outputs,
    run_once,
    schema_classes,
)

log = logging.getLogger(__name__)
_Raster = TypeVar("_Raster", xr.DataArray, xr.Dataset)

OUTPUTS = (
    "fields.geojson", "problems.geojson", "zones.geojson", "report.gpkg", "fields.csv",
    "indices.tif", "indices.qml", "classes.tif", "report.html", "summary.json",
)  # fmt: skip
#: Also written with a model: its patches and (with output.grid_cell_m) per-cell shares.
MODEL_OUTPUTS = ("patches.geojson", "cells.geojson")
#: GDAL block cache (MB) during a report, unless GDAL_CACHEMAX is set: every chunk is read
#: once, so a larger cache only holds decoded blocks that are never read again.
GDAL_CACHE_MB = 128


@dataclass
class ReportResult:
    """Where the outputs are, the field table, the polygon counts, the warnings and the stage
    timings (s). The polygons themselves stay on disk (a tile has hundreds of thousands):
    :attr:`problems` and :attr:`zones` read them from ``report.gpkg``."""

    outdir: Path
    table: gpd.GeoDataFrame
    problem_polygons: int
    zone_polygons: int
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    scene: dict = field(default_factory=dict)  # sensor, dates, CRS, shape, resolution

    @property
    def html(self) -> Path:
        """The report page."""
        return self.outdir / "report.html"

    @property
    def problems(self) -> gpd.GeoDataFrame:
        """Problem polygons (``problems`` layer of ``report.gpkg``, the scene's CRS)."""
        return gpd.read_file(self.outdir / "report.gpkg", layer="problems")

    @property
    def zones(self) -> gpd.GeoDataFrame:
        """Management-zone polygons (``zones`` layer of ``report.gpkg``, the scene's CRS)."""
        return gpd.read_file(self.outdir / "report.gpkg", layer="zones")


class _Stages:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        log.info("stage %s ...", name)
        yield
        trim_heap()  # what the stage freed goes back to the system before the next starts
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 3)


def run_report(
    sources: Sequence[str | os.PathLike],
    fields_path: str | os.PathLike,
    outdir: str | os.PathLike,
    *,
    config: ReportConfig | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> ReportResult:
    """Write the per-field crop-health report of ``sources`` over ``fields_path`` to ``outdir``.

    Parameters
    ----------
    sources
        Imagery accepted by :func:`agrivision.open_scene` (one or several dates).
    fields_path
        Field boundaries (GeoJSON, GeoPackage, Shapefile, GeoParquet, FlatGeobuf), any CRS.
    outdir
        Output folder; it must not hold report outputs unless ``overwrite``.
    config
        Run configuration (:class:`agrivision.report.config.ReportConfig`); defaults otherwise.

    Returns
    -------
    ReportResult
    """
    config = config or ReportConfig()
    return_freed_memory()
    out = Path(outdir)
    _check_outdir(out, overwrite)
    stage = _Stages()
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        with (
            warnings.catch_warnings(record=True) as recorded,
            compute_context(
                config.runtime.scheduler, workers=config.runtime.workers, progress=progress
            ),
            gdal_cache_limit(GDAL_CACHE_MB),
        ):
            warnings.simplefilter("always")
            # Chunk-wise reprojection (odc-geo -> rasterio.warp) on explicit grids makes GDAL
            # say some in-memory block "has no geotransform", and so do rasterize and shapes on
            # pixel grids when another thread's catch_warnings drops rasterio's own filter:
            # noise, not a user's concern. Set here, before any worker starts, it survives.
            warnings.filterwarnings(
                "ignore", category=NotGeoreferencedWarning, module=r"rasterio\.(warp|features)"
            )
            result = _run(sources, fields_path, staging, out, config, stage, recorded)
        _write_summary(staging, sources, fields_path, config, result, stage.timings)
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.outdir = out
    result.timings = stage.timings
    return result


def _run(
    sources,
    fields_path,
    staging: Path,
    out: Path,
    config: ReportConfig,
    stage: _Stages,
    recorded: list,
) -> ReportResult:
    sc = config.scene
    with stage("open"):
        exclude: dict[str, Any] = {"exclude": tuple(sc.mask_exclude)} if sc.mask_exclude else {}
        mask = MaskConfig(
            **exclude,
            cloud_probability_threshold=sc.cloud_probability_threshold,
            method=sc.mask,
        )
        # Remote imagery: only the fields' window of each file is read.
        area = (
            read_fields(fields_path, layer=config.fields.layer) if reads_remote(sources) else None
        )
        scene = open_scene(
            list(sources), sensor=sc.sensor, bands=sc.bands, resolution=sc.resolution,
            crs=sc.crs, chunks=sc.chunks, mask=mask, fields=area,
        )  # fmt: skip
        fields = read_fields(
            fields_path, layer=config.fields.layer, id_column=config.fields.id_column,
            to_crs=scene.rio.crs,
        )  # fmt: skip
        check_overlap(fields, scene, source=fields_path)
        crop_column(fields, config.fields.crop_column, source=fields_path)
    with stage("indices"):
        indices = compute(scene, config.indices or _default_indices(scene))
        latest = indices.isel(time=-1) if "time" in indices.dims else indices
        # Written first and read back by every later stage, the classes included: the
        # imagery is decoded, masked and turned into indices once (decoding the lossless
        # index COG costs a fraction of that; the values are the same).
        descriptions = [str(v) for v in latest.data_vars]
        to_cog(latest, staging / "indices.tif", descriptions=descriptions)
        latest = _read_back(staging / "indices.tif", latest)
        if "time" not in indices.dims:
            indices = latest
    with stage("classes"):
        predictions = probabilities = None  # a model's own classes (and probabilities)
        if config.model:  # the U-Net's classes of the last date, mapped onto the schema
            outputs = run_once(model_outputs(
                scene.isel(time=-1) if "time" in scene.dims else scene, config.model, fields,
                probabilities=config.output.model_shares == "probabilities",
            ))  # fmt: skip
            predictions = outputs["model_class"]
            probabilities = outputs.get("model_probability")
            classes = schema_classes(predictions, config.model_classes, schema=DEFAULT_SCHEMA)
        else:
            rules = HealthRules(**config.health) if config.health else HealthRules()
            classes = classify(
                latest, fields, rules=rules, schema=DEFAULT_SCHEMA,
                min_pixels=config.problems.min_pixels,
            )  # fmt: skip
        # the labels: a model's own class names where it has them
        schema = ClassSchema.from_json(classes.attrs["class_schema"])
    with stage("write rasters"):
        # the class raster, read back like the indices
        to_cog(
            classes, staging / "classes.tif",
            colormap=schema.colormap, class_names=schema.names, nodata=0,
        )  # fmt: skip
        classes = _read_back(staging / "classes.tif", classes)
    with stage("zonal"):
        table, series = field_table(
            fields,
            indices,
            classes,
            config=config,
            predictions=predictions,
            probabilities=probabilities,
        )
        # Fields without enough data get a status and no problem polygons or zones.
        supported = fields[(table["status"] != INSUFFICIENT).to_numpy()]
        if supported.empty:
            warnings.warn(
                f"no field has enough data for a verdict (problems.min_pixels = "
                f"{config.problems.min_pixels}, timeseries.min_valid_fraction = "
                f"{config.timeseries.min_valid_fraction}): no problem polygons, no zones",
                UserWarning, stacklevel=2,
            )  # fmt: skip
    with stage("problems"):
        polygons = vectorize_batches(
            classes, supported, classes_to_keep=PROBLEM_CODES,
            class_names=schema.labels, min_area_ha=config.problems.min_area_ha,
            simplify=config.problems.simplify_m,
        )  # fmt: skip
        # Made strip by strip into a file in the staging folder (removed once written).
        problems = FeatureSpool(polygons, folder=staging)
        layers, shares = _model_layers(predictions, probabilities, supported, config, staging)
    with stage("zones"):
        zoned, quality = _zones(indices, latest, fields, supported, series, config, staging)
        table = with_zone_quality(table, quality)
    with stage("write vectors"):
        p = config.output.precision
        write_vector(table, staging / "fields.geojson", precision=p)
        write_vector(problems, staging / "problems.geojson", precision=p)
        write_vector(zoned, staging / "zones.geojson", precision=p)
        for name, layer in layers.items():
            write_vector(layer, staging / f"{name}.geojson", precision=p)
        write_layers(
            {"fields": table, "problems": problems, "zones": zoned, **layers},
            staging / "report.gpkg",
        )
        write_gpkg_styles(staging / "report.gpkg", schema=schema)
        write_raster_style(staging / "indices.tif")
        write_vector(table, staging / "fields.csv")
        if series is not None:
            write_vector(series, staging / "fields_timeseries.csv")
        problems.close()
        zoned.close()
        for layer in layers.values():
            if isinstance(layer, FeatureSpool):
                layer.close()
    made_by = classes_provenance(classes)
    with stage("html"), ThreadPoolExecutor(1) as pool:
        # The cards (matplotlib, which holds the GIL) are drawn while the map layers are
        # read and burnt (GDAL, shapely and numba, which release it).
        drawn = pool.submit(
            build_cards, table, staging / "indices.tif", staging / "classes.tif", series,
            schema=schema, config=config,
        )  # fmt: skip
        data = page_data(
            table, series, gpkg=staging / "report.gpkg", indices_tif=staging / "indices.tif",
            classes_tif=staging / "classes.tif", schema=schema, config=config,
            shares=shares,
        )  # fmt: skip
        cards = drawn.result()
        page = render_report(
            title="agrivision field report",
            subtitle=_subtitle(scene, table),
            data=data,
            cards=cards,
            warnings=_caught(recorded, staging, out),
            provenance=json.dumps(
                {"sources": [str(s) for s in sources], "classes": made_by}, indent=1
            ),
        )
        write_report(staging / "report.html", page)
    return ReportResult(
        outdir=staging, table=table, problem_polygons=len(problems), zone_polygons=len(zoned),
        warnings=_caught(recorded, staging, out),
        scene={**_scene_facts(scene), "classes": made_by},
    )  # fmt: skip


# --------------------------------------------------------------------------- helpers


def _zones(indices, latest, fields, supported, series, config: ReportConfig, staging: Path):
    """Zone polygons (spooled) and per-field zone quality: of the last date, or a season."""
    zc = config.zones
    rules = {
        **zc.rules(), "min_pixels": config.problems.min_pixels,
        "min_valid_fraction": config.timeseries.min_valid_fraction,
    }  # fmt: skip
    if zc.season and "time" in indices.dims:
        # every field with a clear date in the range may get zones, whatever its last date
        index = indices[zc.index].sel(time=slice(zc.start, zc.end))
        usable = clear_dates(series, config.timeseries)
        batches = ZoneBatches(index, fields, usable=usable, **rules)
    else:
        batches = ZoneBatches(latest[zc.index], supported, **rules)
    return FeatureSpool(batches, folder=staging), batches.quality


def _read_back(path: Path, like: _Raster) -> _Raster:
    """``like`` (2-D, one band per variable) with its pixels read lazily from the COG written
    of it, in ``like``'s chunks; coordinates, attributes and names are ``like``'s."""
    first = like[next(iter(like.data_vars))] if isinstance(like, xr.Dataset) else like
    rows, cols = first.chunks or tuple((n,) for n in first.shape)
    raster = rioxarray.open_rasterio(
        path, chunks={"band": 1, "y": rows[0], "x": cols[0]}, lock=False, cache=False
    )
    bands = cast(xr.DataArray, raster).data  # one file, one band per variable
    if isinstance(like, xr.DataArray):
        return like.copy(data=bands[0])
    return like.copy(data={name: bands[i] for i, name in enumerate(like.data_vars)})


def _model_layers(
    predictions, probabilities, supported, config: ReportConfig, staging: Path
) -> tuple[dict, list[str]]:
    """``patches`` (spooled) and, with ``output.grid_cell_m``, ``cells`` of a model's classes
    (shares from ``probabilities`` where given: ``output.model_shares``), and the ``cells``
    columns of the patch classes' shares (they colour the map's cells); none without a
    model."""
    if predictions is None:
        return {}, []
    oc = config.output
    names = json.loads(predictions.attrs["class_names"])
    codes = model_layers.patch_codes(names, oc.patch_classes)
    layers: dict[str, Any] = {"patches": model_layers.patches(
        predictions, supported, codes, min_area_m2=oc.patch_min_area_m2, folder=staging
    )}  # fmt: skip
    if oc.grid_cell_m:
        layers["cells"] = model_layers.cells(
            predictions, supported, oc.grid_cell_m, probabilities=probabilities
        )
    return layers, [share_columns(names)[c] for c in codes]


def _check_outdir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError("output path exists and is not a folder", source=out)
    if not out.parent.is_dir():
        raise OutputError(
            f"parent folder {out.parent} does not exist or is not a folder", source=out
        )
    if not os.access(out.parent, os.W_OK):
        raise OutputError(
            f"folder {out.parent} is not writable", source=out, fix="choose another -o"
        )
    existing = [n for n in (*OUTPUTS, *MODEL_OUTPUTS) if (out / n).exists()]
    if existing and not overwrite:
        raise OutputError(
            f"report outputs exist ({', '.join(existing[:3])}{'...' if len(existing) > 3 else ''})",
            source=out,
            fix="pass --overwrite or choose another -o",
        )


def _publish(staging: Path, out: Path) -> None:
    """Move finished outputs into ``out``, each by an atomic rename."""
    out.mkdir(exist_ok=True)
    for item in sorted(staging.iterdir()):
        os.replace(item, out / item.name)


def _write_summary(staging, sources, fields_path, config, result, timings) -> None:
    inputs = [*map(str, sources), str(fields_path)]
    summary = {
        "agrivision": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "inputs": [_describe(p) for p in inputs],
        "config": config.model_dump(mode="json"),
        **result.scene,
        "fields": len(result.table),
        "problem_polygons": result.problem_polygons,
        "zones": result.zone_polygons,
        "timings_s": timings,
        "warnings": result.warnings,
        "versions": _versions(),
    }
    path = staging / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str))


def _describe(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        return {"path": path}
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": digest.hexdigest()}


def _versions() -> dict[str, str]:
    import dask
    import rasterio
    import shapely

    return {
        "python": ".".join(map(str, __import__("sys").version_info[:3])),
        "numpy": np.__version__, "xarray": xr.__version__, "dask": dask.__version__,
        "rasterio": rasterio.__version__, "gdal": rasterio.__gdal_version__,
        "geopandas": gpd.__version__, "shapely": shapely.__version__, "pandas": pd.__version__,
    }  # fmt: skip


def _worth_reporting(w: warnings.WarningMessage) -> bool:
    return not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


def _default_indices(scene: xr.Dataset) -> list[str]:
    if any(band in scene.data_vars for band in ("rededge", "rededge1")):
        return ["NDVI", "NDRE"]
    warnings.warn(
        "indices: the scene has no red-edge band, so NDRE is left out (NDVI only)",
        UserWarning, stacklevel=3,
    )  # fmt: skip
    return ["NDVI"]


def _caught(recorded: list, staging: Path, out: Path) -> list[str]:
    """The recorded warnings worth a user's eye, once each, naming the files where they end
    up: outputs are written in the staging folder and moved to ``out`` at the end."""
    return _unique(
        str(w.message).replace(str(staging), str(out)) for w in recorded if _worth_reporting(w)
    )


def _dates(scene: xr.Dataset) -> list[str]:
    if "time" in scene.dims:
        return [str(np.datetime_as_string(t, "D")) for t in scene.time.values]
    return [str(scene.attrs["datetime"])[:10]] if "datetime" in scene.attrs else []


def _scene_facts(scene: xr.Dataset) -> dict:
    t = scene.rio.transform()
    return {
        "sensor": scene.attrs.get("sensor"), "mask": scene.attrs.get("mask"),
        "dates": _dates(scene),
        "crs": scene.rio.crs.to_string(), "shape": [scene.sizes["y"], scene.sizes["x"]],
        "resolution_m": [abs(t.a), abs(t.e)], "bands": [str(v) for v in scene.data_vars],
    }  # fmt: skip


def _subtitle(scene: xr.Dataset, table: gpd.GeoDataFrame) -> str:
    dates = _dates(scene) or ["undated"]
    when = dates[0] if len(dates) == 1 else f"{dates[0]} – {dates[-1]} ({len(dates)} dates)"
    return f"{scene.attrs.get('sensor', 'unknown sensor')} · {when} · {len(table)} fields"
