"""``agrivision zones`` and ``agrivision prescription``: files GDAL opens, areas, bad rates."""

from __future__ import annotations

import subprocess

import geopandas as gpd
import numpy as np
import pytest
import shapely
from rasters import write_tif

from agrivision.cli import main
from agrivision.io.fields import area_ha

X0, Y0 = 500_000, 5_800_000  # EPSG:32633, 10 m pixels


@pytest.fixture
def zones_file(tmp_path):
    """A 4-band scene whose NDVI rises left to right in three steps, one 64 x 60 px field."""
    nir = np.repeat([[3000, 4000, 5000]], 64, axis=0).repeat(20, axis=1).astype(np.uint16)
    red = np.full_like(nir, 1500)
    data = np.stack([red, red, red, nir])
    scene = write_tif(tmp_path / "s2.tif", data, nodata=0, descriptions=["B02", "B03", "B04", "B08"],
                      tags={"SENSOR": "sentinel-2-l2a", "DATETIME": "2024-06-12"})  # fmt: skip
    field = shapely.box(X0 + 3, Y0 - 637, X0 + 597, Y0 - 5)  # border inside the edge pixels
    fields = gpd.GeoDataFrame({"field_id": ["north"]}, geometry=[field], crs=32633)
    fields.to_file(tmp_path / "fields.gpkg")
    out = tmp_path / "zones.gpkg"
    argv = ["zones", scene, "--fields", tmp_path / "fields.gpkg", "-n", "auto", "-o", out]
    assert main([str(a) for a in argv]) == 0
    return out, fields


def test_zones_then_a_shapefile_prescription_gdal_opens(zones_file, tmp_path, capsys):
    zones_path, fields = zones_file
    zones = gpd.read_file(zones_path)
    assert sorted(zones.zone) == [1, 2, 3] and zones.zones_n.iloc[0] == 3
    rx = tmp_path / "rx.shp"
    code = main(["prescription", str(zones_path), "--rates", "140,120,100", "--unit", "kg/ha",
                 "-o", str(rx)])  # fmt: skip
    assert code == 0
    assert "kg in all" in capsys.readouterr().out
    info = subprocess.run(["ogrinfo", "-al", "-so", str(rx)], capture_output=True, text=True)
    assert info.returncode == 0 and "ESRI Shapefile" in info.stdout
    assert "rate: Real" in info.stdout and "Feature Count: 3" in info.stdout
    table = gpd.read_file(rx)
    field_ha = area_ha(fields).iloc[0]
    assert table.area_ha.sum() == pytest.approx(field_ha, rel=1e-6)  # zones fill the field
    assert dict(zip(table.zone, table.rate, strict=True)) == {1: 140.0, 2: 120.0, 3: 100.0}
    assert table["product"].to_numpy() == pytest.approx(table.rate * table.area_ha)
    assert table.field_prod.iloc[0] == pytest.approx((table.rate * table.area_ha).sum())
    assert not list(tmp_path.glob(".rx*"))  # no staging left behind


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson"])
def test_prescription_as_geopackage_or_geojson_with_a_mapping(zones_file, tmp_path, suffix):
    zones_path, _ = zones_file
    rx = tmp_path / f"rx{suffix}"
    assert (
        main(["prescription", str(zones_path), "--rates", "3:90,1:150,2:120", "-o", str(rx)]) == 0
    )
    table = gpd.read_file(rx)
    assert dict(zip(table.zone, table.rate, strict=True)) == {1: 150.0, 2: 120.0, 3: 90.0}


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ("140,120", "2 rates, but the fields of the zones file have up to 3 zones"),
        ("140,120,100,80", "4 rates, but the fields of the zones file have up to 3 zones"),
        ("1:140,2:120", "rates for zones [1, 2], but the zones file has zones [1, 2, 3]"),
        ("140,-120,100", "rate '-120' for zone 2 is not a number >= 0"),
        ("140,lots,100", "'lots' is not a zone and a number"),
        ("140,nan,100", "rate 'nan' for zone 2 is not a number >= 0"),
    ],
)
def test_wrong_rates_exit_2_with_one_line(zones_file, tmp_path, capsys, rates, message):
    zones_path, _ = zones_file
    code = main(["prescription", str(zones_path), "--rates", rates, "-o", str(tmp_path / "r.shp")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.shp").exists()


@pytest.mark.usefixtures("zones_file")
def test_zones_options_reach_the_zones(tmp_path):
    scene, fields = tmp_path / "s2.tif", tmp_path / "fields.gpkg"
    out = tmp_path / "z2.geojson"
    # a 360 m "machine": zones of at least 12.96 ha, more than the field's 12.5 ha thirds
    argv = ["zones", scene, "--fields", fields, "-n", "3", "--working-width", "360", "-o", out]
    assert main([str(a) for a in argv]) == 0
    z = gpd.read_file(out)
    assert z.area_ha.min() >= 12.96 and z.zones_n.iloc[0] < 3
