"""Fuzzing (hypothesis) of the formula compiler, the fields reader and the config loader.

The only acceptable outcomes are a result or an :class:`AgrivisionError` subclass; any other
exception is a bug. Case counts (``N_*``) add up to more than 10,000; the examples are
derandomised so that CI runs the same cases every time.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import shapely
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agrivision.errors import AgrivisionError
from agrivision.indices.formula import compile_formula
from agrivision.io.fields import read_fields
from agrivision.report.config import load_report_config

N_FORMULAS = 6000
N_FIELDS = 1500
N_CONFIGS = 3000
assert N_FORMULAS + N_FIELDS + N_CONFIGS >= 10_000

pytestmark = pytest.mark.slow


def fuzz(n: int):
    return settings(
        max_examples=n, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip


# --------------------------------------------------------------------------- formulas

TOKENS = ["N", "R", "G", "B", "RE1", "S1", "L", "g", "C1", "kNN", "kNR", "sigma", "exp", "log",
          "sqrt", "abs", "os", "__import__", "__class__", "eval", "lambda", "x", "1", "0", "2.5",
          "1e308", "1e-400", "10**", "(", ")", "+", "-", "*", "/", "**", "//", "%", ".", ",",
          "[", "]", "{", "}", ":", "'", '"', "@", "not", "if", "else", "for", "in", "=", "==",
          " ", "\n", "\\", "#", ";", "~", "&", "|", "^", "<<", "j", "_", "é", "\x00"]  # fmt: skip
FORMULA_TEXT = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=40).map("".join),
    st.text(max_size=80),
    st.text(alphabet="NRGB()+-*/. 0123456789e", max_size=60),
)


@fuzz(N_FORMULAS)
@given(FORMULA_TEXT)
def test_fuzz_formula_compiler(text):
    try:
        formula = compile_formula(text)
    except AgrivisionError:
        return
    env = {s: np.linspace(-1, 2, 5, dtype=np.float32) for s in formula.bands}
    env.update({c: 1.0 for c in formula.constants})
    with np.errstate(all="ignore"):
        out = formula(env)
    assert np.shape(out) in ((), (5,))


# --------------------------------------------------------------------------- fields

coordinate = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-200, 200),
    st.floats(499_000, 501_000),
    st.floats(5_799_000, 5_801_000),
)
point = st.lists(coordinate, min_size=0, max_size=4)
ring = st.lists(point, min_size=0, max_size=7)
closed_ring = st.lists(
    st.tuples(st.floats(-180, 180), st.floats(-85, 85)), min_size=3, max_size=6
).map(lambda pts: [list(p) for p in [*pts, pts[0]]])
geometry = st.one_of(
    st.none(),
    st.builds(lambda r: {"type": "Polygon", "coordinates": [r]}, closed_ring),
    st.builds(lambda rs: {"type": "Polygon", "coordinates": rs}, st.lists(ring, max_size=3)),
    st.builds(lambda r: {"type": "MultiPolygon", "coordinates": [[r]]}, closed_ring),
    st.builds(lambda p: {"type": "Point", "coordinates": p}, point),
    st.builds(lambda r: {"type": "LineString", "coordinates": r}, ring),
    st.builds(
        lambda r: {
            "type": "GeometryCollection",
            "geometries": [{"type": "Polygon", "coordinates": [r]}],
        },
        closed_ring,
    ),
    st.sampled_from([{}, {"type": "Polygon"}, {"type": "Circle", "coordinates": [0, 0]}, 7]),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
)
properties = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["field_id", "name", "id", "", "geometry"]) | st.text(max_size=8),
                    scalar | st.lists(scalar, max_size=3), max_size=4),
)  # fmt: skip
crs_member = st.sampled_from([
    None, {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
    {"type": "name", "properties": {"name": "EPSG:999999"}}, {"type": "name"}, "EPSG:4326",
    {"type": "link", "properties": {"href": "http://example.invalid/crs"}},
])  # fmt: skip
feature = st.builds(
    lambda g, p: {"type": "Feature", "geometry": g, "properties": p}, geometry, properties
)


def _document(features, crs, kind):
    doc = {"type": kind, "features": features}
    if crs is not None:
        doc["crs"] = crs
    return json.dumps(doc).encode()


FIELDS_BYTES = st.one_of(
    st.builds(
        _document,
        st.lists(feature, max_size=5),
        crs_member,
        st.sampled_from(["FeatureCollection", "Feature", "Topology", ""]),
    ),
    st.binary(max_size=300),
    st.builds(
        lambda b, cut: b[:cut],
        st.builds(
            _document,
            st.lists(feature, min_size=1, max_size=3),
            crs_member,
            st.just("FeatureCollection"),
        ),
        st.integers(0, 400),
    ),
)
_WORK = Path(tempfile.mkdtemp(prefix="agrivision-fuzz-"))


@fuzz(N_FIELDS)
@given(FIELDS_BYTES, st.sampled_from([".geojson", ".json", ".gpkg", ".shp", ".csv"]))
def test_fuzz_fields_reader(content, suffix):
    path = _WORK / f"fields{suffix}"
    path.write_bytes(content)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # repairs are reported as FieldsWarning
            fields = read_fields(path)
    except AgrivisionError:
        return
    assert fields["field_id"].is_unique and len(fields) > 0
    geoms = fields.geometry.to_numpy()
    assert shapely.is_valid(geoms).all() and not shapely.is_empty(geoms).any()
    assert set(shapely.get_type_id(geoms)) <= {3, 6}
    assert np.isfinite(shapely.get_coordinates(geoms)).all()


# --------------------------------------------------------------------------- configs

KEYS = {
    "scene": ["sensor", "bands", "resolution", "crs", "chunks", "mask", "mask_exclude"],
    "zones": [
        "n",
        "method",
        "index",
        "smooth",
        "min_area_ha",
        "min_share",
        "working_width_m",
        "min_gain",
        "min_step",
        "season",
        "start",
        "end",
    ],
    "problems": [
        "min_area_ha",
        "simplify_m",
        "min_pixels",
        "hotspot_min_ha",
        "hotspot_pct",
        "watch_pct",
        "problem_pct",
    ],
    "timeseries": ["index", "decline_threshold", "min_valid_fraction"],
    "output": [
        "precision",
        "max_cards",
        "max_field_pixels",
        "grid_cell_m",
        "patch_classes",
        "patch_min_area_m2",
    ],
    "health": [
        "bare_ndvi",
        "stressed_ndvi",
        "stressed_ndre",
        "stressed_z",
        "anomaly_z",
        "pest_z",
        "edge",
        "x",
    ],
    "runtime": ["scheduler", "workers"],
    "fields": ["layer", "id_column"],
}
value = st.recursive(
    st.one_of(scalar, st.sampled_from([3, 0.5, -1, 1e309, "NDVI", "kmeans", True, []])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
section = st.sampled_from(sorted(KEYS)).flatmap(
    lambda name: st.tuples(
        st.just(name),
        st.dictionaries(st.sampled_from(KEYS[name]) | st.text(max_size=6), value, max_size=4)
        | value,
    )
)
config_doc = st.one_of(
    st.lists(section, max_size=4).map(dict),
    st.dictionaries(st.sampled_from(["indices", "model", "bogus", "scene"]), value, max_size=3),
)
CONFIG_TEXT = st.one_of(
    config_doc.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.text(max_size=200),
    st.lists(st.sampled_from(["a: &x [1, 2]\n", "b: *x\n", "c: [*x, *x]\n", "zones:\n", "  n: 3\n",
                              "!!python/object:os.system\n", "d: !!binary aGk=\n", "- 1\n",
                              "e: {f: &y 1, g: *y}\n", "%YAML 1.1\n", "---\n", "h: !tag 1\n",
                              "i: 1e309\n", "<<: *x\n", "\t\n"]), max_size=25).map("".join),
)  # fmt: skip


@fuzz(N_CONFIGS)
@given(CONFIG_TEXT)
def test_fuzz_config_loader(text):
    path = _WORK / "run.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_report_config(path)
    except AgrivisionError:
        return
    assert config.zones.n == "auto" or 2 <= config.zones.n <= 10
    assert config.scene.chunks >= 64
    assert math.isfinite(config.problems.min_area_ha)
