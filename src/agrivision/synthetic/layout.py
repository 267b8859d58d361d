"""Synthetic landscapes as vectors: crop fields, problem patches and other land cover.

A jittered grid of quadrilateral cells (grid lines and vertices displaced by hashed
amounts) is split into one to three strips per cell, the typical European parcel shape;
each strip is inset edge by edge, leaving 6 m margins between fields and 12 m roads along
some grid lines. Some cells are forest, meadow, a pond or a farmstead instead of crops.
Every attribute (crop, condition, patch positions) is a hash of the seed and the cell
index, so a layout is deterministic and needs no RNG state. Problem patches of one field
never overlap one another (they are spaced along the field's long axis), which makes the
per-field class shares exact sums of clipped patch areas.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from agrivision.errors import ConfigError
from agrivision.health.schema import DEFAULT_SCHEMA
from agrivision.synthetic.noise import uniform
from agrivision.synthetic.spectra import CROPS

#: Land-cover codes of ``truth.landcover`` (0 is never produced).
LANDCOVER = {0: "nodata", 1: "cropland", 2: "grassland", 3: "road", 4: "forest", 5: "water",
             6: "built"}  # fmt: skip
#: Field conditions: what kind of truth a field carries.
CONDITIONS = ("healthy", "stress_patches", "pest", "uniform_stress", "weeds", "bare")
#: Health classes of the truth raster: ``{code: name}`` of the project schema.
CLASSES = dict(DEFAULT_SCHEMA.names)
# Truth codes of the patches: stress ellipses, pest spots (an anomaly in the schema), weeds.
_STRESSED = DEFAULT_SCHEMA.code("stressed")
_PEST = DEFAULT_SCHEMA.code("anomaly")
_BARE = DEFAULT_SCHEMA.code("bare_soil")

_CONDITION_CDF = (0.45, 0.62, 0.74, 0.81, 0.90, 1.0)
_CROP_CDF = (0.35, 0.60, 0.75, 1.0)
_STRIPS_CDF = (0.5, 0.8, 1.0)  # 1, 2 or 3 strips per cell: 1.7 fields per cell on average
_CELL_CDF = {"forest": 0.06, "water": 0.085, "built": 0.11, "grassland": 0.16}
_MARGIN_M = 3.0  # each side of a field boundary
_ROAD_HALF_M = 6.0
_PEST_SPACING_M = 60.0  # lattice of pest spots; radius + jitter (<= 28 m) stay below half
# Hash streams (any distinct integers).
_S_LINE_X, _S_LINE_Y, _S_VX, _S_VY, _S_ROAD_X, _S_ROAD_Y = 11, 12, 13, 14, 15, 16
_S_CELL, _S_STRIPS, _S_DIV, _S_ATTR, _S_PATCH, _S_WATER = 21, 22, 23, 30, 40, 50


@dataclass(frozen=True)
class Layout:
    """Vector truth of a synthetic landscape (all in ``crs``, a projected CRS in metres).

    Attributes
    ----------
    fields
        One row per crop field: ``field_id`` (unique and positive; it encodes the grid
        cell), ``crop``, ``condition`` (one of :data:`CONDITIONS`), ``declining`` (the
        problem appears at ``onset_doy`` and grows for 40 days), ``area_ha``, class shares at full development ``healthy_share``,
        ``stressed_share``, ``pest_share``, ``bare_share`` (area fractions, sum 1), and the
        rendering parameters ``vigor`` and ``soil_brightness``.
    patches
        One row per stress ellipse, pest spot or weed blob: ``field_id``, ``class`` (2, 3
        or 4), ``onset_doy`` and the ellipse ``cx, cy, a, b, ux, uy`` (centre, semi-axes in
        metres, unit major axis); geometry = the full-size ellipse clipped to its field.
    landcover
        Non-crop features: ``landcover`` code (see :data:`LANDCOVER`), ``name``, geometry.
    bounds
        ``(xmin, ymin, xmax, ymax)`` of the landscape.
    """

    fields: gpd.GeoDataFrame
    patches: gpd.GeoDataFrame
    landcover: gpd.GeoDataFrame
    bounds: tuple[float, float, float, float]


def make_fields(
    seed: int = 0,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    shape: tuple[int, int] = (1024, 1024),
    resolution: float = 10.0,
    origin: tuple[float, float] = (500000.0, 5800000.0),
    crs: str = "EPSG:32633",
    mean_field_ha: float = 20.0,
    n_fields: int | None = None,
) -> gpd.GeoDataFrame:
    """Realistic crop parcels with known truth attributes (see :func:`make_layout`).

    Returns
    -------
    GeoDataFrame
        ``Layout.fields``: ``field_id``, ``crop``, ``condition``, shares, ``area_ha``, geometry.
    """
    return make_layout(
        seed, bounds=bounds, shape=shape, resolution=resolution, origin=origin, crs=crs,
        mean_field_ha=mean_field_ha, n_fields=n_fields,
    ).fields  # fmt: skip


def make_layout(
    seed: int = 0,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    shape: tuple[int, int] = (1024, 1024),
    resolution: float = 10.0,
    origin: tuple[float, float] = (500000.0, 5800000.0),
    crs: str = "EPSG:32633",
    mean_field_ha: float = 20.0,
    n_fields: int | None = None,
) -> Layout:
    """Generate fields, problem patches and land cover for an area.

    Parameters
    ----------
    seed
        Everything is a deterministic function of the seed.
    bounds
        ``(xmin, ymin, xmax, ymax)`` in ``crs`` units (metres); default: the grid of
        ``shape`` pixels of ``resolution`` metres whose top-left corner is ``origin``.
    crs
        A projected CRS in metres.
    mean_field_ha
        Approximate mean field size in hectares (fields cut by the bounds are smaller).
    n_fields
        Approximate number of fields instead of ``mean_field_ha``.

    Returns
    -------
    Layout
        Field ids are unique but not consecutive (they encode the grid cell).
    """
    if bounds is None:
        x0, y0 = origin
        bounds = (x0, y0 - shape[0] * resolution, x0 + shape[1] * resolution, y0)
    if n_fields is not None:
        xmin, ymin, xmax, ymax = bounds
        mean_field_ha = 0.8 * (xmax - xmin) * (ymax - ymin) / 1e4 / max(n_fields, 1)
    return Landscape(seed, bounds, crs=crs, mean_field_ha=mean_field_ha).layout()


class Landscape:
    """The procedural definition of a layout: any window of it can be built on its own.

    Grid lines, vertices and all attributes are hashes of global cell indices, so the part
    of the layout that touches a window (one dask chunk) is identical to the same part of
    the full layout; chunks never need the whole vector data set.
    """

    def __init__(
        self,
        seed: int,
        bounds: tuple[float, float, float, float],
        *,
        crs: str = "EPSG:32633",
        mean_field_ha: float = 20.0,
    ):
        if not CRS(crs).is_projected:
            raise ConfigError(
                f"synthetic layouts need a projected CRS in metres, not {crs}",
                source="synthetic", fix="use a UTM zone such as EPSG:32633",
            )  # fmt: skip
        if mean_field_ha <= 0:
            raise ConfigError(f"mean_field_ha must be positive, got {mean_field_ha}")
        self.seed = seed
        self.crs = crs
        self.bounds = tuple(float(v) for v in bounds)
        xmin, ymin, xmax, ymax = self.bounds
        self.cell = float(np.sqrt(mean_field_ha * 1e4 * 1.7))  # 1.7 strips per cell
        self.ncols = int(np.ceil((xmax - xmin) / self.cell)) + 2
        self.nrows = int(np.ceil((ymax - ymin) / self.cell)) + 2
        if 4 * self.nrows * self.ncols >= 2**24:  # field ids must stay exact in float32
            raise ConfigError(
                "too many fields for one synthetic layout", source="synthetic",
                fix="use larger fields (mean_field_ha) or a smaller area",
            )  # fmt: skip

    def layout(self, window: tuple[float, float, float, float] | None = None) -> Layout:
        """The full layout, or the part whose cells may touch ``window`` (map bounds).

        A window layout omits the clipped patch geometries and class shares (they are not
        needed for rasterising): patches carry their full ellipse instead.
        """
        rows, cols = self._cell_range(window)
        cells = self._cells(rows, cols)
        fields, quads = self._fields(cells)
        patches = _patches(self.seed, fields, quads)
        if window is None:
            field_geom = fields.set_index("field_id").geometry.reindex(patches["field_id"])
            patches["geometry"] = shapely.intersection(
                patches["geometry"].to_numpy(), field_geom.to_numpy()
            )
            # Patches of fields cut by the bounds may lie wholly outside.
            patches = patches[~shapely.is_empty(patches["geometry"].to_numpy())]
            patches = patches.reset_index(drop=True)
            fields = _with_shares(fields, patches)
        return Layout(
            fields=gpd.GeoDataFrame(fields, geometry="geometry", crs=self.crs),
            patches=gpd.GeoDataFrame(patches, geometry="geometry", crs=self.crs),
            landcover=gpd.GeoDataFrame(self._landcover(cells), geometry="geometry", crs=self.crs),
            bounds=self.bounds,  # type: ignore[arg-type]
        )

    def _cell_range(self, window) -> tuple[np.ndarray, np.ndarray]:
        if window is None:
            return np.arange(self.nrows), np.arange(self.ncols)
        xmin, _, _, ymax = self.bounds
        wx0, wy0, wx1, wy1 = window
        c = self.cell  # vertices stray at most 0.3 cells from their nominal grid lines
        b0, b1 = int(np.floor((wx0 - xmin) / c - 1)), int(np.ceil((wx1 - xmin) / c + 2))
        a0, a1 = int(np.floor((ymax - wy1) / c - 1)), int(np.ceil((ymax - wy0) / c + 2))
        return (
            np.arange(max(a0, 0), min(a1, self.nrows)),
            np.arange(max(b0, 0), min(b1, self.ncols)),
        )

    def _vertices(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Jittered grid vertices ``(len(a), len(b), 2)`` at grid-line indices ``a``, ``b``."""
        xmin, _, _, ymax = self.bounds
        c, seed = self.cell, self.seed
        lx = xmin + (b - 1) * c + (uniform(seed, _S_LINE_X, 0, b) - 0.5) * 0.4 * c
        ly = ymax - (a - 1) * c - (uniform(seed, _S_LINE_Y, 0, a) - 0.5) * 0.4 * c
        A, B = a[:, None], b[None, :]
        vx = lx[None, :] + (uniform(seed, _S_VX, A, B) - 0.5) * 0.2 * c
        vy = ly[:, None] + (uniform(seed, _S_VY, A, B) - 0.5) * 0.2 * c
        return np.stack([vx, vy], axis=-1)

    def _road_rows(self, a: np.ndarray) -> np.ndarray:
        return uniform(self.seed, _S_ROAD_Y, 0, a) < 0.25

    def _road_cols(self, b: np.ndarray) -> np.ndarray:
        return uniform(self.seed, _S_ROAD_X, 0, b) < 0.25

    def _cells(self, rows: np.ndarray, cols: np.ndarray) -> _Cells:
        """Cells of the row/column ranges: CCW quads [BL, BR, TR, TL] and edge offsets."""
        a_lines = np.arange(rows[0], rows[-1] + 2) if rows.size else rows
        b_lines = np.arange(cols[0], cols[-1] + 2) if cols.size else cols
        V = self._vertices(a_lines, b_lines)
        A, B = (g.ravel() for g in np.meshgrid(rows, cols, indexing="ij"))
        ia, ib = A - (rows[0] if rows.size else 0), B - (cols[0] if cols.size else 0)
        quads = np.stack([V[ia + 1, ib], V[ia + 1, ib + 1], V[ia, ib + 1], V[ia, ib]], axis=1)
        road = np.stack(
            [self._road_rows(A + 1), self._road_cols(B + 1), self._road_rows(A),
             self._road_cols(B)], axis=1,
        )  # fmt: skip  # edges: bottom, right, top, left
        return _Cells(
            A, B, quads.reshape(-1, 4, 2), _MARGIN_M + _ROAD_HALF_M * road, V, a_lines, b_lines
        )

    def _fields(self, cells: _Cells) -> tuple[pd.DataFrame, np.ndarray]:
        """Crop fields of the cells (strips, inset) and their inset quads."""
        seed = self.seed
        crop_cells = uniform(seed, _S_CELL, cells.a, cells.b) >= _CELL_CDF["grassland"]
        A, B = cells.a[crop_cells], cells.b[crop_cells]
        quads, offsets = cells.quads[crop_cells], cells.offsets[crop_cells]
        strips = 1 + np.searchsorted(_STRIPS_CDF, uniform(seed, _S_STRIPS, A, B), side="right")
        BL, BR, TR, TL = (quads[:, k] for k in range(4))
        along_x = np.hypot(*(BR - BL).T) >= np.hypot(*(TL - BL).T)
        parts, id_parts, offs = [], [], []
        for k in (1, 2, 3):
            sel = strips == k
            cuts = [np.zeros(sel.sum()), np.ones(sel.sum())]
            for i in range(1, k):
                jitter = (uniform(seed, _S_DIV + i, A[sel], B[sel]) - 0.5) * 0.16 / k
                cuts.insert(i, i / k + jitter)
            bl, br, tr, tl = BL[sel], BR[sel], TR[sel], TL[sel]
            ax = along_x[sel]
            for i in range(k):
                t0, t1 = cuts[i][:, None], cuts[i + 1][:, None]
                # Strips lie side by side along the longer pair of edges.
                quad_x = np.stack(
                    [bl + t0 * (br - bl), bl + t1 * (br - bl), tl + t1 * (tr - tl),
                     tl + t0 * (tr - tl)], axis=1,
                )  # fmt: skip
                quad_y = np.stack(
                    [bl + t0 * (tl - bl), br + t0 * (tr - br), br + t1 * (tr - br),
                     bl + t1 * (tl - bl)], axis=1,
                )  # fmt: skip
                parts.append(np.where(ax[:, None, None], quad_x, quad_y))
                off = offsets[sel].copy()
                # Edges between strips get the narrow margin: edges 3/1 (left/right) when
                # split along x, edges 0/2 (bottom/top) when split along y.
                if i > 0:
                    off[ax, 3] = _MARGIN_M
                    off[~ax, 0] = _MARGIN_M
                if i < k - 1:
                    off[ax, 1] = _MARGIN_M
                    off[~ax, 2] = _MARGIN_M
                offs.append(off)
                id_parts.append((A[sel] * 4 + i) * self.ncols + B[sel] + 1)
        quads = _inset(np.concatenate(parts), np.concatenate(offs))
        ids = np.concatenate(id_parts).astype(np.int64)
        order = np.argsort(ids)  # row-major: ids grow from top-left to bottom-right
        quads, ids = quads[order], ids[order]
        rings = np.concatenate([quads, quads[:, :1]], axis=1)
        geoms = shapely.clip_by_rect(shapely.polygons(rings), *self.bounds)
        area = shapely.area(geoms)
        keep = area >= 5000.0  # drop slivers cut by the bounds (< 0.5 ha)
        quads, ids, geoms, area = quads[keep], ids[keep], geoms[keep], area[keep]
        u = [uniform(seed, _S_ATTR + j, ids, 0) for j in range(6)]
        condition = np.array(CONDITIONS)[np.searchsorted(_CONDITION_CDF, u[1], side="right")]
        can_decline = np.isin(condition, ("stress_patches", "pest", "uniform_stress"))
        declining = can_decline & (u[2] < 0.5)
        fields = pd.DataFrame(
            {
                "field_id": ids,
                "crop": np.array(CROPS)[np.searchsorted(_CROP_CDF, u[0], side="right")],
                "condition": condition,
                "declining": declining,
                "onset_doy": np.where(declining, 130.0 + 60.0 * u[3], np.nan),
                "area_ha": area / 1e4,
                "vigor": 0.97 + 0.05 * u[4],
                "soil_brightness": 0.85 + 0.3 * u[5],
                "geometry": geoms,
            }
        )
        return fields, quads

    def _landcover(self, cells: _Cells) -> pd.DataFrame:
        """Forest, meadow, pond and farmstead cells, and the roads along flagged grid lines."""
        u = uniform(self.seed, _S_CELL, cells.a, cells.b)
        kind = np.full(len(u), "", dtype=object)
        lower = 0.0
        for name, upper in _CELL_CDF.items():
            kind[(u >= lower) & (u < upper)] = name
            lower = upper
        inset = _inset(cells.quads, cells.offsets)
        centre = inset.mean(axis=1)
        code = {v: k for k, v in LANDCOVER.items()}
        geoms, codes = [], []
        for name in ("forest", "grassland", "built"):
            sel = kind == name
            ring = inset[sel]
            if name == "built":  # farmstead: yard and buildings in the middle of the cell
                ring = centre[sel, None] + 0.4 * (ring - centre[sel, None])
            geoms.append(shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1)))
            codes.append(np.full(sel.sum(), code[name]))
        sel = kind == "water"
        uw = [uniform(self.seed, _S_WATER + j, cells.a[sel], cells.b[sel]) for j in range(3)]
        angle = np.pi * uw[0]
        ponds = pd.DataFrame(
            {"cx": centre[sel, 0], "cy": centre[sel, 1], "a": self.cell * (0.25 + 0.12 * uw[1]),
             "b": self.cell * (0.15 + 0.1 * uw[2]), "ux": np.cos(angle), "uy": np.sin(angle)}
        )  # fmt: skip
        geoms.append(ellipses(ponds, 1.0, vertices=48))
        codes.append(np.full(sel.sum(), code["water"]))
        V, a_lines, b_lines = cells.vertices, cells.a_lines, cells.b_lines
        lines = [shapely.linestrings(V[i]) for i in np.flatnonzero(self._road_rows(a_lines))]
        lines += [shapely.linestrings(V[:, j]) for j in np.flatnonzero(self._road_cols(b_lines))]
        roads = shapely.buffer(np.array(lines, dtype=object), _ROAD_HALF_M, cap_style="flat")
        geoms.append(roads)
        codes.append(np.full(len(lines), code["road"]))
        geoms_all = shapely.clip_by_rect(np.concatenate(geoms), *self.bounds)
        codes_all = np.concatenate(codes).astype(np.uint8)
        keep = ~shapely.is_empty(geoms_all)
        return pd.DataFrame(
            {
                "landcover": codes_all[keep],
                "name": [LANDCOVER[c] for c in codes_all[keep]],
                "geometry": geoms_all[keep],
            }
        )


@dataclass(frozen=True)
class _Cells:
    a: np.ndarray  # cell row index
    b: np.ndarray  # cell column index
    quads: np.ndarray  # (n, 4, 2) CCW corners [BL, BR, TR, TL]
    offsets: np.ndarray  # (n, 4) inset per edge [bottom, right, top, left], metres
    vertices: np.ndarray  # grid vertices at the line indices below
    a_lines: np.ndarray
    b_lines: np.ndarray


def _inset(quads: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each edge of convex CCW quads inwards by its own offset (metres)."""
    p = quads
    d = np.roll(p, -1, axis=1) - p
    u = d / np.hypot(d[..., 0], d[..., 1])[..., None]
    n = np.stack([-u[..., 1], u[..., 0]], axis=-1)  # inward normal of a CCW ring
    start = p + offsets[..., None] * n  # a point on each offset edge line
    prev_start, prev_u = np.roll(start, 1, axis=1), np.roll(u, 1, axis=1)
    # Vertex k = intersection of offset line k-1 (prev) and offset line k.
    diff = start - prev_start
    s = -_cross(diff, prev_u) / _cross(u, prev_u)
    return start + s[..., None] * u


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _patches(seed: int, fields: pd.DataFrame, quads: np.ndarray) -> pd.DataFrame:
    """Stress ellipses, weed blobs and pest-spot clusters, spaced along each field's long axis."""
    P0, P1, P3 = quads[:, 0], quads[:, 1], quads[:, 3]
    e01, e03 = P1 - P0, P3 - P0
    len01, len03 = np.hypot(*e01.T), np.hypot(*e03.T)
    long_is_01 = len01 >= len03
    long_len = np.where(long_is_01, len01, len03)
    short_len = np.where(long_is_01, len03, len01)
    axis = np.where(long_is_01[:, None], e01, e03) / long_len[:, None]
    normal = np.stack([-axis[:, 1], axis[:, 0]], axis=1)
    fid = fields["field_id"].to_numpy()
    cond = fields["condition"].to_numpy()
    parts: list[tuple] = []  # (field index, class, centre, a, b)
    for kind, cls in (("stress_patches", _STRESSED), ("weeds", _BARE), ("pest", _PEST)):
        idx = np.flatnonzero(cond == kind)
        u = [uniform(seed, _S_PATCH + 10 * cls + j, fid[idx], 0) for j in range(4)]
        if kind == "pest":  # clusters span 240 m: at least 300 m apart
            n = np.clip(long_len[idx] // 300, 1, 3).astype(int)
        else:
            n = 1 + (u[0] * (3 if kind == "stress_patches" else 2)).astype(int)
        for i in range(3):
            sel = i < n
            f = idx[sel]
            centre = _bilinear_long(
                quads[f], long_is_01[f], (i + 0.5) / n[sel], 0.35 + 0.3 * u[1][sel]
            )
            if kind == "pest":
                parts.extend(_pest_cluster(seed, f, fid[f], i, centre, axis[f], normal[f]))
                continue
            spacing = long_len[f] / n[sel]
            scale = 0.38 if kind == "stress_patches" else 0.28
            a = np.clip(spacing * scale * (0.6 + 0.4 * u[2][sel]), 15.0, 150.0)
            b = np.clip(short_len[f] * 0.3 * (0.5 + 0.5 * u[3][sel]), 15.0, 120.0)
            parts.append((f, np.full(f.size, cls), centre, a, b))
    f, classes, centre, a, b = (np.concatenate([p[k] for p in parts]) for k in range(5))
    order = np.lexsort((classes, f))  # deterministic, independent of the window
    f, classes, centre, a, b = f[order], classes[order], centre[order], a[order], b[order]
    frame = pd.DataFrame(
        {"field_id": fid[f], "class": classes.astype(np.uint8), "cx": centre[:, 0],
         "cy": centre[:, 1], "a": a, "b": b, "ux": axis[f, 0], "uy": axis[f, 1],
         "onset_doy": fields["onset_doy"].to_numpy()[f]}
    )  # fmt: skip
    frame["geometry"] = ellipses(frame, 1.0)
    return frame


def _bilinear_long(quads: np.ndarray, long_is_01: np.ndarray, s: np.ndarray, t: np.ndarray):
    """Point at (s along the long axis, t across) in bilinear quad coordinates."""
    u = np.where(long_is_01, s, t)[:, None]
    v = np.where(long_is_01, t, s)[:, None]
    p0, p1, p2, p3 = (quads[:, k] for k in range(4))
    return (1 - u) * (1 - v) * p0 + u * (1 - v) * p1 + u * v * p2 + (1 - u) * v * p3


def _pest_cluster(seed, f, fid, i, centre, axis, normal) -> list[tuple]:
    """A 4 x 4 lattice of small spots, each present with probability 0.7."""
    out = []
    for gy in range(4):
        for gx in range(4):
            j = gy * 4 + gx + 16 * i
            u = [uniform(seed, _S_PATCH + 100 + 4 * j + q, fid, 0) for q in range(4)]
            keep = u[0] < 0.7
            along = (gx - 1.5) * _PEST_SPACING_M + (u[1] - 0.5) * 12.0
            across = (gy - 1.5) * _PEST_SPACING_M + (u[2] - 0.5) * 12.0
            pos = centre + along[:, None] * axis + across[:, None] * normal
            r = 10.0 + 12.0 * u[3]
            out.append((f[keep], np.full(keep.sum(), 3), pos[keep], r[keep], r[keep]))
    return out


def ellipses(patches: pd.DataFrame, growth: float | np.ndarray, vertices: int = 20) -> np.ndarray:
    """Ellipse polygons of ``patches`` with semi-axes scaled by ``growth`` (0 -> empty)."""
    phi = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    g = np.broadcast_to(np.asarray(growth, dtype=float), (len(patches),))
    a = (patches["a"].to_numpy() * g)[:, None]
    b = (patches["b"].to_numpy() * g)[:, None]
    ux, uy = patches["ux"].to_numpy()[:, None], patches["uy"].to_numpy()[:, None]
    x = patches["cx"].to_numpy()[:, None] + a * np.cos(phi) * ux - b * np.sin(phi) * uy
    y = patches["cy"].to_numpy()[:, None] + a * np.cos(phi) * uy + b * np.sin(phi) * ux
    ring = np.stack([x, y], axis=-1)
    out = shapely.polygons(np.concatenate([ring, ring[:, :1]], axis=1))
    out[g <= 0] = shapely.Polygon()
    return out


def _with_shares(fields: pd.DataFrame, patches: pd.DataFrame) -> pd.DataFrame:
    area = shapely.area(fields["geometry"].to_numpy())
    pos = np.searchsorted(fields["field_id"].to_numpy(), patches["field_id"].to_numpy())
    clipped = shapely.area(patches["geometry"].to_numpy())
    shares = {}
    for name, cls in (("stressed_share", _STRESSED), ("pest_share", _PEST), ("bare_share", _BARE)):
        sel = patches["class"].to_numpy() == cls
        shares[name] = np.bincount(pos[sel], clipped[sel], minlength=len(fields)) / area
    cond = fields["condition"].to_numpy()
    shares["stressed_share"][cond == "uniform_stress"] = 1.0
    shares["bare_share"][cond == "bare"] = 1.0
    out = fields.drop(columns="geometry")
    for name, value in shares.items():
        out[name] = np.clip(value, 0.0, 1.0)
    out.insert(
        out.columns.get_loc("stressed_share"),
        "healthy_share",
        1.0 - out[["stressed_share", "pest_share", "bare_share"]].sum(axis=1),
    )
    out["geometry"] = fields["geometry"].to_numpy()
    return out
