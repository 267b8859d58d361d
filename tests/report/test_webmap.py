"""The report map's data: display zoom and tolerance, the compact vector encoding (decoded
here as the page decodes it), simplification within the tolerance, raster overlays."""

from __future__ import annotations

import base64
import io
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from PIL import Image
from pyproj import Transformer
from rasterio.transform import from_origin
from rasters import write_tif
from shapely.geometry import MultiPolygon, Polygon, box

from agrivision.health.schema import DEFAULT_SCHEMA
from agrivision.report import webmap
from agrivision.report.palette import PATCH_COLOUR, RAMP, SHARE_RAMP, hex_colour, ramp_rgb
from agrivision.report.webmap import (
    QUANTUM_DEG,
    class_overlay,
    display_zoom,
    gpkg_layer,
    index_overlay,
    vector_layer,
)

ZOOM0 = 156543.03392804097  # Web Mercator metres per pixel at zoom 0 (256-pixel tiles)


def decode(layer: dict) -> list[list[list[list[tuple[float, float]]]]]:
    """Features -> polygons -> rings -> (lat, lon): what report.js's decode() does."""
    xy, out = layer["xy"], []
    for f in range(len(layer["part"]) - 1):
        polys = []
        for p in range(layer["part"][f], layer["part"][f + 1]):
            rings = []
            for r in range(layer["poly"][p], layer["poly"][p + 1]):
                lat = lon = 0
                ring = []
                for k in range(layer["ring"][r], layer["ring"][r + 1]):
                    lat, lon = lat + xy[2 * k], lon + xy[2 * k + 1]
                    ring.append((lat * QUANTUM_DEG, lon * QUANTUM_DEG))
                rings.append(ring)
            polys.append(rings)
        out.append(polys)
    return out


def to_shape(polys, crs: str) -> shapely.Geometry:
    """A decoded feature back in ``crs`` (metres)."""
    to = Transformer.from_crs(4326, crs, always_xy=True)

    def metres(ring):
        return [to.transform(lon, lat) for lat, lon in ring]

    parts = [Polygon(metres(rings[0]), [metres(r) for r in rings[1:]]) for rings in polys]
    return MultiPolygon(parts) if len(parts) > 1 else parts[0]


def test_display_zoom_puts_a_scene_pixel_on_eight_screen_pixels():
    zoom, tolerance = display_zoom(10.0, 0.0)
    # 2**17 = 131072 is the first power of two with ZOOM0 / 2**z <= 10 / 8
    assert zoom == 17 and tolerance == pytest.approx(ZOOM0 / 2**17)
    zoom, tolerance = display_zoom(10.0, 60.0)  # cos 60 = 0.5: one zoom level less
    assert zoom == 16 and tolerance == pytest.approx(0.5 * ZOOM0 / 2**16)
    assert display_zoom(0.05, 46.0)[0] > display_zoom(10.0, 46.0)[0]  # drone pixels


def test_vector_layer_round_trips_rings_holes_and_parts():
    crs = "EPSG:32633"
    holed = box(600_000, 5_100_000, 600_300, 5_100_200).difference(
        box(600_100, 5_100_050, 600_150, 5_100_100)
    )
    two = MultiPolygon([box(601_000, 5_100_000, 601_100, 5_100_100),
                        box(601_200, 5_100_000, 601_260, 5_100_040)])  # fmt: skip
    frame = gpd.GeoDataFrame({"field_id": [7, 8], "zone": [1.0, np.nan]},
                             geometry=[holed, two], crs=crs)  # fmt: skip
    layer = vector_layer(frame, ["field_id", "zone"], tolerance_m=0.0)
    assert layer["props"] == {"field_id": [7, 8], "zone": [1.0, None]}
    first, second = decode(layer)
    assert [len(rings) for rings in first] == [2]  # exterior and hole
    assert [len(rings) for rings in second] == [1, 1]  # two parts
    assert len(first[0][0]) == 4  # closing vertex dropped
    for polys, original in zip((first, second), (holed, two), strict=True):
        back = to_shape(polys, crs)
        # 1e-6 degree quantum: within 0.1 m of the original
        assert shapely.hausdorff_distance(back, original) < 0.12
        assert back.area == pytest.approx(original.area, abs=0.06 * original.length)


def test_simplification_stays_within_the_display_tolerance():
    crs = "EPSG:32633"
    t = np.linspace(0, 2 * math.pi, 2000, endpoint=False)
    wobble = 0.3 * np.sin(40 * t)  # 0.3 m zigzag on a 200 m circle: noise below a pixel
    ring = np.c_[600_500 + (200 + wobble) * np.cos(t), 5_100_500 + (200 + wobble) * np.sin(t)]
    field = Polygon(ring)
    _, tolerance = display_zoom(10.0, 46.0)
    layer = vector_layer(gpd.GeoDataFrame(geometry=[field], crs=crs), [], tolerance)
    (polys,) = decode(layer)
    assert len(polys[0][0]) < 400  # most of the 2000 vertices are gone
    back = to_shape(polys, crs)
    assert back.is_valid
    assert shapely.hausdorff_distance(back, field) < tolerance + 0.12


def test_gpkg_layer_reads_in_batches_like_one_frame(tmp_path, monkeypatch):
    frame = gpd.GeoDataFrame(
        {"field_id": [1, 1, 2, 3, 3], "zone": [1, 2, 1, 1, 2], "area_ha": [0.1] * 5},
        geometry=[box(600_000 + 100 * i, 5_100_000, 600_090 + 100 * i, 5_100_090)
                  for i in range(5)],
        crs="EPSG:32633",
    )  # fmt: skip
    frame.to_file(tmp_path / "r.gpkg", layer="zones")
    monkeypatch.setattr(webmap, "_BATCH", 2)
    columns = ["field_id", "zone", "area_ha"]
    assert gpkg_layer(tmp_path / "r.gpkg", "zones", columns, 1.0) == vector_layer(
        frame, columns, 1.0
    )


def _image(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_index_overlay_colours_bounds_and_transparency(tmp_path):
    # 40 x 40 pixels of 10 m: left half NDVI 1.0 (ramp's green end), right half nodata
    values = np.full((40, 40), np.nan, dtype=np.float32)
    values[:, :20] = 1.0
    transform = from_origin(600_000, 5_100_400, 10, 10)
    path = write_tif(tmp_path / "indices.tif", values, transform=transform, nodata=np.nan,
                     descriptions=["NDVI"])  # fmt: skip
    overlay = index_overlay(path)
    assert overlay["name"] == "NDVI"
    image = _image(overlay["uri"])
    assert image.mode == "P" and image.info["transparency"] == 0
    codes = np.asarray(image)
    h, w = codes.shape
    left, right = codes[h // 2, w // 8], codes[h // 2, w - w // 8]
    palette = np.asarray(image.getpalette()).reshape(-1, 3)
    assert "#" + "".join(f"{v:02x}" for v in palette[left]) == RAMP[-1]
    assert right == 0  # nodata is transparent
    # the overlay covers the raster: its corners in lon/lat
    to = Transformer.from_crs("EPSG:32633", 4326, always_xy=True)
    (south, west), (north, east) = overlay["bounds"]
    lon0, lat1 = to.transform(600_000, 5_100_400)
    lon1, lat0 = to.transform(600_400, 5_100_000)
    assert west <= lon0 + 1e-4 and east >= lon1 - 1e-4
    assert south <= lat0 + 1e-4 and north >= lat1 - 1e-4
    assert (east - west) < 2 * (lon1 - lon0)


def test_class_overlay_uses_the_schema_colours(tmp_path):
    classes = np.zeros((30, 30), dtype=np.uint8)
    classes[5:25, 5:25] = DEFAULT_SCHEMA.code("anomaly")
    path = write_tif(tmp_path / "classes.tif", classes,
                     transform=from_origin(600_000, 5_100_300, 10, 10), nodata=0)  # fmt: skip
    image = _image(class_overlay(path, DEFAULT_SCHEMA)["uri"])
    codes = np.asarray(image)
    centre = codes[codes.shape[0] // 2, codes.shape[1] // 2]
    palette = np.asarray(image.getpalette()).reshape(-1, 3)
    assert tuple(palette[centre]) == DEFAULT_SCHEMA.colormap[3][:3] and codes[0, 0] == 0


def test_dense_layer_becomes_an_image_above_the_vertex_budget(tmp_path, monkeypatch):
    transform = from_origin(600_000, 5_100_400, 10, 10)
    like = write_tif(tmp_path / "indices.tif", np.zeros((40, 40), dtype=np.float32),
                     transform=transform)  # fmt: skip
    zones = gpd.GeoDataFrame(
        {"field_id": [1, 1], "zone": [1, 2], "area_ha": [0.8, 0.8]},
        geometry=[box(600_000, 5_100_000, 600_200, 5_100_400),
                  box(600_200, 5_100_000, 600_400, 5_100_400)],
        crs="EPSG:32633",
    )  # fmt: skip
    zones.to_file(tmp_path / "r.gpkg", layer="zones")
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1], palette[2] = (215, 25, 28), (26, 150, 65)
    args = (tmp_path / "r.gpkg", "zones", ["field_id", "zone", "area_ha"], 1.0)
    kw = {"value": "zone", "palette": palette, "like": like}
    vectors = webmap.dense_layer(*args, **kw)
    assert vectors["count"] == 2 and "xy" in vectors and "uri" not in vectors
    monkeypatch.setattr(webmap, "MAX_LAYER_VERTICES", 9)  # two boxes have 10 vertices
    image = webmap.dense_layer(*args, **kw)
    assert image["count"] == 2 and "xy" not in image
    png = _image(image["uri"])
    codes = np.asarray(png)
    h, w = codes.shape
    colours = np.asarray(png.getpalette()).reshape(-1, 3)
    assert tuple(colours[codes[h // 2, w // 4]]) == (215, 25, 28)  # zone 1 on the west half
    assert tuple(colours[codes[h // 2, 3 * w // 4]]) == (26, 150, 65)


@pytest.mark.parametrize("burn_cells", [2**21, 1, 300])  # all at once, one by one, in groups
def test_dense_image_colours_every_pixel_a_polygon_covers_in_part(monkeypatch, burn_cells):
    monkeypatch.setattr(webmap, "_BURN_CELLS", burn_cells)
    transform = from_origin(0, 200, 10, 10)  # 20 x 20 pixels of 10 m
    ring = [(13, 17), (155, 22), (140, 181), (25, 150)]
    holed = Polygon(ring, [[(60, 60), (100, 60), (100, 100), (60, 100)]])
    later = MultiPolygon([box(120, 120, 195, 195), box(3, 3, 9.5, 9.5)])  # overlaps `holed`
    codes = np.zeros((20, 20), dtype=np.uint8)
    webmap._burn(codes, np.array([holed, later]), np.array([1.0, 2.0]), transform)
    cells = [box(10 * c, 200 - 10 * (r + 1), 10 * (c + 1), 200 - 10 * r)
             for r in range(20) for c in range(20)]  # fmt: skip
    expected = np.zeros(400, dtype=np.uint8)
    for code, shape in ((1, holed), (2, later)):  # later polygons win
        expected[shapely.area(shapely.intersection(cells, shape)) > 0] = code
    assert (codes.ravel() == expected).all()
    assert codes[11, 7] == 0 and codes[0, 0] == 0 and codes[19, 0] == 2  # hole, outside, patch


def test_share_top_rounds_the_largest_share_up_to_ten():
    assert webmap.share_top(np.array([3.0, 52.9, np.nan])) == 60
    assert webmap.share_top(np.array([60.0])) == 60
    assert webmap.share_top(np.array([2.0])) == 10  # a clean field is not painted dark red
    assert webmap.share_top(np.array([np.nan])) == 10


def test_model_layers_colour_cells_by_the_patch_classes_share(tmp_path, monkeypatch):
    """Cells carry every share and are coloured by the patch classes' share on the
    sequential ramp (grey without data), as vectors or, past the vertex budget, as an image;
    patches come in one colour."""
    transform = from_origin(600_000, 5_100_020, 1, 1)  # 30 x 20 m
    like = write_tif(tmp_path / "indices.tif", np.zeros((20, 30), dtype=np.float32),
                     transform=transform)  # fmt: skip
    gpkg = tmp_path / "report.gpkg"
    cells = gpd.GeoDataFrame(
        {"cell_id": [1, 2, 3], "field_id": ["a", "a", "b"], "soil_pct": [90.0, 47.1, np.nan],
         "weed_pct": [10.0, 52.9, np.nan]},
        geometry=[box(600_000 + 10 * i, 5_100_000, 600_010 + 10 * i, 5_100_020) for i in range(3)],
        crs="EPSG:32633",
    )  # fmt: skip
    cells.to_file(gpkg, layer="cells")
    patches = gpd.GeoDataFrame(
        {"field_id": ["a"], "class": [2], "class_name": ["weed"], "area_ha": [0.0016]},
        geometry=[box(600_012, 5_100_002, 600_016, 5_100_006)], crs="EPSG:32633",
    )  # fmt: skip
    patches.to_file(gpkg, layer="patches")

    layers = webmap.model_layers(gpkg, ["weed_pct"], 0.1, like=like)
    assert layers["model_label"] == "weed"
    assert layers["cells"]["top"] == 60 and layers["cells"]["shares"] == ["weed_pct"]
    assert layers["cells"]["props"]["weed_pct"] == [10.0, 52.9, None]
    assert set(layers["cells"]["props"]) == {"cell_id", "field_id", "soil_pct", "weed_pct"}
    assert layers["patches"]["props"]["class_name"] == ["weed"]
    assert layers["cells"]["count"] == 3 and layers["patches"]["count"] == 1

    monkeypatch.setattr(webmap, "MAX_LAYER_VERTICES", 0)
    images = webmap.model_layers(gpkg, ["weed_pct"], 0.1, like=like)
    png = _image(images["cells"]["uri"])
    codes, colours = np.asarray(png), np.asarray(png.getpalette()).reshape(-1, 3)
    h, w = codes.shape
    for i, share in enumerate([10.0, 52.9]):
        expected = ramp_rgb(np.array(share / 60), SHARE_RAMP)
        np.testing.assert_allclose(colours[codes[h // 2, (2 * i + 1) * w // 6]], expected, atol=1)
    assert tuple(colours[codes[h // 2, 5 * w // 6]]) == (158, 158, 158)  # no data: grey
    png = _image(images["patches"]["uri"])
    codes, colours = np.asarray(png), np.asarray(png.getpalette()).reshape(-1, 3)
    assert hex_colour(colours[codes[int(h * 0.8), int(w * 0.47)]]) == PATCH_COLOUR
    assert codes[h // 2, w // 6] == 0  # transparent outside the patch


def test_model_layers_without_a_model_run(tmp_path):
    gpkg = tmp_path / "report.gpkg"
    gpd.GeoDataFrame({"zone": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32633").to_file(
        gpkg, layer="zones"
    )
    assert webmap.model_layers(gpkg, [], 0.1, like=tmp_path / "none.tif") == {
        "model_label": "model"
    }
