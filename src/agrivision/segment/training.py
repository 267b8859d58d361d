"""Training: AdamW with a schedule, class-weighted cross-entropy plus Dice, early stopping on
validation mIoU, bf16 autocast on a GPU, reproducible on the CPU for a given seed.

Every epoch appends a row (losses, learning rate, mIoU, per-class IoU and F1) to
``metrics.csv`` and ``metrics.json`` in the model directory; the best epoch's weights are
saved as the checkpoint. With ``training.ema`` the weights validated and saved are an
exponential moving average of the trained ones (BatchNorm statistics included): the average
of many nearby solutions varies less from run to run than the last step's.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm  # plain text bar: tqdm.auto warns in Jupyter without ipywidgets

from agrivision.errors import ConfigError
from agrivision.io.atomic import atomic_path
from agrivision.segment.augment import augment
from agrivision.segment.checkpoint import CheckpointMeta, Metric, Normalisation, save_checkpoint
from agrivision.segment.chip_folders import chip_pairs
from agrivision.segment.config import SegmentConfig, TrainingConfig
from agrivision.segment.data import Pair, Sample, fingerprint, load_pairs, resolve
from agrivision.segment.device import autocast, resolve_device, use_bf16
from agrivision.segment.metrics import confusion, scores
from agrivision.segment.model import ModelSpec, build_model
from agrivision.segment.nodata import NODATA
from agrivision.segment.prepare import normalise
from agrivision.segment.sampling import ChipSampler
from agrivision.segment.split import Box, Split, block_split


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    path: Path  # checkpoint directory
    best_epoch: int
    epochs_run: int
    seconds: float
    metrics: dict  # validation scores of the best epoch


def train(
    config: SegmentConfig,
    output: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a U-Net as ``config`` says and save the best epoch as a checkpoint.

    Parameters
    ----------
    config
        A loaded config (:func:`agrivision.segment.config.load_config`).
    output
        Checkpoint directory (default ``config.output``); also receives ``metrics.csv`` and
        ``metrics.json``.
    device
        ``auto``, ``cpu`` or ``cuda`` (default: ``config.training.device``).
    progress
        Show a progress bar per epoch on stderr.

    Raises
    ------
    ConfigError, SourceError, BandNotFoundError
        Invalid config or data.
    """
    start = time.monotonic()
    cfg, opt_cfg = config, config.training
    out = Path(output if output is not None else cfg.output)
    dev = resolve_device(device or opt_cfg.device)
    torch.manual_seed(opt_cfg.seed)
    if opt_cfg.threads:
        torch.set_num_threads(opt_cfg.threads)
    spec = cfg.model.spec()
    data = _training_data(cfg, spec)
    model = (
        build_model(spec, cfg.model.encoder_weights).to(dev).to(memory_format=torch.channels_last)
    )
    history, best = _fit(model, data, cfg, dev, out, progress=progress, start=start)
    model.load_state_dict(best[2])
    seconds = time.monotonic() - start
    metrics: dict[str, Metric] = {
        "epoch": best[1],
        "epochs_run": len(history),
        "train_seconds": round(seconds, 1),
    }
    metrics.update({f"val_{k}": v for k, v in best[3].items()})
    settings = cfg.data.model_dump(exclude={"root", "licence"}) | {
        "split": cfg.split.model_dump(),
        "seed": opt_cfg.seed,
    }
    meta = CheckpointMeta(
        spec=spec,
        normalisation=data.normalisation,
        metrics=metrics,
        data_fingerprint=fingerprint(data.pairs, settings),
        data_licence=cfg.data.licence or "",
    )
    save_checkpoint(model, meta, out)
    return TrainResult(out, best[1], len(history), seconds, best[3])


def _fit(
    model: torch.nn.Module,
    data: _TrainingData,
    cfg: SegmentConfig,
    dev: torch.device,
    out: Path,
    *,
    progress: bool,
    start: float,
) -> tuple[list[dict], tuple[float, int, dict, dict]]:
    """Epochs until the last, ``patience`` epochs without a better validation mIoU, or the
    time limit; logs every epoch to ``out``. Returns the history and the best epoch as
    ``(mIoU, epoch, state, scores)``."""
    opt_cfg, classes = cfg.training, cfg.model.spec().classes
    grid = data.sampler.grid() if cfg.chips.sampling == "grid" else None
    per_epoch = len(grid) if grid is not None else cfg.chips.per_epoch
    steps = max(1, per_epoch // opt_cfg.batch_size)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=opt_cfg.lr, weight_decay=opt_cfg.weight_decay
    )
    limit_s = opt_cfg.time_limit_min * 60 if opt_cfg.time_limit_min else None
    scheduler = _scheduler(optimiser, opt_cfg.schedule, steps * opt_cfg.epochs, limit_s, start)
    loss_of = _loss(opt_cfg, data.class_weights, dev)
    bf16 = use_bf16(dev, opt_cfg.precision)
    generator = torch.Generator().manual_seed(opt_cfg.seed)
    ema = _ema(model, opt_cfg.ema)
    scored = ema.module if ema is not None else model  # what is validated and saved

    history: list[dict] = []
    best: tuple[float, int, dict, dict] | None = None  # (mIoU, epoch, state, scores)
    stale = 0
    for epoch in range(1, opt_cfg.epochs + 1):
        if grid is not None:
            order = np.random.default_rng([opt_cfg.seed, epoch]).permutation(len(grid))
            chips = [grid[i] for i in order]
        else:
            chips = data.sampler.random(epoch, per_epoch, balance=cfg.chips.balance)
        bar = tqdm(
            total=steps, desc=f"epoch {epoch}/{opt_cfg.epochs}", disable=not progress, leave=False
        )
        with contextlib.closing(bar):
            losses = _train_epoch(
                model, optimiser, scheduler, loss_of, data, chips, steps, cfg, generator, dev, bar,
                bf16, ema,
            )  # fmt: skip
        val_scores = validate(
            scored, data.val_images, data.val_labels, data.val_boxes, len(classes), classes, dev,
            bf16=bf16,
        )  # fmt: skip
        row = _row(epoch, losses, optimiser, val_scores, classes, time.monotonic() - start)
        history.append(row)
        _write_log(out, history)
        if progress:
            tqdm.write(
                f"epoch {epoch}: loss {row['train_loss']:.4f}  val mIoU {row['val_miou']:.4f}  "
                + "  ".join(f"{k} {v:.3f}" for k, v in val_scores["iou"].items() if v is not None)
            )
        miou = val_scores["miou"] or 0.0
        if best is None or miou > best[0]:
            best = (miou, epoch, copy.deepcopy(scored.state_dict()), val_scores)
            stale = 0
        else:
            stale += 1
        if stale >= opt_cfg.patience or (limit_s and time.monotonic() - start > limit_s):
            break

    assert best is not None
    return history, best


@dataclass
class _TrainingData:
    """Everything an epoch reads: normalised images, labels and where chips may lie."""

    pairs: list[Pair]  # training then validation pairs (the data fingerprint)
    normalisation: Normalisation
    class_weights: list[float]
    images: list[torch.Tensor]  # normalised training images
    labels: list[np.ndarray]  # training labels, NODATA outside the training part
    sampler: ChipSampler
    val_images: list[torch.Tensor]
    val_labels: list[np.ndarray]
    val_boxes: list[list[Box]]


def _training_data(cfg: SegmentConfig, spec: ModelSpec) -> _TrainingData:
    """Read the pairs, split them, and normalise with statistics of the training part only."""
    seed, size = cfg.training.seed, cfg.chips.size
    train_pairs, val_pairs = training_pairs(cfg)
    train_set = [_pad(s, size) for s in load_pairs(train_pairs, cfg.data, spec, cfg.data.train)]
    if val_pairs is not None:
        val_set = load_pairs(val_pairs, cfg.data, spec, cfg.data.validation)
        split = Split(
            train=[np.ones(s.label.shape, bool) for s in train_set],
            val=[[(0, s.label.shape[0], 0, s.label.shape[1])] for s in val_set],
        )
    else:
        val_set = train_set
        split = block_split(
            [s.label.shape for s in train_set],
            block=cfg.split.block,
            val_fraction=cfg.split.val_fraction,
            buffer=cfg.split.buffer,
            seed=seed,
        )
    if not any(split.val):
        raise ConfigError(
            "no validation pixels", fix="raise split.val_fraction or give data.validation"
        )
    n_classes = len(spec.classes)
    norm = _normalisation(train_set, split.train)
    return _TrainingData(
        pairs=train_pairs + (val_pairs or []),
        normalisation=norm,
        class_weights=_class_weights(train_set, split.train, n_classes, cfg.training.class_weights),
        images=[normalise(torch.from_numpy(s.image), norm.mean, norm.std) for s in train_set],
        # Training chips only ever see training labels: mask the rest out.
        labels=[
            np.where(a, s.label, NODATA).astype(np.uint8)
            for s, a in zip(train_set, split.train, strict=True)
        ],
        sampler=ChipSampler([s.label for s in train_set], split.train, size, n_classes, seed=seed),
        val_images=[normalise(torch.from_numpy(s.image), norm.mean, norm.std) for s in val_set],
        val_labels=[s.label for s in val_set],
        val_boxes=split.val,
    )


def _loss(opt_cfg: TrainingConfig, class_weights: list[float], device: torch.device):
    """``loss(logits, labels)``: class-weighted cross-entropy, plus Dice and Lovasz-softmax
    where weighted."""
    import segmentation_models_pytorch as smp

    weight = torch.tensor(class_weights, dtype=torch.float32, device=device)
    terms = [
        (w, fn)
        for w, fn in (
            (opt_cfg.dice_weight, smp.losses.DiceLoss("multiclass", ignore_index=NODATA)),
            (opt_cfg.lovasz_weight, smp.losses.LovaszLoss("multiclass", ignore_index=NODATA)),
        )
        if w
    ]

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = F.cross_entropy(logits, y, weight=weight, ignore_index=NODATA)
        for w, fn in terms:
            value = value + w * fn(logits, y)
        return value

    return loss


def _train_epoch(
    model,
    optimiser,
    scheduler,
    loss_of,
    data: _TrainingData,
    chips,
    steps: int,
    cfg,
    generator,
    dev,
    bar,
    bf16: bool,
    ema: AveragedModel | None = None,
) -> list[float]:
    """``steps`` optimiser steps over consecutive batches of ``chips`` (augmented), each
    followed by an update of ``ema``; the losses."""
    model.train()
    batch_size, size = cfg.training.batch_size, cfg.chips.size
    losses = []
    for step in range(steps):
        batch = chips[step * batch_size : (step + 1) * batch_size]
        x, y = _batch(data.images, data.labels, batch, size)
        x, y = augment(x, y, cfg.augment, generator)
        x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(dev, non_blocking=True).long()
        with autocast(dev, bf16):
            logits = model(x)
        loss = loss_of(logits.float(), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        losses.append(loss.item())
        bar.update()
        bar.set_postfix(loss=f"{np.mean(losses):.3f}")
    return losses


def training_pairs(config: SegmentConfig) -> tuple[list[Pair], list[Pair] | None]:
    """Training and validation image/label pairs of a config (None: split by blocks)."""
    data = config.data
    if data.chips is not None:
        directory = config.path(data.chips)
        return chip_pairs(directory, "train"), chip_pairs(directory, "validation")
    assert data.train is not None
    train = resolve(data.train, data.root)
    return train, resolve(data.validation, data.root) if data.validation is not None else None


def validate(
    model: torch.nn.Module,
    images: list[torch.Tensor],
    labels: list[np.ndarray],
    boxes: list[list[tuple[int, int, int, int]]],
    n_classes: int,
    names: tuple[str, ...],
    device: torch.device,
    *,
    bf16: bool | None = None,
) -> dict:
    """Scores of ``model`` on the validation boxes of normalised ``images`` (model pixels).

    Each box is predicted on its own (no context from training pixels), padded to a multiple
    of the encoder's output stride; in bf16 autocast when ``bf16`` (default: on a GPU).
    """
    model.eval()
    cm = np.zeros((n_classes, n_classes), np.int64)
    step = 32
    with torch.inference_mode():
        for image, label, image_boxes in zip(images, labels, boxes, strict=True):
            for r0, r1, c0, c1 in image_boxes:
                x = image[:, r0:r1, c0:c1]
                h, w = x.shape[1:]
                x = F.pad(x, (0, -w % step, 0, -h % step))[None].to(device)
                with autocast(device, bf16):
                    logits = model(x.contiguous(memory_format=torch.channels_last))
                pred = logits[0, :, :h, :w].argmax(0).cpu().numpy().astype(np.uint8)
                cm += confusion(label[r0:r1, c0:c1], pred, n_classes)
    return scores(cm, names)


def _pad(sample: Sample, size: int) -> Sample:
    """Pad an image smaller than a chip (NaN, label 255) so that one chip fits."""
    _, h, w = sample.image.shape
    ph, pw = max(0, size - h), max(0, size - w)
    if not (ph or pw):
        return sample
    image = np.pad(sample.image, ((0, 0), (0, ph), (0, pw)), constant_values=np.nan)
    label = np.pad(sample.label, ((0, ph), (0, pw)), constant_values=NODATA)
    return Sample(sample.name, image, label)


def _batch(images, labels, chips, size) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.stack([images[i][:, r : r + size, c : c + size] for i, r, c in chips])
    y = torch.stack([torch.from_numpy(labels[i][r : r + size, c : c + size]) for i, r, c in chips])
    return x, y


def _normalisation(samples: list[Sample], allowed: list[np.ndarray]) -> Normalisation:
    """Per-band mean/std of valid training pixels (float64 accumulation)."""
    n_bands = samples[0].image.shape[0]
    total = np.zeros(n_bands)
    square = np.zeros(n_bands)
    count = np.zeros(n_bands)
    for s, a in zip(samples, allowed, strict=True):
        v = s.image[:, a].astype(np.float64)
        ok = np.isfinite(v)
        total += np.where(ok, v, 0).sum(axis=1)
        square += np.where(ok, v * v, 0).sum(axis=1)
        count += ok.sum(axis=1)
    if (count == 0).any():
        raise ConfigError("a band has no valid training pixel", fix="check the images' nodata")
    mean = total / count
    std = np.sqrt(np.maximum(square / count - mean**2, 0))
    return Normalisation(mean=tuple(mean.tolist()), std=tuple(np.maximum(std, 1e-6).tolist()))


def _class_weights(samples, allowed, n_classes: int, setting) -> list[float]:
    """``auto``: inverse square root of class frequency, mean 1 over present classes."""
    if isinstance(setting, list):
        return [float(w) for w in setting]
    if setting == "none":
        return [1.0] * n_classes
    counts = np.zeros(n_classes)
    for s, a in zip(samples, allowed, strict=True):
        lab = s.label[a]
        counts += np.bincount(lab[lab != NODATA], minlength=n_classes)[:n_classes]
    if counts.sum() == 0:
        raise ConfigError("no labelled training pixel", fix="check the label files and classes")
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = 1 / np.sqrt(counts[present] / counts.sum())
    w[present] /= w[present].mean()
    return w.tolist()


_Tensors = tuple[torch.Tensor, ...] | list[torch.Tensor]


def _ema(model: torch.nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights and float buffers (BatchNorm
    statistics; None: no decay): the first update copies the weights, the ``n``-th later one
    sets ``avg = d * avg + (1 - d) * weights`` with ``d = min(decay, (1 + n) / (10 + n))``.

    The warm-up (timm's) keeps the random initial weights from lingering in the average: with
    a constant 0.999 they would still weigh 0.999 ** 2560 = 8 % after 2560 steps. Integer
    buffers (BatchNorm's batch count) are copied, not averaged.
    """
    if decay is None:
        return None

    @torch.no_grad()
    def update(averaged: _Tensors, current: _Tensors, n: torch.Tensor | int) -> None:
        # AveragedModel groups the tensors by dtype: one kind per call.
        if torch.is_floating_point(averaged[0]):
            d = min(decay, (1 + float(n)) / (10 + float(n)))
            torch._foreach_lerp_(averaged, current, 1 - d)
        else:
            torch._foreach_copy_(averaged, current)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)


def _scheduler(optimiser, kind: str, total: int, time_limit_s: float | None, start: float):
    """Learning-rate factor by training progress: steps done / planned, or with a time limit
    the larger of that and the share of the time left at the first step that has been used,
    so that a run stopped by its time limit has still warmed up and annealed instead of
    stopping at a high learning rate.

    ``onecycle``: linear warm-up from 1/25 over the first 10 %, then cosine to 0;
    ``cosine``: cosine from 1 to 0. The schedule is reproducible while the steps keep ahead of
    the clock: the time spent reading the data before the first step does not count.
    """
    if kind == "constant":
        return None
    first = time.monotonic()  # the first step: reading data before it took a varying time
    budget = time_limit_s - (first - start) if time_limit_s else None

    def factor(step: int) -> float:
        done = step / total
        if budget is not None:
            done = max(done, (time.monotonic() - first) / budget if budget > 0 else 1.0)
        done = min(done, 1.0)
        if kind == "onecycle":
            if done < 0.1:
                return 0.04 + 0.96 * done / 0.1
            done = (done - 0.1) / 0.9
        return 0.5 * (1 + math.cos(math.pi * done))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


def _row(epoch, losses, optimiser, val: dict, names, elapsed: float) -> dict:
    row = {
        "epoch": epoch,
        "train_loss": float(np.mean(losses)),
        "lr": optimiser.param_groups[0]["lr"],
        "val_miou": val["miou"] if val["miou"] is not None else float("nan"),
        "val_accuracy": val["accuracy"],
        "seconds": round(elapsed, 1),
    }
    for n in names:
        row[f"iou_{n}"] = val["iou"][n]
        row[f"f1_{n}"] = val["f1"][n]
    return row


def _write_log(out: Path, history: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(history, indent=1), encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    with atomic_path(out / "metrics.csv") as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
