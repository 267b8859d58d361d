"""How dask graphs run: the local threaded scheduler by default, a dask.distributed cluster
when given a scheduler address (``--scheduler``, ``DASK_SCHEDULER_ADDRESS``), or a
``LocalCluster`` of N worker processes (``--workers N``).

No home-made cluster code: this module only chooses and configures dask's own schedulers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import dask

from agrivision.errors import AgrivisionError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def compute_context(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    progress: bool = False,
) -> Iterator[object | None]:
    """Run the enclosed dask computations on the chosen scheduler.

    Parameters
    ----------
    scheduler
        Address of a running ``dask scheduler`` (``tcp://host:8786``). Defaults to the
        ``DASK_SCHEDULER_ADDRESS`` environment variable; without either, dask's local
        threaded scheduler runs (no start-up cost).
    workers
        Start a ``LocalCluster`` with this many worker processes instead (ignored when a
        scheduler address is given).
    progress
        Show a progress bar on stderr (local scheduler) or the cluster's progress.

    Yields
    ------
    distributed.Client or None
        The client when a cluster is used; None for the local scheduler.
    """
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address or workers:
        from distributed import Client, LocalCluster

        if address:
            try:
                client = Client(address, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise AgrivisionError(
                    f"cannot reach dask scheduler at {address} ({exc})",
                    fix="start it with `dask scheduler` or check --scheduler / "
                    "DASK_SCHEDULER_ADDRESS",
                ) from exc
            cluster = None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
            client = Client(cluster)
        log.info("computing on dask cluster %s", client.scheduler.address)
        try:
            yield client
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    bar: contextlib.AbstractContextManager = contextlib.nullcontext()
    if progress:
        from dask.diagnostics import ProgressBar

        bar = ProgressBar(minimum=1.0, dt=0.5)
    with dask.config.set(scheduler="threads"), bar:
        yield None
