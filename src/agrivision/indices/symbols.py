"""The symbols of index formulas: band symbols, constants and kernel symbols.

The catalogue is the Awesome Spectral Indices list as shipped (JSON data) by the installed
``spyndex`` package; it is read from disk, never from the network, and ``spyndex`` itself is
not imported (it pulls in plotting and dataset modules we do not need).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from agrivision.errors import SpectralIndexError

#: Scene variable names that may supply a band symbol, best first, where ours differ from the
#: common name in spyndex's bands.json (which is used as it is for every other symbol).
CANDIDATES: dict[str, tuple[str, ...]] = {
    "N": ("nir", "nir08"),  # Landsat OLI/TM have no broad "nir": their NIR band is nir08
    "G1": ("green1",),  # spyndex: green05
    "RE1": ("rededge1", "rededge"),  # single red-edge sensors (MicaSense, DJI P4M) say rededge
    "RE2": ("rededge2",),  # spyndex: rededge075
    "RE3": ("rededge3",),  # spyndex: rededge078
    "T": ("lwir11", "lwir"),  # spyndex: lwir; Landsat 8/9 thermal is lwir11
    "T1": ("lwir11",),
    "T2": ("lwir12",),
}

#: Radar symbols of the catalogue (not in bands.json): linear backscatter variables.
RADAR: dict[str, str] = {
    "VV": "VV backscatter (linear power)",
    "VH": "VH backscatter (linear power)",
    "HH": "HH backscatter (linear power)",
    "HV": "HV backscatter (linear power)",
}

#: Constants named ``lambdaX`` are the centre wavelength (nm) of band symbol ``X``.
WAVELENGTH_PREFIX = "lambda"

#: The kernel ``k(a, b)`` behind kernel symbols such as ``kNR``: the RBF kernel, spyndex's
#: default, with the catalogue constant ``sigma`` as length scale.
KERNEL = "exp(-(({a}) - ({b})) ** 2.0 / (2.0 * sigma ** 2.0))"


@dataclass(frozen=True)
class BandSymbol:
    """A band symbol of the catalogue (``N``, ``RE1``, ...) and the scene variables that supply it.

    ``min_nm``/``max_nm`` are the catalogue's wavelength range (``None`` for radar symbols).
    """

    symbol: str
    long_name: str
    candidates: tuple[str, ...]
    min_nm: float | None = None
    max_nm: float | None = None


@dataclass(frozen=True)
class Constant:
    """A catalogue constant (``L``, ``g``, ``C1``...); ``default`` is ``None`` if it has none."""

    symbol: str
    default: float | None
    description: str


def data_dir() -> Path:
    """Folder of the catalogue JSON files inside the installed ``spyndex`` package."""
    spec = find_spec("spyndex")
    if spec is None or not spec.submodule_search_locations:
        raise SpectralIndexError(
            "the spectral index catalogue is missing (package 'spyndex' is not installed)",
            fix="pip install spyndex",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_json(name: str) -> Any:
    """Parse one of spyndex's catalogue files (``spectral-indices-dict.json``, ...)."""
    path = data_dir() / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpectralIndexError(
            f"cannot read the index catalogue ({exc})", source=path, fix="reinstall spyndex"
        ) from exc


@cache
def band_symbols() -> dict[str, BandSymbol]:
    """All band symbols: spyndex's ``bands.json`` plus the radar polarisations."""
    out = {}
    for sym, spec in load_json("bands.json").items():
        out[sym] = BandSymbol(
            symbol=sym,
            long_name=spec["long_name"],
            candidates=CANDIDATES.get(sym, (spec["common_name"],)),
            min_nm=spec.get("min_wavelength"),
            max_nm=spec.get("max_wavelength"),
        )
    for sym, long_name in RADAR.items():
        out[sym] = BandSymbol(sym, long_name, (sym.lower(),))
    return out


@cache
def constants() -> dict[str, Constant]:
    """All catalogue constants with their defaults (spyndex's ``constants.json``)."""
    return {
        sym: Constant(
            sym,
            None if spec["default"] is None else float(spec["default"]),
            spec["description"],
        )
        for sym, spec in load_json("constants.json").items()
    }


def kernel_pair(name: str) -> tuple[str, str] | None:
    """``("N", "R")`` for the kernel symbol ``kNR`` (operands: band symbols or constants)."""
    if not re.fullmatch(r"k[A-Z][A-Za-z0-9]*", name):
        return None
    known = band_symbols().keys() | constants().keys()
    rest = name[1:]
    for cut in range(1, len(rest)):
        a, b = rest[:cut], rest[cut:]
        if a in known and b in known:
            return a, b
    return None


def wavelength_band(name: str) -> str | None:
    """``"N"`` for the constant ``lambdaN`` (a band's centre wavelength), else ``None``."""
    if name.startswith(WAVELENGTH_PREFIX):
        sym = name[len(WAVELENGTH_PREFIX) :]
        if sym in band_symbols():
            return sym
    return None
