"""How dask graphs run: the local threaded scheduler by default, a dask.distributed cluster
when given a scheduler address (``--scheduler``, ``DASK_SCHEDULER_ADDRESS``, the config key
``runtime.scheduler``), or a ``LocalCluster`` of N worker processes (``--workers N``).

No home-made cluster code: this module only chooses and configures dask's own schedulers.

What a cluster needs
--------------------
- Workers run the same agrivision (same Python packages) as the client.
- Inputs are opened *on the workers* by the path or URL the client was given: local paths must
  name the same file on every worker (a shared file system mounted at the same place, e.g.
  NFS or Lustre), or use GDAL's remote paths (``/vsicurl/https://...``, ``/vsis3/bucket/key``,
  STAC items whose hrefs are URLs), with credentials in the workers' environment.
- Field polygons are read by the client and travel inside the task graph (per chunk).
- Outputs are written by the client (see :mod:`agrivision.io.blocks`): workers compute the
  blocks, the client writes them into its staging file; no file handle travels to a worker.
- A worker that dies mid-run costs only time: the scheduler recomputes the tasks it held, so
  results are identical to a run without failures.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import dask
from dask.base import get_scheduler

from agrivision.errors import AgrivisionError
from agrivision.runtime.progress import ClusterProgress, local_progress_bar

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)


@contextlib.contextmanager
def compute_context(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    progress: bool = False,
) -> Iterator[Client | None]:
    """Run the enclosed dask computations on the chosen scheduler.

    Parameters
    ----------
    scheduler
        Address of a running ``dask scheduler`` (``tcp://host:8786``). Defaults to the
        ``DASK_SCHEDULER_ADDRESS`` environment variable (or dask's ``scheduler-address``
        config); without either, dask's local threaded scheduler runs (no start-up cost).
    workers
        Start a ``LocalCluster`` with this many worker processes (one thread each) instead
        (ignored when a scheduler address is given).
    progress
        Show a progress bar on stderr while dask computes, on the local scheduler and on a
        cluster (:class:`ClusterProgress`).

    Yields
    ------
    distributed.Client or None
        The client when a cluster is used; None for the local scheduler.

    Raises
    ------
    AgrivisionError
        The scheduler cannot be reached.
    """
    address = (
        scheduler
        or os.environ.get("DASK_SCHEDULER_ADDRESS")
        or dask.config.get("scheduler-address", None)
    )
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
            with ClusterProgress(client) if progress else contextlib.nullcontext():
                yield client
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    bar = local_progress_bar() if progress else contextlib.nullcontext()
    with dask.config.set(scheduler="threads"), bar:
        yield None


def active_client() -> Client | None:
    """The ``distributed.Client`` that ``dask.compute`` would use here, or None.

    None under the local schedulers, including inside ``dask.config.set(scheduler=...)``
    blocks that override a default client.
    """
    if "distributed" not in sys.modules:  # no client can exist: skip dask's lookup
        return None
    from distributed import Client

    owner = getattr(get_scheduler(), "__self__", None)
    return owner if isinstance(owner, Client) else None
