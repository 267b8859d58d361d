"""Progress display while dask computes.

--------
``progress=True`` draws dask's text progress bar on stderr: :class:`dask.diagnostics.ProgressBar`
under the local scheduler, :class:`ClusterProgress` on a cluster (the same format, plus task
counts). The cluster display needs nothing on the scheduler besides dask.distributed, and
never stops a computation: if it cannot run, it logs why and stays silent.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import uuid
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

#: Computations shorter than this (seconds) draw no progress bar.
PROGRESS_MINIMUM_S = 1.0
#: Seconds between two redraws of a progress bar.
PROGRESS_INTERVAL_S = 0.5


def local_progress_bar() -> contextlib.AbstractContextManager:
    """dask's text progress bar on stderr for the local scheduler (same timings as a cluster's)."""
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=PROGRESS_MINIMUM_S, dt=PROGRESS_INTERVAL_S, out=sys.stderr)


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
