"""``agrivision calibrate``: raw MicaSense RedEdge captures to reflectance GeoTIFFs."""

from __future__ import annotations

from pathlib import Path

import click

from agrivision.drone.calibration import calibrate as calibrate_capture
from agrivision.drone.calibration import write_reflectance
from agrivision.drone.metadata import PROFILE_ORDER, find_captures
from agrivision.errors import AgrivisionError, ConfigError


def _per_band(text: str | None, option: str, *, count: int) -> dict[str, float] | None:
    """``0.67,0.69,...`` (profile order) or ``blue=0.67,nir=0.61,...`` -> band -> value."""
    if not text:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            out = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        elif len(parts) == count:
            out = dict(zip(PROFILE_ORDER, (float(p) for p in parts), strict=True))
        else:
            raise ValueError
    except ValueError as exc:
        raise ConfigError(
            f"{option} {text!r} is not {count} numbers",
            fix=f"give {count} values in the order {','.join(PROFILE_ORDER)} or band=value pairs",
        ) from exc
    unknown = set(out) - set(PROFILE_ORDER)
    if unknown:
        raise ConfigError(f"{option}: unknown band {sorted(unknown)}", fix=f"use {PROFILE_ORDER}")
    return out


@click.command()
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "--panel",
    "panel_source",
    required=True,
    help="Capture of the calibrated panel (prefix IMG_NNNN, its files, or a folder).",
)
@click.option(
    "--panel-reflectance",
    help="Panel reflectance from its card: blue,green,red,nir,rededge "
    "(e.g. 0.67,0.69,0.68,0.61,0.67) or band=value pairs. Default: metadata.",
)
@click.option(
    "--panel-window",
    help="Panel pixels ROW0,ROW1,COL0,COL1 (same for all bands) instead of detection.",
)
@click.option(
    "--reference",
    type=click.Choice(PROFILE_ORDER),
    default="red",
    show_default=True,
    help="Band the others are aligned to.",
)
@click.option("--no-undistort", is_flag=True, help="Keep lens distortion (not recommended).")
@click.option("--translation-only", is_flag=True, help="Align by translation, not affine.")
@click.option(
    "-o",
    "--output",
    required=True,
    help="OUT.tif for one capture, or a folder (one NAME_reflectance.tif each).",
)
@click.option("--overwrite/--no-overwrite", default=True, show_default=True)
def calibrate(
    captures: tuple[str, ...],
    panel_source: str,
    panel_reflectance: str | None,
    panel_window: str | None,
    reference: str,
    no_undistort: bool,
    translation_only: bool,
    output: str,
    overwrite: bool,
) -> None:
    """Radiance, panel reflectance and band alignment of raw MicaSense RedEdge CAPTURES.

    Writes 5-band float32 reflectance GeoTIFFs (blue, green, red, nir, rededge; the
    micasense-rededge profile). A single frame has no map coordinates: the output is NOT
    georeferenced (tag GEOREFERENCED=no; the camera's GPS position is kept in tags).
    """
    found = find_captures(list(captures))
    panels = find_captures(panel_source)
    if len(panels) != 1:
        raise AgrivisionError(
            f"--panel matches {len(panels)} captures",
            source=panel_source,
            fix="name one panel capture, e.g. --panel DIR/IMG_0000",
        )
    windows = None
    if panel_window:
        try:
            r0, r1, c0, c1 = (int(v) for v in panel_window.split(","))
        except ValueError as exc:
            raise ConfigError(
                "--panel-window needs four integers ROW0,ROW1,COL0,COL1", source=panel_window
            ) from exc
        if not (0 <= r0 < r1 and 0 <= c0 < c1):
            raise ConfigError("--panel-window needs ROW0<ROW1,COL0<COL1", source=panel_window)
        windows = dict.fromkeys(PROFILE_ORDER, (r0, r1, c0, c1))
    reflectance = _per_band(panel_reflectance, "--panel-reflectance", count=5)
    single = output.lower().endswith((".tif", ".tiff"))
    if single and len(found) != 1:
        raise AgrivisionError(
            f"{len(found)} captures but -o names one file",
            source=output,
            fix="pass a folder as -o to write one file per capture",
        )
    if not single:
        Path(output).mkdir(parents=True, exist_ok=True)
    for cap in found:
        result = calibrate_capture(
            cap,
            panels[0],
            reflectance,
            panel_windows=windows,
            reference=reference,
            undistort_lens=not no_undistort,
            affine=not translation_only,
        )
        target = Path(output) if single else Path(output) / f"{cap.name}_reflectance.tif"
        write_reflectance(result, target, overwrite=overwrite)
        click.echo(f"wrote {target} (not georeferenced: single frame, pixel grid)")
        click.echo("band      panel_radiance  factor   residual_median_px  residual_max_px")
        for band in PROFILE_ORDER:
            a = result.alignment[band]
            click.echo(
                f"{band:<9} {result.panel[band].mean_radiance:>14.5f}  {result.factors[band]:>6.3f}"
                f"   {a.residual_median_px:>18.2f}  {a.residual_max_px:>15.2f}"
            )
