"""Model checkpoints: ``model.safetensors`` (weights) + ``model.json`` (everything else).

Loading never unpickles: weights are read with ``safetensors`` only, the metadata is plain
JSON validated against a strict schema (unknown keys are refused), the weights file must have
the SHA-256 recorded in the metadata, and every tensor's name and shape is checked against the
network the metadata describes before it is loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agrivision._version import __version__
from agrivision.errors import CheckpointError
from agrivision.io.atomic import atomic_path
from agrivision.segment.model import TTA, ModelSpec, build_model
from agrivision.segment.weights import read_safetensors

WEIGHTS = "model.safetensors"
METADATA = "model.json"
MAX_METADATA_BYTES = 1_000_000

Metric = float | int | str | None | dict[str, float | None] | list[list[int]]


class Normalisation(BaseModel):
    """Per-band mean and standard deviation of reflectance on the training split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @model_validator(mode="after")
    def _positive(self) -> Normalisation:
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise ValueError("mean and std need one value per band, std > 0")
        return self


class Evaluation(BaseModel):
    """The model card's test scores: :func:`agrivision.segment.evaluate` on labelled images,
    recorded by ``agrivision evaluate`` (the latest evaluation replaces the previous one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    evaluated: str  # ISO 8601, UTC
    split: str  # evaluation, validation, validation chips or validation blocks
    images: list[str]  # image file names
    pixels: int
    data_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")  # images and labels scored
    tta: TTA = "none"
    miou: float | None
    mf1: float | None
    accuracy: float | None
    iou: dict[str, float | None]
    f1: dict[str, float | None]
    confusion: list[list[int]]  # rows: truth, columns: predicted


class CheckpointMeta(BaseModel):
    """The JSON metadata of a checkpoint (see the module docstring): also the model card,
    with the training data's fingerprint and licence, validation metrics and test scores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["agrivision-unet"] = "agrivision-unet"
    format_version: Literal[1] = 1
    agrivision_version: str = __version__
    torch_version: str = torch.__version__
    created: str = Field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    spec: ModelSpec
    normalisation: Normalisation
    metrics: dict[str, Metric] = Field(default_factory=dict)
    data_fingerprint: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    # Terms of the training data (config data.licence): weights inherit them.
    data_licence: str = ""
    evaluation: Evaluation | None = None
    weights_sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")

    @model_validator(mode="after")
    def _bands(self) -> CheckpointMeta:
        if len(self.normalisation.mean) != len(self.spec.bands):
            raise ValueError("normalisation needs one mean/std per band of spec.bands")
        return self


@dataclass
class Segmenter:
    """A ready-to-run model (in eval mode) with its metadata and, if saved, its directory."""

    model: torch.nn.Module
    meta: CheckpointMeta
    path: Path | None = None

    @property
    def spec(self) -> ModelSpec:
        """The model's architecture, bands and classes."""
        return self.meta.spec


def save_checkpoint(
    model: torch.nn.Module,
    meta: CheckpointMeta,
    directory: str | os.PathLike,
    *,
    overwrite: bool = True,
) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``directory`` (created if needed).

    Each file is written atomically; the JSON, written last, records the weights' SHA-256 so
    that a mismatched pair is detected on loading.

    Returns
    -------
    Path
        The checkpoint directory.
    """
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(out / WEIGHTS, overwrite=overwrite) as tmp:
        save_file(state, str(tmp))
    meta = meta.model_copy(update={"weights_sha256": _sha256(out / WEIGHTS)})
    with atomic_path(out / METADATA, overwrite=overwrite) as tmp:
        tmp.write_text(meta.model_dump_json(indent=2), encoding="utf-8")
    return out


def record_evaluation(directory: str | os.PathLike, evaluation: Evaluation) -> Path:
    """Write ``evaluation`` into the checkpoint's ``model.json`` (atomically; weights untouched).

    Raises
    ------
    CheckpointError
        Unreadable metadata, or weights that no longer match it.
    """
    out = Path(directory)
    meta = read_metadata(out / METADATA)
    if meta.weights_sha256 and _sha256(out / WEIGHTS) != meta.weights_sha256:
        raise CheckpointError(
            "weights do not match the SHA-256 in model.json", source=out / WEIGHTS,
            fix="evaluate an intact checkpoint directory",
        )  # fmt: skip
    with atomic_path(out / METADATA) as tmp:
        text = meta.model_copy(update={"evaluation": evaluation}).model_dump_json(indent=2)
        tmp.write_text(text, encoding="utf-8")
    return out / METADATA


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Segmenter:
    """Load a checkpoint directory (or its ``model.json``) without unpickling anything.

    Raises
    ------
    CheckpointError
        Missing files, invalid or unknown metadata, weights that are not safetensors,
        truncated, replaced (SHA-256 mismatch), or whose tensor names/shapes do not fit the
        network described by the metadata.
    """
    # Absolute: the path travels to dask workers, whose working directory may differ.
    directory = Path(path).resolve()
    if directory.name == METADATA:
        directory = directory.parent
    meta = read_metadata(directory / METADATA)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(
            "weights file missing", source=weights, fix="copy the whole model directory"
        )
    if meta.weights_sha256 and _sha256(weights) != meta.weights_sha256:
        raise CheckpointError(
            "weights do not match the SHA-256 in model.json (truncated, corrupted or replaced)",
            source=weights,
            fix="copy the checkpoint directory again or retrain",
        )
    model = build_model(meta.spec)
    tensors = read_safetensors(weights)
    _check_tensors(tensors, model.state_dict(), weights)
    model.load_state_dict(tensors, strict=True)
    return Segmenter(model.to(device).eval(), meta, directory)


def read_metadata(path: Path) -> CheckpointMeta:
    """Read and validate ``model.json``.

    Raises
    ------
    CheckpointError
        Missing, too large, not JSON, or not matching :class:`CheckpointMeta`.
    """
    if not path.is_file():
        raise CheckpointError(
            "checkpoint metadata not found",
            source=path,
            fix="pass the directory written by `agrivision train`",
        )
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise CheckpointError("metadata file is larger than 1 MB", source=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"metadata is not valid JSON ({exc})", source=path) from exc
    try:
        return CheckpointMeta.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problem = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise CheckpointError(
            f"invalid metadata at {key!r}: {problem}",
            source=path,
            fix="model.json must be the file written by agrivision with its weights",
        ) from exc


def _check_tensors(
    tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: Path
) -> None:
    missing = sorted(expected.keys() - tensors.keys())
    extra = sorted(tensors.keys() - expected.keys())
    if missing or extra:
        raise CheckpointError(
            f"tensor names do not fit the model: missing {missing[:3]}, unexpected {extra[:3]}",
            source=source,
            fix="the weights belong to another architecture than model.json describes",
        )
    for name, want in expected.items():
        got = tensors[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise CheckpointError(
                f"tensor {name!r} is {got.dtype} {tuple(got.shape)}, the model needs "
                f"{want.dtype} {tuple(want.shape)}",
                source=source,
                fix="the weights belong to another architecture than model.json describes",
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
