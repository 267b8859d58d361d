"""synthetic_scene: lazy, deterministic, chunk-independent, with plausible spectra and truth."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

from agrivision.errors import ConfigError, SensorError
from agrivision.synthetic import synthetic_scene

# rasterio warns spuriously when rasterising in several threads at once (values are right).
pytestmark = pytest.mark.filterwarnings("ignore:Dataset has no geotransform")

S2_BANDS = ["coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir",
            "nir08", "swir16", "swir22"]  # fmt: skip


def computed(scene: xr.Dataset, truth) -> dict[str, np.ndarray]:
    """Every scene and truth raster as numpy, in one dask pass."""
    arrays = {name: scene[name].data for name in scene.data_vars}
    arrays |= {f"truth_{k}": getattr(truth, k).data
               for k in ("classes", "landcover", "clouds", "field_id")}  # fmt: skip
    return dict(zip(arrays, dask.compute(*arrays.values()), strict=True))


@pytest.fixture(scope="module")
def snapshot():
    scene, truth = synthetic_scene(11, shape=(512, 512), chunks=256)
    out = computed(scene, truth)
    out["ndvi"] = (out["nir"] - out["red"]) / (out["nir"] + out["red"])
    return scene, truth, out


def test_scene_follows_the_data_model(snapshot):
    scene, truth, _ = snapshot
    assert list(scene.data_vars) == [*S2_BANDS, "scl"]
    assert all(scene[b].dtype == np.float32 for b in S2_BANDS) and scene.scl.dtype == np.uint8
    assert scene.red.dims == ("y", "x") and scene.attrs["sensor"] == "sentinel-2-l2a"
    assert scene.attrs["datetime"] == "2024-06-15"
    assert scene.rio.crs.to_epsg() == 32633
    assert tuple(scene.rio.transform())[:6] == (10, 0, 500000, 0, -10, 5800000)
    assert scene.y[0] == 5800000 - 5 and scene.x[0] == 500000 + 5
    assert truth.classes.rio.crs.to_epsg() == 32633
    assert truth.field_id.dtype == np.int32 and truth.landcover.dtype == np.uint8


def test_values_are_reflectances_and_codes(snapshot):
    _, _, a = snapshot
    for band in S2_BANDS:
        assert 0 <= a[band].min() and a[band].max() <= 1 and np.isfinite(a[band]).all()
    assert set(np.unique(a["scl"])) <= {3, 4, 5, 6, 8, 9, 10}
    assert set(np.unique(a["truth_classes"])) == {0, 1, 2, 3, 4}
    assert set(np.unique(a["truth_landcover"])) <= {1, 2, 3, 4, 5, 6}


def test_same_seed_same_scene_other_seed_other_scene():
    first = computed(*synthetic_scene(3, shape=(160, 200), chunks=64))
    again = computed(*synthetic_scene(3, shape=(160, 200), chunks=64))
    other = computed(*synthetic_scene(4, shape=(160, 200), chunks=64))
    for name, value in first.items():
        np.testing.assert_array_equal(value, again[name], err_msg=name)
    assert (first["red"] != other["red"]).mean() > 0.5
    assert (first["truth_classes"] != other["truth_classes"]).mean() > 0.1


@pytest.mark.parametrize(
    ("kwargs", "chunk_sets"),
    [
        ({"shape": (600, 600)}, [256, 512]),
        ({"shape": (300, 260), "dates": ["2024-05-01", "2024-07-01"]}, [100, (128, 96)]),
    ],
)
def test_values_do_not_depend_on_chunking(kwargs, chunk_sets):
    results = [computed(*synthetic_scene(5, chunks=c, **kwargs)) for c in chunk_sets]
    for name, value in results[0].items():
        np.testing.assert_array_equal(value, results[1][name], err_msg=name)


def test_class_conditional_spectra(snapshot):
    _, truth, a = snapshot
    clear = a["truth_clouds"] == 0
    cls, ndvi = a["truth_classes"], a["ndvi"]

    def mean(band, mask):
        return (
            float(a[band][mask & clear].mean())
            if band != "ndvi"
            else float(ndvi[mask & clear].mean())
        )

    healthy, stressed, pest = cls == 1, cls == 2, cls == 3
    assert 0.76 <= mean("ndvi", healthy) <= 0.88
    assert 0.48 <= mean("ndvi", stressed) <= 0.65
    assert 0.35 <= mean("ndvi", pest) <= mean("ndvi", stressed) - 0.05
    assert 0.03 <= mean("red", healthy) <= 0.06 and 0.35 <= mean("nir", healthy) <= 0.52
    # Stress: red and SWIR up, NIR and red-edge shoulder down.
    assert mean("red", stressed) > mean("red", healthy) + 0.02
    assert mean("swir16", stressed) > mean("swir16", healthy)
    assert mean("nir", stressed) < mean("nir", healthy) - 0.05
    assert mean("rededge2", stressed) < mean("rededge2", healthy)
    # Bare fields: a rising soil spectrum.
    fields = truth.fields
    bare = np.isin(a["truth_field_id"], fields.field_id[fields.condition == "bare"])
    assert 0.1 <= mean("ndvi", bare) <= 0.25
    assert 0.13 <= mean("red", bare) <= 0.25 and 0.22 <= mean("nir", bare) <= 0.32
    assert mean("swir16", bare) > mean("nir", bare) > mean("red", bare) > mean("blue", bare)
    lc = a["truth_landcover"]
    assert mean("ndvi", lc == 5) < 0 and mean("nir", lc == 5) < 0.03  # water
    assert mean("ndvi", lc == 4) > 0.7  # forest
    # Crops differ: sugar beet canopies are brighter in NIR than wheat.
    beet = np.isin(a["truth_field_id"], fields.field_id[fields.crop == "sugar_beet"])
    wheat = np.isin(a["truth_field_id"], fields.field_id[fields.crop == "wheat"])
    assert mean("nir", beet & healthy) > mean("nir", wheat & healthy) + 0.05


def test_raster_truth_matches_vector_truth(snapshot):
    scene, truth, a = snapshot
    fields = truth.fields.set_index("field_id")
    fid, cls = a["truth_field_id"], a["truth_classes"]
    ids, counts = np.unique(fid[fid > 0], return_counts=True)
    big = ids[counts > 1000]  # >= 10 ha inside the scene
    assert len(big) > 10
    for k in big:
        in_field = fid == k
        for code, share in ((2, "stressed_share"), (3, "pest_share"), (4, "bare_share")):
            raster = (cls[in_field] == code).mean()
            assert raster == pytest.approx(fields.loc[k, share], abs=0.04), (k, share)
    # Pixel centres labelled with a field id lie inside that field.
    rows, cols = np.nonzero(fid > 0)
    sample = slice(None, None, 997)
    xs, ys = scene.x.values[cols[sample]], scene.y.values[rows[sample]]
    import shapely

    inside = shapely.contains_xy(
        fields.geometry.reindex(fid[rows[sample], cols[sample]]).values, xs, ys
    )
    assert inside.all()
    assert (a["truth_landcover"][fid > 0] == 1).all() and (cls[fid == 0] == 0).all()


def test_clouds_shadows_and_scene_classification(snapshot):
    _, _, a = snapshot
    scl, clouds = a["scl"], a["truth_clouds"]
    assert 0.01 < (clouds == 1).mean() < 0.5
    cloudy = np.isin(scl, (8, 9))
    assert a["blue"][cloudy].mean() > 0.3 and a["blue"][clouds == 0].mean() < 0.1
    np.testing.assert_array_equal(cloudy, clouds == 1)
    np.testing.assert_array_equal(scl == 10, clouds == 2)
    np.testing.assert_array_equal(scl == 3, clouds == 3)
    clear = clouds == 0
    lc = a["truth_landcover"]
    np.testing.assert_array_equal(scl[clear] == 6, lc[clear] == 5)
    assert (scl[clear & (a["truth_classes"] == 1)] == 4).mean() > 0.99
    # Shadows are the clouds displaced 1.2 km to the north-north-west (sun in the SSE).
    dr, dc = round(np.cos(np.deg2rad(340)) * 120), round(-np.sin(np.deg2rad(340)) * 120)
    rows, cols = np.nonzero(clouds == 3)
    ok = (rows + dr < 512) & (cols + dc < 512)
    source = clouds[rows[ok] + dr, cols[ok] + dc]
    assert ok.sum() > 100 and np.isin(source, (1, 2)).mean() > 0.8
    # Without clouds: same surface where it was clear, darker surface under shadows.
    plain = computed(*synthetic_scene(11, shape=(512, 512), chunks=256, clouds=False))
    assert set(np.unique(plain["scl"])) <= {4, 5, 6}
    np.testing.assert_array_equal(plain["nir"][clear], a["nir"][clear])
    shadow = clouds == 3
    assert (a["nir"][shadow] < 0.8 * plain["nir"][shadow]).mean() > 0.9


def test_time_series_phenology_declining_fields_and_clouds():
    dates = ["2024-03-10", "2024-04-12", "2024-05-04", "2024-06-15", "2024-08-01", "2024-09-20"]
    scene, truth = synthetic_scene(2, shape=(500, 500), chunks=250, dates=dates, clouds=False)
    assert scene.red.dims == ("time", "y", "x") and scene.sizes["time"] == 6
    assert truth.classes.dims == ("time", "y", "x") and truth.landcover.dims == ("y", "x")
    a = computed(scene, truth)
    ndvi = (a["nir"] - a["red"]) / (a["nir"] + a["red"])
    fields = truth.fields
    fid = a["truth_field_id"]
    for crop in ("wheat", "maize", "sugar_beet", "rapeseed"):
        ids = fields.field_id[(fields.crop == crop) & (fields.condition == "healthy")]
        mask = np.isin(fid, ids)
        series = [ndvi[t][mask].mean() for t in range(6)]
        peak = int(np.argmax(series))
        assert 0 < peak < 5, (crop, series)  # rises, then falls
        assert series[peak] > 0.75 and min(series[0], series[-1]) < series[peak] - 0.2
    rape = np.isin(fid, fields.field_id[fields.crop == "rapeseed"])
    wheat = np.isin(fid, fields.field_id[fields.crop == "wheat"])
    assert a["green"][2][rape].mean() > 0.1 > a["green"][2][wheat].mean()  # yellow flowers
    # Declining fields: the problem area grows (compared while the crop is on the field).
    declining = fields[fields.declining & (fields.condition != "uniform_stress")]
    grew = []
    for k, crop in zip(declining.field_id, declining.crop, strict=True):
        early, late = (2, 3) if crop in ("wheat", "rapeseed") else (3, 4)
        share = [np.isin(a["truth_classes"][t][fid == k], (2, 3)).mean() for t in (early, late)]
        grew.append(share[1] - share[0])
    assert len(grew) > 3 and min(grew) >= 0 and max(grew) > 0.01
    clouds = synthetic_scene(2, shape=(500, 500), dates=dates[:2])[1].clouds.values
    assert (clouds[0] != clouds[1]).mean() > 0.05


def test_full_tile_is_lazy():
    synthetic_scene(0, shape=(64, 64))  # first use loads sensor profiles
    tasks = []

    class Count(Callback):
        def _start(self, dsk):
            tasks.append(len(dsk))

    with Count():
        scene, truth = synthetic_scene(0, shape=(10980, 10980))
    assert tasks == []  # nothing computed
    assert scene.red.shape == (10980, 10980) and scene.red.chunks[0][:2] == (512, 512)
    assert scene.red.data.npartitions == 22 * 22
    assert truth.classes.shape == (10980, 10980)
    assert scene.nbytes > 5e9  # described, not held


def test_other_sensors_and_bad_arguments():
    landsat, _ = synthetic_scene(0, shape=(32, 32), sensor="landsat-8-c2-l2")
    assert "scl" not in landsat and {"red", "nir08", "swir16"} <= set(landsat.data_vars)
    with pytest.raises(SensorError):
        synthetic_scene(0, shape=(32, 32), sensor="no-such-sensor")
    with pytest.raises(ConfigError, match="ascending"):
        synthetic_scene(0, shape=(32, 32), dates=["2024-06-01", "2024-05-01"])
    with pytest.raises(ConfigError):
        synthetic_scene(0, shape=(0, 32))
