"""Compute the blocks of dask arrays and hand them to a writer, on any scheduler.

:func:`store_blocks` is :func:`dask.array.store` for writers that hold a local file handle
(an open rasterio dataset cannot be pickled to a dask worker):

- on the local schedulers it *is* ``da.store``: each thread writes the block it computed;
- on a ``dask.distributed`` cluster the workers compute the blocks and the client writes them
  (``target[region] = block``) as they arrive, in any order, with a bounded number of blocks
  computed but not yet written, so memory stays bounded by chunk size on both sides.

Why this survives worker failures: the writer only ever sees a block as a finished result.
When a worker dies, the scheduler recomputes whatever it was computing or holding (the
client's futures keep those keys wanted) before the client receives them, so no block is
lost, written twice with different values, or written partially.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import dask.array as da
import numpy as np
from dask.array.core import slices_from_chunks

from agrivision.runtime import active_client

log = logging.getLogger(__name__)

Region = tuple[slice, ...]


class BlockTarget(Protocol):
    """Anything that accepts ``target[region] = block`` (numpy arrays, raster writers)."""

    def __setitem__(self, key: Region, value: np.ndarray) -> None: ...


def store_blocks(
    sources: Sequence[da.Array],
    targets: Sequence[BlockTarget],
    *,
    regions: Sequence[Region] | None = None,
    lock: Any = False,
    max_in_flight: int | None = None,
) -> None:
    """Compute every block of ``sources`` and write it into the matching target.

    Parameters
    ----------
    sources
        Dask arrays (any shape; blocks are addressed by their index slices).
    targets
        One per source; receives ``target[region] = block`` with ``region`` a tuple of
        slices in the source's index space, as :func:`dask.array.store` does.
    regions
        Where each source goes in its target (tuples of slices with a start, e.g. one strip
        of rows), as in :func:`dask.array.store`; default: the whole target.
    lock
        Passed to :func:`dask.array.store` on the local schedulers (the cluster path writes
        from one client thread and needs none).
    max_in_flight
        Cluster only: most blocks computed or computing but not yet written (default: twice
        the cluster's worker threads, at least 4). Bounds the memory held for the writer.
    """
    if len(sources) != len(targets) or (regions is not None and len(regions) != len(sources)):
        raise ValueError(
            f"{len(sources)} sources but {len(targets)} targets"
            + ("" if regions is None else f" and {len(regions)} regions")
        )
    client = active_client()
    if client is None:
        # dask annotates targets as ArrayLike; it only needs ``target[region] = block``.
        da.store(list(sources), list(targets), lock=lock, regions=regions)  # type: ignore[arg-type]
        return
    limit = max_in_flight or max(4, 2 * sum(client.nthreads().values()))
    starts = regions or [()] * len(sources)
    offsets = [_offsets(r, s.ndim) for r, s in zip(starts, sources, strict=True)]
    _store_on_cluster(client, sources, targets, offsets, limit)


def _offsets(region: Region, ndim: int) -> tuple[int, ...]:
    """Start of ``region`` (a da.store region) in every dimension."""
    return tuple((s.start or 0) for s in region) + (0,) * (ndim - len(region))


def _store_on_cluster(client, sources, targets, offsets, limit: int) -> None:
    from distributed import as_completed

    pending = collections.deque(_groups(sources, targets, offsets))
    where: dict = {}  # future -> (target, region)
    done = as_completed()

    def fill() -> None:
        # Whole groups while they fit under the limit; a larger group goes in alone.
        while pending and (not where or len(where) + len(pending[0]) <= limit):
            group = pending.popleft()
            futures = client.compute([block for _, _, block in group])
            for future, (target, region, _) in zip(futures, group, strict=True):
                where[future] = (target, region)
                done.add(future)

    try:
        fill()
        for future in done:
            target, region = where.pop(future)
            target[region] = future.result()
            future.release()
            fill()
    finally:
        if where:  # an error: stop computing blocks nobody will write
            client.cancel(list(where))


def _groups(sources, targets, offsets) -> list[list[tuple[BlockTarget, Region, Any]]]:
    """Blocks grouped by their position on the (y, x) block grid, in row-major order.

    Blocks at one position (every band, date and source) usually share their inputs (the same
    chunks of the scene); submitted together, those inputs are computed once.
    """
    positions: dict[tuple[int, ...], list] = {}
    for source, target, offset in zip(sources, targets, offsets, strict=True):
        blocks = source.to_delayed(optimize_graph=True)
        for index, block in zip(
            np.ndindex(blocks.shape), slices_from_chunks(source.chunks), strict=True
        ):
            region = tuple(
                slice(s.start + o, s.stop + o) for s, o in zip(block, offset, strict=True)
            )
            positions.setdefault(index[-2:], []).append((target, region, blocks[index]))
    return [positions[key] for key in sorted(positions)]
