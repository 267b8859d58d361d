"""``agrivision chips``, ``train``, ``evaluate`` and ``segment``: the U-Net segmenter from the
command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from agrivision.cli.options import open_from_options, scene_options
from agrivision.errors import ConfigError

# OpenMP threads that spin while they wait made training 3-8x slower on a shared 2-core CPU
# (measured with torch 2.14); waiting passively costs little on an idle one. It must be set
# before torch is imported, which these commands do lazily.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEVICES = click.Choice(["auto", "cpu", "cuda"])
PRECISION = click.option(
    "--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto",
    show_default=True, help="auto: bf16 on a GPU and in OpenVINO on a CPU with native bf16 "
    "(AVX512-BF16, AMX), else fp32.",
)  # fmt: skip
ENGINE = click.option(
    "--engine", type=click.Choice(["auto", "torch", "openvino"]), default="auto",
    show_default=True, help="OpenVINO: faster on a CPU (the openvino extra). auto: OpenVINO for "
    "a model directory on a CPU when installed, else PyTorch.",
)  # fmt: skip


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Model directory.")
@click.option("--device", type=DEVICES, help="Default: the config's training.device.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(config: str, output: str | None, device: str | None, quiet: bool) -> None:
    """Train a U-Net as CONFIG.yaml says; save the best epoch to OUTPUT (a directory)."""
    from agrivision.segment import load_config
    from agrivision.segment import train as run

    cfg = load_config(config)
    result = run(cfg, output, device=device, progress=not quiet)
    click.echo(
        f"saved {result.path} (best epoch {result.best_epoch} of {result.epochs_run}, "
        f"validation mIoU {result.metrics['miou']:.3f}, {result.seconds:.0f} s)"
    )
    if cfg.data.licence:
        click.echo(f"data licence (the weights inherit it): {cfg.data.licence}")


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--model", "model_dir", required=True, type=click.Path(), help="Model directory.")
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--batch-size", type=int, help="Windows per model call.")
@PRECISION
@ENGINE
@click.option("--tta", type=click.Choice(["none", "flips", "dihedral"]),
              help="Test-time flips, or all 8 symmetries (default: the model's own setting).")  # fmt: skip
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write JSON.")
@click.option("--record/--no-record", default=True, show_default=True,
              help="Write the scores into MODEL's model.json (its model card).")  # fmt: skip
def evaluate(
    config: str,
    model_dir: str,
    device: str,
    batch_size: int | None,
    precision: str,
    engine: str,
    tta: str | None,
    json_path: str | None,
    record: bool,
) -> None:
    """Score MODEL on the evaluation split of CONFIG.yaml: IoU, F1, mIoU, confusion matrix.

    The scores, the scored images and their fingerprint go into MODEL/model.json (the model
    card) unless --no-record.
    """
    from agrivision.io.atomic import atomic_path
    from agrivision.segment import evaluate as run
    from agrivision.segment import load_checkpoint, load_config
    from agrivision.segment.checkpoint import record_evaluation

    segmenter = load_checkpoint(model_dir)
    result = run(
        segmenter,
        load_config(config),
        device=device,
        batch_size=batch_size,
        precision=precision,
        engine=engine,
        tta=tta,
    )
    names = list(result["iou"])
    click.echo(f"split: {result['split']} ({result['images']} images, {result['pixels']} pixels)")
    click.echo(f"{'class':<16}{'IoU':>8}{'F1':>8}")
    for n in names:
        iou, f1 = result["iou"][n], result["f1"][n]
        click.echo(f"{n:<16}{_num(iou):>8}{_num(f1):>8}")
    click.echo(f"{'mIoU':<16}{_num(result['miou']):>8}{_num(result['mf1']):>8}")
    click.echo(f"accuracy {_num(result['accuracy'])}")
    width = max(10, *(len(n) + 1 for n in names))
    click.echo("confusion (rows: truth, columns: predicted)")
    click.echo(" " * width + "".join(f"{n:>{width}}" for n in names))
    for n, row in zip(names, result["confusion"], strict=True):
        click.echo(f"{n:<{width}}" + "".join(f"{v:>{width}}" for v in row))
    if segmenter.meta.data_licence:
        click.echo(f"training data licence: {segmenter.meta.data_licence}")
    if json_path:
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
    if record:
        path = record_evaluation(model_dir, _evaluation(result))
        click.echo(f"recorded in {path}")


def _evaluation(result: dict):
    import datetime as dt

    from agrivision.segment.checkpoint import Evaluation

    fields = set(Evaluation.model_fields) - {"evaluated", "images"}
    return Evaluation(
        evaluated=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        images=result["image_names"], **{k: result[k] for k in fields},
    )  # fmt: skip


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@click.command()
@scene_options
@click.option("--model", "model_dir", required=True, type=click.Path(), help="Model directory.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Classes .tif")
@click.option("--probabilities", type=click.Path(dir_okay=False), help="Probabilities .tif")
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--batch-size", type=int, help="Windows per model call (default 32 GPU; 1 Mpx CPU).")
@click.option("--overlap", type=int, help="Window overlap in model pixels (default window/8).")
@click.option(
    "--window", type=int,
    help="Largest window edge in model pixels (default 1024 + overlap; windows are sized to "
    "the scene).",
)  # fmt: skip
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (GPU).")
@PRECISION
@ENGINE
@click.option(
    "--channels",
    help="Read SOURCE as a plain image (PNG, JPEG) with these 1-based channels, e.g. red=1,nir=2.",
)
@click.option("--overwrite/--no-overwrite", default=True, show_default=True)
def segment(
    sources: tuple[str, ...],
    model_dir: str,
    output: str,
    probabilities: str | None,
    device: str,
    batch_size: int | None,
    overlap: int | None,
    window: int | None,
    compile_: bool,
    precision: str,
    engine: str,
    channels: str | None,
    overwrite: bool,
    **opts,
) -> None:
    """Segment SOURCES with MODEL into a class GeoTIFF (255 = nodata), optionally probabilities.

    The scene is read lazily and processed chunk by chunk; memory does not grow with its size.
    """
    from agrivision.io.atomic import check_writable
    from agrivision.segment.checkpoint import METADATA, read_metadata
    from agrivision.segment.predict import segment as run
    from agrivision.segment.predict import write_predictions

    check_writable(output, overwrite=overwrite)
    meta = read_metadata(Path(model_dir) / METADATA)
    bands = list(meta.spec.bands)
    if channels is not None:
        scene = _plain_scene(sources, bands, channels, opts["chunks"])
    else:
        scene = open_from_options(sources, select=bands, **opts)
    result = run(
        scene,
        model_dir,
        probabilities=probabilities is not None,
        device=device,
        batch_size=batch_size,
        overlap=overlap,
        window=window,
        compile=compile_,
        precision=precision,
        engine=engine,
    )
    written = write_predictions(result, output, probabilities, overwrite=overwrite)
    click.echo("wrote " + ", ".join(str(p) for p in written))


def _plain_scene(sources: tuple[str, ...], bands: list[str], channels: str, chunks: int):
    from agrivision.segment.data import image_scene, read_image

    if len(sources) != 1:
        raise ConfigError("--channels reads exactly one plain image", fix="pass one SOURCE")
    try:
        mapping = {k.strip(): int(v) for k, v in (p.split("=") for p in channels.split(","))}
    except ValueError as exc:
        raise ConfigError(
            f"cannot parse --channels {channels!r}", fix="write e.g. red=1,nir=2"
        ) from exc
    image, _ = read_image(sources[0], tuple(bands), channels=mapping)
    return image_scene(image, tuple(bands), chunks=chunks)


@click.command()
@click.option("--image", "images", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Image (raster or plain PNG/JPEG); repeat for several.")  # fmt: skip
@click.option("--labels", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Label raster per image (same order), or one vector file for all.")  # fmt: skip
@click.option("--class-column", help="Vector labels: column with integer class codes.")
@click.option("--layer", help="Vector labels: layer of a multi-layer file (GPKG).")
@click.option("--size", type=int, default=256, show_default=True, help="Chip edge, pixels.")
@click.option("--overlap", type=int, default=0, show_default=True, help="Pixels shared by chips.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the split.")
@click.option("--val-fraction", type=float, default=0.2, show_default=True,
              help="Share of blocks used for validation.")  # fmt: skip
@click.option("--block", type=int, help="Split block edge, pixels (default 2 x size).")
@click.option("--buffer", type=int, help="Gap between the splits, pixels (default size / 8).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="CHIPDIR.")
@click.option("--overwrite/--no-overwrite", default=True, show_default=True)
def chips(
    images: tuple[str, ...],
    labels: tuple[str, ...],
    class_column: str | None,
    layer: str | None,
    size: int,
    overlap: int,
    seed: int,
    val_fraction: float,
    block: int | None,
    buffer: int | None,
    output: str,
    overwrite: bool,
) -> None:
    """Cut labelled images into image/label GeoTIFF chips with a spatial train/validation split.

    Writes OUTPUT/images/*.tif, OUTPUT/labels/*.tif and OUTPUT/index.json (chip, label,
    split, window, class counts). Train with `data: {chips: OUTPUT}` in a config.
    """
    from agrivision.segment.chip_folders import read_index, write_chips

    path = write_chips(
        images, labels, output, size=size, overlap=overlap, seed=seed,
        val_fraction=val_fraction, block=block, buffer=buffer, class_column=class_column,
        layer=layer, overwrite=overwrite,
    )  # fmt: skip
    records = read_index(output)["chips"]
    n_val = sum(r["split"] == "validation" for r in records)
    click.echo(f"wrote {len(records) - n_val} train and {n_val} validation chips; index {path}")
