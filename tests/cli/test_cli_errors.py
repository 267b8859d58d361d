"""The CLI answers user errors with one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from rasters import write_tif

from agrivision.cli import main


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    # one error line; one-line warnings (e.g. which cloud test ran) may come before it
    lines = [line for line in err.splitlines() if not line.startswith("agrivision: warning: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith("agrivision: error: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0]


@pytest.fixture
def s2_file(tmp_path):
    data = np.random.default_rng(0).integers(1000, 5000, size=(4, 32, 32), dtype=np.uint16)
    return write_tif(tmp_path / "s2.tif", data, nodata=0, descriptions=["B02", "B03", "B04", "B08"],
                     tags={"SENSOR": "sentinel-2-l2a", "DATETIME": "2024-06-12"})  # fmt: skip


def test_info_reports_grid_bands_and_valid_fraction(s2_file, capsys):
    # Random DN are no landscape: clouds stay out of this one (see tests/masks/).
    code, out, _ = run(["info", str(s2_file), "--json", "--no-mask"], capsys)
    assert code == 0
    facts = json.loads(out)
    assert facts["sensor"] == "sentinel-2-l2a" and facts["mask"] == "off"
    assert facts["bands"] == ["blue", "green", "red", "nir"]
    assert facts["shape"] == [32, 32] and facts["resolution"] == [10.0, 10.0]
    assert facts["crs"] == "EPSG:32633" and facts["dates"] == ["2024-06-12"]
    assert facts["valid_fraction"] == [1.0]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["info", "{tmp}/missing.tif"], ["missing.tif", "not found"]),
        (["info", "{tmp}/empty.tif"], ["empty.tif", "empty"]),
        (["info", "{tmp}/nocrs.tif"], ["nocrs.tif", "no CRS", "EPSG"]),
        (["info", "{tmp}/s2.tif", "--sensor", "sentinel-3"], ["unknown sensor", "sentinel-2-l2a"]),
        (["info", "--bogus-option", "{tmp}/s2.tif"], ["--bogus-option"]),
        (["indices", "{tmp}/s2.tif", "-i", "NDXX", "-o", "{tmp}/o.tif"], ["NDXX", "list"]),
        (
            ["indices", "{tmp}/s2.tif", "-i", "NDRE", "-o", "{tmp}/o.tif"],
            ["NDRE needs RE1", "blue, green, red, nir"],
        ),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, s2_file, capsys, argv, needles):
    (tmp_path / "empty.tif").write_bytes(b"")
    write_tif(tmp_path / "nocrs.tif", np.ones((8, 8), dtype=np.uint16), crs=None)
    code, _, err = run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert_user_error(code, err, *needles)


def test_console_script_exit_code(tmp_path):
    """The installed entry point (not just main()) returns 2 without a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "agrivision", "info", str(tmp_path / "nope.tif")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "nope.tif" in proc.stderr


def test_a_damaged_block_found_while_computing_exits_2(tmp_path, capsys):
    """The header and block table are sound (so opening succeeds); one compressed block in
    the middle of the file is garbage, which GDAL finds only when dask reads it."""
    import rasterio

    data = np.random.default_rng(1).integers(1000, 5000, size=(4, 64, 64), dtype=np.uint16)
    path = write_tif(tmp_path / "s2.tif", data, descriptions=["B02", "B03", "B04", "B08"],
                     tags={"SENSOR": "sentinel-2-l2a", "DATETIME": "2024-06-12"}, blocksize=16)  # fmt: skip
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=3))
        size = int(src.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=3))
    raw = bytearray(path.read_bytes())
    raw[offset : offset + size] = bytes(size)  # zeros are not a deflate stream
    path.write_bytes(bytes(raw))
    code, _, err = run(["indices", str(path), "-i", "NDVI", "-o", str(tmp_path / "o.tif")], capsys)
    assert_user_error(code, err, "s2.tif", "damaged")
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("codec", ["zstd", "deflate"])
def test_indices_writes_the_chosen_codec_with_the_same_values(s2_file, tmp_path, capsys, codec):
    import rasterio

    out = tmp_path / f"{codec}.tif"
    argv = ["indices", str(s2_file), "-i", "NDVI", "-o", str(out), "--no-mask"]
    code, _, _ = run(argv if codec == "zstd" else [*argv, "--compress", codec], capsys)
    assert code == 0
    with rasterio.open(out) as ndvi, rasterio.open(s2_file) as src:
        assert ndvi.compression.name == codec
        red, nir = (src.read(i).astype(np.float64) for i in (3, 4))
        # the profile's scale and offset: reflectance = DN / 10000 - 0.1
        want = (nir - red) / (nir + red - 2000)
        np.testing.assert_allclose(ndvi.read(1), want, rtol=0, atol=1e-6)
