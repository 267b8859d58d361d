"""The report's later stages read the index and class rasters back from the COGs it wrote:
the same values, grid, chunks, names and attributes as the lazy arrays they replace."""

from __future__ import annotations

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401 - registers the .rio accessor
import xarray as xr

from agrivision.io.cog import to_cogs
from agrivision.report.run import _read_back


def test_read_back_gives_the_written_arrays(tmp_path):
    rng = np.random.default_rng(3)
    y, x = 5_100_000 - 10 * np.arange(300) - 5, 600_000 + 10 * np.arange(260) + 5
    ndvi = rng.uniform(-1, 1, (300, 260)).astype(np.float32)
    ndvi[10:20, 30:40] = np.nan
    indices = xr.Dataset(
        {name: (("y", "x"), da.from_array(v, chunks=128), {"long_name": name})
         for name, v in (("NDVI", ndvi), ("GNDVI", ndvi / 2))},
        coords={"y": y, "x": x}, attrs={"sensor": "test"},
    ).rio.write_crs("EPSG:32633")  # fmt: skip
    classes = xr.DataArray(
        da.from_array(rng.integers(0, 5, (300, 260)).astype(np.uint8), chunks=128),
        dims=("y", "x"), coords={"y": y, "x": x}, name="health_class",
        attrs={"class_schema": "{}"},
    ).rio.write_crs("EPSG:32633").rio.write_nodata(0)  # fmt: skip
    to_cogs(
        [(indices, tmp_path / "indices.tif"), (classes, tmp_path / "classes.tif", {"nodata": 0})]
    )

    back = _read_back(tmp_path / "indices.tif", indices)
    assert list(back.data_vars) == ["NDVI", "GNDVI"] and back.attrs == indices.attrs
    for name in back.data_vars:
        assert back[name].chunks == indices[name].chunks
        assert back[name].attrs == indices[name].attrs
        np.testing.assert_array_equal(back[name].values, indices[name].values)
    assert back.rio.crs == indices.rio.crs and (back.x.values == x).all()

    cls = _read_back(tmp_path / "classes.tif", classes)
    assert cls.name == "health_class" and cls.attrs["class_schema"] == "{}"
    assert cls.chunks == classes.chunks and cls.dtype == np.uint8
    np.testing.assert_array_equal(cls.values, classes.values)
