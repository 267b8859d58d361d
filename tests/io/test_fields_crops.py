"""Geodesic field areas, crop column detection and the fields-miss-the-scene check."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401 - registers the .rio accessor
import shapely
import shapely.affinity
import xarray as xr
from rasterio.transform import from_origin

from agrivision.errors import FieldsError, NoOverlapError
from agrivision.io.fields import (
    CROP_COLUMNS,
    FieldsWarning,
    area_ha,
    check_overlap,
    crop_column,
    read_fields,
)

# A ~107 ha irregular parcel near 60 W, 30 S (lon/lat), far outside UTM zone 33 (9-15 E).
PARCEL = shapely.affinity.scale(
    shapely.Polygon([(-60.005, -30.004), (-59.994, -30.0045), (-59.9945, -29.9955),
                     (-60.0, -29.995), (-60.0055, -29.9975)]),
    1.0323, 1.0323, origin=(-60.0, -30.0),
)  # fmt: skip
# Lambert azimuthal equal-area centred on the parcel: planar areas there are ellipsoid areas.
LAEA = "+proj=laea +lat_0=-30 +lon_0=-60 +ellps=WGS84 +units=m"


def test_area_is_geodesic_whatever_the_crs():
    parcel = gpd.GeoSeries([PARCEL], crs=4326)
    fine = parcel.segmentize(0.0005)  # short edges: straight in LAEA ~ geodesic
    reference = fine.to_crs(LAEA).area.iloc[0] / 1e4
    own_utm = fine.to_crs(32720)  # the parcel's own zone (20 S): a second reference
    assert reference == pytest.approx(107, rel=0.01)
    in_zone_33 = parcel.to_crs(32633)
    assert in_zone_33.area.iloc[0] / 1e4 > 3 * reference  # planar areas there are nonsense
    for geoms in (parcel, in_zone_33, own_utm, fine.to_crs(3857)):
        assert area_ha(geoms).iloc[0] == pytest.approx(reference, rel=1e-3)
    assert area_ha(in_zone_33).iloc[0] == pytest.approx(area_ha(parcel).iloc[0], rel=1e-9)


def test_area_of_a_field_with_a_hole_and_of_both_ring_orientations():
    outer = shapely.box(500_000, 5_800_000, 500_400, 5_800_400)
    hole = shapely.box(500_100, 5_800_100, 500_200, 5_800_200)
    donut = shapely.Polygon(outer.exterior.coords[::-1], [hole.exterior.coords])
    areas = area_ha(gpd.GeoSeries([outer, donut, shapely.Polygon()], crs=32633))
    # at the central meridian the projection shrinks areas by 0.9996^2
    np.testing.assert_allclose(areas, [16 / 0.9996**2, 15 / 0.9996**2, 0.0], rtol=1e-6)


def fields_with(**columns) -> gpd.GeoDataFrame:
    n = len(next(iter(columns.values())))
    geoms = [shapely.box(i, 0, i + 1, 1) for i in range(n)]
    return gpd.GeoDataFrame({"field_id": range(n), **columns}, geometry=geoms, crs=32633)


def test_crop_column_is_detected_named_or_absent():
    assert crop_column(fields_with(**{"crop:name": ["a"], "crop:code": ["1"]})) == "crop:code"
    assert crop_column(fields_with(gewas=["Mais"], other=[1])) == "gewas"
    assert crop_column(fields_with(gewascode=[None], gewas=["Mais"])) == "gewas"  # empty: skip
    assert crop_column(fields_with(name=["x"])) is None
    assert crop_column(fields_with(name=["x"]), "name") == "name"
    with pytest.raises(FieldsError, match=r"f.gpkg: no crop column 'CROP' \(columns: name\)"):
        crop_column(fields_with(name=["x"]), "CROP", source="f.gpkg")


@pytest.mark.realdata
@pytest.mark.parametrize(
    "name, column",
    [
        ("austria_invekos_schlaege_2025_sample", "SNAR_CODE"),
        ("netherlands_brp_gewaspercelen_2023_sample", "gewascode"),
        ("denmark_marker_2026_sample", "Afgkode"),
    ],
)
def test_crop_columns_of_real_lpis_samples(shared_data, name, column):
    with pytest.warns(FieldsWarning, match="generated field_id"):
        fields = read_fields(shared_data / "parcels_fiboa_samples" / f"{name}.geojson")
    assert crop_column(fields) == column and column in CROP_COLUMNS
    # areas on the ellipsoid agree with the declared gross areas where the file has them
    if name.startswith("austria"):
        declared = fields["SL_FLAECHE_BRUTTO_HA"].to_numpy()
        np.testing.assert_allclose(area_ha(fields), declared, rtol=0.01, atol=0.002)


def scene(x0=500_000.0, y0=5_000_000.0, size=20) -> xr.DataArray:
    arr = xr.DataArray(
        np.zeros((size, size), np.float32),
        dims=("y", "x"),
        coords={"y": y0 - 10 * (np.arange(size) + 0.5), "x": x0 + 10 * (np.arange(size) + 0.5)},
    )
    return arr.rio.write_crs("EPSG:32633").rio.write_transform(from_origin(x0, y0, 10, 10))


def test_fields_that_miss_the_scene_name_both_extents_in_lonlat():
    far = gpd.GeoDataFrame(
        {"field_id": [1]}, geometry=[shapely.box(12.1, 51.0, 12.3, 51.1)], crs=4326
    ).to_crs(32633)
    with pytest.raises(NoOverlapError) as err:
        check_overlap(far, scene(), source="fields.geojson")
    message = str(err.value)
    assert message.startswith("fields.geojson: no field overlaps the scene")
    assert "the fields lie at lon 12.100..12.300, lat 51.000..51.100" in message
    assert "the scene covers lon 15.000..15.003, lat 45.152..45.153" in message
    assert "check the fields' CRS (.prj / crs member)" in message


def test_fields_partly_outside_are_no_error():
    inside = shapely.box(500_050, 4_999_850, 500_100, 4_999_900)
    outside = shapely.box(600_000, 4_000_000, 600_100, 4_000_100)
    fields = gpd.GeoDataFrame({"field_id": [1, 2]}, geometry=[outside, inside], crs=32633)
    check_overlap(fields, scene(), source="f.gpkg")
