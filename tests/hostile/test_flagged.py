"""Hostile inputs whose documented answer is a result, flagged, rather than an error."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import shapely
from hostile.inputs import SQUARE, feature, geojson, polygon, s2
from rasters import geodesic_ha, write_tif

from agrivision.cli import main
from agrivision.io.fields import FieldsWarning, area_ha, read_fields
from agrivision.io.scene import open_scene


@pytest.mark.parametrize(
    ("dtype", "fill", "nodata"),
    [(np.uint16, 0, 0), (np.float32, np.nan, None), (np.float32, -9999, -9999)],
    ids=["all_nodata_uint16", "all_nan_float", "all_nodata_float"],
)
def test_all_nodata_raster_opens_and_reports_zero_valid(tmp_path, capsys, dtype, fill, nodata):
    data = np.full((16, 16), fill, dtype=dtype)
    tags = {"SENSOR": "sentinel-2-l2a"} if dtype == np.uint16 else None
    path = write_tif(
        tmp_path / "void.tif",
        data,
        nodata=nodata,
        descriptions=["B04" if tags else "red"],
        tags=tags,
    )
    scene = open_scene(path)
    assert bool(scene["red"].isnull().all())
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid_fraction"] == [0.0]


def test_infinities_become_nan(tmp_path):
    data = np.array([[0.2, np.inf], [-np.inf, 0.4]], dtype=np.float32)
    scene = open_scene(write_tif(tmp_path / "inf.tif", data, descriptions=["nir"]))
    got = scene["nir"].values
    np.testing.assert_array_equal(np.isnan(got), [[False, True], [True, False]])
    np.testing.assert_allclose(got[[0, 1], [0, 1]], [0.2, 0.4])


def test_scaled_integers_do_not_wrap(tmp_path):
    """S2 L2A baseline >= 04.00: reflectance = DN * 1e-4 - 0.1. In uint16 arithmetic 500 -
    1000 would wrap to 64036; agrivision scales in float32."""
    data = np.array([[500, 1000], [65535, 1]], dtype=np.uint16)
    path = write_tif(tmp_path / "s2.tif", data, descriptions=["B04"], tags={
        "SENSOR": "sentinel-2-l2a", "PROCESSING_BASELINE": "05.00", "DATETIME": "2024-06-12"})  # fmt: skip
    got = open_scene(path, mask=False)["red"].values
    np.testing.assert_allclose(got, [[-0.05, 0.0], [6.4535, -0.0999]], atol=1e-6)
    assert got.dtype == np.float32


def test_self_intersecting_polygon_is_repaired_and_flagged(tmp_path):
    (x0, y0), (x1, y1) = SQUARE[3], SQUARE[1]  # 200 m x 200 m
    bowtie = [[x0, y0], [x1, y1], [x1, y0], [x0, y1]]  # two triangles of 1 ha each
    path = geojson(tmp_path, [feature(polygon(bowtie), field_id=7)])
    with pytest.warns(FieldsWarning, match="repaired 1 invalid"):
        fields = read_fields(path)
    assert fields["field_id"].tolist() == [7]
    assert shapely.is_valid(fields.geometry).all()
    assert area_ha(fields)[0] == pytest.approx(geodesic_ha(2.0, 32633, 500150, 5799850), rel=1e-6)


def test_legacy_geojson_crs_member_is_honoured(tmp_path):
    path = geojson(tmp_path, [feature(polygon(), field_id=1)])  # "crs": EPSG::32633
    fields = read_fields(path)
    assert fields.crs.to_epsg() == 32633
    assert area_ha(fields)[0] == pytest.approx(geodesic_ha(4.0, 32633, 500150, 5799850), rel=1e-6)


@pytest.mark.parametrize(
    ("ids", "problem"), [([5, 5, 6], "1 duplicated"), ([5, None, 6], "1 missing")]
)
def test_bad_ids_are_replaced_and_flagged(tmp_path, capsys, ids, problem):
    feats = [feature(polygon(), field_id=i) for i in ids]
    path = geojson(tmp_path, feats)
    with pytest.warns(FieldsWarning, match=problem):
        fields = read_fields(path)
    assert fields["field_id"].tolist() == [1, 2, 3]
    assert fields["original_field_id"].tolist()[::2] == [ids[0], ids[2]]
    out = tmp_path / "stats.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FieldsWarning)
        code = main(["stats", str(s2(tmp_path)), "--fields", str(path), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 4  # header + 3 fields
