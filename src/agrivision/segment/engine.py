"""Inference engines: what runs the U-Net on a batch of windows, PyTorch or OpenVINO.

An engine takes a batch of normalised windows ``(N, bands, window, window)`` (float32, on the
inference device) and returns float32 logits ``(N, classes, window, window)`` on that device.

OpenVINO (the ``openvino`` extra) converts the PyTorch model in memory when it is loaded
(seconds, once per process; nothing is downloaded or written) and runs it with its own CPU
kernels, faster than PyTorch's on the same cores. In fp32 its classes equal PyTorch's on all
but a few pixels whose two best classes tie to within float rounding; in bf16 (opt-in) it uses
the CPU's native bf16 instructions (AVX512-BF16, AMX) where they exist.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from agrivision.errors import ConfigError
from agrivision.segment.device import autocast

ENGINES = ("auto", "torch", "openvino")


class Engine(Protocol):
    """Runs the model on one batch of windows."""

    def __call__(self, batch: torch.Tensor) -> torch.Tensor: ...


def openvino_available() -> bool:
    """Whether the ``openvino`` package is installed (the ``openvino`` extra)."""
    return importlib.util.find_spec("openvino") is not None


def resolve_engine(name: str, device: torch.device, *, checkpoint: bool) -> str:
    """The engine to run: ``torch`` or ``openvino``.

    ``auto`` picks OpenVINO on the CPU when it is installed and the model is a checkpoint
    directory (converted once per process and cached with it); PyTorch otherwise (on a GPU,
    and for in-memory models, which may change between calls, e.g. during training).

    Raises
    ------
    ConfigError
        Unknown engine, OpenVINO on a GPU, or OpenVINO not installed.
    """
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}", fix="use auto, torch or openvino")
    if name == "auto":
        cpu = device.type == "cpu"
        return "openvino" if cpu and checkpoint and openvino_available() else "torch"
    if name == "openvino":
        if device.type != "cpu":
            raise ConfigError("the OpenVINO engine runs on the CPU", fix="use --device cpu")
        if not openvino_available():
            raise ConfigError("OpenVINO is not installed", fix="pip install 'agrivision[openvino]'")
    return name


def build_engine(
    model: torch.nn.Module,
    name: str,
    *,
    device: torch.device,
    bands: int,
    window: int,
    bf16: bool,
    compile: bool = False,
    tta: str = "none",
) -> Engine:
    """An engine for ``model`` (in eval mode) on ``device``.

    Parameters
    ----------
    model
        The U-Net.
    name
        ``torch`` or ``openvino`` (see :func:`resolve_engine`).
    device
        Inference device.
    bands, window
        Input bands and window edge (model pixels): OpenVINO compiles for this shape.
    bf16
        Run in bf16 (autocast in PyTorch, the inference precision in OpenVINO).
    compile
        ``torch.compile`` the model (PyTorch only).
    tta
        ``flips``: run each batch also flipped (see :class:`FlipTTA`); ``none``.
    """
    engine: Engine
    if name == "openvino":
        engine = _OpenVino(model, bands, window, bf16)
    else:
        engine = _Torch(model, device, bf16, compile)
    return FlipTTA(engine) if tta == "flips" else engine


class FlipTTA:
    """Test-time augmentation: the mean class probabilities of a batch and its horizontal,
    vertical and double flips (each flipped back), returned as log-probabilities, so that the
    caller's softmax yields that mean."""

    FLIPS = ((), (-1,), (-2,), (-2, -1))

    def __init__(self, engine: Engine):
        self.engine = engine

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        total = None
        for dims in self.FLIPS:
            x = batch.flip(dims) if dims else batch
            prob = torch.softmax(self.engine(x), dim=1)
            prob = prob.flip(dims) if dims else prob
            total = prob if total is None else total + prob
        assert total is not None
        return torch.log(total / len(self.FLIPS))


class _Torch:
    def __init__(self, model: torch.nn.Module, device: torch.device, bf16: bool, compile: bool):
        model = model.to(device).eval().to(memory_format=torch.channels_last)
        self.model = torch.compile(model) if compile else model
        self.device = device
        self.bf16 = bf16
        self.static = compile  # compiled graphs want one batch shape: pad the last batch
        self.size = 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        real = batch.shape[0]
        self.size = max(self.size, real)
        if self.static and real < self.size:
            batch = F.pad(batch, (0, 0, 0, 0, 0, 0, 0, self.size - real))
        batch = batch.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.bf16):
            return self.model(batch)[:real].float()


class _OpenVino:
    def __init__(self, model: torch.nn.Module, bands: int, window: int, bf16: bool):
        import openvino as ov

        example = torch.zeros((1, bands, window, window))
        # OpenVINO traces with TorchScript: seconds faster than through torch.export here.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`torch.jit", FutureWarning)
            converted = ov.convert_model(
                model.cpu().eval(), example_input=example, input=[(-1, bands, window, window)]
            )
        hint = "bf16" if bf16 else "f32"
        compiled = ov.Core().compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": hint})
        self.request = compiled.create_infer_request()

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.request.infer([np.ascontiguousarray(batch.numpy())])
        # The output tensor is the request's own buffer, reused by the next call: copy it.
        return torch.from_numpy(self.request.get_output_tensor(0).data.copy())
