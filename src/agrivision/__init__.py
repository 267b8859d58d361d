"""agrivision: satellite and drone imagery to field-level crop-health answers.

The flat data flow: ``open_scene`` -> ``indices.compute`` / ``health.classify`` /
``segment`` -> ``zonal_stats`` / ``vectorize`` / ``zones`` -> writers. Names below are
imported on first use, so ``import agrivision`` stays fast (no torch, no numba compile).
"""

from __future__ import annotations

import importlib
from typing import Any

from agrivision.errors import AgrivisionError

__version__ = "0.1.0"

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

__all__ = ["AgrivisionError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'agrivision' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
