"""Small matplotlib figures for the HTML report, returned as PNG data URIs (no files, no CDN)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import geopandas as gpd
import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from shapely.geometry.base import BaseGeometry

_BINS = 40  # of the field histograms
_CARD_DPI = 90
_PAD_IN = 0.05  # margin around what is drawn (inches)
_ROOM_IN = 0.5  # room around a card figure for labels past its edge (inches)
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


def _card_figure(width: float, height: float) -> tuple[Figure, FigureCanvasAgg, Axes]:
    """A ``width`` x ``height`` inch figure's axes on a canvas with :data:`_ROOM_IN` more on
    every side, so that labels reaching past the figure's edge are still drawn (and then
    cropped, :func:`_cropped_uri`)."""
    sub, room = matplotlib.rcParams, _ROOM_IN
    fig = Figure(figsize=(width + 2 * room, height + 2 * room), dpi=_CARD_DPI)
    fig.subplots_adjust(
        left=(sub["figure.subplot.left"] * width + room) / (width + 2 * room),
        right=(sub["figure.subplot.right"] * width + room) / (width + 2 * room),
        bottom=(sub["figure.subplot.bottom"] * height + room) / (height + 2 * room),
        top=(sub["figure.subplot.top"] * height + room) / (height + 2 * room),
    )
    return fig, FigureCanvasAgg(fig), fig.subplots()


def data_uri(fig: Figure, dpi: int = 90) -> str:
    """Render a figure to a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    return _uri(buf)


def _uri(buf: io.BytesIO) -> str:
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _cropped_uri(canvas: FigureCanvasAgg) -> str:
    """The figure drawn once and cropped to what was drawn on its white background, plus a
    margin: what ``bbox_inches="tight"`` gives, without the second drawing it takes."""
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    ink = (rgba[..., :3] < 255).any(axis=-1) & (rgba[..., 3] > 0)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if len(rows):
        pad = round(_PAD_IN * canvas.figure.dpi)
        r0, r1 = max(rows[0] - pad, 0), rows[-1] + pad + 1
        c0, c1 = max(cols[0] - pad, 0), cols[-1] + pad + 1
        rgba = rgba[r0:r1, c0:c1]
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    return _uri(buf)


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


class CardFigures:
    """The index map, class map and histogram of field cards, drawn on three figures made
    once and updated per field: making a matplotlib figure, its axes and colour bar costs
    more than drawing it, and a report draws three per card.

    Parameters
    ----------
    index_name
        Title of the index map and histogram.
    colours
        Class code -> colour (``#rrggbb`` or ``#rrggbbaa``) of the class map; 0 transparent.
    vmin, vmax
        Index range of the colour ramp.
    """

    def __init__(
        self, index_name: str, colours: Mapping[int, str], *, vmin: float = 0.0, vmax: float = 1.0
    ):
        self.index_name = index_name
        self._index_fig, self._index_canvas, ax = _card_figure(3.2, 3.2)
        self._index = ax.imshow(
            np.zeros((1, 1)), cmap="RdYlGn", vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        (self._index_outline,) = ax.plot([], [], color="black", linewidth=1.0)
        ax.set_title(index_name, fontsize=9)
        ax.set_axis_off()
        cbar = self._index_fig.colorbar(self._index, ax=ax, fraction=0.046, pad=0.02)
        cbar.ax.tick_params(labelsize=7)

        codes = max(colours) + 1
        table = ["#00000000"] * codes
        for code, colour in colours.items():
            table[code] = colour
        self._class_fig, self._class_canvas, ax = _card_figure(3.2, 3.2)
        self._class = ax.imshow(
            np.ma.masked_equal(np.zeros((1, 1)), 0), cmap=ListedColormap(table),
            vmin=-0.5, vmax=codes - 0.5, interpolation="nearest",
        )  # fmt: skip
        (self._class_outline,) = ax.plot([], [], color="black", linewidth=1.0)
        ax.set_title("health classes", fontsize=9)
        ax.set_axis_off()

        self._hist_fig, self._hist_canvas, self._hist_ax = _card_figure(3.2, 2.2)
        self._hist_ax.set_title(f"{index_name} histogram", fontsize=9)
        self._hist_ax.tick_params(labelsize=7)
        self._bars: list[Rectangle] = []  # the 40 bins, made on the first histogram

    def index_map(
        self, values: np.ndarray, extent: tuple[float, float, float, float], geom: BaseGeometry
    ) -> str:
        """The index clipped to a field (NaN outside), with the field outline (scene CRS)."""
        _show(self._index, self._index_outline, values, extent, geom)
        return _cropped_uri(self._index_canvas)

    def class_map(
        self, classes: np.ndarray, extent: tuple[float, float, float, float], geom: BaseGeometry
    ) -> str:
        """The class codes clipped to a field (0 outside), with the field outline."""
        _show(self._class, self._class_outline, np.ma.masked_equal(classes, 0), extent, geom)
        return _cropped_uri(self._class_canvas)

    def histogram(self, values: np.ndarray) -> str:
        """Histogram of a field's finite index values."""
        counts, edges = np.histogram(values[np.isfinite(values)], bins=_BINS)
        if not self._bars:
            self._bars = list(self._hist_ax.bar(
                edges[:-1], counts, width=np.diff(edges), align="edge", color="#4a7c59"
            ))  # fmt: skip
        for bar, left, width, count in zip(
            self._bars, edges[:-1], np.diff(edges), counts, strict=True
        ):
            bar.set_x(left)
            bar.set_width(width)
            bar.set_height(count)
        self._hist_ax.relim()
        self._hist_ax.autoscale_view()
        return _cropped_uri(self._hist_canvas)


def _show(image, outline, data: np.ndarray, extent, geom: BaseGeometry) -> None:
    """Put ``data`` on ``image`` over ``extent`` and ``geom``'s rings on ``outline``."""
    image.set_data(data)
    image.set_extent(extent)
    xs, ys = [], []
    for poly in getattr(geom, "geoms", [geom]):
        for ring in [poly.exterior, *poly.interiors]:
            x, y = ring.xy
            xs += [*x, np.nan]
            ys += [*y, np.nan]
    outline.set_data(xs, ys)
    image.axes.set_xlim(extent[0], extent[1])
    image.axes.set_ylim(extent[2], extent[3])


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
