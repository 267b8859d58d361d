"""The top-level namespace: lazy, complete, visible to ``dir()`` and type checkers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import agrivision

INIT = Path(agrivision.__file__)


def test_dir_lists_every_export_and_each_resolves() -> None:
    listed = dir(agrivision)
    assert set(agrivision.__all__) <= set(listed)
    assert {"open_scene", "zonal_stats", "run_report", "compute_indices"} <= set(listed)
    for name in agrivision.__all__:
        assert getattr(agrivision, name) is not None
    assert agrivision.compute_indices is agrivision.indices.compute


def test_all_lazy_names_and_type_checking_imports_agree() -> None:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    guarded = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    typed = {a.asname or a.name for n in guarded.body for a in n.names}  # type: ignore[attr-defined]
    lazy = set(agrivision._LAZY)
    assert typed == lazy
    assert set(agrivision.__all__) == lazy | {"AgrivisionError", "__version__"}


def test_import_is_light_and_registers_the_accessor() -> None:
    code = (
        "import sys, xarray as xr, agrivision\n"
        "assert 'torch' not in sys.modules, 'torch'\n"
        "assert 'numba' not in sys.modules, 'numba'\n"
        "assert hasattr(xr.Dataset, 'agri') and hasattr(xr.DataArray, 'agri')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
