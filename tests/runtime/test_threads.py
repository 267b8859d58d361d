"""Work on a thread pool, results in order, a bounded number in flight."""

from __future__ import annotations

import threading
import time

from agrivision.runtime.threads import in_order


def test_results_come_in_order_with_at_most_threads_in_flight():
    lock = threading.Lock()
    running, most, taken = [0], [0], []

    def work(k: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05 * (k % 3))  # later items can finish first
        with lock:
            running[0] -= 1
        return k * k

    def items():
        for k in range(10):
            taken.append(k)
            yield k

    out = []
    for k, result in enumerate(in_order(work, items(), 2)):
        assert len(taken) <= k + 2  # read ahead by at most the pool's size
        out.append(result)
    assert out == [k * k for k in range(10)]
    assert most[0] == 2
