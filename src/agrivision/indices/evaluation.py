"""Lazy evaluation of spectral indices on a scene: one float32 dask variable per index."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from agrivision.errors import BandNotFoundError, SensorError, SpectralIndexError
from agrivision.indices.catalogue import ALIASES, IndexInfo, index_info, make_index
from agrivision.indices.formula import Formula
from agrivision.indices.symbols import band_symbols, wavelength_band
from agrivision.indices.symbols import constants as catalogue_constants


@dataclass(frozen=True)
class _Job:
    info: IndexInfo
    formula: Formula
    bands: dict[str, str]  # band symbol -> scene variable
    missing: list[str]  # band symbols the scene cannot supply
    name: str  # the output variable's name


def compute(
    scene: xr.Dataset,
    names: str | Sequence[str] = (),
    *,
    constants: Mapping[str, float] | None = None,
    formulas: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Spectral indices of a scene, lazily, one float32 variable per index.

    Parameters
    ----------
    scene
        Reflectance bands (0..1) named by STAC common name, dims ``(y, x)`` or
        ``(time, y, x)``, any CRS (kept as is). Dask-backed scenes give dask-backed results.
    names
        Catalogue names (case-insensitive, e.g. ``"NDVI"``, ``["EVI", "ndre"]``); the output
        variable takes the catalogue spelling, or the alias' spelling when an alias was
        asked for (``"ndre"`` gives ``NDRE``, ``"NDREI"`` gives ``NDREI``).
    constants
        Overrides of catalogue constants (``{"L": 0.25}``) and values of constants without a
        default (``PAR``; wavelengths ``lambdaN``... in nm, else taken from the bands'
        ``center_wavelength_um`` attrs or the scene's sensor profile).
    formulas
        Custom indices ``{"MYIDX": "(N - R)/(N + R)"}`` over catalogue band symbols and
        constants (plus names in ``constants``); computed in addition to ``names``.

    Returns
    -------
    xr.Dataset
        Same dims, coords (``spatial_ref`` included), CRS and attrs as ``scene``; each
        variable has attrs ``long_name``, ``formula``, ``reference``, ``bands`` (which scene
        variable supplied each symbol) and ``constants``. NaN where an input is NaN or a
        result is not finite (zero denominators); never inf.

    Raises
    ------
    SpectralIndexError
        Unknown index name, a constant without a value, an invalid constant override.
    FormulaError
        A custom formula that is not plain arithmetic on known symbols.
    BandNotFoundError
        The scene lacks bands an index needs (the message lists them and the scene's bands).
    """
    if not isinstance(scene, xr.Dataset):
        raise TypeError(f"compute() needs an xarray Dataset scene, not {type(scene).__name__}")
    requested = [names] if isinstance(names, str) else list(names)
    formulas = dict(formulas or {})
    overrides = _check_constants(constants or {})
    order = requested + [n for n in formulas if n not in requested]
    if not order:
        raise SpectralIndexError("no index requested", fix="e.g. compute(scene, ['NDVI'])")
    jobs = [_job(scene, n, formulas, overrides) for n in order]
    failed = [j for j in jobs if j.missing]
    if failed:
        raise _missing_bands(scene, failed)
    _check_unused(overrides, jobs)
    out = {}
    for job in jobs:
        values = _constant_values(scene, job, overrides)
        out[job.name] = _evaluate(scene, job, values).rename(job.name)
    return scene[[]].assign(out)


def _output_name(requested: str, canonical: str) -> str:
    """Name the output as the user asked when it is a known alias (``NDRE``, not ``NDREI``),
    else by the catalogue's spelling (``ndvi`` -> ``NDVI``)."""
    aliases = {k.lower(): k for k in ALIASES}
    return aliases.get(requested.lower(), canonical)


def _job(scene: xr.Dataset, name: str, formulas: dict[str, str], overrides: dict) -> _Job:
    if name in formulas:
        info = make_index(name, formulas[name], constants=overrides)
    else:
        info = index_info(name)
    formula = info.compiled
    bands, missing = {}, []
    for sym in formula.bands:
        var = next((c for c in band_symbols()[sym].candidates if c in scene.data_vars), None)
        if var is None:
            missing.append(sym)
        else:
            bands[sym] = var
    return _Job(info, formula, bands, missing, _output_name(name, info.name))


def _check_constants(given: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in given.items():
        if key in band_symbols():
            raise SpectralIndexError(
                f"{key!r} is a band symbol, not a constant", fix="rename the constant"
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise SpectralIndexError(
                f"constant {key}={value!r} is not a finite number", fix="pass a float"
            )
        out[key] = number
    return out


def _check_unused(overrides: dict[str, float], jobs: list[_Job]) -> None:
    # A misspelt override ("l" for "L") must not be ignored silently.
    used = {c for j in jobs for c in j.formula.constants} | catalogue_constants().keys()
    unknown = sorted(set(overrides) - used)
    if unknown:
        raise SpectralIndexError(
            f"unknown constant(s) {', '.join(unknown)}: not catalogue constants and not "
            "used by any requested formula",
            fix=f"catalogue constants are {', '.join(catalogue_constants())}",
        )


def _constant_values(scene: xr.Dataset, job: _Job, overrides: dict) -> dict[str, float]:
    values, lacking = {}, []
    for c in job.formula.constants:
        value = overrides.get(c, job.info.defaults.get(c))
        if value is None and (sym := wavelength_band(c)) is not None:
            value = _wavelength_nm(scene, job.bands.get(sym), band_symbols()[sym].candidates)
        if value is None:
            lacking.append(c)
        else:
            values[c] = value
    if lacking:
        raise SpectralIndexError(
            f"{job.info.name} needs constant(s) {', '.join(lacking)}, which have no default",
            source="indices",
            fix="pass them, e.g. constants={"
            + ", ".join(f"{c!r}: ..." for c in lacking)
            + "} (wavelengths in nm)",
        )
    return values


def _wavelength_nm(
    scene: xr.Dataset, used: str | None, candidates: tuple[str, ...]
) -> float | None:
    """Centre wavelength (nm) of a band: the band's attrs first, then the sensor profile."""
    names = [used] if used else [c for c in candidates if c in scene.data_vars] or list(candidates)
    for var in names:
        um = scene[var].attrs.get("center_wavelength_um") if var in scene.data_vars else None
        if um is not None:
            return float(um) * 1000.0
    sensor = scene.attrs.get("sensor")
    if not sensor:
        return None
    from agrivision.sensors import load_profile  # pydantic + YAML only when needed

    try:
        profile = load_profile(sensor)
    except SensorError:
        return None
    by_name = {s.common_name: s.center_um for s in profile.bands.values()}
    um = next((by_name[v] for v in names if by_name.get(v) is not None), None)
    return None if um is None else float(um) * 1000.0


def _missing_bands(scene: xr.Dataset, failed: list[_Job]) -> BandNotFoundError:
    parts = []
    for job in failed:
        needs = [f"{s} ({' or '.join(band_symbols()[s].candidates)})" for s in job.missing]
        parts.append(f"{job.name} needs {', '.join(needs)}")
    have = ", ".join(map(str, scene.data_vars)) or "none"
    return BandNotFoundError(
        f"{'; '.join(parts)}; the scene has bands: {have}",
        source="indices",
        fix="open the scene with those bands (open_scene(..., bands=...)) or pick indices "
        "that use only the scene's bands (list_indices())",
    )


def _evaluate(scene: xr.Dataset, job: _Job, values: dict[str, float]) -> xr.DataArray:
    symbols = list(job.bands)
    arrays = [scene[job.bands[s]] for s in symbols]
    result = xr.apply_ufunc(
        _block,
        *arrays,
        kwargs={"formula": job.formula, "symbols": symbols, "values": values},
        dask="parallelized",
        output_dtypes=[np.float32],
        keep_attrs=False,
    )
    result.attrs = {
        "long_name": job.info.long_name,
        "formula": job.info.formula,
        "reference": job.info.reference,
        "bands": ", ".join(f"{s}={v}" for s, v in job.bands.items()),
        "constants": ", ".join(f"{c}={v:g}" for c, v in values.items()),
    }
    grid_mapping = arrays[0].encoding.get("grid_mapping")
    if grid_mapping:
        result.encoding["grid_mapping"] = grid_mapping
    return result.rename(job.info.name)


def _block(
    *arrays: np.ndarray,
    formula: Formula,
    symbols: list[str],
    values: dict[str, float],
) -> np.ndarray:
    """Evaluate one chunk in float32; non-finite results (x/0) become NaN, without warnings."""
    env: dict[str, Any] = dict(values)
    env.update((s, a.astype(np.float32, copy=False)) for s, a in zip(symbols, arrays, strict=True))
    with np.errstate(all="ignore"):
        out = formula(env)
    out = np.asarray(out, dtype=np.float32)
    if any(np.may_share_memory(out, a) for a in arrays):  # e.g. the formula "N"
        out = out.copy()
    out[~np.isfinite(out)] = np.nan
    return out
