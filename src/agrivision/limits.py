"""Ceilings on what agrivision materialises, and the rule for network access.

Pixels
    Library code keeps scenes lazy (memory bounded by the chunk size). Two ceilings stop a
    hostile or mistaken input (a header claiming 10^12 pixels, a thumbnail of a field as big
    as a country) before anything is allocated:

    * ``AGRIVISION_MAX_PIXELS`` (default :data:`DEFAULT_MAX_PIXELS`, 2^28 = 268 million): the
      most pixels one operation may hold in memory at once, e.g. a drone frame read whole or
      a field's window read for a thumbnail.
    * ``AGRIVISION_MAX_SCENE_PIXELS`` (default :data:`DEFAULT_MAX_SCENE_PIXELS`, 2^36, about
      262,144 x 262,144): the largest grid :func:`agrivision.open_scene` builds a lazy scene
      on. Nothing is read, but dask needs one task per chunk, so a larger grid costs seconds
      to minutes and gigabytes before the first pixel.

    Both are read from the environment at each check (set them before running a command), or
    set in Python with :func:`pixel_limits`. Exceeding one raises
    :class:`~agrivision.errors.ResourceLimitError`.

Network
    GDAL reads from the network only what the user names: a remote source passed directly
    (``http(s)://``, ``s3://``, ``/vsicurl/``, ``/vsis3/``...). Remote references found inside
    local files (asset hrefs of a local STAC item, sources of a local VRT) are refused unless
    ``allow_remote=True`` is passed or ``AGRIVISION_ALLOW_REMOTE=1`` is set. Items written by
    ``agrivision search`` (property ``agrivision:searched``) are read without it: the user
    asked for the network.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from agrivision.errors import ConfigError, ResourceLimitError, SourceError

ENV_MAX_PIXELS = "AGRIVISION_MAX_PIXELS"
ENV_MAX_SCENE_PIXELS = "AGRIVISION_MAX_SCENE_PIXELS"
ENV_ALLOW_REMOTE = "AGRIVISION_ALLOW_REMOTE"
DEFAULT_MAX_PIXELS = 2**28
DEFAULT_MAX_SCENE_PIXELS = 2**36

_REMOTE = re.compile(
    r"(?i)(^|/)(https?|ftp|s3|gs|az|abfs|azure|oss)://|/vsi(curl|s3|gs|az|adls|oss|swift|hdfs|webhdfs)"
)
_VRT_SOURCES = re.compile(r"<(?:SourceFilename|SrcDataSource)[^>]*>([^<]*)<", re.IGNORECASE)
_MAX_VRT_BYTES = 50_000_000


def max_pixels() -> int:
    """Most pixels one operation may materialise (``AGRIVISION_MAX_PIXELS``)."""
    return _env_int(ENV_MAX_PIXELS, DEFAULT_MAX_PIXELS)


def max_scene_pixels() -> int:
    """Largest grid, in pixels, a lazy scene may have (``AGRIVISION_MAX_SCENE_PIXELS``)."""
    return _env_int(ENV_MAX_SCENE_PIXELS, DEFAULT_MAX_SCENE_PIXELS)


@contextlib.contextmanager
def pixel_limits(
    max_pixels: int | None = None, max_scene_pixels: int | None = None
) -> Iterator[None]:
    """Temporarily set the pixel ceilings (process-wide, through the environment)."""
    saved = {k: os.environ.get(k) for k in (ENV_MAX_PIXELS, ENV_MAX_SCENE_PIXELS)}
    try:
        for key, limit in ((ENV_MAX_PIXELS, max_pixels), (ENV_MAX_SCENE_PIXELS, max_scene_pixels)):
            if limit is not None:
                os.environ[key] = str(int(limit))
        yield
    finally:
        for key, previous in saved.items():
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous


def check_pixels(
    shape: Sequence[int], *, what: str, source: str | os.PathLike | None = None
) -> None:
    """Raise before materialising an array of ``shape`` with more than :func:`max_pixels`.

    Parameters
    ----------
    shape
        The array shape (any number of dimensions; bands and dates count too).
    what
        What would be materialised, for the message ("drone frame", "field window").

    Raises
    ------
    ResourceLimitError
        The product of ``shape`` exceeds the ceiling.
    """
    _check(shape, max_pixels(), ENV_MAX_PIXELS, f"{what} would materialise", source)


def check_scene_pixels(shape: Sequence[int], *, source: str | os.PathLike | None = None) -> None:
    """Raise when a lazy scene grid of ``shape`` exceeds :func:`max_scene_pixels`.

    Raises
    ------
    ResourceLimitError
        The grid is larger than the ceiling.
    """
    _check(shape, max_scene_pixels(), ENV_MAX_SCENE_PIXELS, "scene grid has", source)


def is_remote(path: str | os.PathLike) -> bool:
    """True for paths GDAL would fetch over the network (URLs and network ``/vsi*/``)."""
    return bool(_REMOTE.search(str(path)))


def remote_allowed(allow_remote: bool | None = None) -> bool:
    """``allow_remote`` if given, else whether ``AGRIVISION_ALLOW_REMOTE`` is set to 1/true."""
    if allow_remote is not None:
        return allow_remote
    return os.environ.get(ENV_ALLOW_REMOTE, "").strip().lower() in {"1", "true", "yes"}


def check_remote_reference(
    reference: str, *, container: str | os.PathLike, allow_remote: bool | None = None
) -> None:
    """Refuse a remote ``reference`` found inside a local ``container`` unless allowed.

    A remote container (the user passed a URL) may reference remote data: the user chose
    the network.

    Raises
    ------
    SourceError
        ``reference`` is remote, ``container`` is local and remote access is not allowed.
    """
    if is_remote(reference) and not is_remote(container) and not remote_allowed(allow_remote):
        raise SourceError(
            f"refers to remote data ({reference[:120]}); agrivision reads from the network "
            "only when asked",
            source=container,
            fix=f"pass allow_remote=True or set {ENV_ALLOW_REMOTE}=1, or use local copies",
        )


def check_vrt(path: str | os.PathLike, *, allow_remote: bool | None = None) -> None:
    """Refuse a local VRT whose sources are remote, unless allowed (see the module docstring).

    Raises
    ------
    SourceError
        A source of the VRT is remote and remote access is not allowed, or the VRT is too
        large to be a VRT.
    """
    p = Path(path)
    if is_remote(p) or p.suffix.lower() != ".vrt" or not p.is_file():
        return
    if p.stat().st_size > _MAX_VRT_BYTES:
        raise SourceError("VRT file is larger than 50 MB", source=p, fix="check the file")
    text = p.read_text(encoding="utf-8", errors="replace")
    for ref in _VRT_SOURCES.findall(text):
        check_remote_reference(ref.strip(), container=p, allow_remote=allow_remote)


def _check(shape: Sequence[int], limit: int, env: str, what: str, source) -> None:
    n = math.prod(int(s) for s in shape)
    if n > limit:
        dims = " x ".join(f"{int(s):,}" for s in shape)
        raise ResourceLimitError(
            f"{what} {n:,} pixels ({dims}), more than the ceiling of {limit:,}",
            source=source,
            fix=f"work on a smaller area/resolution, or raise the ceiling with {env}=N",
        )


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip().replace("_", "")
    if not text:
        return default
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"{name}={os.environ[name]!r} is not a positive number of pixels",
            source="environment",
            fix=f"e.g. {name}={default}",
        )
    return value
