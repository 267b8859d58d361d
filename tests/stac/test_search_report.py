"""`agrivision search` + `agrivision report` end to end against a real STAC API and a real
range-request file server on 127.0.0.1 (see conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import rasterio
from rasterio.warp import transform_bounds
from stac_servers import CLOUDY, COLLECTION, HAZY, KEPT, free_port

from agrivision.cli import main
from agrivision.report.run import run_report


def _search(remote, out: Path, *extra: str) -> int:
    return main([
        "search", "--stac", remote.stac, "--collection", COLLECTION,
        "--fields", str(remote.collection.fields), "--datetime", "2024-05-01/2024-07-31",
        "-o", str(out), "--quiet", *extra,
    ])  # fmt: skip


def _served(remote, name: str) -> int:
    return remote.files.bytes[f"/files/{name}"]


def _needed_tile_bytes(path: Path, fields_path: Path) -> tuple[int, int]:
    """Bytes of the COG tiles that the fields' window touches, and the file's size."""
    import geopandas as gpd

    fields = gpd.read_file(fields_path)
    with rasterio.open(path) as src:
        left, bottom, right, top = transform_bounds(fields.crs, src.crs, *fields.total_bounds)
        inv = ~src.transform
        c0, r0 = inv @ (left, top)
        c1, r1 = inv @ (right, bottom)
        by, bx = src.block_shapes[0]
        total = 0
        for row in range(int(r0 - 1) // by, int(r1 + 1) // by + 1):
            for col in range(int(c0 - 1) // bx, int(c1 + 1) // bx + 1):
                total += int(src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1))
    return total, path.stat().st_size


def test_search_keeps_the_date_clear_over_the_fields(remote, tmp_path, capsys) -> None:
    out = tmp_path / "items.json"
    assert _search(remote, out) == 0
    doc = json.loads(out.read_text())
    kept = doc["features"]
    assert [i["properties"]["datetime"][:10] for i in kept] == [KEPT]
    item = kept[0]
    # half the tile under cloud, none of it over the fields: every field clear
    assert item["properties"]["agrivision:reason"].startswith("kept: 6 of 6 fields clear")
    assert item["properties"]["agrivision:searched"] == remote.stac
    assert sorted(item["assets"]) == ["nir", "red", "scl"]  # no preview, no aerosol band
    assert item["assets"]["red"]["raster:bands"][0]["offset"] == pytest.approx(-0.1)
    dropped = {d["datetime"][:10]: d["reason"] for d in doc["agrivision:dropped"]}
    assert dropped[CLOUDY].startswith("cloudy over the fields: 0 of 6 fields clear (cloud 100")
    assert dropped[HAZY] == "scene 99% cloudy (over 95%)"
    # only quality bands were read, never the reflectance, previews or the hazy date
    assert {p.rsplit("_", 2)[-2] for p in remote.files.requests} == {"SCL"}
    assert "kept 1 of 3 items" in capsys.readouterr().out


def test_report_reads_only_the_fields_windows(remote, tmp_path) -> None:
    items = tmp_path / "items.json"
    assert _search(remote, items) == 0
    remote.files.reset()
    out = tmp_path / "report"
    assert main(["report", str(items), "--fields", str(remote.collection.fields),
                 "-o", str(out), "--quiet"]) == 0  # fmt: skip
    table = pd.read_csv(out / "fields.csv")
    assert len(table) == 6
    folder = remote.collection.folder
    for band in ("B04_10m", "B08_10m"):
        name = f"S2X_MSIL2A_{KEPT.replace('-', '')}_T33UUU_{band}.tif"
        needed, size = _needed_tile_bytes(folder / name, remote.collection.fields)
        served = _served(remote, name)
        # the header (one 64 KiB read) and the fields' tiles, each rounded up to GDAL's
        # 16 KiB reads; one of the four 512-pixel tiles
        assert needed <= served <= needed + 65536 + 2 * 16384, (band, served, needed)
        assert served < 0.35 * size
    assert not [p for p in remote.files.requests if "missing" in p or CLOUDY.replace("-", "") in p]
    # the same numbers as a report over the whole local tile
    local = run_report(
        [str(folder / f"item_{KEPT}.json")], remote.collection.fields, tmp_path / "local"
    )
    ndvi = next(c for c in table.columns if c.lower().startswith("ndvi_mean"))
    expected = local.table.set_index("field_id").loc[table["field_id"], ndvi]
    assert table[ndvi].to_numpy() == pytest.approx(expected.to_numpy(), abs=1e-6)
    assert table[ndvi].between(0.2, 1).all()


def test_cache_keeps_the_windows_and_reuses_them(remote, tmp_path) -> None:
    items = tmp_path / "items.json"
    assert _search(remote, items) == 0
    cache = tmp_path / "cache"
    args = ["report", str(items), "--fields", str(remote.collection.fields), "--quiet",
            "--cache", str(cache)]  # fmt: skip
    remote.files.reset()
    assert main([*args, "-o", str(tmp_path / "first")]) == 0
    first_bytes = sum(remote.files.bytes.values())
    assert first_bytes > 0
    cached = sorted(cache.glob("*.tif"))
    assert len(cached) == 3  # red, nir, scl of the kept date
    with rasterio.open(cached[0]) as src:
        assert src.width <= 512 and src.height <= 512  # the fields' block, not the tile
    remote.files.reset()
    assert main([*args, "-o", str(tmp_path / "second")]) == 0
    assert sum(remote.files.bytes.values()) == 0  # nothing fetched again
    a = pd.read_csv(tmp_path / "first" / "fields.csv")
    b = pd.read_csv(tmp_path / "second" / "fields.csv")
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------- errors


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("agrivision: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_search_against_a_server_that_is_down(remote, tmp_path, capsys) -> None:
    out = tmp_path / "items.json"
    remote.stac = f"http://127.0.0.1:{free_port()}"
    assert _search(remote, out) == 2
    assert "cannot reach the STAC API" in _one_line_error(capsys)
    assert not out.exists()


def test_search_for_a_missing_collection(remote, tmp_path, capsys) -> None:
    out = tmp_path / "items.json"
    code = main(["search", "--stac", remote.stac, "--collection", "nope", "--fields",
                 str(remote.collection.fields), "--datetime", "2024-05-01/2024-07-31",
                 "-o", str(out)])  # fmt: skip
    assert code == 2
    assert "has no collection 'nope'" in _one_line_error(capsys)
    assert not out.exists()


def test_search_that_finds_nothing(remote, tmp_path, capsys) -> None:
    out = tmp_path / "items.json"
    assert _search(remote, out, "--datetime", "2020-01-01/2020-02-01") == 2
    assert "no item of collection" in _one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("failure", ["404", "500 mid-read", "server down"])
def test_report_when_the_file_server_fails(remote, tmp_path, capsys, failure) -> None:
    items = tmp_path / "items.json"
    assert _search(remote, items) == 0
    doc = json.loads(items.read_text())
    if failure == "404":
        asset = doc["features"][0]["assets"]["nir"]
        asset["href"] = asset["href"].replace("B08", "B8X")
        items.write_text(json.dumps(doc))
    elif failure == "500 mid-read":
        remote.files.reset()
        remote.files.fail_status, remote.files.fail_after = 500, 4  # after the headers
    else:
        remote.base = doc["features"][0]["assets"]["red"]["href"]
        port = remote.base.split(":")[2].split("/")[0]
        items.write_text(items.read_text().replace(f":{port}/", f":{free_port()}/"))
    capsys.readouterr()
    out = tmp_path / "report"
    code = main(["report", str(items), "--fields", str(remote.collection.fields), "-o", str(out),
                 "--quiet"])  # fmt: skip
    assert code == 2
    line = _one_line_error(capsys)
    expected = {"404": "HTTP response code: 404", "500 mid-read": "HTTP error code: 500",
                "server down": "Could not connect"}  # fmt: skip
    assert expected[failure] in line and "127.0.0.1" in line
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.partial")]
