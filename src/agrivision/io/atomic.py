"""Atomic file output: write to a temporary file in the target directory, then rename.

A reader (or a crash) never sees a half-written target: it holds either the previous
complete file or the new complete file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from agrivision.errors import OutputError


def check_writable(path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Return ``path`` as a Path after checking that it may be written.

    Raises
    ------
    OutputError
        If the target exists and ``overwrite`` is false, if the directory does not exist,
        or if the directory is not writable.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputError(
            "output exists", source=target, fix="pass --overwrite or choose a new path"
        )
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(
            f"directory {parent} does not exist", source=target, fix="create it first"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"directory {parent} is not writable", source=target, fix="choose another output path"
        )
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto it.

    The temporary name keeps the target's suffix so that drivers chosen by suffix (GDAL,
    pyogrio) behave as for the target. On any exception the temporary file is removed and
    the target is untouched.

    Examples
    --------
    >>> with atomic_path("out.tif") as tmp:  # doctest: +SKIP
    ...     write_something(tmp)
    """
    target = check_writable(path, overwrite=overwrite)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent or "."
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # drivers want to create the file themselves
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError("writer produced no file", source=target, fix="report this as a bug")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform allows opening a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
