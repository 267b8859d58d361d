"""Small in-memory scenes for the index tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import dask.array as da
import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from agrivision.indices.symbols import band_symbols


def build_scene(
    bands: Mapping[str, np.ndarray], *, chunks: int | tuple[int, ...] = 2, attrs=None
) -> xr.Dataset:
    """A dask-backed, north-up scene in EPSG:32633 from ``{common_name: array}``.

    2-D arrays give ``(y, x)``, 3-D arrays ``(time, y, x)``; 10 m pixels.
    """
    first = np.asarray(next(iter(bands.values())))
    rows, cols = first.shape[-2:]
    coords = {
        "y": 5_800_000.0 - 5.0 - 10.0 * np.arange(rows),
        "x": 500_000.0 + 5.0 + 10.0 * np.arange(cols),
    }
    if first.ndim == 3:
        days = np.arange(first.shape[0]) * np.timedelta64(10, "D")
        coords["time"] = np.datetime64("2024-05-01", "ns") + days
    variables = {}
    for name, arr in bands.items():
        arr = np.asarray(arr, dtype=np.float32)
        dims = ("time", "y", "x") if arr.ndim == 3 else ("y", "x")
        variables[name] = xr.Variable(dims, da.from_array(arr, chunks=chunks), attrs or {})
    scene = xr.Dataset(variables, coords=coords, attrs={"sensor": "test"})
    return scene.rio.write_crs("EPSG:32633")


@pytest.fixture
def make_scene() -> Callable[..., xr.Dataset]:
    return build_scene


@pytest.fixture
def all_band_scene() -> xr.Dataset:
    """Every band symbol of the catalogue as a scene variable, with plausible random values."""
    rng = np.random.default_rng(42)
    bands = {}
    for sym, info in band_symbols().items():
        values = rng.uniform(0.02, 0.6, (2, 6, 7))
        if sym.startswith("T"):  # thermal bands: brightness temperature in kelvin
            values = 270.0 + 40.0 * values
        bands[info.candidates[0]] = values
    scene = build_scene(bands, chunks=(1, 3, 4))
    for info in band_symbols().values():
        if info.min_nm is not None:  # as open_scene records it from the sensor profile
            centre_um = (info.min_nm + info.max_nm) / 2000.0
            scene[info.candidates[0]].attrs["center_wavelength_um"] = centre_um
    return scene
