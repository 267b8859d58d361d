"""How dask graphs run: which scheduler (:mod:`.scheduler`), the progress display
(:mod:`.progress`) and glibc heap settings that keep memory bounded (:mod:`.memory`)."""

from agrivision.runtime.memory import return_freed_memory, trim_heap
from agrivision.runtime.progress import (
    PROGRESS_INTERVAL_S,
    PROGRESS_MINIMUM_S,
    ClusterProgress,
)
from agrivision.runtime.scheduler import active_client, compute_context

__all__ = [
    "PROGRESS_INTERVAL_S",
    "PROGRESS_MINIMUM_S",
    "ClusterProgress",
    "active_client",
    "compute_context",
    "return_freed_memory",
    "trim_heap",
]
