"""Synthetic Sentinel-2-like scenes with known ground truth, for demos, tests and benchmarks.

- :func:`make_fields` / :func:`make_layout`: parcels, problem patches and land cover (vectors).
- :func:`synthetic_scene`: a lazy dask-backed Scene plus :class:`SyntheticTruth`.
- :func:`write_synthetic`: the scene as Sentinel-2 L2A-like COGs, STAC Items, fields GeoJSON
  and truth rasters.

Everything is a deterministic function of the seed and pixel position (never of chunking).
"""

from agrivision.synthetic.files import SyntheticFiles, write_synthetic
from agrivision.synthetic.layout import (
    CLASSES,
    CONDITIONS,
    LANDCOVER,
    Landscape,
    Layout,
    make_fields,
    make_layout,
)
from agrivision.synthetic.scene import SNAPSHOT_DATE, SyntheticTruth, synthetic_scene

__all__ = [
    "CLASSES",
    "CONDITIONS",
    "LANDCOVER",
    "SNAPSHOT_DATE",
    "Landscape",
    "Layout",
    "SyntheticFiles",
    "SyntheticTruth",
    "make_fields",
    "make_layout",
    "synthetic_scene",
    "write_synthetic",
]
