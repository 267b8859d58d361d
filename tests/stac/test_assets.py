"""Which assets of a searched Item are read, named how, scaled how (no server needed)."""

from __future__ import annotations

import pytest

from agrivision.errors import BandNotFoundError
from agrivision.sensors import load_profile
from agrivision.stac import select_assets

S2 = load_profile("sentinel-2-l2a")
L8 = load_profile("landsat-8-c2-l2")
_ES_BAND = {"scale": 0.0001, "offset": -0.1, "nodata": 0}  # as Earth Search v1 states it


def _item(assets: dict, **props) -> dict:
    return {"id": "x", "properties": {"datetime": "2023-06-01T10:00:00Z", **props},
            "assets": assets}  # fmt: skip


def _cog(name: str, **extra) -> dict:
    return {"href": f"https://host/{name}.tif", "roles": ["data"], **extra}


def _earth_search(**props) -> dict:
    return _item({
        "red": _cog("B04", **{"eo:bands": [{"common_name": "red"}], "raster:bands": [_ES_BAND]}),
        "nir": _cog("B08", **{"raster:bands": [_ES_BAND]}),
        "scl": _cog("SCL"),
        "red-jp2": {"href": "s3://bucket/B04.jp2", "roles": ["data"]},
        "visual": _cog("TCI", **{"eo:bands": [{}, {}, {}]}),
        "aot": _cog("AOT"),
    }, **props)  # fmt: skip


@pytest.mark.parametrize(
    ("props", "offset"),
    [
        # pixels already shifted back by Element84: the -0.1 of raster:bands must not apply
        ({"earthsearch:boa_offset_applied": True, "s2:processing_baseline": "05.09"}, 0.0),
        # raw baseline >= 04.00 pixels carry +1000 DN
        ({"earthsearch:boa_offset_applied": False, "s2:processing_baseline": "05.09"}, -0.1),
        # before baseline 04.00 there is no offset, whatever raster:bands say
        ({"earthsearch:boa_offset_applied": False, "s2:processing_baseline": "03.01"}, 0.0),
        # no flag: raster:bands win
        ({"s2:processing_baseline": "03.01"}, -0.1),
    ],
)
def test_earth_search_sentinel2_offset(props, offset) -> None:
    item = select_assets(_earth_search(**props), S2, ["red", "nir"], source="es")
    assert sorted(item["assets"]) == ["nir", "red", "scl"]
    for key in ("red", "nir"):
        band = item["assets"][key]["raster:bands"][0]
        assert band["scale"] == 0.0001
        assert band["offset"] == pytest.approx(offset)
    assert "raster:bands" not in item["assets"]["scl"]


def test_planetary_computer_band_ids_and_baseline_offset() -> None:
    item = _item(
        {"B04": _cog("B04"), "B08": _cog("B08"), "SCL": _cog("SCL"), "B01": _cog("B01")},
        **{"s2:processing_baseline": "04.00"},
    )
    out = select_assets(item, S2, ["red", "nir"], source="pc")
    assert sorted(out["assets"]) == ["B04", "B08", "SCL"]
    assert out["assets"]["B04"]["raster:bands"][0]["offset"] == pytest.approx(-0.1)


def test_landsat_common_names_and_a_quality_band_without_data_role() -> None:
    band = {"scale": 0.0000275, "offset": -0.2}
    item = _item({
        "red": _cog("SR_B4", **{"raster:bands": [band]}),
        "nir08": _cog("SR_B5", **{"raster:bands": [band]}),
        "qa_pixel": {"href": "https://host/QA_PIXEL.TIF", "roles": ["cloud", "cloud-shadow"]},
    })  # fmt: skip
    out = select_assets(item, L8, ["red", "nir", "nir08", "rededge1"], source="pc")
    assert sorted(out["assets"]) == ["nir08", "qa_pixel", "red"]
    assert "data" in out["assets"]["qa_pixel"]["roles"]  # open_scene reads data assets
    assert out["assets"]["red"]["raster:bands"][0] == pytest.approx(band)


def test_collection_without_quality_band_is_refused() -> None:
    item = _item({"red": _cog("B04"), "nir": _cog("B08")})
    with pytest.raises(BandNotFoundError, match="no single-band COG for scl"):
        select_assets(item, S2, ["red", "nir"], source="https://api")


def test_planetary_computer_items_are_signed_when_the_package_is_there(monkeypatch) -> None:
    import sys
    import types

    from agrivision.stac.search import _signer

    signer = types.ModuleType("planetary_computer")
    signer.sign_inplace = lambda obj: obj  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "planetary_computer", signer)
    assert _signer("https://planetarycomputer.microsoft.com/api/stac/v1") is signer.sign_inplace
    assert _signer("https://earth-search.aws.element84.com/v1") is None
    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # not installed
    assert _signer("https://planetarycomputer.microsoft.com/api/stac/v1") is None
