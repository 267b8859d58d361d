"""A small two-date Sentinel-2 L2A scene with three fields, written as band files."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from rasterio.transform import from_origin
from rasters import write_tif
from shapely.geometry import box

ORIGIN = (600000.0, 5300000.0)
SIZE = 96  # pixels of 10 m


def _bands(ndvi: np.ndarray) -> dict[str, np.ndarray]:
    red = np.full(ndvi.shape, 0.05, dtype=np.float64)
    nir = red * (1 + ndvi) / (1 - ndvi)
    rededge = red + 0.3 * (nir - red)  # NDRE 0.45 where NDVI is 0.8, as in healthy cereal
    return {"B02": red * 0.8, "B03": red * 1.3, "B04": red, "B05": rededge, "B08": nir}


def ndvi_for(day: int) -> np.ndarray:
    """Field A (rows 8-40, cols 8-40): 0.8 with a damaged 6x6 patch at 0.3; field B (rows
    50-88, cols 8-40): 0.75 on day 0, 0.55 on day 1 (declining); soil elsewhere (0.15)."""
    ndvi = np.full((SIZE, SIZE), 0.15)
    ndvi[8:40, 8:40] = 0.8
    ndvi[20:26, 20:26] = 0.3
    ndvi[50:88, 8:40] = 0.75 if day == 0 else 0.55
    return ndvi


@pytest.fixture(scope="session")
def report_inputs(tmp_path_factory):
    """Band files for two dates and a fields GeoPackage (A, B inside; C outside the scene)."""
    root = tmp_path_factory.mktemp("report_inputs")
    t10 = from_origin(*ORIGIN, 10, 10)
    t20 = from_origin(*ORIGIN, 20, 20)
    files = []
    for day, date in enumerate(("20240601", "20240621")):
        tags = {"SENSOR": "sentinel-2-l2a", "PROCESSING_BASELINE": "05.10",
                "DATETIME": f"{date[:4]}-{date[4:6]}-{date[6:]}T10:30:00"}  # fmt: skip
        for band, refl in _bands(ndvi_for(day)).items():
            dn = np.round(refl * 10000 + 1000).astype(np.uint16)
            transform = t10
            if band == "B05":
                dn, transform = dn[::2, ::2], t20
            path = root / f"T33TWN_{date}_{band}.tif"
            files.append(write_tif(path, dn, transform=transform, nodata=0, tags=tags))
    x0, y0 = ORIGIN

    def cell_box(r0, r1, c0, c1):
        return box(x0 + c0 * 10, y0 - r1 * 10, x0 + c1 * 10, y0 - r0 * 10)

    fields = gpd.GeoDataFrame(
        {"field_id": ["A", "B", "C"], "crop": ["wheat", "maize", "beet"]},
        geometry=[cell_box(8, 40, 8, 40), cell_box(50, 88, 8, 40), cell_box(0, 30, 200, 230)],
        crs="EPSG:32633",
    )
    fields_path = root / "fields.gpkg"
    fields.to_file(fields_path, layer="fields")
    fields.to_crs(4326).to_file(root / "fields.geojson")
    return {"sources": [str(f) for f in files], "fields": fields_path,
            "fields_4326": root / "fields.geojson", "root": root}  # fmt: skip
