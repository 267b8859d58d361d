"""Compare two report folders: the same tables, polygons and rasters, or the differences.

Used to check that a change of the code (a refactor, a dependency upgrade) leaves a report's
answers as they were::

    python -m agrivision.report.compare before/ after/

Tables (``fields.csv``, ``fields_timeseries.csv``) are compared cell by cell, floats within
``rtol``; vector layers (``fields.geojson``, ``problems.geojson``, ``zones.geojson``) by
their attributes and geometries (normalised, so vertex order does not count); rasters
(``indices.tif``, ``classes.tif``) pixel by pixel, with their CRS, transform, nodata and
band descriptions. ``report.html`` and ``summary.json`` hold timings and dates and are not
compared.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely

TABLES = ("fields.csv", "fields_timeseries.csv")
LAYERS = ("fields.geojson", "problems.geojson", "zones.geojson")
RASTERS = ("indices.tif", "classes.tif")


def compare_reports(a: str | os.PathLike, b: str | os.PathLike, *, rtol: float = 1e-9) -> list[str]:
    """Differences between the outputs of two ``agrivision report`` folders.

    Parameters
    ----------
    a, b
        Report folders (as written by :func:`agrivision.report.run_report`).
    rtol
        Relative tolerance for floating-point cells, coordinates and pixels.

    Returns
    -------
    list of str
        One line per difference (file and what differs); empty when the reports agree.
    """
    a, b = Path(a), Path(b)
    problems: list[str] = []
    for name in (*TABLES, *LAYERS, *RASTERS):
        pa, pb = a / name, b / name
        if pa.exists() != pb.exists():
            problems.append(f"{name}: only in {a if pa.exists() else b}")
            continue
        if not pa.exists():
            continue
        if name in TABLES:
            problems += _tables(name, pd.read_csv(pa), pd.read_csv(pb), rtol)
        elif name in LAYERS:
            problems += _layers(name, gpd.read_file(pa), gpd.read_file(pb), rtol)
        else:
            problems += _rasters(name, pa, pb, rtol)
    return problems


def _tables(name: str, ta: pd.DataFrame, tb: pd.DataFrame, rtol: float) -> list[str]:
    if list(ta.columns) != list(tb.columns):
        return [f"{name}: columns differ: {list(ta.columns)} vs {list(tb.columns)}"]
    if len(ta) != len(tb):
        return [f"{name}: {len(ta)} vs {len(tb)} rows"]
    out = []
    for col in ta.columns:
        x, y = ta[col], tb[col]
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
            same = np.isclose(x, y, rtol=rtol, atol=0.0, equal_nan=True)
        else:
            same = ((x == y) | (x.isna() & y.isna())).to_numpy()
        if not same.all():
            row = int(np.flatnonzero(~same)[0])
            out.append(f"{name}: column {col!r} differs in {int((~same).sum())} rows "
                       f"(first: row {row}: {x.iloc[row]!r} vs {y.iloc[row]!r})")  # fmt: skip
    return out


def _layers(name: str, ga: gpd.GeoDataFrame, gb: gpd.GeoDataFrame, rtol: float) -> list[str]:
    out = _tables(name, pd.DataFrame(ga.drop(columns="geometry")),
                  pd.DataFrame(gb.drop(columns="geometry")), rtol)  # fmt: skip
    if len(ga) == len(gb) and ga.crs != gb.crs:
        out.append(f"{name}: CRS {ga.crs} vs {gb.crs}")
    if len(ga) == len(gb):
        geoms_a = shapely.normalize(ga.geometry.to_numpy())
        geoms_b = shapely.normalize(gb.geometry.to_numpy())
        scale = max(1.0, float(np.abs(shapely.get_coordinates(geoms_a)).max(initial=0.0)))
        same = shapely.equals_exact(geoms_a, geoms_b, tolerance=rtol * scale)
        if not same.all():
            out.append(f"{name}: {int((~same).sum())} geometries differ "
                       f"(first: row {int(np.flatnonzero(~same)[0])})")  # fmt: skip
    return out


def _rasters(name: str, pa: Path, pb: Path, rtol: float) -> list[str]:
    with rasterio.open(pa) as ra, rasterio.open(pb) as rb:
        facts = ("crs", "transform", "count", "dtypes", "nodata", "descriptions", "shape")
        out = [f"{name}: {f} {getattr(ra, f)} vs {getattr(rb, f)}"
               for f in facts if not _same(getattr(ra, f), getattr(rb, f))]  # fmt: skip
        if out:
            return out
        for _, window in ra.block_windows(1):
            xa, xb = ra.read(window=window), rb.read(window=window)
            same = np.isclose(xa, xb, rtol=rtol, atol=0.0, equal_nan=True)
            if not same.all():
                return [f"{name}: {int((~same).sum())} pixels differ in block {window}"]
    return []


def _same(x: object, y: object) -> bool:
    """Equal, with NaN equal to NaN (a float raster's nodata)."""
    both_nan = isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y)
    return both_nan or x == y


def main(argv: list[str] | None = None) -> int:
    """``python -m agrivision.report.compare A B``: print the differences; exit 1 if any."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m agrivision.report.compare REPORT_A REPORT_B", file=sys.stderr)
        return 2
    problems = compare_reports(*args)
    for line in problems:
        print(line)
    print("identical" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
