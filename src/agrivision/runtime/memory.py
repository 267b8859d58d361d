"""glibc heap settings that make freed chunk-sized arrays go back to the system."""

from __future__ import annotations

import ctypes
import functools
import sys

_M_MMAP_THRESHOLD = -3  # mallopt parameter (glibc's malloc.h)
_MMAP_THRESHOLD_BYTES = 8 << 20


def return_freed_memory() -> None:
    """Have glibc's malloc give freed large arrays back to the system (threshold 8 MB).

    By default glibc raises its mmap threshold (up to 32 MB) at the first large free; from
    then on big numpy arrays come from per-thread heaps that fragment and are not returned,
    so the process keeps what earlier stages used. A fixed threshold keeps arrays above it
    mmapped: freed at once. Smaller ones come from the heaps, which :func:`trim_heap` returns
    after each report stage. Not lower: an mmapped array pays a page fault per 4 kB page
    when first written, and at 1 MB the zones' canvas temporaries (1-8 MB) cost 25 % more
    CPU, the whole full-tile report about 18 % more time, for the same peak RSS (1.78 vs
    1.79 GiB; ``benchmarks/full_tile.py``).
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
