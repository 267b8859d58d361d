"""The class schema: defaults, colours, JSON round trip and validation."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import agrivision
from agrivision.errors import ConfigError
from agrivision.health.schema import DEFAULT_SCHEMA, ClassSchema, HealthClass


def test_default_codes_names_and_colours():
    assert DEFAULT_SCHEMA.names == {
        0: "background", 1: "healthy", 2: "stressed", 3: "anomaly", 4: "bare_soil",
    }  # fmt: skip
    assert DEFAULT_SCHEMA.labels[3] == "anomaly – scout here"
    cmap = DEFAULT_SCHEMA.colormap
    assert cmap[0][3] == 0  # background transparent
    assert all(cmap[c][3] == 255 for c in (1, 2, 3, 4))
    r, g, b, _ = cmap[1]
    assert g > r and g > b  # healthy green
    r, g, b, _ = cmap[2]
    assert r > 200 and 100 < g < 200 and b < 120  # stressed orange
    r, g, b, _ = cmap[3]
    assert r > 200 and g < 60  # pest red
    r, g, b, _ = cmap[4]
    assert r > g > b and r < 180  # bare soil brown
    assert DEFAULT_SCHEMA.hex_colours[1] == "#1a9641ff"
    assert DEFAULT_SCHEMA.code("anomaly") == 3


def test_json_round_trip_and_hex_colours():
    text = DEFAULT_SCHEMA.to_json()
    assert json.loads(text)["classes"][1] == {
        "code": 1, "name": "healthy", "label": "healthy", "colour": [26, 150, 65, 255],
        "slug": "healthy",
    }  # fmt: skip
    assert ClassSchema.from_json(text) == DEFAULT_SCHEMA
    custom = ClassSchema.from_dict(
        {"classes": [
            {"code": 0, "name": "background", "colour": "#00000000"},
            {"code": 10, "name": "healthy", "colour": "#00ff00"},
            {"code": 20, "name": "water", "label": "open water", "colour": [0, 0, 255]},
        ]}
    )  # fmt: skip
    assert custom.colormap == {0: (0, 0, 0, 0), 10: (0, 255, 0, 255), 20: (0, 0, 255, 255)}
    assert custom.labels == {0: "background", 10: "healthy", 20: "open water"}
    assert ClassSchema.from_dict(custom.to_dict()) == custom


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([(0, "background"), (1, "a"), (1, "b")], "unique"),
        ([(0, "background"), (1, "a"), (2, "a")], "unique"),
        ([(0, "background"), (255, "a")], "0..254"),
        ([(0, "background"), (-1, "a")], "0..254"),
        ([(1, "healthy")], "code 0"),
        ([(0, "healthy"), (1, "background")], "code 0"),
        ([(0, "background"), (1, "Pest Damage")], "snake_case"),
    ],
)
def test_invalid_schemas_are_refused(classes, message):
    with pytest.raises(ConfigError, match=message):
        ClassSchema(tuple(HealthClass(c, n, n, (0, 0, 0, 255)) for c, n in classes))


def test_invalid_entries_name_the_problem():
    with pytest.raises(ConfigError, match="RGBA"):
        ClassSchema((HealthClass(0, "background", "bg", (0, 0, 0, 256)),))
    with pytest.raises(ConfigError, match=r"my.json.*colour"):
        ClassSchema.from_dict({"classes": [{"code": 0, "name": "background"}]}, source="my.json")
    with pytest.raises(ConfigError, match="'classes' list"):
        ClassSchema.from_dict({"codes": []})
    with pytest.raises(ConfigError, match="invalid JSON"):
        ClassSchema.from_json("{not json")
    with pytest.raises(ConfigError, match="no class named 'weeds'"):
        DEFAULT_SCHEMA.code("weeds")


def _class_definitions(path: Path) -> list[str]:
    """Literals in a module that define class codes or names besides the schema's own."""
    names = set(DEFAULT_SCHEMA.names.values()) | {"pest_disease"}  # and the old name
    # labels that are not also names ("healthy" is both, and a word used elsewhere too)
    labels = set(DEFAULT_SCHEMA.labels.values()) - names
    labels |= {"pest/disease damage", "bare soil/weeds"}  # the old labels
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)
    }  # fmt: skip
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
            if node.value in labels or node.value == "pest_disease":
                found.append(f"{path.name}:{node.lineno} {node.value!r}")
        elif isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Constant) and isinstance(k.value, int) for k in node.keys
        ):
            values = {v.value for v in node.values if isinstance(v, ast.Constant)}
            if values & (names | labels):
                found.append(f"{path.name}:{node.lineno} code -> name mapping")
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = {e.value for e in node.elts if isinstance(e, ast.Constant)}
            if len(items & names) >= 2:
                found.append(f"{path.name}:{node.lineno} list of class names")
    return found


def test_no_other_module_defines_the_classes():
    package = Path(agrivision.__file__).parent
    found = [
        hit
        for path in sorted(package.rglob("*.py"))
        if path != package / "health" / "schema.py"
        for hit in _class_definitions(path)
    ]
    assert found == []


def test_the_class_definition_scan_finds_copies(tmp_path):
    copy = tmp_path / "copy.py"
    copy.write_text(
        '"""A docstring may say bare soil."""\n'
        'CLASSES = {3: "anomaly"}\n'
        'NAMES = ("healthy", "stressed")\n'
        'LABEL = "anomaly – scout here"\n'
    )
    assert len(_class_definitions(copy)) == 3
