"""Mask options are the same on every imagery command; bad mask choices exit 2 in one line."""

from __future__ import annotations

import json

import pytest

from agrivision.cli import main
from agrivision.errors import ConfigError
from agrivision.report.config import load_report_config
from agrivision.synthetic import write_synthetic


@pytest.fixture(scope="module")
def four_band(tmp_path_factory):
    return write_synthetic(
        tmp_path_factory.mktemp("rgbn"), 2, shape=(128, 128), sensor="sentinel-2-l1c",
        chunks=128, bands=["B02", "B03", "B04", "B08"],
    )  # fmt: skip


def one_line_error(argv, capsys, *needles: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("agrivision: error: ")
    for needle in needles:
        assert needle in err[0]


@pytest.mark.parametrize("command", ["info", "indices", "screen", "report"])
def test_forced_mask_the_bands_cannot_support(command, four_band, tmp_path, capsys):
    argv = {
        "info": ["info"],
        "indices": ["indices", "-i", "NDVI", "-o", str(tmp_path / "o.tif")],
        "screen": ["screen", "-o", str(tmp_path / "s.csv")],
        "report": ["report", "--fields", str(four_band.fields), "-o", str(tmp_path / "r")],
    }[command]
    source = str(four_band.items)
    one_line_error(
        [*argv, source, "--mask", "s2cloudless"], capsys, "needs bands coastal", "--mask spectral"
    )
    # The API names the method; configs (report, screen) name the key; both list the choices.
    one_line_error(
        [*argv, source, "--mask", "sky"],
        capsys,
        "mask",
        "'sky'"
        if command in ("info", "indices")
        else "'auto', 'quality', 's2cloudless', 'spectral' or 'off'",
        "auto",
    )


def test_info_says_which_mask_and_no_mask_switches_it_off(four_band, capsys):
    assert main(["info", str(four_band.items), "--json", "--no-valid"]) == 0
    assert json.loads(capsys.readouterr().out)["mask"] == "spectral"
    assert main(["info", str(four_band.items), "--json", "--no-valid", "--no-mask"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["mask"] == "off" and "auto_mask" not in facts["bands"]
    assert main(["info", str(four_band.items), "--json", "--mask", "off"]) == 0
    assert json.loads(capsys.readouterr().out)["valid_fraction"] == [1.0]


def test_config_scene_mask_accepts_switches_and_methods():
    assert load_report_config().scene.mask == "auto"
    assert load_report_config(overrides={"scene.mask": True}).scene.mask == "auto"
    assert load_report_config(overrides={"scene.mask": False}).scene.mask == "off"
    assert load_report_config(overrides={"scene.mask": "spectral"}).scene.mask == "spectral"
    with pytest.raises(ConfigError, match=r"scene\.mask"):
        load_report_config(overrides={"scene.mask": "sky"})
