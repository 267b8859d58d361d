"""compute(): catalogue indices on scenes, pinned to values computed by hand."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from agrivision.errors import BandNotFoundError, FormulaError, SpectralIndexError
from agrivision.indices import compute, index_info, list_indices, register_index
from agrivision.indices.catalogue import unregister_index

# Known reflectances of four pixels (2 x 2): dense crop, stressed crop, bare-ish soil, sparse.
REFL = {
    "coastal": [[0.04, 0.06], [0.03, 0.05]],
    "blue": [[0.05, 0.08], [0.04, 0.10]],
    "green": [[0.08, 0.10], [0.06, 0.12]],
    "red": [[0.06, 0.12], [0.03, 0.15]],
    "rededge1": [[0.14, 0.16], [0.10, 0.18]],
    "rededge2": [[0.30, 0.22], [0.25, 0.20]],
    "rededge3": [[0.38, 0.26], [0.33, 0.22]],
    "nir": [[0.42, 0.28], [0.40, 0.24]],
    "swir16": [[0.22, 0.30], [0.15, 0.32]],
    "swir22": [[0.12, 0.25], [0.08, 0.28]],
}
A, B, G, R = (np.array(REFL[k], dtype=np.float64) for k in ("coastal", "blue", "green", "red"))
RE1, RE2, RE3 = (np.array(REFL[k], dtype=np.float64) for k in ("rededge1", "rededge2", "rededge3"))
N, S1, S2 = (np.array(REFL[k], dtype=np.float64) for k in ("nir", "swir16", "swir22"))

# Closed forms from the papers (written here, not taken from the catalogue), in float64.
HAND = {
    "NDVI": (N - R) / (N + R),  # Rouse 1974
    "NDREI": (N - RE1) / (N + RE1),
    "GNDVI": (N - G) / (N + G),  # Gitelson 1996
    "NDWI": (G - N) / (G + N),  # McFeeters 1996
    "NBR": (N - S2) / (N + S2),
    "NDMI": (N - S1) / (N + S1),
    "EVI": 2.5 * (N - R) / (N + 6 * R - 7.5 * B + 1),  # Huete 2002
    "EVI2": 2.5 * (N - R) / (N + 2.4 * R + 1),  # Jiang 2008
    "SAVI": 1.5 * (N - R) / (N + R + 0.5),  # Huete 1988, L = 0.5
    "OSAVI": (N - R) / (N + R + 0.16),  # Rondeaux 1996
    "MSAVI": (2 * N + 1 - np.sqrt((2 * N + 1) ** 2 - 8 * (N - R))) / 2,  # Qi 1994 (MSAVI2)
    "CIRE": N / RE1 - 1,  # Gitelson 2003
    "CIG": N / G - 1,
    "MCARI": ((RE1 - R) - 0.2 * (RE1 - G)) * (RE1 / R),  # Daughtry 2000
    "TVI": np.sqrt((N - R) / (N + R) + 0.5),  # Deering 1975
    "ARVI": (N - (2 * R - B)) / (N + (2 * R - B)),  # Kaufman & Tanre 1992, gamma = 1
    "VARI": (G - R) / (G + R - B),  # Gitelson 2002
    "SIPI": (N - A) / (N - R),  # Penuelas 1995
    "MTVI2": 1.5 * (1.2 * (N - G) - 2.5 * (R - G))  # Haboudane 2004
    / np.sqrt((2 * N + 1) ** 2 - (6 * N - 5 * np.sqrt(R)) - 0.5),
    "WDRVI": (0.1 * N - R) / (0.1 * N + R),  # Gitelson 2004, alpha = 0.1
    "NIRv": (N - R) / (N + R) * N,  # Badgley 2017
    "RENDVI": (RE2 - RE1) / (RE2 + RE1),
    "IRECI": (RE3 - R) / (RE1 / RE2),  # Frampton 2013
    "S2REP": 705 + 35 * ((RE3 + R) / 2 - RE1) / (RE2 - RE1),  # Frampton 2013, nm
    "MTCI": (RE2 - RE1) / (RE1 - R),  # Dash & Curran 2004
    "GLI": (2 * G - R - B) / (2 * G + R + B),
    "ExG": 2 * G - R - B,
    "kNDVI": np.tanh(((N - R) / (2 * 0.5)) ** 2),  # Camps-Valls 2021, RBF sigma = 0.5
}  # fmt: skip


@pytest.fixture
def scene(make_scene):
    return make_scene(REFL, chunks=1)


@pytest.mark.parametrize("name", sorted(HAND))
def test_pinned_index_matches_hand_value(scene, name):
    out = compute(scene, name)
    assert out[name].dtype == np.float32
    np.testing.assert_allclose(out[name].values, HAND[name], rtol=2e-6, atol=1e-6)


def test_catalogue_spelling_names_the_variable_and_aliases_keep_their_name(scene):
    out = compute(scene, ["ndvi", "ndre", "msavi2", "NDREI"])
    assert list(out.data_vars) == ["NDVI", "NDRE", "MSAVI2", "NDREI"]
    np.testing.assert_array_equal(out["NDRE"].values, out["NDREI"].values)
    np.testing.assert_allclose(out["NDRE"].values, HAND["NDREI"], rtol=2e-6, atol=1e-6)


def test_constant_override_changes_only_that_constant(scene):
    out = compute(scene, ["SAVI", "EVI"], constants={"L": 0.25})
    np.testing.assert_allclose(out.SAVI.values, 1.25 * (N - R) / (N + R + 0.25), rtol=2e-6)
    np.testing.assert_allclose(
        out.EVI.values, 2.5 * (N - R) / (N + 6 * R - 7.5 * B + 0.25), rtol=2e-6
    )
    assert "L=0.25" in out.SAVI.attrs["constants"]


def test_attrs_coords_and_crs_are_kept(scene):
    out = compute(scene, "EVI")
    assert out.rio.crs == scene.rio.crs
    assert out.rio.transform() == scene.rio.transform()
    assert "spatial_ref" in out.coords
    np.testing.assert_array_equal(out.x, scene.x)
    np.testing.assert_array_equal(out.y, scene.y)
    assert out.attrs["sensor"] == "test"
    attrs = out.EVI.attrs
    assert attrs["long_name"] == "Enhanced Vegetation Index"
    assert attrs["formula"] == index_info("EVI").formula
    assert attrs["reference"].startswith("https://doi.org/")
    assert attrs["bands"] == "N=nir, R=red, B=blue"
    assert attrs["constants"] == "g=2.5, C1=6, C2=7.5, L=1"


def test_result_is_lazy_and_nothing_is_computed(make_scene):
    def boom(block):
        raise AssertionError("computed")

    scene = make_scene({"red": np.full((4, 4), 0.1), "nir": np.full((4, 4), 0.5)})
    scene["red"] = scene.red.copy(data=scene.red.data.map_blocks(boom, dtype=np.float32))
    out = compute(scene, ["NDVI", "EVI2"])  # would raise if anything ran
    assert isinstance(out.NDVI.data, da.Array)
    assert out.NDVI.data.chunks == ((2, 2), (2, 2))
    assert out.EVI2.dtype == np.float32
    with pytest.raises(AssertionError, match="computed"):
        out.NDVI.compute()


def test_nan_inputs_and_zero_denominators_give_nan_never_inf(make_scene):
    red = np.array([[0.0, np.nan, 0.2], [0.1, 0.0, -0.1]])
    nir = np.array([[0.0, 0.5, np.nan], [0.3, 0.2, 0.1]])
    blue = np.array([[0.0, 0.1, 0.1], [0.1, 0.0, 0.1]])
    scene = make_scene({"red": red, "nir": nir, "blue": blue}, chunks=3)
    out = compute(scene, ["NDVI", "SR", "EVI"]).compute()
    # NDVI: 0/0, NaN in, NaN in, 0.5, 1.0, (0.1+0.1)/(0.1-0.1) = x/0
    expected = np.array([[np.nan, np.nan, np.nan], [0.5, 1.0, np.nan]])
    np.testing.assert_allclose(out.NDVI.values, expected, rtol=1e-6)
    # SR = N/R: 0/0, NaN, NaN, 3, 0.2/0 = inf -> NaN, -1
    np.testing.assert_allclose(
        out.SR.values, [[np.nan, np.nan, np.nan], [3.0, np.nan, -1.0]], rtol=1e-6
    )
    for name in out.data_vars:
        assert out[name].dtype == np.float32
        assert not np.isinf(out[name].values).any()


def test_time_series_scene_keeps_time(make_scene):
    rng = np.random.default_rng(1)
    red, nir = rng.uniform(0.01, 0.5, (2, 3, 4, 5))
    scene = make_scene({"red": red, "nir": nir}, chunks=(1, 2, 5))
    out = compute(scene, "NDVI")
    assert out.NDVI.dims == ("time", "y", "x")
    np.testing.assert_array_equal(out.time, scene.time)
    hand = (nir.astype(np.float32) - red.astype(np.float32)) / (
        nir.astype(np.float32) + red.astype(np.float32)
    )
    np.testing.assert_array_equal(out.NDVI.values, hand)


def test_mixed_dims_broadcast(make_scene):
    rng = np.random.default_rng(2)
    nir = rng.uniform(0.2, 0.5, (2, 3, 4))
    scene = make_scene({"nir": nir}, chunks=(1, 3, 4))
    scene["red"] = xr.DataArray(np.full((3, 4), 0.1, dtype=np.float32), dims=("y", "x"))
    out = compute(scene, ["NDVI", "EVI2"])
    assert out.NDVI.dims == ("time", "y", "x")
    np.testing.assert_allclose(out.NDVI.values, (nir - 0.1) / (nir + 0.1), rtol=2e-6)


def test_landsat_style_nir08_and_single_rededge_are_used(make_scene):
    scene = make_scene({"red": REFL["red"], "nir08": REFL["nir"], "rededge": REFL["rededge1"]})
    out = compute(scene, ["NDVI", "CIRE"])
    np.testing.assert_allclose(out.NDVI.values, HAND["NDVI"], rtol=2e-6)
    np.testing.assert_allclose(out.CIRE.values, HAND["CIRE"], rtol=2e-6)
    assert out.NDVI.attrs["bands"] == "N=nir08, R=red"
    assert out.CIRE.attrs["bands"] == "N=nir08, RE1=rededge"


def test_missing_band_lists_what_is_needed_and_what_the_scene_has(make_scene):
    scene = make_scene({"red": REFL["red"], "nir": REFL["nir"]})
    with pytest.raises(BandNotFoundError) as err:
        compute(scene, ["NDVI", "EVI", "NDREI"])
    msg = str(err.value)
    assert "EVI needs B (blue)" in msg
    assert "NDREI needs RE1 (rededge1 or rededge)" in msg
    assert "the scene has bands: red, nir" in msg
    assert "NDVI" not in msg.split("the scene has")[0]


def test_unknown_index_suggests_close_names(scene):
    with pytest.raises(SpectralIndexError, match="did you mean NDVI"):
        compute(scene, "NDVII")


def test_constants_are_validated(scene):
    with pytest.raises(SpectralIndexError, match="unknown constant"):
        compute(scene, "SAVI", constants={"l": 0.5})  # misspelt L must not pass silently
    with pytest.raises(SpectralIndexError, match="not a finite number"):
        compute(scene, "SAVI", constants={"L": float("nan")})
    with pytest.raises(SpectralIndexError, match="band symbol"):
        compute(scene, "SAVI", constants={"N": 0.5})
    with pytest.raises(SpectralIndexError, match="no index requested"):
        compute(scene, [])


def test_constant_without_default_must_be_given(scene):
    with pytest.raises(SpectralIndexError, match=r"NIRvP needs constant\(s\) PAR"):
        compute(scene, "NIRvP")
    out = compute(scene, "NIRvP", constants={"PAR": 2.0})
    np.testing.assert_allclose(out.NIRvP.values, (N - R) / (N + R) * N * 2.0, rtol=2e-6)


def test_wavelength_constants_come_from_band_attrs(make_scene):
    scene = make_scene({k: REFL[k] for k in ("green", "red", "nir")})
    for name, um in (("green", 0.56), ("red", 0.665), ("nir", 0.842)):
        scene[name].attrs["center_wavelength_um"] = um
    out = compute(scene, "DVIplus")
    w = (842.0 - 665.0) / (842.0 - 560.0)
    np.testing.assert_allclose(out.DVIplus.values, w * G + (1 - w) * N - R, rtol=1e-5)
    given = compute(scene, "DVIplus", constants={"lambdaG": 560, "lambdaR": 665, "lambdaN": 842})
    np.testing.assert_array_equal(out.DVIplus.values, given.DVIplus.values)


def test_wavelength_constants_come_from_sensor_profile(make_scene):
    scene = make_scene({k: REFL[k] for k in ("green", "red", "nir")})
    scene.attrs["sensor"] = "sentinel-2-l2a"  # B03 0.560, B04 0.665, B08 0.842 um
    w = (842.0 - 665.0) / (842.0 - 560.0)
    out = compute(scene, "DVIplus")
    np.testing.assert_allclose(out.DVIplus.values, w * G + (1 - w) * N - R, rtol=1e-5)
    scene.attrs["sensor"] = "no-such-sensor"
    with pytest.raises(SpectralIndexError, match="lambdaN"):
        compute(scene, "DVIplus")


def test_custom_formulas_with_own_constants(scene):
    out = compute(
        scene,
        "NDVI",
        formulas={"MYIDX": "(N - a * R) / (N + a * R)", "RATIO": "N / R"},
        constants={"a": 2.0},
    )
    assert list(out.data_vars) == ["NDVI", "MYIDX", "RATIO"]
    np.testing.assert_allclose(out.MYIDX.values, (N - 2 * R) / (N + 2 * R), rtol=2e-6)
    np.testing.assert_allclose(out.RATIO.values, N / R, rtol=2e-6)
    assert out.MYIDX.attrs["formula"] == "(N - a * R) / (N + a * R)"
    with pytest.raises(FormulaError):
        compute(scene, [], formulas={"BAD": "__import__('os').system('true')"})
    with pytest.raises(FormulaError, match="unknown name 'a'"):
        compute(scene, [], formulas={"MYIDX": "N - a * R"})  # a not given


def test_registered_index_is_computed(scene):
    register_index("TWICE_NDVI", "2 * (N - R) / (N + R)", long_name="Twice NDVI", overwrite=True)
    try:
        out = compute(scene, "TWICE_NDVI")
        np.testing.assert_allclose(out.TWICE_NDVI.values, 2 * HAND["NDVI"], rtol=2e-6)
        assert out.TWICE_NDVI.attrs["long_name"] == "Twice NDVI"
    finally:
        unregister_index("TWICE_NDVI")


def test_identity_formula_does_not_alias_the_input(make_scene):
    nir = np.array([[0.2, np.inf], [0.3, 0.4]])
    scene = make_scene({"nir": nir}, chunks=2)
    out = compute(scene, [], formulas={"JUST_N": "N"})
    assert np.isnan(out.JUST_N.values[0, 1])
    assert np.isinf(scene.nir.values[0, 1])  # the input block was not modified


def test_numpy_backed_scene_works_eagerly(scene):
    eager = scene.compute()
    out = compute(eager, "NDVI")
    assert isinstance(out.NDVI.data, np.ndarray)
    np.testing.assert_allclose(out.NDVI.values, HAND["NDVI"], rtol=2e-6)


def test_every_catalogue_index_evaluates_on_an_all_band_scene(all_band_scene):
    names = [i.name for i in list_indices()]
    assert len(names) >= 280
    with dask.config.set(scheduler="synchronous"):
        out = compute(all_band_scene, names, constants={"PAR": 1.0}).compute()
    assert list(out.data_vars) == names
    for name in names:
        values = out[name].values
        assert values.dtype == np.float32, name
        assert values.shape == (2, 6, 7), name
        assert not np.isinf(values).any(), name
        assert np.isfinite(values).any(), name  # not silently all-NaN


reflectance = st.floats(0.0, 1.0, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(reflectance, reflectance, reflectance), min_size=1, max_size=30))
def test_normalized_differences_stay_within_unit_interval(pixels):
    arr = np.array(pixels, dtype=np.float32).T[:, None, :]  # (3, 1, n)
    scene = xr.Dataset(
        {
            k: (("y", "x"), da.from_array(v, chunks=7))
            for k, v in zip(("red", "nir", "green"), arr, strict=True)
        }
    )
    out = compute(scene, ["NDVI", "GNDVI", "NDWI"]).compute()
    for name in out.data_vars:
        values = out[name].values
        finite = values[np.isfinite(values)]
        assert ((finite >= -1) & (finite <= 1)).all()
        both_zero = (arr[0] + arr[1] == 0) if name == "NDVI" else None
        if both_zero is not None:
            assert np.isnan(values[both_zero]).all()


def test_a_dataarray_is_not_a_scene(scene):
    with pytest.raises(TypeError, match="needs an xarray Dataset"):
        compute(scene.red, "NDVI")
