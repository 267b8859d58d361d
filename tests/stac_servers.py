"""Real servers on 127.0.0.1 for the STAC tests: a STAC API (rustac's ``serve``, in-memory
backend) and a file server with HTTP range requests (starlette ``StaticFiles`` on uvicorn)
that counts the bytes it serves and can be told to fail.

Both bind to a free loopback port, live as long as their context manager, and stop by
themselves (the STAC API also after a hard time limit).
"""

from __future__ import annotations

import collections
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

#: The test collection (tests/stac/conftest.py): its id and its dates (kept, cloudy over the
#: fields, cloudy scene).
COLLECTION = "sentinel-2-l2a"
KEPT, CLOUDY, HAZY = "2024-06-01", "2024-06-21", "2024-07-01"
#: Longest life of a STAC API process (s), whatever happens to the test.
STAC_SERVER_LIMIT_S = 300


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CountingFiles:
    """ASGI app: the files of ``folder`` under ``/files/``, with bytes and requests counted
    per path, and optional failures (``fail_status`` for every request after the first
    ``fail_after`` ones)."""

    def __init__(self, folder: Path) -> None:
        self.app = Starlette()
        self.app.mount("/files", StaticFiles(directory=folder))
        self.bytes: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()
        self.ranges: list[str] = []
        self.fail_status: int | None = None
        self.fail_after = 0
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        with self._lock:
            self.requests[path] += 1
            total = sum(self.requests.values())
            headers = dict(scope.get("headers") or [])
            self.ranges.append(headers.get(b"range", b"").decode())
        if self.fail_status is not None and total > self.fail_after:
            await send({"type": "http.response.start", "status": self.fail_status,
                        "headers": [(b"content-length", b"6")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b"failed"})
            return

        async def counting(message) -> None:
            if message["type"] == "http.response.body":
                with self._lock:
                    self.bytes[path] += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, counting)

    def reset(self) -> None:
        """Forget the counts (and stop failing)."""
        with self._lock:
            self.bytes.clear()
            self.requests.clear()
            self.ranges.clear()
            self.fail_status = None


@contextlib.contextmanager
def file_server(folder: Path) -> Iterator[tuple[str, CountingFiles]]:
    """Serve ``folder`` at ``http://127.0.0.1:PORT/files/``; yields (base URL, counter)."""
    app = CountingFiles(folder)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test file server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/files", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def stac_api(items: list[dict], folder: Path) -> Iterator[str]:
    """A STAC API serving ``items`` (rustac, in-memory); yields its root URL."""
    exe = shutil.which("rustac") or str(Path(__import__("sys").executable).parent / "rustac")
    path = folder / "stac-api-items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(folder / "stac-api.log", "w")  # closed below
    proc = subprocess.Popen(
        ["timeout", str(STAC_SERVER_LIMIT_S), exe, "serve", str(path),
         "--addr", f"127.0.0.1:{port}", "--create-collections"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/collections", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the STAC API did not start: {(folder / 'stac-api.log').read_text()}"
                    ) from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
