"""NDVI of a real Sentinel-2 scene against the NDVI that eo-learn shipped with it."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasters import SHARED_DATA

from agrivision.indices import compute

SLOVENIA = SHARED_DATA / "s2_slovenia_eolearn"


@pytest.mark.realdata
def test_ndvi_matches_eolearn_reference():
    if not SLOVENIA.is_dir():
        pytest.skip("../shared/data is not available")
    from agrivision import open_scene

    scene = open_scene(SLOVENIA / "s2l1c_toa_13band_2015-07-11.tif", sensor="sentinel-2-l1c")
    out = compute(scene, ["NDVI", "EVI", "NDREI"])
    with rasterio.open(SLOVENIA / "ndvi_timeseries_68dates.tif") as src:
        assert src.descriptions[0].startswith("2015-07-11")
        reference = src.read(1)
    ndvi = out.NDVI.values
    assert ndvi.shape == reference.shape
    np.testing.assert_allclose(ndvi, reference, atol=1e-6)
    # Plausible values for a vegetated July scene (forest/grassland; README: median 0.75/0.68).
    assert 0.6 < float(np.nanmedian(ndvi)) < 0.85
    assert 0.2 < float(np.nanmedian(out.EVI.values)) < 1.0
    assert out.NDREI.attrs["bands"] == "N=nir, RE1=rededge1"
