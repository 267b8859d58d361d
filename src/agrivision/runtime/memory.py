"""glibc heap settings that make freed chunk-sized arrays go back to the system."""

from __future__ import annotations

import ctypes
import functools
import sys

_M_MMAP_THRESHOLD = -3  # mallopt parameter (glibc's malloc.h)
_MMAP_THRESHOLD_BYTES = 1 << 20


def return_freed_memory() -> None:
    """Have glibc's malloc give freed chunk-sized arrays back to the system.

    By default glibc raises its mmap threshold (up to 32 MB) at the first large free; from
    then on chunk-sized numpy arrays (1-4 MB) come from per-thread heaps that fragment and
    are not returned, so the process keeps what earlier stages used. A fixed threshold keeps
    them mmapped: freed at once.
    dask.distributed's nanny sets ``MALLOC_TRIM_THRESHOLD_`` on workers for the same reason.
    The setting is process-wide and stays after the call; a no-op outside glibc.
    """
    if (libc := _glibc()) is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def trim_heap() -> None:
    """Return the free pages of glibc's heaps to the system (``malloc_trim``).

    Polygon stages free hundreds of MB in small GEOS allocations that stay in fragmented
    heaps otherwise (see ``benchmarks/README.md``). As dask's docs advise for "memory not
    released back to the OS".
    """
    if (libc := _glibc()) is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # another C library (musl)
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
