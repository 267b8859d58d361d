"""``search_items``: the scenes of a STAC API over the fields and dates, clear over the fields.

Steps: search the API (pystac-client) by the fields' bounding box (WGS84) and the dates;
drop scenes whose ``eo:cloud_cover`` exceeds ``max_scene_cloud`` (on the server when it
supports the query extension); keep only the assets agrivision reads
(:mod:`agrivision.stac.assets`); read the quality band over the fields only and keep every
date on which at least one field is clear (:mod:`agrivision.stac.clouds`). The kept Items
carry ``agrivision:searched`` (so that reports read them over the network without
``AGRIVISION_ALLOW_REMOTE``) and the reason they were kept; the dropped ones are listed with
theirs in the ItemCollection's ``agrivision:dropped`` member.

Known endpoints (not reachable from the tests; see the README's "Get imagery"):
:data:`KNOWN_ENDPOINTS`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd

from agrivision.errors import RemoteError, SensorError, SourceError
from agrivision.io.atomic import atomic_path
from agrivision.io.bands import detect_sensor
from agrivision.io.remote import SEARCHED
from agrivision.io.sources import parse_date
from agrivision.sensors import SensorProfile, load_profile
from agrivision.stac.assets import DEFAULT_BANDS, asset_variable, select_assets
from agrivision.stac.clouds import field_clouds

log = logging.getLogger(__name__)

#: Public STAC APIs with the collections agrivision reads (asset keys differ; both work).
KNOWN_ENDPOINTS = {
    "earth-search": "https://earth-search.aws.element84.com/v1",  # sentinel-2-l2a, landsat-c2-l2
    "planetary-computer": "https://planetarycomputer.microsoft.com/api/stac/v1",
}
#: Item property: why the item was kept.
REASON = "agrivision:reason"


@dataclass
class SearchResult:
    """Items kept (with ``agrivision:searched`` and ``agrivision:reason``) and dropped ones."""

    url: str
    collection: str
    kept: list[dict] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)  # {"id", "datetime", "reason"}

    def write(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the kept Items as a STAC ItemCollection (atomically)."""
        doc = {
            "type": "FeatureCollection",
            "features": self.kept,
            "agrivision:search": {"stac": self.url, "collection": self.collection},
            "agrivision:dropped": self.dropped,
        }
        target = Path(path)
        with atomic_path(target, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        return target


def search_items(
    url: str,
    collection: str,
    fields: gpd.GeoDataFrame,
    datetime: str,
    *,
    max_cloud: float = 20.0,
    max_scene_cloud: float = 95.0,
    bands: Sequence[str] = DEFAULT_BANDS,
    sensor: str | os.PathLike | SensorProfile | None = None,
    limit: int = 500,
) -> SearchResult:
    """Search a STAC API for the scenes over ``fields`` in ``datetime`` that are clear over them.

    Parameters
    ----------
    url
        STAC API root (e.g. ``https://earth-search.aws.element84.com/v1``). Planetary
        Computer asset URLs are signed when the ``planetary-computer`` package is installed.
    collection
        Collection id (``sentinel-2-l2a``, ``landsat-c2-l2``...).
    fields
        Field polygons with ``field_id``, any CRS.
    datetime
        ``START/END`` (ISO 8601 dates or times, UTC), as STAC APIs take it.
    max_cloud
        Most cloud, cirrus and shadow (percent of a field's observed pixels) for a field to
        count as clear; a date is kept when at least one field is clear.
    max_scene_cloud
        Scenes with a larger ``eo:cloud_cover`` (percent of the whole scene) are dropped
        without reading a pixel.
    bands
        Reflectance variables (STAC common names) the kept items offer; the quality band is
        always kept.
    sensor
        Sensor profile; detected from the items when omitted.
    limit
        Most items taken from the API.

    Returns
    -------
    SearchResult

    Raises
    ------
    RemoteError
        The API cannot be reached, answers with an HTTP error, or has no such collection.
    SourceError
        No item found, or none clear over the fields.
    BandNotFoundError
        The collection's items lack the wanted bands or a quality band.
    """
    bbox = [float(v) for v in fields.to_crs(4326).total_bounds]
    found = _search(url, collection, bbox, datetime, max_scene_cloud, limit)
    if not found:
        raise SourceError(
            f"no item of collection {collection!r} over the fields in {datetime}",
            source=url,
            fix="widen --datetime, or check the collection and the fields' location",
        )
    result = SearchResult(url=url, collection=collection)
    candidates = []
    for item in found:
        cover = (item.get("properties") or {}).get("eo:cloud_cover")
        if cover is not None and float(cover) > max_scene_cloud:
            result.dropped.append(
                _dropped(item, f"scene {float(cover):.0f}% cloudy (over {max_scene_cloud:g}%)")
            )
        else:
            candidates.append(item)
    if not candidates:
        raise SourceError(
            f"all {len(found)} items are more than {max_scene_cloud:g}% cloudy",
            source=url,
            fix="raise --max-scene-cloud or widen --datetime",
        )
    profile = load_profile(sensor) if sensor is not None else detect_sensor([], candidates)
    if profile is None:
        raise SensorError(
            f"cannot tell the sensor of collection {collection!r}",
            source=url,
            fix="pass --sensor NAME (see `agrivision sensors`)",
        )
    quality = next(iter(profile.masks.values())).name if profile.masks else None
    if quality is None:
        raise SensorError(
            f"sensor {profile.name} has no quality band to tell clouds over the fields",
            source=url,
            fix="choose a Level-2 collection (sentinel-2-l2a, landsat-c2-l2)",
        )
    items = [select_assets(item, profile, bands, source=url) for item in candidates]
    for item in items:
        item.setdefault("properties", {})[SEARCHED] = url
    with tempfile.TemporaryDirectory(prefix="agrivision-search-") as tmp:
        path = Path(tmp) / "candidates.json"
        # only the quality band's headers and the fields' blocks of it are fetched
        only_quality = [
            {**item, "assets": {k: a for k, a in item["assets"].items()
                                if asset_variable(k, a, profile) == quality}}
            for item in items
        ]  # fmt: skip
        path.write_text(json.dumps({"type": "FeatureCollection", "features": only_quality}))
        clouds = field_clouds(path, fields, quality, sensor=profile)
    _decide(result, items, clouds, max_cloud)
    if not result.kept:
        raise SourceError(
            f"all {len(found)} items are cloudy over the fields (no field at most "
            f"{max_cloud:g}% cloud on any date)",
            source=url,
            fix="raise --max-cloud or widen --datetime",
        )
    return result


def _decide(result: SearchResult, items: list[dict], clouds, max_cloud: float) -> None:
    """Keep the items of each date on which at least one observed field is clear."""
    observed = clouds[clouds["observed"] > 0]
    for item in items:
        when = parse_date(str(item["properties"].get("datetime") or ""))
        day = observed[observed["date"] == (when.date() if when else None)]
        cover = item["properties"].get("eo:cloud_cover")
        scene = f"scene {float(cover):.0f}% cloudy" if cover is not None else "scene cover unknown"
        if day.empty:
            result.dropped.append(_dropped(item, f"no field observed ({scene})"))
            continue
        clear = int((day["cloud"] * 100 <= max_cloud).sum())
        worst, best = day["cloud"].max() * 100, day["cloud"].min() * 100
        summary = f"{clear} of {len(day)} fields clear (cloud {best:.0f}–{worst:.0f}% over the fields, {scene})"
        if clear:
            item["properties"][REASON] = f"kept: {summary}"
            result.kept.append(item)
        else:
            result.dropped.append(_dropped(item, f"cloudy over the fields: {summary}"))


def _dropped(item: dict, reason: str) -> dict:
    return {
        "id": item.get("id"),
        "datetime": (item.get("properties") or {}).get("datetime"),
        "reason": reason,
    }


def _search(
    url: str, collection: str, bbox: list[float], datetime: str, max_cloud: float, limit: int
) -> list[dict]:
    """Items (dicts) of the API search; network and HTTP errors become :class:`RemoteError`."""
    import requests
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    try:
        client = Client.open(url, modifier=_signer(url))
        if client.get_collection(collection) is None:
            raise RemoteError(
                f"the STAC API has no collection {collection!r}",
                source=url,
                fix="check --collection (e.g. sentinel-2-l2a, landsat-c2-l2)",
            )
        query = None
        if client.conforms_to("QUERY"):  # server-side scene cloud filter when supported
            query = {"eo:cloud_cover": {"lte": max_cloud}}
        search = client.search(
            collections=[collection], bbox=bbox, datetime=datetime, query=query,
            max_items=limit,
        )  # fmt: skip
        return list(search.items_as_dicts())
    except RemoteError:
        raise
    except APIError as exc:
        status = getattr(exc, "status_code", None)
        if status is None:  # pystac-client reports a refused or timed-out connection so
            raise RemoteError(
                "cannot reach the STAC API (no connection)",
                source=url,
                fix="check the URL and the network connection",
            ) from exc
        detail = " ".join(str(exc).split())[:200]
        raise RemoteError(
            f"the STAC API answered with HTTP {status} ({detail})",
            source=url,
            fix="check the URL and --collection, or try again later",
        ) from exc
    except requests.RequestException as exc:
        raise RemoteError(
            f"cannot reach the STAC API ({type(exc).__name__})",
            source=url,
            fix="check the URL and the network connection",
        ) from exc
    except ValueError as exc:  # a malformed --datetime, or a page that is not STAC JSON
        raise RemoteError(f"search refused: {exc}", source=url, fix="check --datetime") from exc


def _signer(url: str):
    """Planetary Computer asset URLs need a token: sign items when the package is there."""
    if "planetarycomputer" not in url:
        return None
    try:
        import planetary_computer
    except ImportError:
        log.warning("Planetary Computer assets need signed URLs: pip install planetary-computer")
        return None
    return planetary_computer.sign_inplace
