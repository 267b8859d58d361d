"""``agrivision calibrate`` on synthetic captures through click's test runner."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from drone.capture import PANEL_REFL, panel_scene, scene_reflectance, write_capture
from rasterio.errors import NotGeoreferencedWarning

from agrivision.cli.calibrate import calibrate

REFL = ",".join(str(PANEL_REFL[b]) for b in (1, 2, 3, 4, 5))  # blue,green,red,nir,rededge


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    write_capture(d, "IMG_0000", panel_scene)
    write_capture(d, "IMG_0001", scene_reflectance)
    return d


def test_calibrate_writes_reflectance_and_reports_residuals(folder, tmp_path):
    out = tmp_path / "refl.tif"
    args = [
        str(folder / "IMG_0001"),
        "--panel",
        str(folder / "IMG_0000"),
        "--panel-reflectance",
        REFL,
        "-o",
        str(out),
    ]
    result = CliRunner().invoke(calibrate, args)
    assert result.exit_code == 0, result.output
    assert "not georeferenced" in result.output and "residual_median_px" in result.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(out) as src:
            red = src.read(3)
    truth = scene_reflectance(3)[20:-20, 20:-20]
    assert np.nanmedian(red[20:-20, 20:-20] / truth) == pytest.approx(1.0, abs=0.01)


def test_named_panel_values_and_a_folder_output(folder, tmp_path):
    names = ("blue", "green", "red", "nir", "rededge")
    pairs = ",".join(f"{n}={PANEL_REFL[b]}" for b, n in enumerate(names, start=1))
    args = [
        str(folder / "IMG_0001"),
        "--panel",
        str(folder / "IMG_0000"),
        "--panel-reflectance",
        pairs,
        "--translation-only",
        "-o",
        str(tmp_path / "out"),
    ]
    result = CliRunner().invoke(calibrate, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "IMG_0001_reflectance.tif").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--panel-reflectance", "0.5,0.5"], "is not 5 numbers"),
        (["--panel-reflectance", "blue=0.5,violet=0.4"], "unknown band"),
        (["--panel-reflectance", REFL, "--panel-window", "10,5,1,2"], "ROW0<ROW1"),
        ([], "no panel reflectance"),
    ],
)
def test_bad_options_give_one_line_errors(folder, tmp_path, extra, message):
    args = [
        str(folder / "IMG_0001"),
        "--panel",
        str(folder / "IMG_0000"),
        "-o",
        str(tmp_path / "x.tif"),
        *extra,
    ]
    result = CliRunner().invoke(calibrate, args)
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert not (tmp_path / "x.tif").exists()
