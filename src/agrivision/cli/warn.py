"""How the command line prints warnings: ``agrivision: warning: <message>``, one line, once.

Python's default display adds the file, line and source line of the code that warned, which
means nothing to a farmer; the same warning raised for many fields or chunks is printed once.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import click

_shown: set[str] = set()


def print_warning(message: str) -> None:
    """Print ``agrivision: warning: <message>`` on stderr, once per run and message."""
    line = " ".join(str(message).split())
    if line in _shown:
        return
    _shown.add(line)
    click.echo(f"agrivision: warning: {line}", err=True)


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    print_warning(f"{message}")


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Within the block, warnings print through :func:`print_warning` (deduplicated)."""
    _shown.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # Deprecations speak to developers, not to the person running a command.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.showwarning = _show
        yield
