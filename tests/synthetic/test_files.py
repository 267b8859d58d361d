"""write_synthetic: Sentinel-2 L2A-like COGs, STAC Items, fields GeoJSON and truth rasters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely

from agrivision.errors import ConfigError
from agrivision.synthetic import synthetic_scene, write_synthetic

pytestmark = pytest.mark.filterwarnings("ignore:Dataset has no geotransform")
DATES = ["2024-05-20", "2024-06-21"]
BAND_RES = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
            "B08": 10, "B8A": 20, "B11": 20, "B12": 20, "SCL": 20}  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("s2")
    files = write_synthetic(out, seed=4, shape=(240, 250), dates=DATES, chunks=128)
    scene, truth = synthetic_scene(4, shape=(240, 250), dates=DATES, chunks=128)
    return files, scene, truth


def test_band_files_carry_sentinel2_metadata(written):
    files, _, _ = written
    assert files.dates == DATES and set(files.rasters) == set(DATES)
    for day, bands in files.rasters.items():
        assert set(bands) == set(BAND_RES)
        for bid, path in bands.items():
            res = BAND_RES[bid]
            assert path.name == f"S2X_MSIL2A_{day.replace('-', '')}_T33UUU_{bid}_{res}m.tif"
            with rasterio.open(path) as src:
                assert src.dtypes == ("uint16" if bid != "SCL" else "uint8",)
                assert src.nodata == 0 and src.descriptions == (bid,)
                assert src.res == (res, res) and src.crs.to_epsg() == 32633
                assert src.transform.c == 500000 and src.transform.f == 5800000
                assert src.shape == (240 * 10 // res, 250 * 10 // res)
                tags = src.tags()
                assert tags["SENSOR"] == "sentinel-2-l2a"
                assert tags["DATETIME"] == f"{day}T00:00:00Z"
                assert tags["PROCESSING_BASELINE"] == "05.10"
                assert tags["BOA_ADD_OFFSET"] == "-1000"
                assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"


def test_digital_numbers_round_trip_to_reflectance(written):
    files, scene, _ = written
    for t, day in enumerate(DATES):
        with rasterio.open(files.rasters[day]["B04"]) as src:
            dn = src.read(1)
        red = scene.red.isel(time=t).values
        np.testing.assert_array_equal(dn, np.round(red * 10000) + 1000)
        assert np.abs((dn.astype(np.float64) - 1000) / 10000 - red).max() <= 0.5e-4 + 1e-7
        with rasterio.open(files.rasters[day]["B05"]) as src:  # 20 m: 2 x 2 block means
            dn20 = src.read(1).astype(np.float64)
        re1 = scene.rededge1.isel(time=t).values.astype(np.float64)
        blocks = re1.reshape(120, 2, 125, 2).mean(axis=(1, 3))
        assert np.abs((dn20 - 1000) / 10000 - blocks).max() <= 0.5e-4 + 1e-6
        with rasterio.open(files.rasters[day]["SCL"]) as src:
            np.testing.assert_array_equal(src.read(1), scene.scl.isel(time=t).values[::2, ::2])
        with rasterio.open(files.rasters[day]["B01"]) as src:  # 60 m: partial blocks dropped
            assert src.shape == (40, 41)


def test_stac_items_are_structurally_valid_and_resolve(written):
    files, scene, _ = written
    collection = json.loads(files.items.read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 2
    for item, day in zip(collection["features"], DATES, strict=True):
        assert item == json.loads(files.item_files[day].read_text())
        assert files.item_files[day].name == f"item_{day}.json"
        for key in ("type", "stac_version", "id", "geometry", "bbox", "properties", "links",
                    "assets", "stac_extensions"):  # fmt: skip
            assert key in item, key
        assert item["type"] == "Feature" and item["properties"]["datetime"] == f"{day}T00:00:00Z"
        assert item["properties"]["s2:processing_baseline"] == "05.10"
        assert item["properties"]["proj:epsg"] == 32633
        west, south, east, north = item["bbox"]
        assert 14.9 < west < east < 15.2 and 52.2 < south < north < 52.4  # UTM 33N, 5.8e6 m N
        footprint = shapely.geometry.shape(item["geometry"])
        assert footprint.is_valid and footprint.bounds == pytest.approx(item["bbox"])
        assert set(item["assets"]) == set(BAND_RES)
        for key, asset in item["assets"].items():
            path = files.item_files[day].parent / asset["href"]
            assert path.resolve() == files.rasters[day][key].resolve()
            assert asset["roles"] == ["data"] and "cloud-optimized" in asset["type"]
            with rasterio.open(path) as src:
                assert asset["proj:shape"] == list(src.shape)
                assert asset["proj:transform"] == list(src.transform)[:6]
            rb = asset["raster:bands"][0]
            assert rb["nodata"] == 0
            if key != "SCL":
                assert rb["scale"] == 0.0001 and rb["offset"] == -0.1
                common = asset["eo:bands"][0]["common_name"]
                assert common in scene.data_vars
    pystac = pytest.importorskip("pystac")
    item = pystac.Item.from_dict(collection["features"][0])
    assert item.datetime.isoformat().startswith(DATES[0])
    assert pystac.ItemCollection.from_dict(collection).items[1].id.endswith("T33UUU")


def test_fields_geojson_is_rfc7946(written):
    files, _, truth = written
    raw = json.loads(files.fields.read_text())
    assert "crs" not in raw  # RFC 7946: WGS 84 lon/lat implied
    ring = raw["features"][0]["geometry"]["coordinates"][0]
    assert 14 < ring[0][0] < 16 and 52 < ring[0][1] < 53
    assert shapely.LinearRing(ring).is_ccw  # exterior rings counter-clockwise
    gdf = pyogrio.read_dataframe(files.fields)
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == len(truth.fields)
    assert list(gdf["field_id"]) == list(truth.fields["field_id"])
    assert {"crop", "condition", "stressed_share", "area_ha"} <= set(gdf.columns)
    back = gdf.to_crs(32633).area
    np.testing.assert_allclose(back, truth.fields.area, rtol=1e-3)  # 7 decimals: ~1 cm


def test_truth_rasters_have_colours_and_names(written):
    files, _, truth = written
    with rasterio.open(files.truth_classes) as src:
        assert src.descriptions == tuple(DATES) and src.dtypes == ("uint8", "uint8")
        names = json.loads(src.tags()["CLASS_NAMES"])
        assert names["3"] == "anomaly" and src.colormap(1)[1][:3] == (26, 150, 65)
        np.testing.assert_array_equal(src.read(), truth.classes.values)
    with rasterio.open(files.truth_landcover) as src:
        assert json.loads(src.tags()["CLASS_NAMES"])["5"] == "water"
        np.testing.assert_array_equal(src.read(1), truth.landcover.values)


def test_open_scene_reads_the_items_back(written):
    open_scene = pytest.importorskip("agrivision.io.scene").open_scene
    files, scene, _ = written
    back = open_scene(files.items, mask=False)
    assert back.sizes["time"] == 2 and back.red.shape == (2, 240, 250)
    np.testing.assert_allclose(back.red.values, scene.red.values, atol=0.5e-4 + 1e-7)
    np.testing.assert_array_equal(back.scl.values[:, ::2, ::2], scene.scl.values[:, ::2, ::2])


def test_stack_layout_and_errors(tmp_path):
    files = write_synthetic(tmp_path, seed=1, shape=(64, 64))
    assert files.dates == ["2024-06-15"]
    stack = write_synthetic(tmp_path / "stack", seed=1, shape=(64, 64), layout="stack")
    path = stack.rasters["2024-06-15"]["stack"]
    assert path.name == "S2X_MSIL2A_20240615_T33UUU_10m.tif"
    with rasterio.open(path) as src:
        assert src.descriptions == ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08",
                                    "B8A", "B11", "B12", "SCL")  # fmt: skip
        assert src.dtypes[0] == "uint16" and src.nodata == 0
        stacked = src.read()
    with rasterio.open(files.rasters["2024-06-15"]["B04"]) as src:
        np.testing.assert_array_equal(stacked[3], src.read(1))
    item = json.loads(stack.item_files["2024-06-15"].read_text())
    eo = item["assets"]["stack"]["eo:bands"]
    assert [b["name"] for b in eo][-1] == "SCL" and eo[3]["common_name"] == "red"
    with pytest.raises(ConfigError, match="layout"):
        write_synthetic(tmp_path, layout="cube")
    assert sorted(p.name for p in Path(tmp_path).glob(".*")) == []  # no temp files left
