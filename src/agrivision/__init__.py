"""agrivision: satellite and drone imagery to field-level crop-health answers.

The flat data flow: ``open_scene`` -> ``indices.compute`` / ``health.classify`` /
``segment`` -> ``zonal_stats`` / ``vectorize`` / ``zones`` -> writers. Names below are
imported on first use, so ``import agrivision`` stays fast (no torch, no numba compile);
type checkers and IDEs see them through the ``TYPE_CHECKING`` imports. Importing the package
registers the ``.agri`` accessor on xarray objects (:mod:`agrivision.accessor`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agrivision import accessor as _accessor  # noqa: F401  (registers .agri)
from agrivision._version import __version__
from agrivision.errors import AgrivisionError

if TYPE_CHECKING:
    from agrivision.fields.table import field_table
    from agrivision.fields.vectorize import vectorize
    from agrivision.fields.zonal import zonal_stats
    from agrivision.health import classify, zones
    from agrivision.indices import compute as compute_indices
    from agrivision.indices import list_indices
    from agrivision.io.cog import to_cog
    from agrivision.io.fields import area_ha, read_fields
    from agrivision.io.scene import open_scene
    from agrivision.io.vector import write_vector
    from agrivision.masks import apply_mask, valid_mask
    from agrivision.report.run import run_report

_LAZY = {
    "open_scene": "agrivision.io.scene",
    "read_fields": "agrivision.io.fields",
    "area_ha": "agrivision.io.fields",
    "compute_indices": ("agrivision.indices", "compute"),
    "list_indices": "agrivision.indices",
    "zonal_stats": "agrivision.fields.zonal",
    "vectorize": "agrivision.fields.vectorize",
    "field_table": "agrivision.fields.table",
    "classify": "agrivision.health",
    "zones": "agrivision.health",
    "to_cog": "agrivision.io.cog",
    "write_vector": "agrivision.io.vector",
    "run_report": "agrivision.report.run",
    "valid_mask": "agrivision.masks",
    "apply_mask": "agrivision.masks",
}

__all__ = [
    "AgrivisionError",
    "__version__",
    "apply_mask",
    "area_ha",
    "classify",
    "compute_indices",
    "field_table",
    "list_indices",
    "open_scene",
    "read_fields",
    "run_report",
    "to_cog",
    "valid_mask",
    "vectorize",
    "write_vector",
    "zonal_stats",
    "zones",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'agrivision' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
