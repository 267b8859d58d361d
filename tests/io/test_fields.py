"""read_fields and area_ha: every format, repairs, ids, CRS and error cases."""

from __future__ import annotations

import json
import warnings
import zipfile

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from rasters import geodesic_ha

from agrivision.errors import FieldsError, MissingCRSError
from agrivision.io.fields import FieldsWarning, area_ha, local_area_ha, read_fields

UTM = "EPSG:32633"
# Areas are geodesic: a planar hectare of EPSG:32633 is this many hectares on the ellipsoid
# near the parcels (100 km west of the central meridian) and near the origin (500 km west).
PARCEL_HA = geodesic_ha(2.0, UTM, 400150, 5760100)
ORIGIN_HA = geodesic_ha(1.0, UTM, 100, 100)


def parcels(n=3, crs=UTM, **columns):
    """n adjacent 100 m x 200 m (2 ha) rectangles near 15 E, 52 N."""
    geoms = [shapely.box(400000 + 100 * i, 5760000, 400100 + 100 * i, 5760200) for i in range(n)]
    data = {"field_id": np.arange(10, 10 + n), "crop": ["wheat"] * n, **columns}
    return gpd.GeoDataFrame(data, geometry=geoms, crs=crs)


@pytest.fixture(autouse=True)
def _no_stray_warnings():
    """Clean inputs must read without any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FieldsWarning)
        yield


def check_clean(gdf, n=3, crs=UTM, ordered=True):
    assert list(gdf.columns[:2]) == ["field_id", "crop"]
    ids = gdf["field_id"].tolist()
    assert (ids if ordered else sorted(ids)) == list(range(10, 10 + n))
    assert gdf.crs.equals(crs)
    np.testing.assert_allclose(area_ha(gdf), PARCEL_HA, rtol=1e-5)


@pytest.mark.parametrize(
    "suffix, driver",
    [
        (".geojson", "GeoJSON"),
        (".gpkg", "GPKG"),
        (".fgb", "FlatGeobuf"),
        (".shp", "ESRI Shapefile"),
    ],
)
def test_formats(tmp_path, suffix, driver):
    path = tmp_path / f"fields{suffix}"
    pyogrio.write_dataframe(parcels(), path, driver=driver)
    check_clean(read_fields(path), ordered=driver != "FlatGeobuf")  # its index sorts features


def test_geoparquet(tmp_path):
    parcels().to_parquet(tmp_path / "fields.parquet")
    check_clean(read_fields(tmp_path / "fields.parquet"))


@pytest.mark.parametrize("name", ["fields.zip", "fields.shp.zip"])
def test_zipped_shapefile(tmp_path, name):
    pyogrio.write_dataframe(parcels(), tmp_path / "fields.shp")
    with zipfile.ZipFile(tmp_path / name, "w") as zf:
        for part in tmp_path.glob("fields.*"):
            if part.suffix != ".zip":
                zf.write(part, f"export/{part.name}")  # in a folder, as zips often are
    check_clean(read_fields(tmp_path / name))


def test_geopackage_layers(tmp_path):
    path = tmp_path / "farm.gpkg"
    pyogrio.write_dataframe(parcels(), path, layer="parcels_2024")
    pyogrio.write_dataframe(parcels(2), path, layer="parcels_2023")
    with pytest.raises(FieldsError, match=r"2 layers: parcels_20\d\d, parcels_20\d\d"):
        read_fields(path)
    check_clean(read_fields(path, layer="parcels_2023"), n=2)


def test_geojson_without_crs_is_wgs84_and_to_crs(tmp_path):
    path = tmp_path / "fields.geojson"
    doc = json.loads(parcels().to_crs(4326).to_json(drop_id=True))
    doc.pop("crs", None)  # RFC 7946: no crs member, coordinates are WGS 84 lon/lat
    path.write_text(json.dumps(doc))
    gdf = read_fields(path)
    assert gdf.crs.equals("EPSG:4326")
    np.testing.assert_allclose(area_ha(gdf), 2.0, rtol=1e-3)  # equal-area, not degrees
    check_clean(read_fields(path, to_crs=UTM))


def test_geojson_legacy_crs_member_is_honoured(tmp_path):
    path = tmp_path / "utm.geojson"
    doc = json.loads(parcels().to_json(drop_id=True))
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}}
    path.write_text(json.dumps(doc))
    check_clean(read_fields(path))


def test_missing_crs_is_an_error_unless_given(tmp_path):
    path = tmp_path / "fields.shp"
    with pytest.warns(UserWarning, match="crs"):  # pyogrio's own note about the missing .prj
        pyogrio.write_dataframe(parcels(crs=None), path)
    with pytest.raises(MissingCRSError, match=r"fields\.shp.*crs="):
        read_fields(path)
    check_clean(read_fields(path, crs=UTM))


def test_crs_overrides_a_declared_one_with_warning(tmp_path):
    path = tmp_path / "fields.gpkg"
    pyogrio.write_dataframe(parcels(crs="EPSG:32632"), path)
    with pytest.warns(FieldsWarning, match="overrides"):
        gdf = read_fields(path, crs=UTM)
    assert gdf.crs.equals(UTM)


def test_bowtie_is_repaired_with_one_warning(tmp_path):
    bowtie = shapely.Polygon([(0, 0), (200, 200), (200, 0), (0, 200)])  # 2 triangles of 1 ha
    ring = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100), (0, 0), (50, 50)])
    gdf = gpd.GeoDataFrame(
        {"field_id": [1, 2, 3]}, crs=UTM, geometry=[bowtie, bowtie, shapely.box(0, 0, 100, 100)]
    )
    gdf.to_parquet(tmp_path / "f.parquet")
    with pytest.warns(FieldsWarning, match="repaired 2 invalid") as record:
        out = read_fields(tmp_path / "f.parquet")
    assert len(record) == 1
    assert out.geometry.is_valid.all() and out.geom_type.iloc[0] == "MultiPolygon"
    np.testing.assert_allclose(area_ha(out), np.array([2.0, 2.0, 1.0]) * ORIGIN_HA, rtol=1e-5)
    assert not ring.is_valid  # a spike: repaired to its polygonal part
    gdf = gpd.GeoDataFrame({"field_id": [1]}, geometry=[ring], crs=UTM)
    gdf.to_parquet(tmp_path / "g.parquet")
    with pytest.warns(FieldsWarning):
        np.testing.assert_allclose(
            area_ha(read_fields(tmp_path / "g.parquet")), ORIGIN_HA, rtol=1e-5
        )


def test_unusable_geometries_are_dropped_with_one_warning(tmp_path):
    geoms = [
        shapely.box(0, 0, 100, 100),
        None,
        shapely.Polygon(),
        shapely.Point(5, 5),
        shapely.LineString([(0, 0), (9, 9)]),
        shapely.GeometryCollection([shapely.Point(1, 1), shapely.box(0, 0, 200, 50)]),
        shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)]),
    ]
    gdf = gpd.GeoDataFrame({"field_id": range(1, 8)}, geometry=geoms, crs=UTM)
    gdf.to_parquet(tmp_path / "mixed.parquet")
    with pytest.warns(FieldsWarning) as record:
        out = read_fields(tmp_path / "mixed.parquet")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert "repaired 0 invalid geometries with make_valid and reduced 1 geometry" in messages[0]
    assert "dropped 4 features without polygons (2 null or empty, 2 points" in messages[1]
    assert out["field_id"].tolist() == [1, 6, 7]
    assert out.geom_type.tolist() == ["Polygon", "Polygon", "MultiPolygon"]
    np.testing.assert_allclose(area_ha(out), np.array([1.0, 1.0, 0.02]) * ORIGIN_HA, rtol=1e-5)


def test_only_points_is_an_error(tmp_path):
    gdf = gpd.GeoDataFrame({"field_id": [1]}, geometry=[shapely.Point(0, 0)], crs=UTM)
    gdf.to_parquet(tmp_path / "points.parquet")
    with pytest.raises(FieldsError, match="no polygon features"), pytest.warns(FieldsWarning):
        read_fields(tmp_path / "points.parquet")


def test_missing_ids_are_generated(tmp_path):
    parcels().drop(columns="field_id").to_parquet(tmp_path / "f.parquet")
    with pytest.warns(FieldsWarning, match="generated field_id 1..3"):
        out = read_fields(tmp_path / "f.parquet")
    assert out["field_id"].tolist() == [1, 2, 3]


def test_duplicate_ids_are_replaced_and_kept(tmp_path):
    parcels(field_id=[7, 7, 8]).to_parquet(tmp_path / "f.parquet")
    with pytest.warns(FieldsWarning, match=r"1 duplicated ids \(e.g. \[7\]\)"):
        out = read_fields(tmp_path / "f.parquet")
    assert out["field_id"].tolist() == [1, 2, 3]
    assert out["original_field_id"].tolist() == [7, 7, 8]


def test_list_valued_ids_are_an_error_not_a_crash(tmp_path):
    # GeoJSON allows any JSON value as a property: a list is no id (was a TypeError)
    path = tmp_path / "f.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
        '{"field_id": [1, 2]}, "geometry": {"type": "Polygon", "coordinates": '
        "[[[15, 52], [15.001, 52], [15.001, 52.001], [15, 52]]]}}]}"
    )
    with pytest.raises(FieldsError, match=r"'field_id' holds lists or objects"):
        read_fields(path)


def test_id_column(tmp_path):
    parcels(parcel=["a", "b", "c"]).to_parquet(tmp_path / "f.parquet")
    out = read_fields(tmp_path / "f.parquet", id_column="parcel")
    assert out["original_field_id"].tolist() == [10, 11, 12]
    assert out["field_id"].tolist() == [
        "a",
        "b",
        "c",
    ]
    with pytest.raises(FieldsError, match=r"no column 'plot'.*crop"):
        read_fields(tmp_path / "f.parquet", id_column="plot")


def test_zero_features(tmp_path):
    path = tmp_path / "empty.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(FieldsError, match=r"empty\.geojson: the file has no features"):
        read_fields(path)


@pytest.mark.parametrize("name", ["broken.gpkg", "broken.geojson", "broken.parquet", "b.zip"])
def test_corrupt_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00garbage, not a vector file" * 10)
    with pytest.raises(FieldsError, match=f"{name}: cannot read fields"):
        read_fields(path)


def test_missing_file(tmp_path):
    with pytest.raises(FieldsError, match="not found"):
        read_fields(tmp_path / "nope.gpkg")


def test_area_ha_units():
    utm = parcels(1)
    assert area_ha(utm).iloc[0] == pytest.approx(PARCEL_HA, rel=1e-6)
    assert area_ha(utm.to_crs(4326)).iloc[0] == pytest.approx(area_ha(utm).iloc[0], rel=1e-9)
    side = 100 / (1200 / 3937)  # 100 m in US survey feet
    feet = gpd.GeoSeries([shapely.box(1e6, 2e5, 1e6 + side, 2e5 + side)], crs="EPSG:2263")
    x, y = 1e6 + side / 2, 2e5 + side / 2
    assert area_ha(feet).iloc[0] == pytest.approx(geodesic_ha(1.0, "EPSG:2263", x, y), rel=1e-6)
    assert area_ha(utm).name == "area_ha"
    with pytest.raises(MissingCRSError):
        area_ha(utm.set_crs(None, allow_override=True))


@pytest.mark.parametrize("crs", ["EPSG:32633", "EPSG:2263"])
def test_local_area_agrees_with_geodesic_polygons_and_ignores_collinear_vertices(crs):
    # squares and holed squares of 20 m to 2 km, 250 km off UTM 33N's central meridian
    # (near New York for the US-feet CRS), where the areal scale changes fastest
    lon, lat = (11.3, 52.0) if crs == "EPSG:32633" else (-74.0, 40.7)
    corner = gpd.GeoSeries.from_xy([lon], [lat], crs=4326).to_crs(crs)
    x, y = corner.x.iloc[0], corner.y.iloc[0]
    unit = 1 / corner.crs.axis_info[0].unit_conversion_factor  # CRS units per metre
    sides = np.array([20.0, 200.0, 2000.0]) * unit
    squares = shapely.box(x, y, x + sides, y + sides)
    holed = shapely.difference(
        squares, shapely.box(x + sides / 4, y + sides / 4, x + sides / 2, y + sides / 2)
    )
    geoms = np.concatenate([squares, holed, [None, shapely.Polygon()]])
    got = local_area_ha(geoms, crs)
    want = area_ha(gpd.GeoSeries(geoms[:6], crs=crs)).to_numpy()
    np.testing.assert_allclose(got[:6], want, rtol=3e-8)
    assert got[6] == got[7] == 0.0
    # a chunk seam adds vertices along straight edges: the area stays the same
    dense = shapely.segmentize(geoms[:6], sides.min() / 7)
    np.testing.assert_allclose(local_area_ha(dense, crs), got[:6], rtol=1e-10)
    lonlat = gpd.GeoSeries(geoms[:6], crs=crs).to_crs(4326).to_numpy()
    np.testing.assert_allclose(local_area_ha(lonlat, "EPSG:4326"), want, rtol=1e-6)
