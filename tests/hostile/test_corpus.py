"""Hostile-input corpus (issue #8): every bad input gets a specific AgrivisionError.

Each case builds its hostile file(s) in ``tmp_path`` and returns the API call that must
raise the case's error class and, where a command reads that input, the CLI arguments that
must exit with code 2 and one line on stderr, without a traceback. Inputs whose answer is a
documented, flagged result rather than an error live in ``test_flagged.py``.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hostile.inputs import SQUARE, UTM_CRS, feature, geojson, polygon, s2
from rasterio.transform import Affine, from_origin
from rasters import write_tif

from agrivision import errors as E
from agrivision.cli import main
from agrivision.indices import compute
from agrivision.indices.formula import compile_formula
from agrivision.io.fields import read_fields
from agrivision.io.scene import open_scene
from agrivision.report.config import load_report_config

Api = Callable[[], object]


@dataclass(frozen=True)
class Case:
    name: str
    error: type[E.AgrivisionError]
    build: Callable[[Path], tuple[Api, list[str] | None]]


CASES: list[Case] = []


def case(error: type[E.AgrivisionError]):
    def register(build):
        CASES.append(Case(build.__name__, error, build))
        return build

    return register


# --------------------------------------------------------------------------- inputs


def stats_cli(tmp: Path, fields: Path) -> list[str]:
    return ["stats", str(s2(tmp)), "--fields", str(fields), "-o", str(tmp / "out.csv")]


def cog(tmp: Path, name: str = "cog.tif") -> Path:
    data = np.random.default_rng(1).random((2, 600, 600)).astype(np.float32)
    path = tmp / name
    profile = dict(driver="COG", width=600, height=600, count=2, dtype="float32",
                   crs="EPSG:32633", transform=from_origin(500000, 5800000, 10, 10),
                   blocksize=256)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.set_band_description(1, "red")
        dst.set_band_description(2, "nir")
    return path


# --------------------------------------------------------------------------- rasters


@case(E.SourceError)
def raster_zero_bytes(tmp):
    (tmp / "empty.tif").write_bytes(b"")
    return lambda: open_scene(tmp / "empty.tif"), ["info", str(tmp / "empty.tif")]


@case(E.SourceError)
def raster_truncated_header(tmp):
    raw = s2(tmp).read_bytes()  # a plain GeoTIFF keeps its directory at the end
    (tmp / "cut.tif").write_bytes(raw[: len(raw) // 2])
    return lambda: open_scene(tmp / "cut.tif"), ["info", str(tmp / "cut.tif")]


@case(E.SourceError)
def raster_truncated_cog(tmp):
    raw = cog(tmp).read_bytes()  # a COG keeps its header first: only the tiles are cut
    (tmp / "cut.tif").write_bytes(raw[: int(len(raw) * 0.9)])
    return lambda: open_scene(tmp / "cut.tif"), ["info", str(tmp / "cut.tif")]


@case(E.SourceError)
def raster_png_renamed_tif(tmp):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp / "x.png")
    (tmp / "x.png").rename(tmp / "photo.tif")
    return lambda: open_scene(tmp / "photo.tif"), ["info", str(tmp / "photo.tif")]


@case(E.SourceError)
def raster_random_bytes(tmp):
    (tmp / "noise.tif").write_bytes(np.random.default_rng(0).bytes(4096))
    return lambda: open_scene(tmp / "noise.tif"), ["info", str(tmp / "noise.tif")]


@case(E.MissingCRSError)
def raster_without_crs(tmp):
    write_tif(tmp / "nocrs.tif", np.ones((8, 8), np.float32), crs=None, descriptions=["nir"])
    return lambda: open_scene(tmp / "nocrs.tif"), ["info", str(tmp / "nocrs.tif")]


@case(E.GridError)
def raster_rotated_geotransform(tmp):
    rotated = Affine(10, 2, 500000, 2, -10, 5800000)
    write_tif(tmp / "rot.tif", np.ones((8, 8), np.float32), transform=rotated, descriptions=["nir"])
    return lambda: open_scene(tmp / "rot.tif"), ["info", str(tmp / "rot.tif")]


@case(E.ResourceLimitError)
def raster_header_claims_10e12_pixels(tmp):
    path = tmp / "huge.tif"
    profile = dict(driver="GTiff", width=1_000_000, height=1_000_000, count=1, dtype="float32",
                   crs="EPSG:32633", transform=from_origin(500000, 5800000, 10, 10), tiled=True,
                   blockxsize=4096, blockysize=4096, SPARSE_OK=True, BIGTIFF="YES")  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:  # no block is written: < 1 MB on disk
        dst.set_band_description(1, "nir")
    assert path.stat().st_size < 2_000_000

    def api():
        open_scene(path)

    return api, ["info", str(path)]


@case(E.BandNotFoundError)
def raster_unnamed_bands(tmp):
    write_tif(tmp / "bands.tif", np.ones((3, 8, 8), np.float32))
    return lambda: open_scene(tmp / "bands.tif"), ["info", str(tmp / "bands.tif")]


@case(E.SensorError)
def raster_integer_without_sensor(tmp):
    write_tif(tmp / "dn.tif", np.ones((8, 8), np.uint16), descriptions=["nir"])
    return lambda: open_scene(tmp / "dn.tif"), ["info", str(tmp / "dn.tif")]


@case(E.SensorError)
def sensor_yaml_with_python_tag(tmp):
    evil = tmp / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    src = s2(tmp)
    return (
        lambda: open_scene(src, sensor=evil),
        ["info", str(src), "--sensor", str(evil)],
    )


@case(E.SensorError)
def sensor_yaml_not_utf8(tmp):
    bad = tmp / "latin.yaml"
    bad.write_bytes("name: caméra\n".encode("latin-1"))
    src = s2(tmp)
    return lambda: open_scene(src, sensor=bad), ["info", str(src), "--sensor", str(bad)]


@case(E.SourceError)
def stac_item_with_remote_assets(tmp):
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "x", "geometry": None,
        "properties": {"datetime": "2024-06-12T10:00:00Z"},
        "assets": {"B04": {"href": "https://example.invalid/B04.tif", "roles": ["data"]}},
    }  # fmt: skip
    path = tmp / "item.json"
    path.write_text(json.dumps(item))
    return lambda: open_scene(path), ["info", str(path)]


@case(E.SourceError)
def vrt_with_remote_source(tmp):
    vrt = tmp / "mosaic.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="8" rasterYSize="8"><SRS>EPSG:32633</SRS>'
        "<GeoTransform>500000, 10, 0, 5800000, 0, -10</GeoTransform>"
        '<VRTRasterBand dataType="Float32" band="1"><Description>nir</Description>'
        "<SimpleSource><SourceFilename>/vsicurl/https://example.invalid/a.tif</SourceFilename>"
        "<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    )
    return lambda: open_scene(vrt), ["info", str(vrt)]


@case(E.SourceError)
def stac_json_not_an_item(tmp):
    path = tmp / "item.json"
    path.write_text("[1, 2, 3]")
    return lambda: open_scene(path), ["info", str(path)]


# --------------------------------------------------------------------------- fields


@case(E.FieldsError)
def fields_zero_features(tmp):
    path = geojson(tmp, [])
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_only_null_and_empty_geometries(tmp):
    empty = {"type": "Polygon", "coordinates": []}
    path = geojson(tmp, [feature(None, field_id=1), feature(empty, field_id=2)])
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_points_and_lines(tmp):
    point = {"type": "Point", "coordinates": SQUARE[0]}
    line = {"type": "LineString", "coordinates": SQUARE[:2]}
    path = geojson(tmp, [feature(point, field_id=1), feature(line, field_id=2)])
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_coordinates_out_of_range(tmp):
    # UTM metres in a GeoJSON without a crs member (so read as degrees, RFC 7946)
    path = geojson(tmp, [feature(polygon(), field_id=1)], crs=None)
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_non_finite_coordinates(tmp):
    ring = [[500050, 5799950], [1e400, 5799950], [500250, 5799750]]  # json writes Infinity
    path = geojson(tmp, [feature(polygon(ring), field_id=1)])
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_100mb_attribute_geojson(tmp):
    path = tmp / "blob.geojson"
    with open(path, "w") as fh:  # streamed: the test itself never holds 100 MB twice
        fh.write('{"type":"FeatureCollection","crs":' + json.dumps(UTM_CRS) + ',"features":[')
        fh.write('{"type":"Feature","geometry":' + json.dumps(polygon()) + ',"properties":')
        fh.write('{"field_id":1,"note":"')
        chunk = "x" * 1_000_000
        for _ in range(100):
            fh.write(chunk)
        fh.write('"}}]}')
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_100mb_attribute_gpkg(tmp):
    import geopandas as gpd
    import shapely

    path = tmp / "blob.gpkg"
    blob = "x" * 100_000_000
    square = shapely.box(500050, 5799750, 500250, 5799950)
    gpd.GeoDataFrame({"field_id": [1], "note": [blob]}, geometry=[square], crs=32633).to_file(path)
    del blob
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_non_utf8_geojson_attribute(tmp):
    path = geojson(tmp, [feature(polygon(), field_id=1, name="Chevre")])
    path.write_bytes(path.read_bytes().replace(b"Chevre", "Ch\xe8vre".encode("latin-1")))
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_not_a_vector_file(tmp):
    path = tmp / "fields.gpkg"
    path.write_bytes(b"SQLite format 3\x00" + bytes(200))
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_truncated_geojson(tmp):
    full = geojson(tmp, [feature(polygon(), field_id=1)]).read_text()
    path = tmp / "cut.geojson"
    path.write_text(full[: len(full) // 2])
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.MissingCRSError)
def fields_shapefile_without_prj(tmp):
    import geopandas as gpd
    import shapely

    path = tmp / "fields.shp"
    gdf = gpd.GeoDataFrame(
        {"field_id": [1]}, geometry=[shapely.box(500050, 5799750, 500250, 5799950)]
    )
    gdf.to_file(path)
    assert not path.with_suffix(".prj").exists()
    return lambda: read_fields(path), stats_cli(tmp, path)


@case(E.FieldsError)
def fields_unknown_id_column(tmp):
    path = geojson(tmp, [feature(polygon(), name="a")])
    return lambda: read_fields(path, id_column="parcel"), None  # the CLI uses field_id


# --------------------------------------------------------------------------- configs


def config_case(text: str | bytes):
    def build(tmp):
        path = tmp / "run.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return lambda: load_report_config(path), ["report", "--config", str(path), "--print-config"]

    return build


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
CONFIGS = {
    "config_unknown_key": "zones:\n  n: 3\n  colour: red\n",
    "config_wrong_type": "zones:\n  n: many\n",
    "config_out_of_range": "zones:\n  n: 1000\n",
    "config_alias_bomb": BOMB,
    "config_python_object_tag": "model: !!python/object/apply:os.system ['touch pwned']\n",
    "config_not_a_mapping": "- zones\n- n\n",
    "config_not_utf8": "model: caméra\n".encode("latin-1"),
    "config_bad_health_rule": "health:\n  stressed_ndvi: banana\n",
}
for _name, _text in CONFIGS.items():
    _build = config_case(_text)
    _build.__name__ = _name
    case(E.ConfigError)(_build)


# --------------------------------------------------------------------------- checkpoints


def checkpoint(tmp: Path) -> Path:
    """A tiny saved U-Net (red, nir -> 3 classes) whose metadata records no weights hash,
    so that the weights file itself is what gets checked."""
    from agrivision.segment.checkpoint import (
        METADATA,
        CheckpointMeta,
        Normalisation,
        save_checkpoint,
    )
    from agrivision.segment.model import ModelSpec, build_model

    spec = ModelSpec(encoder="tu-mobilenetv3_small_050", encoder_depth=3,
                     decoder_channels=(16, 8, 8), bands=("red", "nir"), classes=("a", "b", "c"),
                     window=64)  # fmt: skip
    meta = CheckpointMeta(spec=spec, normalisation=Normalisation(mean=(0.2, 0.3), std=(0.1, 0.1)))
    out = save_checkpoint(build_model(spec), meta, tmp / "model")
    doc = json.loads((out / METADATA).read_text())
    doc["weights_sha256"] = ""
    (out / METADATA).write_text(json.dumps(doc))
    return out


def segment_cli(tmp: Path, model: Path) -> list[str]:
    return ["segment", str(s2(tmp)), "--model", str(model), "-o", str(tmp / "classes.tif")]


class _Payload:
    """Unpickling this would create a marker file: the test asserts it never appears."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def checkpoint_case(mutate: Callable[[Path], None]):
    def build(tmp):
        from agrivision.segment.checkpoint import load_checkpoint

        model = checkpoint(tmp)
        mutate(model)
        return lambda: load_checkpoint(model), segment_cli(tmp, model)

    build.__name__ = mutate.__name__
    return case(E.CheckpointError)(build)


@checkpoint_case
def checkpoint_pickle_renamed_safetensors(model: Path):
    marker = model.parent / "unpickled"
    (model / "model.safetensors").write_bytes(pickle.dumps({"w": _Payload(marker)}))


@checkpoint_case
def checkpoint_truncated_weights(model: Path):
    raw = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(raw[: len(raw) // 2])


@checkpoint_case
def checkpoint_wrong_tensor_shapes(model: Path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(model / "model.safetensors")
    name = next(k for k, v in tensors.items() if v.ndim == 4)
    tensors[name] = tensors[name][:, :1].contiguous()
    save_file(tensors, model / "model.safetensors")


@checkpoint_case
def checkpoint_metadata_unexpected_field(model: Path):
    doc = json.loads((model / "model.json").read_text())
    doc["loader"] = "torch.load"
    (model / "model.json").write_text(json.dumps(doc))


@checkpoint_case
def checkpoint_metadata_not_json(model: Path):
    (model / "model.json").write_text("{'spec': None,")


@checkpoint_case
def checkpoint_weights_replaced(model: Path):
    """The recorded SHA-256 no longer matches (a swapped weights file)."""
    from agrivision.segment.checkpoint import _sha256

    doc = json.loads((model / "model.json").read_text())
    doc["weights_sha256"] = _sha256(model / "model.safetensors")
    (model / "model.json").write_text(json.dumps(doc))
    with open(model / "model.safetensors", "ab") as fh:
        fh.write(b"\0")


# --------------------------------------------------------------------------- formulas

FORMULAS = {
    "formula_attribute_access": "N.__class__.__bases__",
    "formula_dunder_import_call": "__import__('os').system('touch pwned')",
    "formula_import_statement": "import os",
    "formula_builtin_call": "eval('N')",
    "formula_lambda": "(lambda: N)()",
    "formula_comprehension": "[N for N in range(10**9)]",
    "formula_huge_power": "N ** 9 ** 9 ** 9",
    "formula_too_long": "+".join(["N"] * 2000),
    "formula_too_deep": "-" * 200 + "N",
}


def formula_case(text: str):
    def build(tmp):
        # Through compute() too: a custom index on a real scene goes through the compiler.
        scene = open_scene(s2(tmp))
        return lambda: (compile_formula(text), compute(scene, ["X"], formulas={"X": text})), None

    return build


for _name, _text in FORMULAS.items():
    _build = formula_case(_text)
    _build.__name__ = _name
    case(E.FormulaError)(_build)


# --------------------------------------------------------------------------- outputs


@case(E.OutputError)
def output_directory_missing(tmp):
    from agrivision.io.cog import to_cog

    scene = open_scene(s2(tmp))
    target = tmp / "no" / "such" / "ndvi.tif"
    argv = ["indices", str(s2(tmp)), "-i", "NDVI", "-o", str(target)]
    return lambda: to_cog(scene[["red"]], target), argv


@case(E.OutputError)
def output_exists_without_overwrite(tmp):
    from agrivision.io.vector import write_vector

    fields = geojson(tmp, [feature(polygon(), field_id=1)])
    (tmp / "out.csv").write_text("keep me")
    argv = ["indices", str(s2(tmp)), "-i", "NDVI", "-o", str(tmp / "out.csv"), "--no-overwrite"]
    return lambda: write_vector(read_fields(fields), tmp / "out.csv", overwrite=False), argv


# --------------------------------------------------------------------------- the tests


def test_corpus_is_large_enough():
    assert len(CASES) >= 30, len(CASES)
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.name)
def test_api_raises_the_specific_error(c: Case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a payload might create would land here
    api, _ = c.build(tmp_path)
    with pytest.raises(E.AgrivisionError) as info:
        api()
    assert type(info.value) is c.error, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert "\n" not in message and len(message) < 1000
    assert not any(tmp_path.rglob("pwned")) and not any(tmp_path.rglob("unpickled"))


CLI_CASES = [c for c in CASES if not c.name.startswith("formula_")]


@pytest.mark.parametrize("c", CLI_CASES, ids=lambda c: c.name)
def test_cli_exits_2_with_one_line(c: Case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _, argv = c.build(tmp_path)
    if argv is None:
        pytest.skip("no command reads this input")
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    # one error line; warnings raised on the way (e.g. GDAL on a damaged GeoPackage) are one
    # ``agrivision: warning:`` line each
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("agrivision: warning: ")]
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("agrivision: error: "), err
    assert "Traceback" not in err
    assert not any(tmp_path.rglob("pwned")) and not any(tmp_path.rglob("unpickled"))
