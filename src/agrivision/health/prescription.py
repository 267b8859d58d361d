"""Prescription maps: a rate per management zone, the product each zone and field needs.

A prescription is the zones table with a ``rate`` per zone, written in a format a tractor
terminal reads (ESRI Shapefile, the common denominator of ISOBUS task controllers and John
Deere/Trimble/Topcon displays; GeoPackage and GeoJSON for GIS).

With ``n: auto`` fields get different numbers of zones, so a list of rates (lowest zone
first) is read by **rank**: zone ``j`` of a field with ``k`` zones takes the rate at the
relative position ``(j - 1) / (k - 1)`` of the list (linear between two listed rates), a
field with a single zone the middle of the list. The list is as long as the most zones a
field has; a field with that many zones gets exactly the listed rates, and a uniform
field the middle rate, never the lowest zone's. A mapping (``1:140,2:120``) names zone
numbers as they are, for zones of a fixed number.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from agrivision.errors import ConfigError, FieldsError, OutputError
from agrivision.io.atomic import check_writable
from agrivision.io.fields import area_ha
from agrivision.io.vector import write_vector

#: Output suffixes: Shapefile (written here: several files), and two of ``write_vector``'s.
SUFFIXES = (".shp", ".gpkg", ".geojson", ".json")
#: Shapefile sidecars written with the ``.shp``.
_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


@dataclass(frozen=True)
class Rates:
    """Rates by zone number; ``listed``: given as a list, to be read by rank."""

    by_zone: dict[int, float]
    listed: bool


def parse_rates(text: str) -> Rates:
    """Rates from a list ``"140,120,100"`` (lowest zone first) or a mapping ``"1:140,3:100"``.

    Raises
    ------
    ConfigError
        A rate that is not a finite number, a negative rate, a zone that is not a positive
        integer or that is named twice.
    """
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError("no rates given", source="--rates", fix="e.g. --rates 140,120,100")
    mapped = [":" in item or "=" in item for item in items]
    if any(mapped) and not all(mapped):
        raise ConfigError(
            f"rates {text!r} mix a list and a mapping", source="--rates",
            fix="give either 140,120,100 (zones 1, 2, 3) or 1:140,2:120,3:100",
        )  # fmt: skip
    rates: dict[int, float] = {}
    for k, item in enumerate(items, start=1):
        zone, value = item.replace("=", ":").split(":", 1) if all(mapped) else (str(k), item)
        try:
            number, z = float(value), int(zone)
        except ValueError:
            raise ConfigError(
                f"{item!r} is not a zone and a number", source="--rates",
                fix="rates are numbers, e.g. --rates 140,120,100 or 1:140,2:120",
            ) from None  # fmt: skip
        if not math.isfinite(number) or number < 0:
            raise ConfigError(
                f"rate {value.strip()!r} for zone {z} is not a number >= 0", source="--rates",
                fix="give every zone a finite, non-negative rate",
            )  # fmt: skip
        if z < 1 or z in rates:
            raise ConfigError(
                f"zone {zone.strip()!r} is not a new zone number >= 1", source="--rates",
                fix="name each zone 1, 2, ... once",
            )  # fmt: skip
        rates[z] = number
    return Rates(rates, listed=not all(mapped))


def prescription(
    zones: gpd.GeoDataFrame, rates: Rates, *, unit: str = "kg/ha", source: str = "zones"
) -> gpd.GeoDataFrame:
    """The zone polygons with their rate and the product they and their field need.

    Parameters
    ----------
    zones
        Zone polygons with ``field_id``, ``zone`` (1 = lowest index), ``zones_n`` (the
        field's number of zones; else its highest zone), ``area_ha`` (hectares; computed
        geodesically when missing) and a projected or geographic CRS.
    rates
        From :func:`parse_rates`: a list is read by rank (see the module docstring) and
        must be as long as the most zones a field has; a mapping must name every zone
        number of the file and no other.
    unit
        Rate unit, e.g. ``kg/ha``, ``seeds/ha``, ``l/ha``; products are in ``unit x ha``.
    source
        The zones file, for messages.

    Returns
    -------
    geopandas.GeoDataFrame
        ``field_id, zone, zones_n, rate, unit, area_ha, product`` (rate x area of the
        polygon), ``field_prod`` (the field's total product), ``geometry``. Column names
        fit the Shapefile's 10 characters.

    Raises
    ------
    FieldsError
        ``zones`` lacks ``field_id`` or ``zone``.
    ConfigError
        A list of another length than the most zones of a field; a mapping that misses a
        zone of the file or names one it does not have.
    """
    missing = [c for c in ("field_id", "zone") if c not in zones.columns]
    if missing:
        raise FieldsError(
            f"no column {missing[0]!r} in the zones", source=source,
            fix="use the zones of 'agrivision zones' or the zones layer of a report",
        )  # fmt: skip
    out = zones[["field_id", "zone"]].copy()
    out["zone"] = out["zone"].astype(np.int32)
    if "zones_n" in zones.columns:
        out["zones_n"] = zones["zones_n"].astype(np.int32)
    else:
        out["zones_n"] = out.groupby("field_id")["zone"].transform("max").astype(np.int32)
    out["rate"] = _rates(out, rates, source)
    out["unit"] = unit
    if "area_ha" in zones.columns:
        out["area_ha"] = zones["area_ha"].astype(np.float64)
    else:
        out["area_ha"] = area_ha(zones).to_numpy()
    out["product"] = out["rate"] * out["area_ha"]
    out["field_prod"] = out.groupby("field_id")["product"].transform("sum")
    return gpd.GeoDataFrame(out, geometry=zones.geometry.to_numpy(), crs=zones.crs)


def _rates(zones: pd.DataFrame, rates: Rates, source: str) -> np.ndarray:
    """The rate of each zone row (``zone``, ``zones_n``), or a ConfigError."""
    given = rates.by_zone
    if rates.listed:
        most = int(zones["zones_n"].max()) if len(zones) else 0
        if len(given) != most:
            raise ConfigError(
                f"{len(given)} rates, but the fields of the zones file have up to {most} zones",
                source=source,
                fix=f"list {most} rates, lowest zone first (e.g. --rates "
                f"{','.join(['100'] * most)}); fields with fewer zones take them by rank",
            )  # fmt: skip
        zone, n = zones["zone"].to_numpy(float), zones["zones_n"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rank = np.where(n > 1, (zone - 1) / (n - 1), 0.5)
        listed = [given[k] for k in sorted(given)]
        return np.interp(rank, np.linspace(0, 1, len(listed)), listed)
    present = sorted({int(z) for z in zones["zone"]})
    lacking = [z for z in present if z not in given]
    extra = [z for z in given if z not in present]
    if lacking or extra:
        raise ConfigError(
            f"rates for zones {sorted(given)}, but the zones file has zones {present}",
            source=source,
            fix=f"name each zone {', '.join(map(str, present))} once, or list the rates "
            "lowest zone first to apply them by rank",
        )  # fmt: skip
    return zones["zone"].map(given).to_numpy(np.float64)


def write_prescription(
    table: gpd.GeoDataFrame, path: str | os.PathLike, *, overwrite: bool = True
) -> Path:
    """Write a prescription atomically: ``.shp`` (with its sidecars), ``.gpkg`` or ``.geojson``.

    Raises
    ------
    OutputError
        Another suffix, an existing target without ``overwrite``, an unwritable folder.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise OutputError(
            f"a prescription cannot be written as {target.suffix or '(no suffix)'!r}",
            source=target, fix=f"use one of {', '.join(SUFFIXES)}",
        )  # fmt: skip
    if suffix != ".shp":
        return write_vector(table, target, overwrite=overwrite)
    check_writable(target, overwrite=overwrite)
    # Every sidecar is written in a hidden folder beside the target, then renamed into place.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.stem}.", dir=target.parent or "."))
    try:
        pyogrio.write_dataframe(table, staging / target.name, driver="ESRI Shapefile")
        for ext in _SIDECARS:
            made = staging / f"{target.stem}{ext}"
            if made.exists():
                os.replace(made, target.with_suffix(ext))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
