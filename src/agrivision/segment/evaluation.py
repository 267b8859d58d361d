"""Scoring a checkpoint on labelled images with the same blended inference as for scenes."""

from __future__ import annotations

import os

import numpy as np

from agrivision.segment.checkpoint import Segmenter, load_checkpoint
from agrivision.segment.chip_folders import chip_pairs
from agrivision.segment.config import SegmentConfig
from agrivision.segment.data import fingerprint, image_scene, read_image, read_labels, resolve
from agrivision.segment.metrics import confusion, scores
from agrivision.segment.nodata import NODATA
from agrivision.segment.predict import segment
from agrivision.segment.split import block_split


def evaluate(
    model: Segmenter | str | os.PathLike,
    config: SegmentConfig,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    precision: str = "auto",
    engine: str = "auto",
    tta: str | None = None,
) -> dict:
    """Per-class IoU/F1, mIoU, accuracy and confusion matrix on the evaluation split.

    The split is ``data.evaluation``, else the validation chips of ``data.chips``, else
    ``data.validation``, else the validation blocks of the training images (the same seeded
    split as in training). Images are segmented whole
    at their own resolution (the model pools them itself) and scored against their labels at
    full resolution; label 255 and nodata pixels are not counted.

    ``tta`` (``none``, ``flips`` or ``dihedral``) overrides the model's test-time augmentation.

    Returns
    -------
    dict
        :func:`agrivision.segment.metrics.scores` plus ``split``, ``images`` (count),
        ``image_names``, ``pixels``, ``tta`` and ``data_fingerprint`` (of the scored images
        and labels).
    """
    seg = model if isinstance(model, Segmenter) else load_checkpoint(model)
    if tta is not None and tta != seg.spec.tta:
        spec = seg.spec.model_copy(update={"tta": tta})
        seg = Segmenter(seg.model, seg.meta.model_copy(update={"spec": spec}), seg.path)
    spec, data = seg.spec, config.data
    source = data.evaluation or data.validation or data.train
    if data.evaluation is not None:
        split_name, pairs = "evaluation", resolve(data.evaluation, data.root)
    elif data.chips is not None:
        split_name, pairs = "validation chips", chip_pairs(config.path(data.chips), "validation")
    elif data.validation is not None:
        split_name, pairs = "validation", resolve(data.validation, data.root)
    else:
        assert data.train is not None
        split_name, pairs = "validation blocks", resolve(data.train, data.root)
    images, labels = [], []
    for pair in pairs:
        image, grid = read_image(
            pair.image, spec.bands, channels=data.channels, scale=data.scale, offset=data.offset
        )
        images.append(image)
        labels.append(read_labels(pair, grid, source, spec.classes))
    if split_name == "validation blocks":
        f = spec.downsample
        shapes = [(-(-lab.shape[0] // f), -(-lab.shape[1] // f)) for lab in labels]
        size = config.chips.size  # training padded smaller images to one chip
        shapes = [(max(h, size), max(w, size)) for h, w in shapes]
        split = block_split(
            shapes,
            block=config.split.block,
            val_fraction=config.split.val_fraction,
            buffer=config.split.buffer,
            seed=config.training.seed,
        )
        for lab, boxes in zip(labels, split.val, strict=True):
            keep = np.zeros(lab.shape, bool)
            for r0, r1, c0, c1 in boxes:
                keep[r0 * f : r1 * f, c0 * f : c1 * f] = True
            lab[~keep] = NODATA
    cm = np.zeros((len(spec.classes),) * 2, np.int64)
    for image, label in zip(images, labels, strict=True):
        scene = image_scene(image, spec.bands)
        pred = segment(
            scene, seg, device=device, batch_size=batch_size, precision=precision, engine=engine
        )["classes"].values
        cm += confusion(label, pred, len(spec.classes))
    result = scores(cm, spec.classes)
    result.update(
        split=split_name, images=len(pairs), image_names=[p.image.name for p in pairs],
        pixels=int(cm.sum()), tta=spec.tta,
        data_fingerprint=fingerprint(pairs, {"split": split_name, "classes": spec.classes}),
    )  # fmt: skip
    return result
