"""Lazy pixels of a scene: each band read by rioxarray, scaled to reflectance, put on the
target grid (odc-geo, dask-aware), mosaicked first-valid, and the dates stacked.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import dask.array as da
import numpy as np
import rioxarray
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords, xr_reproject

from agrivision.errors import GridError, SourceError
from agrivision.io.alignment import Resampling, resampling_for, same_grid, window_of
from agrivision.io.bands import COMMON_NAMES, scale_offset
from agrivision.io.sources import BandAsset
from agrivision.sensors import MASK_VARIABLES, SensorProfile

#: Fill value per quality band outside the data (their own "no data" code).
MASK_FILL = {"scl": 0, "qa_pixel": 1, "fmask": 255, "cloud_mask": 0, "cloud_probability": 0}


class BandReader:
    """Opens each file once (lazily, dask chunks aligned to the file's blocks)."""

    def __init__(self, chunks: int):
        self.chunks = chunks
        self._open: dict[tuple, xr.DataArray] = {}

    def band(self, asset: BandAsset, window: tuple[slice, slice] | None = None) -> xr.DataArray:
        """One band, whole or only ``window`` (rows, columns): chunks end on block edges and
        on the window's edges, so that reading the window reads no block outside it."""
        path = asset.file.path
        key = (path, None if window is None else tuple((s.start, s.stop) for s in window))
        if key not in self._open:
            by, bx = asset.file.block_shape
            step = (max(by, self.chunks // by * by), max(bx, self.chunks // bx * bx))
            chunks: dict[str, Any] = {"band": 1, "y": step[0], "x": step[1]}
            if window is not None:
                for dim, cut, size, n in zip("yx", window, asset.file.shape, step, strict=True):
                    edges = sorted({*range(0, size, n), cut.start, cut.stop, size} - {0})
                    chunks[dim] = tuple(np.diff([0, *edges]).tolist())
            opened = rioxarray.open_rasterio(
                path, chunks=chunks, lock=False, cache=False, mask_and_scale=False,
            )  # fmt: skip
            if not isinstance(opened, xr.DataArray):  # a container of subdatasets (HDF, NetCDF)
                raise SourceError(
                    "holds several subdatasets, not one raster",
                    source=path,
                    fix="pass the subdataset itself (GDAL name, e.g. NETCDF:file.nc:var)",
                )
            self._open[key] = opened if window is None else opened.isel(y=window[0], x=window[1])
        return self._open[key].isel(band=asset.band - 1, drop=True)


def band_on_grid(
    group: list[BandAsset],
    name: str,
    profile: SensorProfile | None,
    geobox: GeoBox,
    reader: BandReader,
    scale: float | None,
    offset: float | None,
    resampling: Resampling,
) -> xr.DataArray:
    """One variable of one date: every asset scaled, put on the grid, then mosaicked."""
    is_mask = name in MASK_VARIABLES
    layers = []
    for asset in group:
        # A window of the file (the fields' part of a tile) is read without resampling.
        window = None if same_grid(asset.file, geobox) else window_of(asset.file, geobox)
        arr = reader.band(asset, window)
        if not is_mask:
            arr = _reflectance(arr, asset, profile, scale, offset)
        if window is None and not same_grid(asset.file, geobox):
            method = resampling_for(name, asset.file, geobox, resampling)
            fill = MASK_FILL.get(name, 0) if is_mask else np.nan
            arr = xr_reproject(
                arr, geobox, resampling=method, dst_nodata=fill, chunks=(reader.chunks,) * 2
            )
        layers.append(arr.data)
    data = layers[0]
    for more in layers[1:]:
        if is_mask:
            data = da.where(data == MASK_FILL.get(name, 0), more, data)
        else:
            data = da.where(da.isnan(data), more, data)
    data = data.rechunk((reader.chunks, reader.chunks))
    attrs: dict[str, Any] = {"band_id": str(group[0].band_id)}
    if profile is not None:
        spec = next((s for b, s in profile.bands.items() if s.common_name == name), None)
        if spec is not None and spec.center_um is not None:
            attrs["center_wavelength_um"] = spec.center_um
    return xr.DataArray(data, dims=("y", "x"), attrs=attrs, name=name)


def _reflectance(
    arr: xr.DataArray,
    asset: BandAsset,
    profile: SensorProfile | None,
    scale: float | None,
    offset: float | None,
) -> xr.DataArray:
    s, o, nodata = scale_offset(asset, profile, scale, offset)
    data = arr.data.map_blocks(
        _to_reflectance, scale=np.float32(s), offset=np.float32(o), nodata=nodata,
        dtype=np.float32, meta=np.array((), dtype=np.float32),
    )  # fmt: skip
    out = arr.copy(data=data)
    out.attrs = {"scale": s, "offset": o}
    return out


def _to_reflectance(block: np.ndarray, scale: np.float32, offset: np.float32, nodata) -> np.ndarray:
    out = block.astype(np.float32)
    if scale != 1 or offset != 0:
        out *= scale
        out += offset
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        out[block == nodata] = np.nan
    out[~np.isfinite(out)] = np.nan  # infinities in float sources are not reflectance
    return out


def assemble(
    per_date: list[tuple[dt.datetime | None, dict[str, xr.DataArray]]], geobox: GeoBox, chunks: int
) -> xr.Dataset:
    """One Dataset on ``geobox`` from the variables of each date (a ``time`` dimension when
    there are several), reflectance bands in spectral order, quality bands last."""
    coords = xr_coords(geobox)
    names: list[str] = []
    for _, variables in per_date:
        names += [n for n in variables if n not in names]
    names.sort(key=lambda n: (n in MASK_VARIABLES, _band_rank(n)))
    if len(per_date) == 1:
        ((day, variables),) = per_date
        ds = xr.Dataset({n: variables[n] for n in names}).assign_coords(coords)
        if day is not None:
            ds.attrs["datetime"] = day.isoformat()
    else:
        stacked = {}
        for n in names:
            layers = []
            for _, variables in per_date:
                if n in variables:
                    layers.append(variables[n].data)
                else:  # band missing on this date: NaN (or the mask's fill code)
                    fill = MASK_FILL.get(n, np.nan)
                    dtype = (
                        np.float32
                        if n not in MASK_VARIABLES
                        else next(v[n].dtype for _, v in per_date if n in v)
                    )
                    layers.append(da.full(geobox.shape, fill, dtype=dtype, chunks=chunks))
            attrs = next(v[n].attrs for _, v in per_date if n in v)
            stacked[n] = xr.DataArray(da.stack(layers), dims=("time", "y", "x"), attrs=attrs)
        times = [np.datetime64(day, "ns") for day, _ in per_date]
        ds = xr.Dataset(stacked).assign_coords(coords).assign_coords(time=times)
    if geobox.crs is None:
        raise GridError("the target grid has no CRS", fix="pass like= a georeferenced grid")
    ds = ds.rio.write_crs(geobox.crs.to_wkt())
    return ds.rio.write_transform(geobox.affine)


def _band_rank(name: str) -> int:
    return COMMON_NAMES.index(name) if name in COMMON_NAMES else len(COMMON_NAMES)
