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

Progress
--------
``progress=True`` draws dask's text progress bar on stderr: :class:`dask.diagnostics.ProgressBar`
under the local scheduler, :class:`ClusterProgress` on a cluster (the same format, plus task
counts). The cluster display needs nothing on the scheduler besides dask.distributed, and
never stops a computation: if it cannot run, it logs why and stays silent.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

import dask
from dask.base import get_scheduler

from agrivision.errors import AgrivisionError

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # mallopt parameter (glibc's malloc.h)
_MMAP_THRESHOLD_BYTES = 1 << 20

#: Computations shorter than this (seconds) draw no progress bar.
PROGRESS_MINIMUM_S = 1.0
#: Seconds between two redraws of a progress bar.
PROGRESS_INTERVAL_S = 0.5


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
    bar: contextlib.AbstractContextManager = contextlib.nullcontext()
    if progress:
        from dask.diagnostics import ProgressBar

        bar = ProgressBar(minimum=PROGRESS_MINIMUM_S, dt=PROGRESS_INTERVAL_S, out=sys.stderr)
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


class ClusterProgress:
    """Text progress bar on stderr for the tasks one client runs on a dask.distributed cluster.

    A small scheduler plugin counts the tasks of this client's graphs as they are scheduled to
    run and as they finish (in memory, failed or cancelled); a daemon thread asks the
    scheduler for the two counts every :data:`PROGRESS_INTERVAL_S` and draws one bar per burst
    of work (from the first outstanding task until none is left), once it has lasted
    :data:`PROGRESS_MINIMUM_S`. The plugin travels by value (cloudpickle), so the scheduler
    needs only dask.distributed; other clients' tasks are not counted.

    Any failure (a scheduler that refuses pickled code, a lost connection) logs why and ends
    the display, never the computation. On exit the thread is joined and the plugin removed.

    Parameters
    ----------
    client
        The ``distributed.Client`` whose tasks are shown.
    out
        Stream to draw on (default: ``sys.stderr`` at drawing time).
    """

    def __init__(self, client: Client, *, out: IO[str] | None = None, width: int = 40) -> None:
        self.client = client
        self.out = out
        self.width = width
        self.name = f"agrivision-progress-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base = (0, 0)  # (total, done) when the current burst began
        self._start: float | None = None
        self._drawn = False

    def __enter__(self) -> ClusterProgress:
        try:
            self.client.register_plugin(_task_counter(self.client.id, self.name), name=self.name)
        except Exception as exc:  # the display is optional: never fail the run for it
            log.warning("no progress display on the cluster (%s: %s)", type(exc).__name__, exc)
            return self
        self._thread = threading.Thread(target=self._follow, name=self.name, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=30)
        with contextlib.suppress(Exception):
            self.client.sync(getattr(self.client.scheduler, f"{self.name}-detach"))

    def _poll(self) -> tuple[int, int]:
        """``(total, done)`` tasks of this client, from the plugin's handler on the scheduler."""
        total, done = self.client.sync(getattr(self.client.scheduler, self.name))
        return total, done

    def _follow(self) -> None:
        while True:
            stopping = self._stop.wait(PROGRESS_INTERVAL_S)
            try:
                self._update(*self._poll(), time.monotonic())
            except Exception as exc:
                log.debug("progress display stopped (%s: %s)", type(exc).__name__, exc)
                stopping = True
            if stopping:
                if self._drawn:  # a burst cut short: end its line
                    self._write("\n")
                return

    def _update(self, total: int, done: int, now: float) -> None:
        if done < total:
            self._start = self._start or now
            if now - self._start >= PROGRESS_MINIMUM_S:
                base_total, base_done = self._base
                self._draw(done - base_done, total - base_total, now - self._start)
            return
        if self._drawn:  # the burst is over: a full bar, then a new line
            self._draw(total - self._base[0], total - self._base[0], now - (self._start or now))
            self._write("\n")
        self._base, self._start, self._drawn = (total, done), None, False

    def _draw(self, done: int, total: int, elapsed: float) -> None:
        from dask.utils import format_time

        frac = done / total if total else 1.0
        bar = "#" * int(self.width * frac)
        self._write(
            f"\r[{bar:<{self.width}}] | {int(100 * frac)}% Completed | "
            f"{done}/{total} tasks | {format_time(elapsed)}"
        )
        self._drawn = True

    def _write(self, text: str) -> None:
        stream = self.out or sys.stderr
        with contextlib.suppress(ValueError, OSError):  # closed or broken stream
            stream.write(text)
            stream.flush()


def _task_counter(client_id: str, name: str):
    """The scheduler plugin of :class:`ClusterProgress`.

    Built inside a function so that cloudpickle sends the class by value: the scheduler needs
    no agrivision. It answers two RPC handlers of its own (plain calls, nothing logged on the
    scheduler): ``name`` gives ``(total, done)``, ``name-detach`` removes the plugin and both
    handlers; it also removes itself when its client disconnects.
    """
    from distributed.diagnostics.plugin import SchedulerPlugin

    # States of a task that is scheduled to run; "released" tasks run only when wanted again.
    runnable = frozenset(("waiting", "queued", "processing", "no-worker"))

    class TaskCounter(SchedulerPlugin):
        def __init__(self, client_id: str, name: str) -> None:
            self.client_id = client_id
            self.name = name
            self.ours: set = set()  # keys of this client's graphs, until forgotten
            self.active: set = set()  # ... of which scheduled to run now
            self.total = 0  # times a task of ours was scheduled
            self.done = 0  # ... and finished (in memory, failed, cancelled or lost)
            self.scheduler = None

        async def start(self, scheduler) -> None:
            self.scheduler = scheduler
            scheduler.handlers[self.name] = self.counts
            scheduler.handlers[f"{self.name}-detach"] = self.detach

        def counts(self, **kwargs) -> tuple[int, int]:
            return self.total, self.done

        def detach(self, **kwargs) -> None:
            if self.scheduler is not None:
                for handler in (self.name, f"{self.name}-detach"):
                    self.scheduler.handlers.pop(handler, None)
                self.scheduler.plugins.pop(self.name, None)
            self.ours.clear()
            self.active.clear()

        def update_graph(self, scheduler, *, client: str, tasks: list, **kwargs) -> None:
            # Runs before the new tasks' first transitions.
            if client != self.client_id:
                return
            self.ours.update(tasks)
            for key in tasks:
                ts = scheduler.tasks.get(key)
                if ts is not None and ts.state in runnable and key not in self.active:
                    self.active.add(key)  # already scheduled for another client
                    self.total += 1

        def transition(self, key, start: str, finish: str, *args, **kwargs) -> None:
            if key not in self.ours:
                return
            if finish in runnable:
                if key not in self.active:
                    self.active.add(key)
                    self.total += 1
            elif key in self.active:
                self.active.discard(key)
                self.done += 1
            if finish == "forgotten":
                self.ours.discard(key)

        def remove_client(self, scheduler, client: str) -> None:
            if client == self.client_id:
                self.detach()

    return TaskCounter(client_id, name)


def return_freed_memory() -> None:
    """Have glibc's malloc give freed chunk-sized arrays back to the system.

    By default glibc raises its mmap threshold (up to 32 MB) at the first large free; from
    then on chunk-sized numpy arrays (1-4 MB) come from per-thread heaps that fragment and
    are not returned, so the process keeps what earlier stages used (about 100 MB more on a
    6000² scene than on a 1024² one). A fixed threshold keeps them mmapped: freed at once.
    dask.distributed's nanny sets ``MALLOC_TRIM_THRESHOLD_`` on workers for the same reason.
    The setting is process-wide and stays after the call; a no-op outside glibc.
    """
    if (libc := _glibc()) is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def trim_heap() -> None:
    """Return the free pages of glibc's heaps to the system (``malloc_trim``).

    Polygon stages free hundreds of MB in small GEOS allocations that stay in fragmented
    heaps otherwise: 1.15 GB kept after the zones of a 10980² tile instead of 0.6 GB. As
    dask's docs advise for "memory not released back to the OS".
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
