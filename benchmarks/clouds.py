"""Automatic cloud mask of a Sentinel-2 L1C scene: agrivision (lazy, chunked, 60 m) vs s2cloudless.

Usage: ``python benchmarks/clouds.py [--quick] [--size N] [--only NAME]``

The scene is the synthetic 13-band L1C scene of :func:`agrivision.synthetic.synthetic_scene`
(seed 2, 10 m, top-of-atmosphere reflectance, no quality band). Contenders, each once in a
fresh subprocess (peak RSS of the process), both timed from the lazy scene to a cloud mask in
memory (so both pay for rendering the synthetic bands):

* ``s2cloudless``: the anchor, as the package's README does it: every band computed into one
  ``(1, rows, cols, 13)`` array, ``S2PixelCloudDetector(threshold=0.4, average_over=4,
  dilation_size=2, all_bands=True).get_cloud_masks`` at 10 m (LightGBM on all cores);
* ``agrivision``: ``mask_scene`` (``masks: auto``) computed with dask's threaded scheduler:
  bands averaged to 60 m per chunk, s2cloudless there with a halo, shadows projected, codes
  brought back to 10 m; 1024-pixel chunks.

Reported: wall time, ms per Mpx of scene, speed-up over the anchor, peak RSS, and the share of
pixels on which both call cloud / not cloud. ``--quick``: 1024 x 1024; default 2048 x 2048.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from harness import run_measured, write_result

OUT = Path(__file__).resolve().parents[1] / "bench-output" / "clouds"
CONTENDERS = ("s2cloudless", "agrivision")


def worker(contender: str, size: int, result: Path) -> None:
    """Run one contender once in this (fresh) process; write its timing and mask."""
    from agrivision.masks import MaskConfig, mask_scene
    from agrivision.synthetic import synthetic_scene

    scene, _ = synthetic_scene(2, shape=(size, size), sensor="sentinel-2-l1c", chunks=1024)
    t0 = time.perf_counter()
    if contender == "s2cloudless":
        from s2cloudless import S2PixelCloudDetector

        bands = np.stack([scene[b].values for b in scene.data_vars], axis=-1)[np.newaxis]
        detector = S2PixelCloudDetector(
            threshold=0.4, average_over=4, dilation_size=2, all_bands=True
        )
        cloud = detector.get_cloud_masks(bands)[0] == 1
    else:
        masked = mask_scene(scene, MaskConfig(), detector="s2cloudless")
        cloud = masked["auto_mask"].data.compute(scheduler="threads") == 1
    seconds = time.perf_counter() - t0
    write_result(result, cloud, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1024 x 1024 scene")
    parser.add_argument("--size", type=int, help="scene side in pixels (default 2048)")
    parser.add_argument("--only", choices=CONTENDERS, help="run one contender")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        contender, size, result = args.worker
        worker(contender, int(size), Path(result))
        return
    size = args.size or (1024 if args.quick else 2048)
    OUT.mkdir(parents=True, exist_ok=True)
    rows = {}
    for contender in [args.only] if args.only else CONTENDERS:
        result = OUT / f"{contender}-{size}.json"
        cmd = [sys.executable, __file__, "--worker", contender, str(size), str(result)]
        tree_peak = run_measured(cmd)
        rows[contender] = {**json.loads(result.read_text()), "tree_peak": tree_peak}
    mpx = size * size / 1e6
    anchor = rows.get("s2cloudless")
    masks = {c: np.load((OUT / f"{c}-{size}.json").with_suffix(".npy")) for c in rows}
    print(f"\ncloud mask, synthetic Sentinel-2 L1C {size} x {size} x 13 bands ({mpx:.1f} Mpx)\n")
    print("| contender | wall s | ms/Mpx | ratio | peak RSS GB | agrees with anchor |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        ratio = f"{anchor['seconds'] / row['seconds']:.1f}x" if anchor else "-"
        agree = (
            f"{(masks[name] == masks['s2cloudless']).mean():.4f}" if "s2cloudless" in masks else "-"
        )
        print(
            f"| {name} | {row['seconds']:.1f} | {row['seconds'] / mpx * 1000:.0f} | {ratio} | "
            f"{max(row['peak'], row['tree_peak']) / 1e9:.2f} | {agree} |"
        )


if __name__ == "__main__":
    main()
