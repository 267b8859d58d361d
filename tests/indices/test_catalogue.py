"""The catalogue: the whole Awesome Spectral Indices list from spyndex's JSON, plus user indices."""

from __future__ import annotations

import json

import pytest

from agrivision.errors import FormulaError, SpectralIndexError
from agrivision.indices import band_symbols, index_info, list_indices, register_index
from agrivision.indices.catalogue import CORRECTIONS, unregister_index
from agrivision.indices.symbols import data_dir

STAC_NAMES = {
    "coastal", "blue", "green1", "green", "yellow", "red", "rededge", "rededge1", "rededge2",
    "rededge3", "nir", "nir08", "nir09", "cirrus", "swir16", "swir22", "lwir11", "lwir12", "lwir",
}  # fmt: skip


@pytest.fixture(scope="module")
def shipped() -> dict:
    path = data_dir() / "spectral-indices-dict.json"
    return json.loads(path.read_text())["SpectralIndices"]


def test_every_shipped_index_is_listed_with_its_metadata(shipped):
    listed = {i.name: i for i in list_indices()}
    assert set(listed) == set(shipped)
    assert len(listed) >= 280
    for name, spec in shipped.items():
        info = listed[name]
        assert info.long_name == spec["long_name"]
        assert info.domain == spec["application_domain"]
        assert info.reference == spec["reference"]
        assert info.platforms == tuple(spec["platforms"])
        if name in CORRECTIONS and spec["formula"] == CORRECTIONS[name][0]:
            assert info.formula == CORRECTIONS[name][1]
        else:
            assert info.formula == spec["formula"]


def test_bands_and_constants_are_split():
    ndvi = index_info("NDVI")
    assert ndvi.bands == ("N", "R") and dict(ndvi.defaults) == {}
    evi = index_info("EVI")
    assert evi.bands == ("N", "R", "B")
    assert dict(evi.defaults) == {"g": 2.5, "C1": 6.0, "C2": 7.5, "L": 1.0}
    assert dict(index_info("SAVI").defaults) == {"L": 0.5}  # Huete 1988, not EVI's L = 1
    assert dict(index_info("NIRvP").defaults) == {"PAR": None}
    assert index_info("kNDVI").bands == ("N", "R")


def test_arvi_uses_kaufman_tanre_red_blue_term():
    assert index_info("ARVI").formula == "(N - (R - gamma * (B - R))) / (N + (R - gamma * (B - R)))"


def test_search_and_domain_filters():
    found = list_indices("red edge")
    assert {"NDREI", "CIRE", "RENDVI"} <= {i.name for i in found}
    assert all("red edge" in (i.name + " " + i.long_name).lower() for i in found)
    water = list_indices(application_domain="water")
    assert water and all(i.domain == "water" for i in water)
    assert "NDWI" in {i.name for i in water}
    names = [i.name for i in list_indices()]
    assert names == sorted(names, key=str.lower)
    assert list_indices("no such index at all") == []


def test_lookup_is_case_insensitive_with_aliases():
    assert index_info("ndvi").name == "NDVI"
    assert index_info("Ndre").name == "NDREI"
    assert index_info("MSAVI2").name == "MSAVI"
    assert index_info("BAI").name == "BAI" and index_info("BaI").name == "BaI"
    with pytest.raises(SpectralIndexError, match="ambiguous: BAI and BaI"):
        index_info("bai")


def test_unknown_index_suggests_close_names():
    with pytest.raises(
        SpectralIndexError, match="unknown spectral index 'NDVJ'; did you mean NDVI"
    ):
        index_info("NDVJ")
    with pytest.raises(SpectralIndexError, match="list_indices"):
        index_info("qqqqqq")


def test_band_symbols_map_to_our_scene_names():
    symbols = band_symbols()
    assert symbols["N"].candidates == ("nir", "nir08")
    assert symbols["RE1"].candidates == ("rededge1", "rededge")
    assert symbols["N2"].candidates == ("nir08",)
    assert symbols["WV"].candidates == ("nir09",)
    assert symbols["S1"].candidates == ("swir16",)
    assert symbols["S2"].candidates == ("swir22",)
    assert symbols["T"].candidates[0] == "lwir11"
    assert symbols["A"].candidates == ("coastal",)
    assert symbols["Y"].candidates == ("yellow",)
    assert symbols["G1"].candidates == ("green1",)
    assert symbols["VV"].candidates == ("vv",)
    for sym, info in symbols.items():
        if sym not in {"VV", "VH", "HH", "HV"}:
            assert set(info.candidates) <= STAC_NAMES, sym
            assert info.min_nm < info.max_nm


def test_register_index_lifecycle():
    try:
        info = register_index("MYND", "(N - G) / (N + G)", long_name="My ND", reference="me")
        assert info.custom and info.domain == "custom" and info.bands == ("N", "G")
        assert index_info("mynd") is info
        assert info in list_indices(application_domain="custom")
        with pytest.raises(SpectralIndexError, match="already exists"):
            register_index("MYND", "N - G")
        again = register_index("MYND", "N - G * k2", constants={"k2": 0.5}, overwrite=True)
        assert dict(again.defaults) == {"k2": 0.5}
        with pytest.raises(SpectralIndexError, match="already exists"):
            register_index("NDVI", "N - R", overwrite=True)  # the catalogue is not shadowed
        with pytest.raises(FormulaError):
            register_index("EVIL", "__import__('os')")
        with pytest.raises(SpectralIndexError, match="non-empty"):
            register_index(" ", "N")
    finally:
        unregister_index("MYND")
    with pytest.raises(SpectralIndexError):
        index_info("MYND")
