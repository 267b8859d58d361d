"""The package's layering, checked on the source: no import cycles, no upward imports.

Every module under ``src/agrivision`` is parsed with :mod:`ast`; all its imports count,
including those inside functions and under ``TYPE_CHECKING``. The layers are the README's
module map, bottom to top: a module may import from its own layer and the layers below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "agrivision"

#: Bottom to top; a name is a module or subpackage of ``agrivision`` (the longest match counts).
#: The class schema is data like the sensor profiles, used by fields, health and segment.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_version", "errors", "limits"),
    ("config",),
    ("sensors", "runtime", "health.schema", "grid"),
    ("masks", "indices"),
    ("io",),
    ("fields",),
    ("health",),
    ("segment",),
    ("screening", "drone", "synthetic", "stac"),
    ("report", "accessor"),
    ("cli", "__main__", "__init__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    """Names of the package that ``path`` imports (absolute and relative).

    ``from a.b import c`` yields ``a.b.c``: a submodule when ``c`` is one, otherwise
    :func:`_graph` falls back to ``a.b``.
    """
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def _graph() -> nx.DiGraph:
    files = {_module_name(p): p for p in (SRC / PACKAGE).rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for module, path in files.items():
        for target in _imports(path, module):
            # "from agrivision.health import classify" names a function: keep the module.
            while target not in files and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != module:
                graph.add_edge(module, target)
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")[1:] or ["__init__"]
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return ".".join(parts[:n])
    return parts[0]


GRAPH = _graph()


def test_every_module_has_a_layer() -> None:
    missing = sorted({_layer(m) for m in GRAPH} - set(RANK))
    assert not missing, f"add these to LAYERS and the README's module map: {missing}"


def test_no_import_cycles() -> None:
    cycles = sorted(" -> ".join([*c, c[0]]) for c in nx.simple_cycles(GRAPH))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_upward_imports() -> None:
    upward = {(a, b) for a, b in GRAPH.edges if RANK[_layer(b)] > RANK[_layer(a)]}
    new = sorted(f"{a} ({_layer(a)}) imports {b} ({_layer(b)})" for a, b in upward)
    assert not new, "imports from a higher layer:\n" + "\n".join(new)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from agrivision.report import run\n"
        "def f():\n    from ..health import classes\n"
    )
    found = _imports(source, "agrivision.fields.table")
    assert {"agrivision.report.run", "agrivision.health.classes"} <= found


@pytest.mark.parametrize("layer", sorted(RANK))
def test_every_layer_names_a_module(layer: str) -> None:
    assert any(_layer(m) == layer for m in GRAPH), f"{layer} names no module: update LAYERS"
