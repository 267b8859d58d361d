"""Card figures drawn on reused matplotlib figures: each image is the one a fresh figure
draws, whatever was drawn before it."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from shapely.geometry import Polygon, box

from agrivision.health.schema import DEFAULT_SCHEMA
from agrivision.report.figures import CardFigures


def _draw(figs: CardFigures, values, classes, extent, geom) -> list[str]:
    return [
        figs.index_map(values, extent, geom),
        figs.class_map(classes, extent, geom),
        figs.histogram(values),
    ]


def test_reused_figures_draw_what_fresh_ones_draw():
    rng = np.random.default_rng(1)
    first = (rng.random((30, 50)), rng.integers(0, 5, (30, 50)), (0, 500, 0, 300),
             box(20, 20, 480, 280))  # fmt: skip
    ring = [(1000, 1000), (1400, 1000), (1400, 1600), (1000, 1600)]
    hole = [(1100, 1100), (1200, 1100), (1200, 1200), (1100, 1200)]
    second = (rng.normal(0.6, 0.1, (60, 40)), rng.integers(0, 5, (60, 40)),
              (1000, 1400, 1000, 1600), Polygon(ring, [hole]))  # fmt: skip
    reused = CardFigures("NDVI", DEFAULT_SCHEMA.hex_colours, vmin=-0.2)
    _draw(reused, *first)
    again = _draw(reused, *second)
    fresh = _draw(CardFigures("NDVI", DEFAULT_SCHEMA.hex_colours, vmin=-0.2), *second)
    assert again == fresh
    # and the second field is not drawn like the first
    assert fresh != _draw(CardFigures("NDVI", DEFAULT_SCHEMA.hex_colours, vmin=-0.2), *first)


def test_class_map_shows_the_schema_colours_and_leaves_code_0_transparent():
    classes = np.zeros((20, 20), dtype=np.uint8)
    classes[5:15, 5:15] = 3
    figs = CardFigures("NDVI", DEFAULT_SCHEMA.hex_colours)
    uri = figs.class_map(classes, (0, 200, 0, 200), box(0, 0, 200, 200))
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    rgb = {tuple(int(v) for v in px[:3]) for px in image.reshape(-1, image.shape[-1])}
    assert DEFAULT_SCHEMA.colormap[3][:3] in rgb
    assert DEFAULT_SCHEMA.colormap[1][:3] not in rgb  # healthy: no pixel of that class
