"""Work handed to a small thread pool, results in order: for numba kernels, numpy and shapely
calls that release the GIL, so that two batches use two cores."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_order(work: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``work(item)`` of every item, run on ``threads`` threads, yielded in the items' order.

    At most ``threads`` items are in flight, so memory is bounded by ``threads`` batches;
    the next item is taken from ``items`` (e.g. a generator that reads) while they run.
    """
    with ThreadPoolExecutor(threads) as pool:
        pending: collections.deque[Future[R]] = collections.deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
