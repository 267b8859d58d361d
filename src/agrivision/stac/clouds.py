"""Cloud over the fields, per date, from the quality band read only over the fields.

A scene's ``eo:cloud_cover`` says how cloudy the whole tile is; a farmer's fields may be
clear under a half-cloudy tile, or covered under a nearly clear one. The quality band (SCL,
QA_PIXEL) is opened lazily through :func:`agrivision.open_scene` on the fields' window (the
same reader as a report's, so only the blocks under the fields are fetched), decoded into
cloud, cirrus and shadow (:mod:`agrivision.masks.quality`), and averaged over each field.
"""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from agrivision.fields.zonal import zonal_stats
from agrivision.io.scene import open_scene
from agrivision.masks.quality import categories
from agrivision.sensors import SensorProfile

#: Categories that hide the ground.
HIDDEN = ("cloud", "cirrus", "shadow")


def field_clouds(
    items: str | os.PathLike,
    fields: gpd.GeoDataFrame,
    quality_band: str,
    *,
    sensor: str | os.PathLike | SensorProfile | None = None,
) -> pd.DataFrame:
    """Share of each field's observed pixels under cloud, cirrus or shadow, per date.

    Parameters
    ----------
    items
        STAC ItemCollection JSON (local; assets may be remote when the items are searched).
    fields
        Field polygons with a ``field_id`` column, any CRS.
    quality_band
        The quality variable to decode (``scl``, ``qa_pixel``).
    sensor
        Sensor profile of the items; detected from them when omitted.

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (``datetime.date``), ``field_id``, ``cloud`` (0..1, NaN when the
        field was not observed that date) and ``observed`` (pixels with data, coverage
        weighted); items of the same day are one date, as in a Scene.
    """
    scene = open_scene(str(items), select=[quality_band], mask=False, fields=fields, sensor=None)
    cats = categories(scene)
    hidden = None
    for name in HIDDEN:
        if name in cats:
            hidden = cats[name] if hidden is None else hidden | cats[name]
    band = scene[quality_band]
    if hidden is None:
        hidden = xr.zeros_like(band, dtype=bool)
    present = ~cats["nodata"] if "nodata" in cats else xr.ones_like(band, dtype=bool)
    share = hidden.astype(np.float32).where(present).rename("cloud")
    share = share.rio.write_crs(scene.rio.crs)
    table = zonal_stats(share, fields, stats=["mean", "count"])
    if "time" in table:
        dates = pd.to_datetime(table["time"]).dt.date
    else:
        dates = pd.Series([pd.Timestamp(scene.attrs["datetime"]).date()] * len(table))
    return pd.DataFrame(
        {
            "date": dates.to_numpy(),
            "field_id": table["field_id"].to_numpy(),
            "cloud": table["mean"].to_numpy(),
            "observed": table["count"].to_numpy(),
        }
    )
