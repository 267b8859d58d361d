"""Reading rasters over HTTP: GDAL settings that make remote COG reads fast and robust, which
STAC Items count as asked-for network access, and whether a run reads remote data at all.

GDAL reads a remote COG through ``/vsicurl/`` with HTTP range requests: the header first,
then only the tiles a window needs. :func:`gdal_http_env` sets the options that keep that
to a few requests per window (no directory listing, consecutive ranges merged into one
request, a block cache) and that retry transient server errors, as process environment
variables so that every thread of the local dask scheduler and every worker process started
afterwards sees them. Options the user has set already win.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from rasterio.errors import RasterioIOError

from agrivision.errors import RemoteError
from agrivision.limits import is_remote

#: Item property written by ``agrivision search``: the STAC API the item came from. Such
#: items are read over the network without ``AGRIVISION_ALLOW_REMOTE`` (the user searched).
SEARCHED = "agrivision:searched"

#: GDAL options for remote reads (see https://gdal.org/user/configoptions.html).
GDAL_HTTP_OPTIONS: Mapping[str, str] = {
    # Opening a URL must not list its "directory" (an extra request, an error on object stores).
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # Only raster files are fetched; no probe for .aux.xml/.ovr side-cars.
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.jp2,.vrt",
    # Adjacent tiles of a window come in one request; several ranges in one when supported.
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIRANGE": "YES",
    # The header of a COG (IFDs, tile offsets) in one first read.
    "GDAL_INGESTED_BYTES_AT_OPEN": "65536",
    # Transient errors (429, 5xx, timeouts) are retried, with a growing delay.
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    # Block cache per opened file (bytes): tiles shared by neighbouring dask chunks are
    # fetched once.
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(32 * 2**20),
}


@contextlib.contextmanager
def gdal_http_env(**overrides: str) -> Iterator[dict[str, str]]:
    """Set :data:`GDAL_HTTP_OPTIONS` (plus ``overrides``) for the block, then restore.

    Options already in the environment are kept (the user's settings win). Environment
    variables rather than ``rasterio.Env``: GDAL reads them in every thread that opens a file
    (dask's), and worker processes started inside the block inherit them.

    Yields
    ------
    dict
        The options in force for the block.
    """
    wanted = {**GDAL_HTTP_OPTIONS, **overrides}
    added = {k: v for k, v in wanted.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield {k: os.environ[k] for k in wanted}
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def remote_reads(remote: bool = True) -> Iterator[None]:
    """With ``remote``: :func:`gdal_http_env` for the block, and a raster read that fails in
    it becomes one :class:`~agrivision.errors.RemoteError` naming the server's last answer.
    Without, nothing changes (local reads keep GDAL's defaults, side-car files included).

    GDAL logs each retried HTTP error (``rasterio._err`` warnings); inside the block they
    are held back and the last one goes into the error, so that a failing server makes one
    line, not one per block and retry.
    """
    if not remote:
        yield
        return
    answers = _HttpErrors()
    logger = logging.getLogger("rasterio._err")
    logger.addFilter(answers)
    try:
        with gdal_http_env():
            yield
    except RasterioIOError as exc:
        cause = exc.__cause__ or exc.__context__ or exc
        detail = answers.last or " ".join(str(cause).split())
        raise RemoteError(
            f"cannot read remote raster data ({detail[:300]})",
            fix="check that the server is up and the items current (signed URLs expire), "
            "then run again (--cache DIR keeps the windows already read)",
        ) from exc
    finally:
        logger.removeFilter(answers)


class _HttpErrors(logging.Filter):
    """Holds back GDAL's HTTP error messages and remembers the last one."""

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "HTTP" in message and ("error" in message.lower() or "code" in message.lower()):
            # "CPLE_AppDefined:HTTP error code: 500 - URL. Retrying again in 0.5 secs"
            text = message.split(":", 1)[1] if message.startswith("CPLE_") else message
            self.last = " ".join(text.split(". Retrying")[0].split())
            return False
        return True


def is_searched(item: Mapping) -> bool:
    """True for a STAC Item that ``agrivision search`` wrote (its assets may be remote)."""
    return bool((item.get("properties") or {}).get(SEARCHED))


def reads_remote(sources: Sequence[str | os.PathLike]) -> bool:
    """True when ``sources`` are remote rasters or STAC JSON files whose assets are remote.

    Reads the JSON of local STAC files (no pixel, no network).
    """
    for source in sources:
        text = str(source)
        if is_remote(text):
            return True
        if text.lower().endswith((".json", ".geojson")) and Path(text).is_file():
            try:
                doc = json.loads(Path(text).read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue  # open_scene says what is wrong with it
            features = doc.get("features", [doc]) if isinstance(doc, dict) else []
            for item in features:
                assets = item.get("assets", {}) if isinstance(item, dict) else {}
                hrefs = [a.get("href", "") for a in assets.values() if isinstance(a, dict)]
                if any(is_remote(h) for h in hrefs):
                    return True
    return False
