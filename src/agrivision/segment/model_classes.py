"""Crop-health classes from a U-Net checkpoint: the alternative to the index rules.

:func:`model_classes` runs :func:`agrivision.segment.segment` on one date of a Scene (blended
sliding windows, lazily per dask chunk, the model loaded once per process or dask worker),
translates the checkpoint's classes into the report's class schema and keeps only the pixels
inside the fields, as :func:`agrivision.health.classify` does.

How a checkpoint's class names map onto the schema
--------------------------------------------------
Each class of the checkpoint (``spec.classes`` in its ``model.json``), lower-cased with spaces
and hyphens turned into underscores, takes the first of:

1. ``mapping`` (the ``model_classes:`` section of a report config), e.g.
   ``{tractor: background, lodged: stressed}``;
2. the schema class of the same name (``background, healthy, stressed, anomaly,
   bare_soil`` in the default schema);
3. :data:`SYNONYMS`: ``crop -> healthy``, ``soil``/``weed`` -> ``bare_soil``,
   ``pest``/``disease`` -> ``anomaly`` (red: the place to scout), ``nodata`` ->
   ``background``, ...

A class named by none of these raises :class:`~agrivision.errors.CheckpointError` naming the
checkpoint and the class, with the config line that fixes it: a class is never dropped or
guessed silently. Several checkpoint classes may share one schema class (CWFID's ``soil`` and
``weed`` both become ``bare_soil``).

Names follow the evidence: the rules can only say "anomaly", but a model trained on pest,
weed or disease labels can say more. So a report class that receives checkpoint classes of
other names is *labelled* with them (:func:`model_labels`): CWFID's ``soil`` and ``weed``
make the brown class "soil / weed", a ``disease`` class makes the red one "disease". The
label is what the legend, the cards and the problem polygons' ``class_name`` show; codes,
names, colours and the field-table columns (``anomaly_pct``, ...) stay those of the schema.

Code 0 (background) is also where any model band is NaN (nodata, masked clouds) and, with
fields, every pixel outside them.

:func:`model_predictions` keeps the checkpoint's own classes (``soil, crop, weed``), whose
per-field shares the report also gives; :func:`model_outputs` adds their probabilities from
the same model run (for expected shares, the report's ``output.model_shares:
probabilities``); :func:`schema_classes` maps them. A lazy class raster
reruns the model each time it is read; :func:`run_once` computes it once and keeps it (1 byte
per pixel), which is what ``agrivision report --model`` does.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TypeVar

import dask.array as da
import geopandas as gpd
import numpy as np
import xarray as xr

from agrivision.errors import CheckpointError, ConfigError
from agrivision.fields.rasterize import field_raster
from agrivision.health.schema import DEFAULT_SCHEMA, ClassSchema
from agrivision.segment.nodata import NODATA

log = logging.getLogger(__name__)
Raster = TypeVar("Raster", xr.DataArray, xr.Dataset)

#: :func:`run_once` keeps class rasters up to this size (1 byte per pixel: ~9 Sentinel-2 tiles).
KEEP_MAX_BYTES = 2**30

#: Checkpoint class names (normalised) understood without a mapping -> default-schema names.
#: Only unambiguous names: anything else needs an explicit ``model_classes:`` entry.
_ALIASES = {
    "background": "nodata no_data none void unlabeled unlabelled other",
    "healthy": "crop healthy_crop normal",
    "stressed": "stress stressed_crop drought water_stress",
    # pest_disease: the name of this class before it was renamed (older checkpoints)
    "anomaly": "pest pests disease diseased damage pest_damage disease_damage pest_disease",
    "bare_soil": "soil bare weed weeds bare_soil_weeds soil_weeds",
}
SYNONYMS: Mapping[str, str] = MappingProxyType(
    {alias: target for target, aliases in _ALIASES.items() for alias in aliases.split()}
)


def class_mapping(
    classes: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    *,
    schema: ClassSchema = DEFAULT_SCHEMA,
    source: str | os.PathLike = "checkpoint",
) -> dict[str, str]:
    """Schema class name for each checkpoint class (rules in the module docstring).

    Parameters
    ----------
    classes
        The checkpoint's class names, by output index.
    mapping
        Explicit ``{checkpoint class: schema class name}`` (config ``model_classes:``).
    schema
        The report's class schema.
    source
        The checkpoint, named in error messages.

    Returns
    -------
    dict
        ``{checkpoint class: schema class name}`` in the checkpoint's order.

    Raises
    ------
    ConfigError
        ``mapping`` names a class the checkpoint lacks, or a target the schema lacks.
    CheckpointError
        A checkpoint class that neither ``mapping``, the schema nor :data:`SYNONYMS` names.
    """
    explicit = check_mapping(mapping or {}, schema=schema)
    by_key = {class_key(c): c for c in classes}
    if unknown := [k for k in explicit if k not in by_key]:
        raise ConfigError(
            f"model_classes names {unknown}, which the model does not have "
            f"(its classes: {', '.join(classes)})",
            source=source, fix="use the class names of the checkpoint's model.json",
        )  # fmt: skip
    names = set(schema.names.values())
    result, unmapped = {}, []
    for name in classes:
        key = class_key(name)
        target = explicit.get(key) or (key if key in names else SYNONYMS.get(key))
        if target in names:
            result[name] = target
        else:
            unmapped.append(name)
    if unmapped:
        allowed = ", ".join(schema.names.values())
        example = ", ".join(f"{n}: CLASS" for n in unmapped)
        raise CheckpointError(
            f"model class(es) {unmapped} have no report class (the report's classes: {allowed})",
            source=source,
            fix=f"map them in the report config, e.g. `model_classes: {{{example}}}` "
            f"with CLASS one of {allowed}",
        )
    return result


def check_mapping(
    mapping: Mapping[str, str], *, schema: ClassSchema = DEFAULT_SCHEMA
) -> dict[str, str]:
    """Validate a ``model_classes:`` mapping's targets; return it with normalised keys.

    Raises
    ------
    ConfigError
        A target that is not a class name of ``schema`` (the message names the key).
    """
    names = list(schema.names.values())
    for key, target in mapping.items():
        if target not in names:
            raise ConfigError(
                f"model_classes.{key}: {target!r} is not a report class",
                fix=f"allowed: {', '.join(names)}",
            )
    return {class_key(k): v for k, v in mapping.items()}


def model_labels(
    mapping: Mapping[str, str], *, schema: ClassSchema = DEFAULT_SCHEMA
) -> dict[int, str]:
    """Labels that a checkpoint's classes give the report classes they land on.

    Parameters
    ----------
    mapping
        ``{checkpoint class: schema class name}`` (:func:`class_mapping`).
    schema
        The report's class schema.

    Returns
    -------
    dict
        ``{code: label}`` for every class but background that receives a checkpoint class
        named otherwise: the checkpoint's names joined by " / ", in its order (``{4: "soil /
        weed"}`` for CWFID). Classes the checkpoint names exactly keep their label.
    """
    labels: dict[int, str] = {}
    for target in dict.fromkeys(mapping.values()):
        sources = [name for name, t in mapping.items() if t == target]
        code = schema.code(target)
        if code != 0 and [class_key(n) for n in sources] != [target]:
            labels[code] = " / ".join(sources)
    return labels


def model_predictions(
    scene: xr.Dataset,
    model: str | os.PathLike,
    fields: gpd.GeoDataFrame | None = None,
    *,
    device: str = "auto",
) -> xr.DataArray:
    """The checkpoint's own classes of one date, inside the fields; lazy uint8.

    Parameters
    ----------
    scene
        One date, dims ``(y, x)``, with the bands named in the checkpoint (reflectance 0..1,
        NaN = nodata); any CRS (the result is on the scene's grid).
    model
        Checkpoint directory (``model.json`` + ``model.safetensors``); verified here, and
        reloaded from this path by dask workers (once per worker).
    fields
        Field polygons with a unique ``field_id`` (any CRS); pixels outside every field
        become 255. Without fields the whole scene is kept.
    device
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.

    Returns
    -------
    xarray.DataArray
        ``model_class``: the index of the checkpoint's class (``classes[i]`` of its
        ``model.json``), 255 = nodata or outside the fields (also the rio nodata), on the
        scene's grid and chunks; ``attrs["class_names"]`` (JSON list) and
        ``attrs["model"]`` (JSON: checkpoint path, weights SHA-256).

    Raises
    ------
    CheckpointError
        Unreadable or corrupt checkpoint.
    BandNotFoundError
        The scene lacks a band the model needs.
    """
    return model_outputs(scene, model, fields, device=device)["model_class"]


def model_outputs(
    scene: xr.Dataset,
    model: str | os.PathLike,
    fields: gpd.GeoDataFrame | None = None,
    *,
    device: str = "auto",
    probabilities: bool = False,
) -> xr.Dataset:
    """:func:`model_predictions` and, if asked, the class probabilities of the same run.

    The arguments are :func:`model_predictions`'s; ``probabilities`` adds
    ``model_probability``: uint8 ``(class, y, x)``, the probability of each checkpoint class
    times 254 (rounded; 255 = nodata or outside the fields, also the rio nodata), computed by
    the same model call as the classes (the class is the most probable one).

    Returns
    -------
    xarray.Dataset
        ``model_class`` (see :func:`model_predictions`) and, with ``probabilities``,
        ``model_probability`` (same attrs, plus ``probability_scale`` = 1/254).
    """
    from agrivision.segment import load_checkpoint, segment
    from agrivision.segment.predict import PROBABILITY_SCALE

    if "time" in scene.dims:
        raise ConfigError(
            f"the model takes one date; the scene has {scene.sizes['time']}",
            source="scene", fix="select one, e.g. scene.isel(time=-1)",
        )  # fmt: skip
    segmenter = load_checkpoint(model)  # fail now on a bad checkpoint, not mid-computation
    result = segment(scene, segmenter, device=device, probabilities=probabilities)
    band = scene[segmenter.spec.bands[0]]
    attrs = {
        "class_names": json.dumps(list(segmenter.spec.classes)),
        "model": json.dumps(
            {"checkpoint": str(segmenter.path), "weights_sha256": segmenter.meta.weights_sha256}
        ),
    }
    fid = field_raster(fields, band).data if fields is not None else None
    classes = band.copy(data=_in_fields(result["classes"].data, fid, band.chunks))
    classes.name = "model_class"
    classes.encoding = {}
    classes.attrs = {"long_name": "model class", **attrs}
    out = xr.Dataset({"model_class": classes.rio.write_nodata(NODATA)})
    if probabilities:
        probs = _in_fields(result["probabilities"].data, fid, band.chunks)
        layer = xr.DataArray(
            probs, dims=("class", *band.dims),
            coords={**{k: c for k, c in band.coords.items() if set(c.dims) <= set(band.dims)},
                    "class": list(segmenter.spec.classes)},
            name="model_probability",
            attrs={"long_name": "model class probability x 254", **attrs,
                   "probability_scale": 1 / PROBABILITY_SCALE},
        )  # fmt: skip
        out["model_probability"] = layer.rio.write_nodata(NODATA)
    return out


def schema_classes(
    predictions: xr.DataArray,
    mapping: Mapping[str, str] | None = None,
    *,
    schema: ClassSchema = DEFAULT_SCHEMA,
) -> xr.DataArray:
    """A model's classes (:func:`model_predictions`) as the report's health classes; lazy.

    Parameters
    ----------
    predictions
        :func:`model_predictions` (computed or lazy).
    mapping
        ``{checkpoint class: schema class}`` for names the built-in rules do not know.
    schema
        The report's class schema.

    Returns
    -------
    xarray.DataArray
        ``health_class``, uint8, 0 = background/nodata (also the rio nodata);
        ``attrs["class_schema"]`` (JSON) and ``attrs["model"]`` (JSON: checkpoint path,
        weights SHA-256, class mapping); the schema's labels are the model's class names
        (:func:`model_labels`).

    Raises
    ------
    CheckpointError
        A class that cannot be mapped.
    """
    provenance = json.loads(predictions.attrs["model"])
    classes = json.loads(predictions.attrs["class_names"])
    names = class_mapping(classes, mapping, schema=schema, source=provenance["checkpoint"])
    lut = np.zeros(256, np.uint8)  # 255 (nodata, outside the fields) stays 0 = background
    lut[: len(classes)] = [schema.code(names[c]) for c in classes]
    out = xr.apply_ufunc(
        _lookup, predictions, kwargs={"lut": lut}, dask="parallelized", output_dtypes=[np.uint8]
    )
    out.name = "health_class"
    out.encoding = {}
    out.attrs = {
        "long_name": "crop-health class (U-Net)",
        "class_schema": schema.relabel(model_labels(names, schema=schema)).to_json(),
        "model": json.dumps({**provenance, "classes": names}),
    }
    return out.rio.write_nodata(0)


def model_classes(
    scene: xr.Dataset,
    model: str | os.PathLike,
    fields: gpd.GeoDataFrame | None = None,
    *,
    mapping: Mapping[str, str] | None = None,
    schema: ClassSchema = DEFAULT_SCHEMA,
    device: str = "auto",
) -> xr.DataArray:
    """Crop-health class raster of one date predicted by a U-Net checkpoint; lazy uint8.

    :func:`model_predictions` translated by :func:`schema_classes`; the arguments are theirs.
    Code 0 (background) is where any model band is NaN and, with fields, every pixel outside
    them.

    Raises
    ------
    CheckpointError
        Unreadable or corrupt checkpoint, or a class that cannot be mapped.
    BandNotFoundError
        The scene lacks a band the model needs.
    """
    predictions = model_predictions(scene, model, fields, device=device)
    return schema_classes(predictions, mapping, schema=schema)


def run_once(classes: Raster, *, max_bytes: int = KEEP_MAX_BYTES) -> Raster:
    """Compute a lazy class raster now and keep it, so that later steps do not rerun the model.

    A report reads the classes several times (zonal statistics, problem polygons, the COG);
    lazily, each read would run the U-Net again, by far the costliest step. The kept raster
    costs 1 byte per pixel: in this process under the local scheduler, spread over the
    workers' memory on a dask.distributed cluster (``persist``).

    Parameters
    ----------
    classes
        Lazy uint8 class raster (:func:`model_classes`), or a Dataset of rasters computed
        together (:func:`model_outputs`: classes and probabilities in one model run).
    max_bytes
        Larger rasters stay lazy (memory stays bounded by the chunk size; the model then runs
        once per read).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        The same raster(s), computed (or unchanged when too large).
    """
    if classes.nbytes > max_bytes:
        log.info(
            "class raster of %.1f GB kept lazy: the model runs again for each output",
            classes.nbytes / 1e9,
        )
        return classes
    return classes.persist()


def classes_provenance(classes: xr.DataArray) -> dict:
    """Where a class raster's classes came from, for ``summary.json`` and the HTML report.

    Returns
    -------
    dict
        ``{"method": "model", "checkpoint", "weights_sha256", "classes"}`` for
        :func:`model_classes`, ``{"method": "rules", "rules": {...}}`` for
        :func:`agrivision.health.classify`, ``{"method": "unknown"}`` otherwise.
    """
    if "model" in classes.attrs:
        return {"method": "model", **json.loads(classes.attrs["model"])}
    if "health_rules" in classes.attrs:
        return {"method": "rules", "rules": json.loads(classes.attrs["health_rules"])}
    return {"method": "unknown"}


def class_key(name: str) -> str:
    """A class name as compared: lower case, spaces, hyphens and slashes turned into ``_``."""
    return re.sub(r"[\s\-/]+", "_", str(name).strip().lower())


def _in_fields(data: da.Array, fid: da.Array | None, chunks) -> da.Array:
    """``(..., y, x)`` model output set to NODATA outside the fields (``fid`` 0), in the
    field raster's chunks; without fields, in ``chunks`` (the band's) where given."""
    lead = data.shape[:-2]
    if fid is None:
        return data.rechunk((*lead, *(chunks or data.chunks[-2:])))
    return da.map_blocks(
        _inside, data.rechunk((*lead, *fid.chunks)), fid[(None,) * len(lead)], dtype=np.uint8
    )


def _inside(predicted: np.ndarray, field_id: np.ndarray) -> np.ndarray:
    return np.where(field_id == 0, np.uint8(NODATA), predicted)


def _lookup(predicted: np.ndarray, *, lut: np.ndarray) -> np.ndarray:
    return lut[predicted]
