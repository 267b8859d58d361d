"""to_cog / to_cogs: round trips, COG layout, class rasters, atomicity, bounded memory."""

from __future__ import annotations

import ctypes
import json
import struct
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine

from agrivision.errors import MissingCRSError, OutputError
from agrivision.io.cog import gdal_cache_limit, to_cog, to_cogs

CRS = "EPSG:32633"


def grid(data, *, dims=("y", "x"), res=10.0, x0=500000.0, y0=5800000.0, crs=CRS, **coords):
    """A DataArray on a north-up grid (pixel-centre coordinates), CRS written."""
    ny, nx = data.shape[-2:]
    arr = xr.DataArray(
        data,
        dims=dims,
        coords={"y": y0 - (np.arange(ny) + 0.5) * res, "x": x0 + (np.arange(nx) + 0.5) * res}
        | coords,
    )
    return arr.rio.write_crs(crs) if crs else arr


def tiff_layout(path: Path) -> tuple[list[int], list[list[int]]]:
    """IFD offsets and, per IFD, its tile offsets: a tiny TIFF/BigTIFF reader (little endian)."""
    raw = path.read_bytes()
    assert raw[:2] == b"II"
    big = struct.unpack_from("<H", raw, 2)[0] == 43
    count_fmt, entry_size, off_fmt = ("<Q", 20, "<Q") if big else ("<H", 12, "<I")
    offset = struct.unpack_from(off_fmt, raw, 8 if big else 4)[0]
    sizes = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}
    ifds, tiles = [], []
    while offset:
        ifds.append(offset)
        n = struct.unpack_from(count_fmt, raw, offset)[0]
        pos = offset + struct.calcsize(count_fmt)
        for k in range(n):
            entry = pos + k * entry_size
            tag, typ = struct.unpack_from("<HH", raw, entry)
            if tag != 324:  # TileOffsets
                continue
            count = struct.unpack_from("<Q" if big else "<I", raw, entry + 4)[0]
            code, size = sizes[typ]
            inline = count * size <= (8 if big else 4)
            value_at = entry + (12 if big else 8)
            where = value_at if inline else struct.unpack_from(off_fmt, raw, value_at)[0]
            tiles.append(list(struct.unpack_from(f"<{count}{code}", raw, where)))
        offset = struct.unpack_from(off_fmt, raw, pos + n * entry_size)[0]
    return ifds, tiles


def assert_cog(path: Path, *, overviews: bool) -> None:
    """GDAL's COG rules: tiled, layout tag and ghost header, IFDs first, small overviews first."""
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.profile["tiled"]
        assert bool(src.overviews(1)) == overviews
    head = path.read_bytes()[:1000]
    assert b"LAYOUT=IFDS_BEFORE_DATA" in head and b"BLOCK_ORDER=ROW_MAJOR" in head
    ifds, tiles = tiff_layout(path)
    first_data = min(min(t for t in ts if t) for ts in tiles)
    assert max(ifds) < first_data, "all IFDs must precede the image data"
    if overviews:  # overview data (smallest first) precede full resolution
        starts = [min(t for t in ts if t) for ts in tiles]
        assert starts == sorted(starts, reverse=True)


@pytest.fixture
def ndvi():
    rng = np.random.default_rng(1)
    values = rng.uniform(-0.2, 0.9, (300, 200)).astype(np.float32)
    values[10:20, 30:40] = np.nan
    return values


def test_dataset_round_trip_is_exact_and_a_valid_cog(tmp_path, ndvi):
    ds = xr.Dataset(
        {"ndvi": grid(da.from_array(ndvi, chunks=128)), "ndre": grid(da.from_array(ndvi / 2))}
    ).rio.write_crs(CRS)
    out = to_cog(ds, tmp_path / "indices.tif", blocksize=64)
    assert out == tmp_path / "indices.tif"
    with rasterio.open(out) as src:
        assert src.count == 2 and src.dtypes == ("float32", "float32")
        assert src.descriptions == ("ndvi", "ndre")
        assert np.isnan(src.nodata)
        assert src.crs.to_epsg() == 32633
        assert src.transform == Affine(10, 0, 500000, 0, -10, 5800000)
        assert src.block_shapes == [(64, 64)] * 2
        assert src.compression.name == "zstd"  # the default codec, with the float predictor
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
        np.testing.assert_array_equal(src.read(1), ndvi)  # NaN == NaN here
        np.testing.assert_array_equal(src.read(2), ndvi / 2)
        # Overviews are nodata-aware averages: a 2x2 block mean of the full resolution.
        level = src.read(1, out_shape=(150, 100))
        block = ndvi[:2, :2]
        assert level[0, 0] == pytest.approx(block.mean(), rel=1e-5)
    assert_cog(out, overviews=True)
    assert [p.name for p in tmp_path.iterdir()] == ["indices.tif"]


def test_rio_cogeo_agrees_when_installed(tmp_path, ndvi):
    cogeo = pytest.importorskip("rio_cogeo.cogeo")
    out = to_cog(grid(ndvi, crs=CRS).rename("ndvi"), tmp_path / "a.tif", blocksize=64)
    valid, errors, _ = cogeo.cog_validate(str(out))
    assert valid and not errors


def test_codecs_hold_the_same_values_and_zstd_defaults_to_level_1(tmp_path, ndvi):
    data = grid(ndvi, crs=CRS).rename("ndvi")
    deflate = to_cog(data, tmp_path / "deflate.tif", blocksize=64, compress="deflate")
    fast = to_cog(data, tmp_path / "fast.tif", blocksize=64)
    dense = to_cog(data, tmp_path / "dense.tif", blocksize=64, compress="zstd", level=19)
    with rasterio.open(deflate) as a, rasterio.open(fast) as b:
        assert a.compression.name == "deflate" and b.compression.name == "zstd"
        np.testing.assert_array_equal(a.read(1), b.read(1))
        np.testing.assert_array_equal(b.read(1), ndvi)
    # level 1 is the default: a higher level makes a different (smaller) file
    assert dense.stat().st_size < fast.stat().st_size
    assert to_cog(data, tmp_path / "one.tif", blocksize=64, level=1).read_bytes() == (
        fast.read_bytes()
    )
    assert_cog(fast, overviews=True)


def test_small_raster_has_no_overviews_and_numpy_input_works(tmp_path):
    data = np.arange(100, dtype=np.int16).reshape(10, 10)
    out = to_cog(grid(data).rename("dem"), tmp_path / "small.tif")
    assert_cog(out, overviews=False)
    with rasterio.open(out) as src:
        assert src.descriptions == ("dem",) and src.dtypes == ("int16",) and src.nodata is None
        np.testing.assert_array_equal(src.read(1), data)


def test_band_and_time_dimensions_become_bands_with_labels(tmp_path):
    stack = grid(np.stack([np.full((20, 30), i, np.float32) for i in range(3)]),
                 dims=("band", "y", "x"), band=["B02", "B03", "B04"])  # fmt: skip
    with rasterio.open(to_cog(stack, tmp_path / "s.tif")) as src:
        assert src.descriptions == ("B02", "B03", "B04")
        assert [src.read(i + 1)[0, 0] for i in range(3)] == [0, 1, 2]
    dates = np.array(["2024-06-01", "2024-06-21"], dtype="datetime64[ns]")
    series = grid(np.zeros((2, 20, 30), np.float32), dims=("time", "y", "x"), time=dates)
    with rasterio.open(to_cog(series, tmp_path / "t.tif")) as src:
        assert src.descriptions == ("2024-06-01", "2024-06-21")


def test_descriptions_nodata_and_dtype_options(tmp_path, ndvi):
    arr = grid(ndvi).rename("ndvi")
    out = to_cog(arr, tmp_path / "i.tif", nodata=-9999, descriptions=["NDVI 2024"])
    with rasterio.open(out) as src:
        assert src.nodata == -9999 and src.descriptions == ("NDVI 2024",)
        got = src.read(1)
        assert (got[10:20, 30:40] == -9999).all()
        np.testing.assert_array_equal(got[0], ndvi[0])
    scaled = grid(np.array([[0.1234, 0.5], [0.0, 1.0]], np.float32) * 10000)
    with rasterio.open(to_cog(scaled, tmp_path / "u.tif", dtype="uint16")) as src:
        assert src.dtypes == ("uint16",) and src.read(1).tolist() == [[1234, 5000], [0, 10000]]


def test_class_raster_keeps_colours_names_and_nearest_overviews(tmp_path):
    classes = np.zeros((256, 256), np.uint8)
    classes[:, 128:] = 3
    classes[100:110, :] = 1
    colours = {0: (0, 0, 0, 0), 1: (26, 150, 65, 255), 3: (215, 25, 28, 255)}
    names = {0: "background", 1: "healthy", 3: "anomaly"}
    out = to_cog(grid(da.from_array(classes, chunks=100)).rename("classes"), tmp_path / "c.tif",
                 colormap=colours, class_names=names, nodata=0, blocksize=64)  # fmt: skip
    with rasterio.open(out) as src:
        assert src.dtypes == ("uint8",) and src.nodata == 0
        assert src.colormap(1)[3] == (215, 25, 28, 255)
        assert src.colormap(1)[1] == (26, 150, 65, 255)
        assert json.loads(src.tags()["CLASS_NAMES"]) == {"0": "background", "1": "healthy",
                                                         "3": "anomaly"}  # fmt: skip
        np.testing.assert_array_equal(src.read(1), classes)
        ovr = src.read(1, out_shape=(64, 64))
        assert set(np.unique(ovr)) <= {0, 1, 3}  # nearest: no averaged codes
    assert_cog(out, overviews=True)


def test_extra_tags_are_written(tmp_path):
    out = to_cog(grid(np.ones((8, 8), np.float32)), tmp_path / "t.tif",
                 tags={"SENSOR": "sentinel-2-l2a", "BOA_ADD_OFFSET": -1000})  # fmt: skip
    with rasterio.open(out) as src:
        assert src.tags()["SENSOR"] == "sentinel-2-l2a" and src.tags()["BOA_ADD_OFFSET"] == "-1000"


def test_stale_cached_transform_is_not_used(tmp_path):
    arr = grid(np.arange(64, dtype=np.float32).reshape(8, 8)).rio.write_transform(
        Affine(10, 0, 500000, 0, -10, 5800000)
    )
    coarse = arr.coarsen(y=2, x=2).mean()  # keeps the 10 m GeoTransform attribute
    with rasterio.open(to_cog(coarse, tmp_path / "c.tif")) as src:
        assert src.transform == Affine(20, 0, 500000, 0, -20, 5800000)


def test_missing_crs_names_the_output(tmp_path):
    with pytest.raises(MissingCRSError, match=r"nocrs\.tif: .*no CRS"):
        to_cog(grid(np.zeros((4, 4), np.float32), crs=None), tmp_path / "nocrs.tif")


@pytest.mark.parametrize(
    ("data", "kwargs", "match"),
    [
        (lambda: grid(np.zeros((4, 4), np.float32)), {"colormap": {0: (0, 0, 0)}}, "uint8"),
        (lambda: grid(np.zeros((4, 4), np.float32)), {"blocksize": 100}, "multiple of 16"),
        (lambda: grid(np.zeros((4, 4), np.float32)), {"resampling": "magic"}, "resampling"),
        (
            lambda: xr.Dataset(
                {"ndvi": grid(np.zeros((2, 4, 4), np.float32), dims=("time", "y", "x"))}
            ).rio.write_crs(CRS),
            {},
            "2 dates",
        ),
    ],
)
def test_invalid_requests_raise_output_error(tmp_path, data, kwargs, match):
    with pytest.raises(OutputError, match=match):
        to_cog(data(), tmp_path / "x.tif", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_false_refuses_existing_file(tmp_path):
    out = to_cog(grid(np.zeros((4, 4), np.float32)), tmp_path / "x.tif")
    with pytest.raises(OutputError, match="exists"):
        to_cog(grid(np.ones((4, 4), np.float32)), out, overwrite=False)


def test_failure_mid_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    out = to_cog(grid(np.ones((64, 64), np.float32)), tmp_path / "x.tif")
    before = out.read_bytes()

    def chunk(block_info=None):
        (r0, _), (c0, _) = block_info[None]["array-location"]
        if (r0, c0) == (32, 32):
            raise RuntimeError("disk on fire")
        return np.zeros((16, 16), np.float32)

    failing = da.map_blocks(chunk, chunks=((16,) * 4, (16,) * 4), dtype=np.float32)
    with pytest.raises(RuntimeError, match="disk on fire"):
        to_cog(grid(failing), out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.tif"]


def test_all_nodata_output_warns(tmp_path):
    with pytest.warns(UserWarning, match="every pixel is nodata"):
        to_cog(grid(np.full((8, 8), np.nan, np.float32)), tmp_path / "empty.tif")


def test_to_cogs_computes_shared_chunks_once(tmp_path):
    calls = []

    def chunk(block_info=None):
        calls.append(block_info[None]["chunk-location"])
        return np.ones((32, 32), np.float32)

    base = grid(da.map_blocks(chunk, chunks=((32,) * 2, (32,) * 2), dtype=np.float32))
    paths = to_cogs([(base, tmp_path / "a.tif"), (base * 2, tmp_path / "b.tif", {"nodata": -1})])
    assert len(calls) == 4  # four chunks, not eight
    with rasterio.open(paths[1]) as src:
        assert src.nodata == -1 and (src.read(1) == 2).all()


@pytest.mark.slow
def test_memory_stays_bounded_for_a_large_lazy_array(tmp_path):
    psutil = pytest.importorskip("psutil")
    size, chunk = 8192, 1024
    array_bytes = size * size * 4  # 256 MiB

    def block(block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        y = np.arange(r0, r1, dtype=np.float32)[:, None]
        return np.broadcast_to(y / size, (r1 - r0, c1 - c0)).astype(np.float32)

    lazy = da.map_blocks(block, chunks=((chunk,) * 8, (chunk,) * 8), dtype=np.float32)
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with dask.config.set(scheduler="threads"):
            out = to_cog(grid(lazy), tmp_path / "big.tif")
    finally:
        done.set()
        sampler.join()
    growth = peak[0] - base
    # Measured: ~115 MiB here and ~120 MiB for a 512 MiB array (GDAL's overview strips and
    # encoder threads); 430 MiB before the block cache was capped during the COG copy.
    assert growth < 0.6 * array_bytes, f"RSS grew by {growth / 2**20:.0f} MiB"
    with rasterio.open(out) as src:
        assert src.shape == (size, size) and src.overviews(1) == [2, 4, 8, 16]
        assert src.read(1, window=((4096, 4097), (0, 1)))[0, 0] == pytest.approx(0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif"]


def _gdal_cache_max() -> int:
    """The block cache GDAL itself uses, in bytes, asked of the libgdal rasterio loaded."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs Linux's /proc")
    libs = {line.split()[-1] for line in maps.read_text().splitlines() if "libgdal" in line}
    wheel = Path(rasterio.__file__).parent.parent / "rasterio.libs"  # pyogrio has its own
    libs = {lib for lib in libs if Path(lib).parent == wheel} or libs
    if len(libs) != 1:
        pytest.skip(f"cannot tell rasterio's libgdal among {sorted(libs)}")
    gdal = ctypes.CDLL(libs.pop())
    gdal.GDALGetCacheMax64.restype = ctypes.c_int64
    return gdal.GDALGetCacheMax64()


def test_gdal_cache_limit_yields_to_the_users_setting(monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    with gdal_cache_limit(48):
        assert _gdal_cache_max() == 48 * 2**20  # megabytes, not bytes
        with gdal_cache_limit(16):  # an enclosing limit (or the user's) wins
            assert _gdal_cache_max() == 48 * 2**20
    monkeypatch.setenv("GDAL_CACHEMAX", "200")
    with gdal_cache_limit(48):
        assert not rasterio.env.hasenv() or "GDAL_CACHEMAX" not in rasterio.env.getenv()
