"""``synthetic_scene``: a lazy Sentinel-2-like Scene with known ground truth.

Each dask chunk builds the part of the vector layout that touches it
(:class:`~agrivision.synthetic.layout.Landscape`), rasterises it with
``rasterio.features.rasterize`` and mixes endmember spectra per pixel; noise, texture and
clouds are counter-based hashes of (seed, row, col). A pixel's value therefore depends only
on the seed and its position, never on the chunking, and a full 10980 x 10980 tile is
described in milliseconds without holding anything in memory.

Truth codes
-----------
``classes`` (uint8): 0 background (not a crop field), 1 healthy, 2 stressed, 3 pest/disease
damage, 4 bare soil/weeds; in time series a field whose crop has not emerged or has been
harvested (green + dry cover < 0.3) is 4. ``landcover`` (uint8): see
:data:`~agrivision.synthetic.layout.LANDCOVER` (1 cropland, 2 grassland and field margins,
3 road, 4 forest, 5 water, 6 built). ``clouds`` (uint8): 0 clear, 1 cloud (SCL 8/9),
2 thin cirrus (SCL 10), 3 cloud shadow (SCL 3). ``field_id`` (int32): the field under the
pixel, 0 outside fields.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr
from affine import Affine
from dask.base import tokenize
from rasterio.errors import NotGeoreferencedWarning

from agrivision.errors import ConfigError, SensorError
from agrivision.sensors import load_profile
from agrivision.synthetic import noise
from agrivision.synthetic.layout import CONDITIONS, LANDCOVER, Landscape, ellipses
from agrivision.synthetic.spectra import (
    BANDS,
    CROPS,
    EM,
    PATH_REFLECTANCE,
    SPECTRA,
    TOA_BANDS,
    TOA_SPECTRA,
    phenology,
)

#: Date of the peak-season snapshot made when ``dates`` is None.
SNAPSHOT_DATE = "2024-06-15"
_LC = {v: k for k, v in LANDCOVER.items()}
_COND = {name: i for i, name in enumerate(CONDITIONS)}
_SHADOW_M = 1200.0  # horizontal cloud-to-shadow distance (cloud ~1.7 km high, sun 35 deg)
_SHADOW_DIR = np.deg2rad(340.0)  # shadows fall to the north-north-west (sun in the SSE)
#: The sun that casts those shadows (STAC ``view:sun_*``, degrees): azimuth 160 (SSE) and an
#: elevation at which clouds 1.7 km high cast their shadow 1.2 km away.
SUN = {"view:sun_azimuth": 160.0, "view:sun_elevation": 55.0}
# rasterio's in-memory rasterize target warns before its transform is set (in threads).
warnings.filterwarnings(
    "ignore", message="Dataset has no geotransform", category=NotGeoreferencedWarning,
    module="rasterio.features",
)  # fmt: skip
# Hash streams.
_S_TEX, _S_SEV, _S_SOIL, _S_PIX, _S_CLOUD, _S_COVER = 101, 102, 103, 104, 105, 106


@dataclass
class SyntheticTruth:
    """Ground truth of a synthetic scene (lazy rasters on the scene's grid, vectors on demand).

    Attributes
    ----------
    classes
        uint8 health classes, ``(y, x)`` or ``(time, y, x)`` (codes in the module docstring).
    landcover
        uint8 land-cover codes ``(y, x)``.
    clouds
        uint8 cloud truth ``(y, x)`` or ``(time, y, x)``.
    field_id
        int32 field id under each pixel ``(y, x)``, 0 outside fields.
    landscape
        The procedural layout; :attr:`fields`, :attr:`patches` and :attr:`features` are
        built from it on first access (a full 10980² tile takes a few seconds).
    """

    classes: xr.DataArray
    landcover: xr.DataArray
    clouds: xr.DataArray
    field_id: xr.DataArray
    landscape: Landscape

    @functools.cached_property
    def _layout(self):
        return self.landscape.layout()

    @property
    def fields(self) -> gpd.GeoDataFrame:
        """Fields with truth attributes (``crop``, ``condition``, ``*_share``...), scene CRS."""
        return self._layout.fields

    @property
    def patches(self) -> gpd.GeoDataFrame:
        """Stress, pest and weed patches at full development, clipped to their fields."""
        return self._layout.patches

    @property
    def features(self) -> gpd.GeoDataFrame:
        """Non-crop land-cover polygons (forest, meadows, ponds, farmsteads, roads)."""
        return self._layout.landcover


def synthetic_scene(
    seed: int = 0,
    *,
    shape: tuple[int, int] = (1024, 1024),
    resolution: float = 10.0,
    crs: str = "EPSG:32633",
    origin: tuple[float, float] = (500000.0, 5800000.0),
    dates: Sequence[str | dt.date] | None = None,
    chunks: int | tuple[int, int] = 512,
    clouds: bool = True,
    sensor: str = "sentinel-2-l2a",
    mean_field_ha: float = 20.0,
) -> tuple[xr.Dataset, SyntheticTruth]:
    """A lazy, dask-backed synthetic Scene of crop fields with known ground truth.

    Parameters
    ----------
    seed
        Values are a function of the seed and pixel position only (not of ``chunks``).
    shape
        ``(rows, cols)`` in pixels.
    resolution
        Pixel size in metres.
    crs, origin
        Projected CRS and the map coordinates of the top-left corner.
    dates
        None: one peak-season snapshot dated :data:`SNAPSHOT_DATE` with dims ``(y, x)`` (all
        crops at full canopy, problems fully developed). A list of dates: dims
        ``(time, y, x)`` with crop phenology, problems that appear and grow in "declining"
        fields, and different clouds per date.
    chunks
        Dask chunk edge(s) in pixels.
    clouds
        Add clouds, cirrus and cloud shadows (and their SCL codes).
    sensor
        Sensor profile: the scene holds the profile's bands that are modelled
        (``coastal, blue, green, red, rededge1-3, nir, nir08, swir16, swir22``), plus ``scl``
        (uint8 Sentinel-2 scene classification) when the profile has an SCL mask. A profile
        with a ``cirrus`` band (``sentinel-2-l1c``) gets top-of-atmosphere reflectance: all
        13 bands (B09 and B10 too), atmospheric path reflectance added, and shadows that
        keep only the diffuse light (80 % darker where full, against 60 % at the surface).
    mean_field_ha
        Approximate mean field size.

    Returns
    -------
    (xr.Dataset, SyntheticTruth)
        float32 reflectance 0..1 per band named by STAC common name, CRS and transform set
        with rioxarray, ``attrs["sensor"]``, ``attrs["datetime"]`` for a snapshot.
    """
    profile = load_profile(sensor)
    toa = any(b.common_name == "cirrus" for b in profile.bands.values())
    modelled = (*BANDS, *TOA_BANDS) if toa else BANDS
    names = [b.common_name for b in profile.bands.values() if b.common_name in modelled]
    if not names:
        raise SensorError(
            f"sensor {sensor!r} has none of the modelled bands {', '.join(BANDS)}",
            source="synthetic", fix="use sentinel-2-l2a or another multispectral profile",
        )  # fmt: skip
    with_scl = any(m.kind == "scl" for m in profile.masks.values())
    rows, cols = (int(v) for v in shape)
    if rows <= 0 or cols <= 0 or resolution <= 0:
        raise ConfigError(f"invalid shape {shape} or resolution {resolution}", source="synthetic")
    stamps = _dates(dates)
    x0, y0 = (float(v) for v in origin)
    bounds = (x0, y0 - rows * resolution, x0 + cols * resolution, y0)
    landscape = Landscape(seed, bounds, crs=crs, mean_field_ha=mean_field_ha)
    layers = [*names, "scl", "classes", "clouds", "landcover", "field_id"]
    renderer = _Renderer(
        landscape=landscape, origin=(x0, y0), resolution=float(resolution),
        doys=[None] if dates is None else [s.day_of_year for s in stamps],
        ordinals=[s.toordinal() for s in stamps], clouds=clouds,
        bands=[modelled.index(n) for n in names], toa=toa,
    )  # fmt: skip
    cy, cx = (chunks, chunks) if isinstance(chunks, int) else chunks
    stack = da.map_blocks(
        renderer,
        chunks=((1,) * len(stamps), (len(layers),), _split(rows, cy), _split(cols, cx)),
        dtype=np.float32,
        meta=np.empty((0, 0, 0, 0), np.float32),
        name="synthetic-" + tokenize(seed, shape, resolution, crs, origin, dates, chunks,
                                     clouds, names, mean_field_ha),
    )  # fmt: skip

    def layer(name: str, dtype=np.float32, dated: bool = True) -> xr.DataArray:
        data = stack[:, layers.index(name)]
        dims: tuple[str, ...]
        if dates is None or not dated:
            data, dims = data[0], ("y", "x")
        else:
            dims = ("time", "y", "x")
        return xr.DataArray(data.astype(dtype) if dtype != np.float32 else data, dims=dims)

    coords = {"y": y0 - (np.arange(rows) + 0.5) * resolution,
              "x": x0 + (np.arange(cols) + 0.5) * resolution}  # fmt: skip
    if dates is not None:
        coords["time"] = pd.DatetimeIndex(stamps)
    variables = {n: layer(n) for n in names}
    if with_scl:
        variables["scl"] = layer("scl", np.uint8)
    transform = Affine(resolution, 0.0, x0, 0.0, -resolution, y0)
    # CRS and transform written once per Dataset (rioxarray's writers are slow per variable).
    scene = xr.Dataset(variables, coords=coords).rio.write_crs(crs).rio.write_transform(transform)
    scene.attrs = {"sensor": profile.name, "synthetic_seed": seed, **SUN}
    if dates is None:
        scene.attrs["datetime"] = SNAPSHOT_DATE
    rasters = xr.Dataset(
        {"classes": layer("classes", np.uint8), "clouds": layer("clouds", np.uint8),
         "landcover": layer("landcover", np.uint8, dated=False),
         "field_id": layer("field_id", np.int32, dated=False)},
        coords=coords,
    ).rio.write_crs(crs).rio.write_transform(transform)  # fmt: skip
    truth = SyntheticTruth(
        classes=rasters["classes"], landcover=rasters["landcover"], clouds=rasters["clouds"],
        field_id=rasters["field_id"], landscape=landscape,
    )  # fmt: skip
    return scene, truth


def _dates(dates: Sequence[str | dt.date] | None) -> list[pd.Timestamp]:
    values = [SNAPSHOT_DATE] if dates is None else list(dates)
    if not values:
        raise ConfigError("dates is empty", source="synthetic", fix="pass None or some dates")
    try:
        stamps = [pd.Timestamp(v).normalize() for v in values]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid date in {values} ({exc})", source="synthetic") from exc
    if len(set(stamps)) != len(stamps) or stamps != sorted(stamps):
        raise ConfigError("dates must be unique and ascending", source="synthetic")
    return stamps


def _split(n: int, size: int) -> tuple[int, ...]:
    return (size,) * (n // size) + ((n % size,) if n % size else ())


@dataclass(frozen=True, eq=False)  # hashed by identity, for the per-window cache
class _Renderer:
    """Renders one chunk ``(1, layers, h, w)`` of the stacked scene and truth."""

    landscape: Landscape
    origin: tuple[float, float]
    resolution: float
    doys: list[int | None]
    ordinals: list[int]
    clouds: bool
    bands: list[int]  # indices into spectra.BANDS (then TOA_BANDS when toa)
    toa: bool = False

    def __call__(self, block_info: dict) -> np.ndarray:
        """One ``(1, layers, rows, cols)`` block; ``block_info`` as dask's ``map_blocks`` gives it."""
        (t, _), _, (r0, r1), (c0, c1) = block_info[None]["array-location"]
        rows = np.arange(r0, r1)[:, None]
        cols = np.arange(c0, c1)[None, :]
        static = self._static(r0, r1, c0, c1)
        doy, ordinal = self.doys[t], self.ordinals[t]
        classes, fractions = self._surface(static, doy)
        refl = np.tensordot(SPECTRA[:-1].T, fractions, axes=1)  # (bands, h, w)
        seed = self.landscape.seed
        jitter = noise.uniform16(seed, _S_PIX, rows, cols, len(BANDS))
        refl *= 1 + 0.03 * (jitter - 0.5)  # +-1.5 % sensor noise per band
        spectra, darkening = SPECTRA, 0.6
        if self.toa:
            extra = np.tensordot(TOA_SPECTRA[:-1].T, fractions, axes=1)
            refl = np.concatenate([refl, extra])
            spectra, darkening = np.concatenate([SPECTRA, TOA_SPECTRA], axis=1), 0.8
        red, nir = refl[BANDS.index("red")], refl[BANDS.index("nir")]
        ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
        lc = static["landcover"]
        scl = np.where(lc == _LC["water"], 6, np.where(ndvi > 0.35, 4, 5)).astype(np.float32)
        cloud_truth = np.zeros_like(scl)
        if self.clouds:
            thick, shadow = self._clouds(rows, cols, ordinal)
            # Every altered pixel is labelled: clear pixels keep their surface values.
            shadow = np.where((shadow >= 0.4) & (thick == 0), shadow, 0.0)
            refl *= (1 - darkening * shadow) * (1 - thick)
            refl += spectra[EM["cloud"]][:, None, None] * thick
            codes = (
                (shadow > 0, 3, 3), ((thick > 0) & (thick < 0.3), 10, 2),
                ((thick >= 0.3) & (thick < 0.6), 8, 1), (thick >= 0.6, 9, 1),
            )  # fmt: skip
            for mask, scl_code, truth_code in codes:
                scl[mask] = scl_code
                cloud_truth[mask] = truth_code
        if self.toa:
            refl += PATH_REFLECTANCE[:, None, None]
        np.clip(refl, 0.0, 1.0, out=refl)
        out = np.concatenate(
            [refl[self.bands],
             np.stack([scl, classes, cloud_truth, lc, static["field_id"]]).astype(np.float32)]
        )  # fmt: skip
        return out[None].astype(np.float32, copy=False)

    @functools.lru_cache(maxsize=8)  # noqa: B019  (the dates of a chunk share its layout)
    def _static(self, r0: int, r1: int, c0: int, c1: int) -> dict[str, np.ndarray]:
        """Date-independent rasters of a window: field ids, land cover, field attributes."""
        res = self.resolution
        x0, y0 = self.origin[0] + c0 * res, self.origin[1] - r0 * res
        window = (x0, y0 - (r1 - r0) * res, x0 + (c1 - c0) * res, y0)
        transform = Affine(res, 0.0, x0, 0.0, -res, y0)
        shape = (r1 - r0, c1 - c0)
        layout = self.landscape.layout(window)
        fields, patches = layout.fields, layout.patches
        fid = _burn(fields.geometry, fields["field_id"], shape, transform, np.int32)
        lc = np.full(shape, _LC["grassland"], dtype=np.uint8)
        feats = layout.landcover
        order = [_LC[n] for n in ("forest", "grassland", "built", "water", "road")]
        for code in order:
            sel = feats["landcover"].to_numpy() == code
            if sel.any():
                burnt = _burn(feats.geometry[sel], np.ones(sel.sum()), shape, transform, np.uint8)
                lc[burnt > 0] = code
        in_field = fid > 0
        lc[in_field] = _LC["cropland"]
        # Per-pixel field attributes via the position of the field id in the table.
        ids = fields["field_id"].to_numpy()
        pos = np.searchsorted(ids, fid)
        pos[~in_field] = 0
        attrs = {
            "crop": np.array([CROPS.index(c) for c in fields["crop"]], dtype=np.int8),
            "condition": np.array([_COND[c] for c in fields["condition"]], dtype=np.int8),
            "vigor": fields["vigor"].to_numpy(np.float32),
            "soil": fields["soil_brightness"].to_numpy(np.float32),
            "onset": fields["onset_doy"].to_numpy(np.float32),
        }
        static = {k: (v[pos] if len(v) else np.zeros(shape, v.dtype)) for k, v in attrs.items()}
        static.update(field_id=fid.astype(np.float32), landcover=lc, in_field=in_field)
        rows, cols = np.arange(r0, r1), np.arange(c0, c1)
        seed = self.landscape.seed
        static.update(
            patches=patches, transform=transform, shape=shape, fid=fid,
            tex=noise.fbm(seed, _S_TEX, rows, cols, [150 / res, 50 / res]),
            soil_tex=noise.fbm(seed, _S_SOIL, rows, cols, [100 / res, 30 / res]),
            sev_tex=noise.fbm(seed, _S_SEV, rows, cols, [80 / res, 25 / res]),
        )  # fmt: skip
        return static

    def _surface(self, st: dict, doy: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Truth classes and endmember fractions ``(n_endmembers - 1, h, w)`` of clear sky."""
        shape, in_field, cond = st["shape"], st["in_field"], st["condition"]
        tex, soil_tex, sev_tex = st["tex"], st["soil_tex"], st["sev_tex"]
        grow = _growth(st["onset"], doy)  # 0..1 per pixel, for declining fields
        classes = np.where(in_field, 1, 0).astype(np.uint8)
        active = grow > 0
        classes[in_field & (cond == _COND["uniform_stress"]) & active] = 2
        classes[in_field & (cond == _COND["bare"])] = 4
        patch_class, patch_grow = self._patches(st, doy)
        has_patch = patch_class > 0
        classes[has_patch] = patch_class[has_patch]
        # Crop state from phenology, per crop.
        green = np.zeros(shape, np.float32)
        dry = np.zeros(shape, np.float32)
        flower = np.zeros(shape, np.float32)
        for code, crop in enumerate(CROPS):
            sel = in_field & (st["crop"] == code)
            g, d, f = phenology(crop, doy)
            green[sel], dry[sel], flower[sel] = g, d, f
        green *= st["vigor"] * (1 + 0.1 * (tex - 0.5))
        np.clip(green, 0.0, 0.97, out=green)
        if doy is not None:
            classes[in_field & (green + dry < 0.3)] = 4
        F = np.zeros((len(SPECTRA) - 1, *shape), np.float32)
        crop_em = np.array([EM[c] for c in CROPS])[st["crop"]]
        # Severity of stress: grows with the problem, patchy within it.
        growth = np.where(has_patch, patch_grow, grow)
        severity = np.clip(growth * (0.55 + 0.6 * sev_tex), 0.0, 1.0)
        stressed = classes == 2
        pest = classes == 3
        bare_field = in_field & (cond == _COND["bare"])
        weeds = (classes == 4) & ~bare_field & has_patch
        healthy_green = np.where(stressed, green * (1 - severity), green)
        healthy_green = np.where(pest, green * 0.3, healthy_green)
        healthy_green[bare_field | weeds] = 0.0
        veg = healthy_green * (1 - flower)
        rows_idx, cols_idx = np.nonzero(in_field)
        F[crop_em[rows_idx, cols_idx], rows_idx, cols_idx] = veg[rows_idx, cols_idx]
        F[EM["flower"]] = healthy_green * flower
        F[EM["stressed"]] = np.where(stressed, green * severity * 0.8, 0) + np.where(
            pest, green * 0.1, 0
        )
        F[EM["dry"]] = dry + np.where(pest, green * 0.45, 0) + np.where(stressed, 0.05 * green, 0)
        grass = np.where(bare_field, 0.03 * (0.5 + tex), 0) + np.where(
            weeds, 0.4 * (0.8 + 0.4 * tex), 0
        )
        lc = st["landcover"]
        grass = np.where(lc == _LC["grassland"], 0.8 * (0.9 + 0.2 * tex), grass)
        F[EM["grass"]] = grass
        F[EM["forest"]] = np.where(lc == _LC["forest"], 0.9 * (0.9 + 0.2 * tex), 0)
        for name in ("water", "road", "built"):
            F[EM[name]] = np.where(lc == _LC[name], 0.85 if name == "built" else 1.0, 0)
        cover = F.sum(axis=0)
        F[EM["soil"]] = (
            np.clip(1 - cover, 0, 1) * np.where(in_field, st["soil"], 1.0) * (0.9 + 0.2 * soil_tex)
        )
        return classes, F

    def _patches(self, st: dict, doy: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Class of the (grown) patch under each pixel, masked to its own field, and growth."""
        patches = st["patches"]
        shape = st["shape"]
        if patches.empty:
            return np.zeros(shape, np.uint8), np.zeros(shape, np.float32)
        growth = _growth(patches["onset_doy"].to_numpy(np.float32), doy)
        live = growth > 0
        if not live.any():
            return np.zeros(shape, np.uint8), np.zeros(shape, np.float32)
        polys = ellipses(patches[live], growth[live])
        index = np.flatnonzero(live) + 1
        burnt = _burn(polys, index, shape, st["transform"], np.int32)
        hit = burnt > 0
        k = np.where(hit, burnt - 1, 0)
        own = hit & (patches["field_id"].to_numpy()[k] == st["fid"])
        cls = np.where(own, patches["class"].to_numpy()[k], 0).astype(np.uint8)
        return cls, np.where(own, growth[k], 0).astype(np.float32)

    def _clouds(
        self, rows: np.ndarray, cols: np.ndarray, ordinal: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cloud optical thickness and shadow strength, both 0..1, for one date."""
        seed, res = self.landscape.seed, self.resolution
        cells = [3000 / res, 1200 / res, 500 / res, 200 / res]
        weights = [0.5, 0.25, 0.15, 0.1]
        stream = _S_CLOUD * 100000 + ordinal
        level = 0.6 + 0.12 * float(noise.uniform(seed, _S_COVER, ordinal, 0))

        def thickness(r: np.ndarray, c: np.ndarray) -> np.ndarray:
            n = noise.fbm(seed, stream, r, c, cells, weights)
            return np.clip((n - level) / 0.1, 0.0, 1.0)

        # The shadow of a pixel's cloud falls _SHADOW_M away; its darkness saturates fast.
        shift = _SHADOW_M / res
        dr, dc = np.cos(_SHADOW_DIR) * shift, -np.sin(_SHADOW_DIR) * shift
        shadow = np.minimum(1.0, 4.0 * thickness(rows + dr, cols + dc))
        return thickness(rows, cols), shadow


def _growth(onset: np.ndarray, doy: int | None) -> np.ndarray:
    """Development 0..1 of a problem: 1 without onset (NaN) or in a snapshot; else ramps
    from 0.35 at the onset day to 1 forty days later (0 before onset)."""
    onset = np.asarray(onset, dtype=np.float32)
    if doy is None:
        return np.ones_like(onset)
    ramp = np.where(doy >= onset, np.minimum(1.0, 0.35 + 0.65 * (doy - onset) / 40.0), 0.0)
    return np.where(np.isnan(onset), 1.0, ramp).astype(np.float32)


def _burn(geoms, values, shape, transform, dtype) -> np.ndarray:
    """Rasterise (pixel centres inside) with a fill of 0; empty input -> zeros.

    Simple polygons are handed to GDAL as coordinate arrays: shapely's per-vertex
    ``__geo_interface__`` was most of the rasterising time.
    """
    geoms = np.asarray(geoms, dtype=object)
    values = np.asarray(values)
    keep = ~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)
    geoms, values = geoms[keep], values[keep]
    if not len(geoms):
        return np.zeros(shape, dtype)
    simple = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
    shapes = list(zip(geoms[~simple], values[~simple], strict=True))
    if simple.any():
        coords = shapely.get_coordinates(shapely.get_exterior_ring(geoms[simple]))
        rings = np.split(coords, np.cumsum(shapely.get_num_coordinates(geoms[simple]))[:-1])
        shapes += [({"type": "Polygon", "coordinates": [r]}, v)
                   for r, v in zip(rings, values[simple], strict=True)]  # fmt: skip
    return rasterio.features.rasterize(shapes, out_shape=shape, transform=transform, fill=0,
                                       dtype=dtype)  # fmt: skip
