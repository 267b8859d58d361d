"""Plain GeoTIFFs (io/geotiff): layout, metadata and block writes, checked with rasterio."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from agrivision.errors import OutputError
from agrivision.io.blocks import store_blocks
from agrivision.io.geotiff import geotiff_writer, write_geotiff

TRANSFORM = from_origin(500000, 5800000, 10, 10)


def test_write_geotiff_keeps_grid_metadata_and_values(tmp_path):
    data = np.arange(2 * 40 * 30, dtype=np.uint16).reshape(2, 40, 30)
    path = write_geotiff(
        data, tmp_path / "a.tif", crs="EPSG:32633", transform=TRANSFORM, nodata=0,
        descriptions=["red", None], tags={"SENSOR": "x", "N": 3},
        band_tags=[{"FACTOR": 0.5}, {}],
    )  # fmt: skip
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), data)
        assert (src.crs.to_epsg(), src.transform, src.nodata) == (32633, TRANSFORM, 0)
        assert src.descriptions == ("red", None)
        assert src.tags()["SENSOR"] == "x" and src.tags()["N"] == "3"
        assert src.tags(1)["FACTOR"] == "0.5" and "FACTOR" not in src.tags(2)
        assert src.profile["compress"] == "deflate" and not src.profile["tiled"]  # strips


def test_a_pixel_grid_without_crs_is_written_silently(tmp_path):
    data = np.full((1, 32, 32), np.nan, np.float32)
    data[0, :16] = 0.25
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NotGeoreferencedWarning would fail here
        write_geotiff(data, tmp_path / "b.tif", nodata=np.nan, predictor=3, blocksize=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(tmp_path / "b.tif") as src:
            assert src.crs is None and np.isnan(src.nodata)
            assert src.block_shapes == [(16, 16)]
            assert np.nansum(src.read(1)) == pytest.approx(0.25 * 16 * 32)


def test_block_writes_from_dask_land_where_their_region_says(tmp_path):
    source = da.from_array(np.arange(3 * 64 * 48, dtype=np.uint8).reshape(3, 64, 48) % 251)
    source = source.rechunk((2, 16, 24))
    path = tmp_path / "c.tif"
    with geotiff_writer(path, count=3, height=64, width=48, dtype="uint8", nodata=255) as w:
        for start in range(0, 64, 16):  # strip by strip, as predictions are written
            rows = slice(start, start + 16)
            store_blocks([source[:, rows]], [w], regions=[(slice(None), rows)])
        assert w.any_valid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(src.read(), source.compute())


def test_nothing_appears_when_writing_fails(tmp_path):
    path = tmp_path / "d.tif"
    with pytest.raises(RuntimeError):
        with geotiff_writer(path, count=1, height=8, width=8, dtype="uint8"):
            raise RuntimeError("model failed")
    assert list(tmp_path.iterdir()) == []
    write_geotiff(np.zeros((1, 8, 8), np.uint8), path)
    with pytest.raises(OutputError):
        write_geotiff(np.zeros((1, 8, 8), np.uint8), path, overwrite=False)
