"""Vector exporters: RFC 7946 GeoJSON, GeoPackage layers, GeoParquet, FlatGeobuf, CSV, atomicity."""

from __future__ import annotations

import json
import os
import sqlite3
from decimal import Decimal
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely
from rasters import geodesic_ha

import agrivision.io.vector as vector
from agrivision.errors import MissingCRSError, OutputError
from agrivision.io import geojson
from agrivision.io.vector import FORMATS, FeatureSpool, write_layers, write_vector

# A field near 15°E 52°N in UTM 33N (central meridian 15°E): x≈15, y≈52 once in lon/lat.
E0, N0 = 500000.0, 5761000.0


def assert_rfc7946(path: Path, precision: int | None = None) -> dict:
    """Check a GeoJSON file against RFC 7946 and return it parsed.

    No ``crs`` member; every position is [longitude, latitude] within [-180, 180] x [-90, 90];
    polygon exterior rings are counter-clockwise and holes clockwise (signed shoelace area);
    rings are closed; with ``precision``, no coordinate has more decimals than that.
    """
    text = Path(path).read_text()
    doc = json.loads(text, parse_float=Decimal)  # Decimal keeps the written digits
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc
    for feature in doc["features"]:
        assert "crs" not in feature
        geometry = feature["geometry"]
        if geometry is None:
            continue
        kind, coords = geometry["type"], geometry["coordinates"]
        polygons = {"Polygon": [coords], "MultiPolygon": coords}.get(kind, [])
        for polygon in polygons:
            for i, ring in enumerate(polygon):
                xy = np.array(ring, dtype=float)
                assert (xy[0] == xy[-1]).all(), "ring not closed"
                signed = 0.5 * np.sum(xy[:-1, 0] * xy[1:, 1] - xy[1:, 0] * xy[:-1, 1])
                assert signed > 0 if i == 0 else signed < 0, f"ring {i} wrongly oriented"
        for position in _positions(coords):
            lon, lat = position[0], position[1]
            assert -180 <= lon <= 180 and -90 <= lat <= 90
            if precision is not None:
                assert all(-c.as_tuple().exponent <= precision for c in position[:2])
    return json.loads(text)


def _positions(coords):
    if coords and isinstance(coords[0], Decimal | int):
        yield coords
    else:
        for c in coords:
            yield from _positions(c)


@pytest.fixture
def table() -> gpd.GeoDataFrame:
    """Two features (a polygon with a clockwise shell and a hole; a MultiPolygon), all dtypes."""
    shell = [(E0, N0), (E0, N0 + 1000), (E0 + 1000, N0 + 1000), (E0 + 1000, N0)]  # clockwise
    hole = [(E0 + 200, N0 + 200), (E0 + 400, N0 + 200), (E0 + 400, N0 + 400), (E0 + 200, N0 + 400)]
    holed = shapely.Polygon(shell, [hole])
    assert not holed.exterior.is_ccw and holed.interiors[0].is_ccw
    multi = shapely.MultiPolygon([holed, shapely.box(E0 + 2000, N0, E0 + 2500, N0 + 500)])
    return gpd.GeoDataFrame(
        {
            "field_id": ["A-1", "B-2"],
            "count": np.array([12, -3], dtype=np.int64),
            "mean": [0.6125, np.nan],
            "flag": [True, False],
            "name": pd.array(["wheat", None], dtype="string"),
            "date": pd.to_datetime(["2024-05-01T10:30:00", "2024-06-01T00:00:00"]),
        },
        geometry=[holed, multi],
        crs="EPSG:32633",
    )


def assert_same_attributes(read: pd.DataFrame, table: pd.DataFrame) -> None:
    assert list(read["field_id"]) == list(table["field_id"])
    assert list(read["count"]) == list(table["count"])
    assert read["count"].dtype.kind == "i"
    np.testing.assert_array_equal(read["mean"].to_numpy(float), table["mean"].to_numpy(float))
    assert read["flag"].dtype == bool and list(read["flag"]) == [True, False]
    assert read["name"].iloc[0] == "wheat" and pd.isna(read["name"].iloc[1])
    assert list(pd.to_datetime(read["date"])) == list(table["date"])


def no_leftovers(directory: Path, *expected: str) -> None:
    assert sorted(p.name for p in directory.iterdir()) == sorted(expected)


# --------------------------------------------------------------------------- GeoJSON


@pytest.mark.parametrize("suffix", [".geojson", ".json"])
def test_geojson_is_rfc7946_in_lon_lat(tmp_path, table, suffix):
    path = write_vector(table, tmp_path / f"fields{suffix}", precision=6)
    doc = assert_rfc7946(path, precision=6)
    no_leftovers(tmp_path, f"fields{suffix}")
    x, y = doc["features"][0]["geometry"]["coordinates"][0][0]
    assert x == pytest.approx(15.0, abs=0.02) and y == pytest.approx(52.0, abs=0.02)
    # the first corner is (E0, N0), i.e. exactly on the central meridian
    lon, lat = pyproj.Transformer.from_crs(32633, 4326, always_xy=True).transform(E0, N0)
    corners = np.array(doc["features"][0]["geometry"]["coordinates"][0])
    assert np.abs(corners - [lon, lat]).sum(axis=1).min() < 1e-6
    assert doc["features"][1]["properties"]["mean"] is None  # NaN -> null
    assert doc["features"][1]["properties"]["name"] is None


def test_geojson_round_trip_keeps_attributes_and_shapes(tmp_path, table):
    path = write_vector(table, tmp_path / "f.geojson")
    read = pyogrio.read_dataframe(path)
    assert_same_attributes(read, table)
    back = read.set_crs(4326, allow_override=True).to_crs(32633)
    # 7 decimals of a degree are ~1 cm: every vertex comes back within 2 cm
    assert (shapely.hausdorff_distance(back.geometry.values, table.geometry.values) < 0.02).all()
    np.testing.assert_allclose(back.area, table.area, rtol=1e-5)


def test_geojson_precision_is_applied(tmp_path, table):
    assert_rfc7946(write_vector(table, tmp_path / "p3.geojson", precision=3), precision=3)
    with pytest.raises(AssertionError):
        assert_rfc7946(write_vector(table, tmp_path / "p9.geojson", precision=9), precision=3)


def test_geojson_from_epsg4326_keeps_lon_lat_order(tmp_path, table):
    doc = assert_rfc7946(write_vector(table.to_crs(4326), tmp_path / "ll.geojson"))
    x, y = doc["features"][0]["geometry"]["coordinates"][0][0]
    assert x == pytest.approx(15.0, abs=0.02) and y == pytest.approx(52.0, abs=0.02)


def test_geojson_needs_a_crs(tmp_path, table):
    with pytest.raises(MissingCRSError, match="RFC 7946"):
        write_vector(table.set_crs(None, allow_override=True), tmp_path / "x.geojson")
    no_leftovers(tmp_path)


def test_rfc7946_helper_rejects_what_it_should(tmp_path):
    def write(doc):
        path = tmp_path / "bad.geojson"
        path.write_text(json.dumps(doc))
        return path

    ring_cw = [[15, 52], [15, 53], [16, 53], [16, 52], [15, 52]]
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon"}}
    with pytest.raises(AssertionError, match="oriented"):
        feature["geometry"]["coordinates"] = [ring_cw]
        assert_rfc7946(write({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(AssertionError):  # projected metres are not lon/lat
        feature["geometry"]["coordinates"] = [[[E0, N0], [E0 + 10, N0], [E0, N0 + 10], [E0, N0]]]
        assert_rfc7946(write({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(AssertionError):
        assert_rfc7946(write({"type": "FeatureCollection", "crs": {}, "features": []}))


def test_problem_polygons_from_vectorize_export_as_rfc7946(tmp_path):
    import xarray as xr

    from agrivision.fields.vectorize import vectorize

    arr = np.zeros((6, 6), np.uint8)
    arr[1:5, 1:5] = 2
    arr[2:4, 2:4] = 3  # a hole in class 2, filled by class 3
    classes = xr.DataArray(
        arr,
        dims=("y", "x"),
        coords={"y": N0 + 55 - 10 * np.arange(6), "x": E0 + 5 + 10 * np.arange(6)},
    ).rio.write_crs(32633)
    problems = vectorize(classes.chunk(3))
    doc = assert_rfc7946(write_vector(problems, tmp_path / "problems.geojson"), precision=7)
    assert [f["properties"]["class_name"] for f in doc["features"]] == [
        "stressed",
        "anomaly – scout here",
    ]
    assert len(doc["features"][0]["geometry"]["coordinates"]) == 2  # shell and hole
    write_layers({"problems": problems}, tmp_path / "report.gpkg")
    read = pyogrio.read_dataframe(tmp_path / "report.gpkg", layer="problems")
    geodesic = [geodesic_ha(a, 32633, E0 + 30, N0 + 30) for a in (0.12, 0.04)]
    np.testing.assert_allclose(read["area_ha"], geodesic, rtol=1e-7)
    assert read.crs == problems.crs


# --------------------------------------------------------------------------- GeoPackage


def test_gpkg_layers_accumulate_and_replace(tmp_path, table):
    path = tmp_path / "report.gpkg"
    write_vector(table, path, layer="fields")
    write_vector(table.iloc[:1], path, layer="problems")
    assert {n for n, _ in pyogrio.list_layers(path)} == {"fields", "problems"}
    write_vector(table.iloc[1:], path, layer="fields")  # replaces only that layer
    assert {n for n, _ in pyogrio.list_layers(path)} == {"fields", "problems"}
    assert list(pyogrio.read_dataframe(path, layer="fields")["field_id"]) == ["B-2"]
    assert list(pyogrio.read_dataframe(path, layer="problems")["field_id"]) == ["A-1"]
    with pytest.raises(OutputError, match="layer 'fields' exists"):
        write_vector(table, path, layer="fields", overwrite=False)
    write_vector(table, path, layer="zones", overwrite=False)  # a new layer is fine
    no_leftovers(tmp_path, "report.gpkg")


def test_gpkg_default_layer_is_the_file_stem(tmp_path, table):
    path = write_vector(table, tmp_path / "problems.gpkg")
    assert [n for n, _ in pyogrio.list_layers(path)] == ["problems"]


def test_write_layers_round_trip(tmp_path, table):
    path = tmp_path / "report.gpkg"
    write_vector(table, path, layer="stale")
    layers = {"fields": table, "problems": table.iloc[:1], "zones": table.to_crs(4326)}
    write_layers(layers, path)
    assert [n for n, _ in pyogrio.list_layers(path)] == ["fields", "problems", "zones"]
    for name, expected in layers.items():
        read = pyogrio.read_dataframe(path, layer=name)
        assert read.crs == expected.crs
        assert_same_attributes(read, expected) if len(expected) == 2 else None
        assert shapely.equals(read.geometry.values, expected.geometry.values).all()
    no_leftovers(tmp_path, "report.gpkg")
    with sqlite3.connect(path) as db:  # a GeoPackage ("GPKG"), version 1.2
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
    with pytest.raises(OutputError, match="exists"):
        write_layers(layers, path, overwrite=False)
    with pytest.raises(OutputError, match="gpkg"):
        write_layers(layers, tmp_path / "report.geojson")


# --------------------------------------------------------------------------- other formats


def test_parquet_round_trip_is_lossless(tmp_path, table):
    path = write_vector(table, tmp_path / "f.parquet")
    read = gpd.read_parquet(path)
    assert read.crs == table.crs
    pd.testing.assert_frame_equal(read.drop(columns="geometry"), table.drop(columns="geometry"))
    assert shapely.equals_exact(read.geometry.values, table.geometry.values, 0).all()


def test_flatgeobuf_round_trip(tmp_path, table):
    path = write_vector(table, tmp_path / "f.fgb")
    read = pyogrio.read_dataframe(path)
    assert read.crs == table.crs
    assert_same_attributes(read, table)
    assert shapely.equals(read.geometry.values, table.geometry.values).all()


@pytest.mark.parametrize("wkt", [False, True])
def test_csv_with_and_without_wkt(tmp_path, table, wkt):
    table = table.set_geometry(table.translate(0.123456, 0.654321))
    path = write_vector(table, tmp_path / "f.csv", wkt=wkt, precision=3)
    read = pd.read_csv(path, parse_dates=["date"])
    expected = ["field_id", "count", "mean", "flag", "name", "date"] + (["wkt"] if wkt else [])
    assert list(read.columns) == expected
    assert_same_attributes(read, table)
    if wkt:
        assert read["wkt"].str.contains(r"\.\d{4}").sum() == 0  # 3 decimals at most
        shapes = shapely.from_wkt(read["wkt"].to_numpy())
        assert (shapely.hausdorff_distance(shapes, table.geometry.values) < 1e-3).all()


def test_plain_tables_go_to_csv_and_parquet_only(tmp_path, table):
    plain = pd.DataFrame(table.drop(columns="geometry"))
    write_vector(plain, tmp_path / "t.csv")
    write_vector(plain, tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet").equals(plain)
    with pytest.raises(OutputError, match="without geometry"):
        write_vector(plain, tmp_path / "t.gpkg")


def test_named_index_becomes_a_column(tmp_path, table):
    path = write_vector(table.set_index("field_id"), tmp_path / "i.parquet")
    assert list(gpd.read_parquet(path)["field_id"]) == ["A-1", "B-2"]


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_empty_tables_write_valid_files_with_a_warning(tmp_path, table, suffix):
    path = tmp_path / f"empty{suffix}"
    with pytest.warns(UserWarning, match="empty"):
        write_vector(table.iloc[:0], path)
    if suffix in (".geojson", ".json"):
        assert assert_rfc7946(path)["features"] == []
    elif suffix == ".csv":
        assert pd.read_csv(path).empty
    elif suffix == ".parquet":
        assert gpd.read_parquet(path).empty
    else:
        assert len(pyogrio.read_dataframe(path)) == 0


# --------------------------------------------------------------------------- errors, atomicity


def test_unknown_suffix_lists_the_supported_ones(tmp_path, table):
    with pytest.raises(OutputError, match=r"\.shp.*\.geojson, \.json, \.gpkg, \.parquet, \.fgb"):
        write_vector(table, tmp_path / "f.shp")
    with pytest.raises(OutputError, match="no suffix"):
        write_vector(table, tmp_path / "f")


def test_existing_file_is_kept_without_overwrite(tmp_path, table):
    path = write_vector(table, tmp_path / "f.geojson")
    before = path.read_bytes()
    with pytest.raises(OutputError, match="exists"):
        write_vector(table.iloc[:1], path, overwrite=False)
    assert path.read_bytes() == before


def _failing_writer(real):
    """A pyogrio.write_dataframe that writes the file, appends garbage, then fails."""

    def write(df, path, **kwargs):
        real(df, path, **kwargs)
        with open(path, "ab") as fh:
            fh.write(b"garbage")
        raise OSError("disk full")

    return write


def _failing_geojson(real):
    """A geojson.write_feature_collection that writes the text, appends garbage, then fails."""

    def write(batches, out, **kwargs):
        real(batches, out, **kwargs)
        out.write("garbage")
        raise OSError("disk full")

    return write


@pytest.mark.parametrize("name", ["f.geojson", "f.fgb", "f.gpkg"])
def test_failed_write_leaves_previous_file_and_no_temp_files(tmp_path, table, monkeypatch, name):
    path = write_vector(table, tmp_path / name)
    before = path.read_bytes()
    if name.endswith(".geojson"):
        real = vector.geojson.write_feature_collection
        monkeypatch.setattr(vector.geojson, "write_feature_collection", _failing_geojson(real))
    else:
        real = pyogrio.write_dataframe
        monkeypatch.setattr(vector.pyogrio, "write_dataframe", _failing_writer(real))
    with pytest.raises(OSError, match="disk full"):
        write_vector(table.iloc[:1], path, layer="other")
    assert path.read_bytes() == before
    no_leftovers(tmp_path, name)


def test_failed_layer_write_keeps_the_geopackage_layers(tmp_path, table, monkeypatch):
    path = tmp_path / "report.gpkg"
    write_layers({"fields": table, "problems": table.iloc[:1]}, path)
    before = path.read_bytes()
    calls = []
    real = pyogrio.write_dataframe

    def fail_second(df, target, **kwargs):
        calls.append(kwargs["layer"])
        if len(calls) == 2:
            raise OSError("disk full")
        real(df, target, **kwargs)

    monkeypatch.setattr(vector.pyogrio, "write_dataframe", fail_second)
    with pytest.raises(OSError):
        write_layers({"a": table, "b": table}, path)
    assert path.read_bytes() == before
    assert [n for n, _ in pyogrio.list_layers(path)] == ["fields", "problems"]
    no_leftovers(tmp_path, "report.gpkg")


def test_unwritable_directory_is_an_output_error(tmp_path, table):
    with pytest.raises(OutputError, match="does not exist"):
        write_vector(table, tmp_path / "missing" / "f.gpkg")
    if os.geteuid() != 0:  # root writes anywhere
        tmp_path.chmod(0o500)
        try:
            with pytest.raises(OutputError, match="not writable"):
                write_vector(table, tmp_path / "f.gpkg")
        finally:
            tmp_path.chmod(0o700)


# --------------------------------------------------------------------------- spooled features


def spool_of(table: gpd.GeoDataFrame, folder: Path) -> FeatureSpool:
    """The table spooled in three batches (one of them empty)."""
    return FeatureSpool([table.iloc[:1], table.iloc[:0], table.iloc[1:]], folder=folder)


@pytest.mark.parametrize("name", ["f.geojson", "f.fgb"])
def test_spooled_features_write_the_same_bytes(tmp_path, table, name):
    (tmp_path / "whole").mkdir()
    write_vector(table, tmp_path / "whole" / name)
    with spool_of(table, tmp_path) as spool:
        assert len(spool) == 2 and spool.geometry_types == {"Polygon", "MultiPolygon"}
        write_vector(spool, tmp_path / name)
    assert (tmp_path / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    no_leftovers(tmp_path, name, "whole")  # the spool file is gone


def test_spooled_layers_match_whole_layers_and_promote_to_multi(tmp_path, table):
    with spool_of(table, tmp_path) as spool:
        write_layers({"fields": table, "polygons": spool}, tmp_path / "spooled.gpkg")
    write_layers({"fields": table, "polygons": table}, tmp_path / "whole.gpkg")
    for layer in ("fields", "polygons"):
        spooled = gpd.read_file(tmp_path / "spooled.gpkg", layer=layer)
        whole = gpd.read_file(tmp_path / "whole.gpkg", layer=layer)
        pd.testing.assert_frame_equal(spooled, whole)
        info = pyogrio.read_info(tmp_path / "spooled.gpkg", layer=layer)
        assert info["geometry_type"] == "MultiPolygon"  # mixed: promoted, as pyogrio does
    assert set(spooled.geom_type) == {"MultiPolygon"}


def test_spool_checks(tmp_path, table):
    with (
        spool_of(table, tmp_path) as spool,
        pytest.raises(OutputError, match=r"cannot be written as CSV"),
    ):
        write_vector(spool, tmp_path / "f.csv")
    with FeatureSpool([table.iloc[:0]], folder=tmp_path) as empty:
        with pytest.warns(UserWarning, match="empty table"):
            write_vector(empty, tmp_path / "empty.geojson")
        assert assert_rfc7946(tmp_path / "empty.geojson")["features"] == []
    with pytest.raises(OutputError, match="no batches"):
        FeatureSpool([], folder=tmp_path)
    with pytest.raises(OutputError, match="GeoDataFrames"):
        FeatureSpool([pd.DataFrame({"a": [1]})], folder=tmp_path)
    with FeatureSpool([table.set_crs(None, allow_override=True)], folder=tmp_path) as no_crs:
        with pytest.raises(MissingCRSError):
            write_vector(no_crs, tmp_path / "f.geojson")
    no_leftovers(tmp_path, "empty.geojson")


# --------------------------------------------------------------------------- GeoJSON writer (io.geojson)


@pytest.fixture
def mixed() -> gpd.GeoDataFrame:
    """Fields with a hole, a MultiPolygon, odd text and every supported column type."""
    shell = [(E0, N0), (E0, N0 + 1000), (E0 + 1000, N0 + 1000), (E0 + 1000, N0)]  # clockwise
    hole = [(E0 + 200, N0 + 200), (E0 + 400, N0 + 200), (E0 + 400, N0 + 400), (E0 + 200, N0 + 400)]
    holed = shapely.Polygon(shell, [hole])
    multi = shapely.MultiPolygon([holed, shapely.box(E0 + 2000, N0, E0 + 2500, N0 + 500)])
    return gpd.GeoDataFrame(
        {
            "field_id": ['A "1"', "Bé\n2", "C%s"],
            "count": np.array([12, -3, 0], dtype=np.int64),
            "mean": [0.6125, np.nan, np.inf],
            "flag": [True, False, True],
            "crop": pd.Categorical(["wheat", "maize", "wheat"]),
            "visits": pd.array([1, None, 3], dtype="Int64"),
            "date": pd.to_datetime(["2024-05-01T10:30:00", "2024-06-01T00:00:00", None]),
        },
        geometry=[holed, multi, None],
        crs="EPSG:32633",
    )


@pytest.mark.filterwarnings("ignore:NaN of Infinity:RuntimeWarning")  # GDAL on inf
def test_document_matches_gdals_rfc7946_writer(tmp_path, mixed):
    ours = assert_rfc7946(write_vector(mixed, tmp_path / "ours.geojson", precision=7), 7)
    options = {"RFC7946": "YES", "COORDINATE_PRECISION": "7"}
    pyogrio.write_dataframe(
        mixed, tmp_path / "gdal.geojson", driver="GeoJSON", layer_options=options
    )
    gdal = json.loads((tmp_path / "gdal.geojson").read_text())
    assert ours["name"] == "ours" and ours["xy_coordinate_resolution"] == 1e-07
    assert len(ours["features"]) == len(gdal["features"]) == 3
    for mine, theirs in zip(ours["features"], gdal["features"], strict=True):
        assert mine["type"] == "Feature"
        props, want = mine["properties"], theirs["properties"]
        mine_date, gdal_date = props.pop("date"), want.pop("date", None)  # GDAL: 2024/05/01
        assert _when(mine_date) == _when(gdal_date and gdal_date.replace("/", "-"))
        # text, numbers, booleans, categories; NaN, inf and NA are null (GDAL leaves inf out)
        assert props == {k: want.get(k) for k in props}
        if theirs["geometry"] is None:
            assert mine["geometry"] is None
            continue
        assert mine["geometry"]["type"] == theirs["geometry"]["type"]
        a = np.array(_flat(mine["geometry"]["coordinates"]))
        b = np.array(_flat(theirs["geometry"]["coordinates"]))
        np.testing.assert_allclose(a, b, rtol=0, atol=1.01e-7)  # both rounded to 1e-7 degrees
    assert ours["features"][1]["properties"] == {
        "field_id": "Bé\n2", "count": -3, "mean": None, "flag": False, "crop": "maize",
        "visits": None,
    }  # fmt: skip


def _when(text: str | None) -> pd.Timestamp | None:
    return None if text is None else pd.Timestamp(text)


def _flat(coords) -> list:
    if coords and isinstance(coords[0], int | float):
        return [coords]
    return [p for c in coords for p in _flat(c)]


def test_batches_keep_their_order_on_the_thread_pool(tmp_path, mixed, monkeypatch):
    monkeypatch.setattr(geojson, "THREADS", 3)
    monkeypatch.setattr(geojson, "ROWS_PER_TASK", 2)
    many = pd.concat([mixed.iloc[:2]] * 7, ignore_index=True)
    many["field_id"] = [f"f{i}" for i in range(len(many))]
    doc = assert_rfc7946(write_vector(many, tmp_path / "many.geojson"))
    assert [f["properties"]["field_id"] for f in doc["features"]] == list(many["field_id"])
    batches = [many.iloc[i : i + 3] for i in range(0, len(many), 3)]
    with FeatureSpool(batches, folder=tmp_path) as spool:
        write_vector(spool, tmp_path / "spooled.geojson")
    assert json.loads((tmp_path / "spooled.geojson").read_text())["features"] == doc["features"]


def test_spooled_nullable_integers_stay_integers(tmp_path, mixed):
    with FeatureSpool([mixed.iloc[:2], mixed.iloc[2:]], folder=tmp_path) as spool:
        doc = assert_rfc7946(write_vector(spool, tmp_path / "s.geojson"))
    assert [f["properties"]["visits"] for f in doc["features"]] == [1, None, 3]
    assert [f["properties"]["count"] for f in doc["features"]] == [12, -3, 0]


def test_antimeridian_crossings_are_split_by_gdal(tmp_path):
    # UTM 60N (central meridian 177°E): a 40 km square across 180°E at 52°N
    square = shapely.box(690000, 5800000, 730000, 5840000)
    crossing = gpd.GeoDataFrame({"field_id": ["F"]}, geometry=[square], crs="EPSG:32660")
    doc = assert_rfc7946(write_vector(crossing, tmp_path / "fiji.geojson"))
    geometry = doc["features"][0]["geometry"]
    assert geometry["type"] == "MultiPolygon"  # one part on each side of the antimeridian
    for part in geometry["coordinates"]:
        lons = np.array(part[0])[:, 0]
        assert lons.max() - lons.min() < 1.0


def test_columns_it_cannot_write_are_detected():
    frame = gpd.GeoDataFrame(
        {"ok": ["a"], "nested": [[1, 2]]}, geometry=[shapely.Point(0, 0)], crs=4326
    )
    assert geojson.supported(frame[["ok", "geometry"]])
    assert not geojson.supported(frame)
