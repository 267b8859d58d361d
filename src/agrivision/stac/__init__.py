"""Imagery for the fields from a STAC API: search, per-field cloud check, cached windows.

``search_items`` finds the scenes over the fields and dates that are clear over the fields
and writes them as an ItemCollection that :func:`agrivision.open_scene` and
``agrivision report`` read lazily, fetching only the fields' windows of the remote COGs
(with the GDAL settings of :func:`agrivision.io.remote.gdal_http_env`).
"""

from agrivision.io.remote import gdal_http_env
from agrivision.stac.assets import DEFAULT_BANDS, select_assets
from agrivision.stac.cache import cache_windows
from agrivision.stac.clouds import field_clouds
from agrivision.stac.search import KNOWN_ENDPOINTS, SearchResult, search_items

__all__ = [
    "DEFAULT_BANDS",
    "KNOWN_ENDPOINTS",
    "SearchResult",
    "cache_windows",
    "field_clouds",
    "gdal_http_env",
    "search_items",
    "select_assets",
]
