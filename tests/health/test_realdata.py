"""Real Sentinel-2 NDVI (Slovenia, eo-learn) with real land-use polygons (EPSG:4326)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio.features
import rioxarray
import shapely
import xarray as xr
from rasters import geodesic_ha

from agrivision.fields.rasterize import codes_to_ids, field_raster
from agrivision.health import class_areas, classify, field_statistics, zones
from agrivision.io.fields import area_ha

pytestmark = pytest.mark.realdata


@pytest.fixture
def slovenia(shared_data):
    folder = shared_data / "s2_slovenia_eolearn"
    ndvi = rioxarray.open_rasterio(folder / "ndvi_timeseries_68dates.tif", chunks=32)
    ndvi = ndvi.isel(band=[0, 20, 40]).rename(band="time").astype(np.float32)
    ndvi.name = "NDVI"
    fields = gpd.read_file(folder / "raba_landuse_polygons.geojson")
    fields = fields.rename(columns={"index": "field_id"})
    return ndvi, fields


def test_field_raster_and_statistics_match_numpy(slovenia):
    ndvi, fields = slovenia
    fid = field_raster(fields, ndvi)  # string ids, polygons reprojected from EPSG:4326
    assert fid.attrs["field_id_map"] == fields.field_id.tolist()
    code = {f: k for k, f in enumerate(fields.field_id, start=1)}
    reference = rasterio.features.rasterize(
        zip(fields.to_crs(ndvi.rio.crs).geometry, code.values(), strict=True), out_shape=fid.shape,
        transform=ndvi.rio.transform(), dtype="int32",
    )  # fmt: skip
    np.testing.assert_array_equal(fid.values, reference)
    stats = field_statistics(ndvi, fid)
    values = ndvi.values
    assert len(stats) > 3 * 50
    for row in stats.itertuples():
        t = list(ndvi.time.values).index(row.time)
        v = values[t][reference == code[row.field_id]].astype(np.float64)
        v = v[np.isfinite(v)]
        med = np.median(v)
        assert row.count == v.size
        assert abs(row.median - med) <= 0.001
        assert abs(row.p90 - np.quantile(v, 0.9)) <= 0.001
        assert abs(row.mad - np.median(np.abs(v - med))) <= 0.001


def test_classes_and_zones_cover_the_fields(slovenia):
    ndvi, fields = slovenia
    latest = ndvi.isel(time=0)
    classes = classify(xr.Dataset({"NDVI": latest}), fields)
    fid = field_raster(fields, latest)
    inside = fid.values > 0
    v = classes.values
    interior = field_raster(fields, latest, interior=True).values > 0
    # edge pixels (mixed with the neighbour) get no class; interior pixels all get one
    assert (v[~interior] == 0).all() and (v[interior] > 0).all()
    areas = class_areas(classes, fid)
    # geodesic areas: the planar pixel area scaled at the scene's centre (1 km across)
    (x0, y0, x1, y1), t = latest.rio.bounds(), latest.rio.transform()
    pixel_ha = geodesic_ha(abs(t.a * t.e) / 1e4, latest.rio.crs, (x0 + x1) / 2, (y0 + y1) / 2)
    assert areas.area_ha.sum() == pytest.approx(interior.sum() * pixel_ha, rel=1e-5)
    zoned = zones(latest, fields, n=3)
    # fields with fewer than 30 valid pixels (the default support) get no zones; the zones
    # of the others fill the part of the field inside the scene
    pixels = np.bincount(fid.values[inside & np.isfinite(latest.values)])
    supported = fields[fields.field_id.isin(codes_to_ids(fid, np.flatnonzero(pixels >= 30)))]
    assert set(zoned.field_id) == set(supported.field_id) and len(supported) > 20
    scene_box = shapely.box(x0, y0, x1, y1)
    local = supported.to_crs(latest.rio.crs)
    expected = area_ha(local.set_geometry(local.intersection(scene_box)))
    got = zoned.groupby("field_id").area_ha.sum().loc[supported.field_id]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-4)
    # zone 1 is the field's lowest NDVI, zone 3 its highest
    means = zoned.pivot_table(index="field_id", columns="zone", values="mean_NDVI")
    complete = means.dropna()
    assert len(complete) > 5
    assert (complete[1] <= complete[2]).all() and (complete[2] <= complete[3]).all()


def test_zones_of_the_slovenia_parcels_are_a_few_contiguous_polygons(shared_data):
    """2015-09-09, default settings: before, parcels of >= 0.5 ha had a median of 39 zone
    polygons (95th percentile 190)."""
    import agrivision as agv
    from agrivision.indices import compute

    folder = shared_data / "s2_slovenia_eolearn"
    scene = agv.open_scene([folder / "s2l1c_toa_13band_2015-09-09.tif"])
    fields = agv.read_fields(folder / "raba_landuse_polygons.geojson", to_crs=scene.rio.crs)
    zoned = zones(compute(scene, ["NDVI"])["NDVI"], fields)
    big = fields.field_id[area_ha(fields) >= 0.5]
    counts = zoned.groupby("field_id").size().reindex(big).dropna()
    assert len(counts) >= 15
    assert np.median(counts) <= 3 and np.percentile(counts, 95) <= 8
    quality = zoned.groupby("field_id").zones_variance_reduction.first()
    assert quality.between(0, 1).all() and quality.median() > 0.2
