"""Spectral indices: the Awesome Spectral Indices catalogue, a safe formula compiler, lazy compute.

>>> from agrivision.indices import compute
>>> out = compute(scene, ["NDVI", "EVI"], constants={"L": 1.0})   # doctest: +SKIP
"""

from agrivision.indices.catalogue import (
    IndexInfo,
    index_info,
    list_indices,
    register_index,
    unregister_index,
)
from agrivision.indices.evaluation import compute
from agrivision.indices.formula import Formula, compile_formula
from agrivision.indices.symbols import band_symbols, constants

__all__ = [
    "Formula",
    "IndexInfo",
    "band_symbols",
    "compile_formula",
    "compute",
    "constants",
    "index_info",
    "list_indices",
    "register_index",
    "unregister_index",
]
