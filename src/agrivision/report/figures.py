"""Small matplotlib figures for the HTML report, returned as PNG data URIs (no files, no CDN)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from shapely.geometry.base import BaseGeometry

STATUS_COLOURS = {
    "good": "#1a9641",
    "watch": "#fdae61",
    "problem": "#d7191c",
    "insufficient data": "#9e9e9e",
}


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    # A bare Figure, not pyplot: no global backend switch (notebooks keep inline plots) and
    # nothing registered that must be closed.
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def data_uri(fig: Figure, dpi: int = 90) -> str:
    """Render a figure to a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _outline(ax: Axes, geom: BaseGeometry, colour: str = "black", width: float = 1.0) -> None:
    polys = getattr(geom, "geoms", [geom])
    for poly in polys:
        for ring in [poly.exterior, *poly.interiors]:
            xs, ys = ring.xy
            ax.plot(xs, ys, color=colour, linewidth=width)


def overview_map(
    geometries: Sequence[BaseGeometry],
    statuses: Sequence[str],
    labels: Sequence[str],
    background: np.ndarray | None = None,
    extent: tuple[float, float, float, float] | None = None,
) -> str:
    """Fields coloured by health status over an optional RGB background (scene CRS, metres)."""
    fig, ax = _figure(8, 8)
    if background is not None and extent is not None:
        ax.imshow(background, extent=extent, interpolation="nearest")
    # one PatchCollection for all fields: a Python loop of fill() calls took minutes at 20,000
    shapes = gpd.GeoSeries(list(geometries))
    colours = [STATUS_COLOURS.get(status, "#9e9e9e") for status in statuses]
    shapes.plot(ax=ax, color=colours, alpha=0.55, linewidth=0)
    shapes.boundary.plot(ax=ax, color="black", linewidth=0.5 if len(shapes) <= 2000 else 0.1)
    if len(geometries) <= 60:
        for geom, label in zip(geometries, labels, strict=True):
            c = geom.representative_point()
            ax.annotate(str(label), (c.x, c.y), fontsize=7, ha="center", va="center")
    handles = [Rectangle((0, 0), 1, 1, color=c, alpha=0.7) for c in STATUS_COLOURS.values()]
    ax.legend(handles, list(STATUS_COLOURS), loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_aspect("equal")
    ax.ticklabel_format(style="plain", useOffset=False)  # map coordinates in metres
    ax.tick_params(labelsize=7)
    return data_uri(fig)


def index_thumbnail(
    values: np.ndarray,
    extent: tuple[float, float, float, float],
    geom: BaseGeometry,
    *,
    title: str,
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> str:
    """An index map clipped to a field (NaN outside), with the field outline."""
    fig, ax = _figure(3.2, 3.2)
    im = ax.imshow(
        values, extent=extent, cmap="RdYlGn", vmin=vmin, vmax=vmax, interpolation="nearest"
    )
    _outline(ax, geom)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
    return data_uri(fig)


def class_thumbnail(
    classes: np.ndarray,
    extent: tuple[float, float, float, float],
    geom: BaseGeometry,
    colours: Mapping[int, str],
    *,
    title: str,
) -> str:
    """A class map clipped to a field, coloured by the class schema (0 transparent)."""
    codes = max(colours) + 1
    table = ["#00000000"] * codes
    for code, colour in colours.items():
        table[code] = colour
    fig, ax = _figure(3.2, 3.2)
    ax.imshow(
        np.ma.masked_equal(classes, 0), extent=extent, cmap=ListedColormap(table),
        vmin=-0.5, vmax=codes - 0.5, interpolation="nearest",
    )  # fmt: skip
    _outline(ax, geom)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    return data_uri(fig)


def histogram(values: np.ndarray, *, title: str, bins: int = 40) -> str:
    """Histogram of a field's finite index values."""
    fig, ax = _figure(3.2, 2.2)
    finite = values[np.isfinite(values)]
    ax.hist(finite, bins=bins, color="#4a7c59")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return data_uri(fig)


def time_series(
    dates: Sequence[str],
    means: Sequence[float],
    *,
    title: str,
    suspect: Sequence[bool] | None = None,
) -> str:
    """A field's index trajectory over dates (NaN dates are gaps); ``suspect`` dates (cloud
    suspect, left out of the change) are drawn as hollow red markers."""
    fig, ax = _figure(3.6, 2.2)
    x = np.arange(len(dates))
    ax.plot(x, means, marker="o", color="#2b83ba")
    if suspect is not None and any(suspect):
        flagged = np.asarray(suspect, dtype=bool)
        ax.plot(x[flagged], np.asarray(means, dtype=float)[flagged], "o", mfc="white",
                mec="#d7191c", mew=1.5, label="cloud suspect")  # fmt: skip
        ax.legend(fontsize=6, loc="lower left", frameon=False)
    ax.set_xticks(x, [d[5:] if len(d) >= 10 else d for d in dates], rotation=45, fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    return data_uri(fig)
