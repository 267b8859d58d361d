"""The analysis notebooks (issue 7) run top to bottom and end by checking their results.

Each notebook is executed with nbclient in a fresh ``python3`` kernel. The kernel spec that
ipykernel installs into the environment (``.venv/share/jupyter/kernels/python3``) starts
``python -m ipykernel_launcher``, and jupyter_client launches ``python`` as the interpreter
running the test, so the kernel uses the project's environment; a first injected cell asserts
that (a user-level ``python3`` kernel spec pointing elsewhere would otherwise shadow it). A
cell that raises fails the test with that cell's source and traceback. The notebooks write
only under ``tempfile.mkdtemp()``, which ``TMPDIR`` points into the test's ``tmp_path``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = {
    "01-quickstart",
    "02-crop-health-and-zones",
    "03-time-series",
    "04-train-a-unet",
    "05-scale-out",
}
CELL_TIMEOUT_S = 300
ASSERTION = re.compile(r"^\s*(assert |np\.testing\.assert_|pd\.testing\.assert_)", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_notebooks_are_committed_clean_and_end_with_checks():
    assert {p.stem for p in NOTEBOOKS} == EXPECTED
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        cells = _code_cells(nb)
        dirty = [i for i, c in enumerate(cells) if c.outputs or c.execution_count is not None]
        assert not dirty, f"{path.name}: code cells {dirty} have outputs; clear them"
        assert ASSERTION.search(cells[-1].source), f"{path.name}: the last cell checks nothing"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    check = f"import sys\nassert sys.prefix == {sys.prefix!r}, f'kernel runs {{sys.executable}}'"
    nb.cells.insert(0, nbformat.v4.new_code_cell(check))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    # ipykernel picks the inline backend only when MPLBACKEND is unset.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell raised\n{ANSI.sub('', str(exc))}", pytrace=False)
    figures = [
        output
        for cell in _code_cells(nb)
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert figures, f"{path.name} showed no figure"
