"""prepare_fields: one rule set, the same errors through every consumer of fields."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr

from agrivision.errors import FieldsError, InvalidGeometryError, MissingCRSError
from agrivision.fields.prepare import prepare_fields
from agrivision.fields.rasterize import field_raster
from agrivision.fields.vectorize import vectorize, vectorize_batches
from agrivision.fields.zonal import zonal_stats
from agrivision.health.zones import zones

UTM = "EPSG:32633"
X0, TOP, RES = 500000.0, 5800000.0, 10.0


def index_raster() -> xr.DataArray:
    """8 x 8 pixels of 10 m, values 0..63 / 64, chunked 4 x 4."""
    values = (np.arange(64, dtype=np.float32) / 64).reshape(8, 8)
    coords = {"y": TOP - RES * (np.arange(8) + 0.5), "x": X0 + RES * (np.arange(8) + 0.5)}
    da = xr.DataArray(values, dims=("y", "x"), coords=coords, name="ndvi")
    return da.rio.write_crs(UTM).chunk(4)


def square(col: float, row: float, size: float) -> shapely.Polygon:
    """A square of ``size`` pixels with its top-left corner at pixel (col, row)."""
    x, y = X0 + col * RES, TOP - row * RES
    return shapely.box(x, y - size * RES, x + size * RES, y)


def fields_of(geoms, ids=None, crs=UTM) -> gpd.GeoDataFrame:
    ids = list(range(1, len(geoms) + 1)) if ids is None else ids
    return gpd.GeoDataFrame({"field_id": ids}, geometry=list(geoms), crs=crs)


GOOD = [square(0, 0, 4), square(4, 4, 4)]
ENTRY_POINTS = {
    "zonal": lambda f: zonal_stats(index_raster(), f),
    "rasterize": lambda f: field_raster(f, index_raster()),
    "vectorize": lambda f: vectorize((index_raster() * 4).astype("uint8"), f),
    "vectorize_batches": lambda f: list(vectorize_batches((index_raster() * 4).astype("uint8"), f)),
    "zones": lambda f: zones(index_raster(), f, n=2, min_pixels=1),
}
BAD_FIELDS = {
    "no id column": (fields_of(GOOD).drop(columns="field_id"), FieldsError, "no column 'field_id'"),
    "duplicate ids": (fields_of(GOOD, ids=[7, 7]), FieldsError, r"1 duplicate ids \(e.g. \[7\]\)"),
    "missing id": (fields_of(GOOD, ids=[1.0, None]), FieldsError, "1 missing"),
    "no CRS": (fields_of(GOOD, crs=None), MissingCRSError, "fields have no CRS"),
    "null geometry": (fields_of([GOOD[0], None]), InvalidGeometryError, r"field ids \[2\]"),
    "empty geometry": (fields_of([shapely.Polygon(), *GOOD]), InvalidGeometryError, r"\[1\]"),
    "a line": (
        fields_of([*GOOD, shapely.LineString([(X0, TOP), (X0 + 50, TOP - 50)])]),
        InvalidGeometryError,
        r"field ids \[3\]",
    ),
}


@pytest.mark.parametrize("case", BAD_FIELDS)
def test_bad_fields_give_the_same_error_everywhere(case):
    fields, error, match = BAD_FIELDS[case]
    messages = {}
    for name, call in ENTRY_POINTS.items():
        with pytest.raises(error, match=match) as info:
            call(fields)
        assert type(info.value) is error, name
        messages[name] = str(info.value)
    assert len(set(messages.values())) == 1, messages


def test_fields_are_reprojected_and_repaired():
    # A bow tie (invalid) becomes its two triangles; fields in lon/lat come to the raster CRS.
    x, y = X0, TOP
    bowtie = shapely.Polygon([(x, y), (x + 40, y - 40), (x + 40, y), (x, y - 40)])
    lonlat = fields_of([bowtie, GOOD[1]]).to_crs(4326)
    out = prepare_fields(lonlat, UTM)
    assert out.crs.to_epsg() == 32633
    assert out["field_id"].tolist() == [1, 2]
    assert shapely.is_valid(out.geometry).all()
    assert out.geometry.iloc[0].geom_type == "MultiPolygon"
    assert out.geometry.iloc[0].area == pytest.approx(800.0, rel=1e-6)  # two 20 x 40 / 2 m²
    assert out.geometry.iloc[1].area == pytest.approx(1600.0, rel=1e-6)


def test_repaired_field_gives_the_same_statistics_as_its_repair():
    x, y = X0, TOP
    bowtie = shapely.Polygon([(x, y), (x + 40, y - 40), (x + 40, y), (x, y - 40)])
    repaired = shapely.make_valid(bowtie)
    got = zonal_stats(index_raster(), fields_of([bowtie]), stats=["count", "mean"])
    expected = zonal_stats(index_raster(), fields_of([repaired]), stats=["count", "mean"])
    assert got["count"].iloc[0] == pytest.approx(8.0)  # two triangles of 4 pixels each
    assert got["mean"].iloc[0] == pytest.approx(expected["mean"].iloc[0])
    burnt = field_raster(fields_of([bowtie]), index_raster()).values
    assert (burnt == field_raster(fields_of([repaired]), index_raster()).values).all()
    assert burnt.sum() > 0


def test_not_a_geodataframe():
    with pytest.raises(FieldsError, match="GeoDataFrame, not DataFrame"):
        prepare_fields(fields_of(GOOD).drop(columns="geometry"), UTM)
