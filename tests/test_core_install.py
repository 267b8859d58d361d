"""A core install (no ``segment`` extra) runs a whole report: nothing on the report's path
imports PyTorch unless a model is asked for."""

from __future__ import annotations

import json
import subprocess
import sys

from agrivision.synthetic import write_synthetic

# Each name set to None in sys.modules makes its import raise ImportError, as if absent.
WITHOUT_EXTRAS = """
import sys
for name in ("torch", "torchvision", "segmentation_models_pytorch", "safetensors", "openvino"):
    sys.modules[name] = None
from agrivision.cli import main
code = main(sys.argv[1:])
assert "torch" not in {m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
sys.exit(code)
"""


def test_a_report_runs_without_the_segment_extra(tmp_path):
    files = write_synthetic(tmp_path / "scene", seed=2, shape=(200, 200), chunks=128)
    out = tmp_path / "report"
    argv = [str(files.items), "--fields", str(files.fields), "-o", str(out), "--quiet"]
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, "report", *argv],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fields"] > 0 and (out / "report.html").stat().st_size > 0
