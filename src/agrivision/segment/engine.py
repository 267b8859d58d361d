"""Inference engines: what runs the U-Net on a batch of windows, PyTorch or OpenVINO.

An engine takes a batch of normalised windows ``(N, bands, window, window)`` (float32, on the
inference device) and returns float32 logits ``(N, classes, window, window)`` on that device.

OpenVINO (the ``openvino`` extra) converts the PyTorch model in memory when it is loaded
(seconds, once per process; nothing is downloaded or written) and runs it with its own CPU
kernels, faster than PyTorch's on the same cores. In fp32 its classes equal PyTorch's on all
but a few pixels whose two best classes tie to within float rounding. On a CPU with native bf16
instructions (AVX512-BF16, AMX) it runs in bf16 unless fp32 is asked for: about twice as fast,
with classes equal to fp32's on all but the pixels where two classes nearly tie.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from agrivision.errors import ConfigError
from agrivision.segment.device import autocast, use_bf16

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


@functools.cache
def native_bf16() -> bool:
    """Whether OpenVINO runs bf16 natively on this CPU (AVX512-BF16 or AMX)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def engine_bf16(name: str, device: torch.device, precision: str) -> bool:
    """Whether engine ``name`` runs in bf16 for ``precision`` (``auto``, ``fp32``, ``bf16``).

    ``auto`` is bf16 on a GPU and in OpenVINO on a CPU with native bf16; fp32 otherwise
    (PyTorch on a CPU stays the fp32 reference).

    Raises
    ------
    ConfigError
        Unknown precision.
    """
    auto_cpu = precision == "auto" and name == "openvino"
    return use_bf16(device, precision) or (auto_cpu and native_bf16())


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
        ``flips``: run each batch also flipped, ``dihedral``: flipped and transposed (see
        :class:`SymmetryTTA`); ``none``.
    """
    engine: Engine
    if name == "openvino":
        engine = _OpenVino(model, bands, window, bf16)
    else:
        engine = _Torch(model, device, bf16, compile)
    if tta == "none":
        return engine
    return SymmetryTTA(engine, transpose=tta == "dihedral")


class SymmetryTTA:
    """Test-time augmentation: the mean class probabilities of a batch and its horizontal,
    vertical and double flips (each flipped back) and, with ``transpose``, the same of its
    transpose (all eight symmetries of the square), returned as log-probabilities, so that
    the caller's softmax yields that mean."""

    FLIPS = ((), (-1,), (-2,), (-2, -1))

    def __init__(self, engine: Engine, *, transpose: bool = False):
        self.engine = engine
        self.transposes = (False, True) if transpose else (False,)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        total = None
        for transposed in self.transposes:
            base = batch.transpose(-2, -1) if transposed else batch
            for dims in self.FLIPS:
                x = base.flip(dims) if dims else base
                prob = torch.softmax(self.engine(x), dim=1)
                prob = prob.flip(dims) if dims else prob
                prob = prob.transpose(-2, -1) if transposed else prob
                total = prob if total is None else total + prob
        assert total is not None
        return torch.log(total / (len(self.FLIPS) * len(self.transposes)))


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
    """Converted once; compiled for each window shape it meets (static shapes run fastest, and
    a scene's windows all have one shape)."""

    def __init__(self, model: torch.nn.Module, bands: int, window: int, bf16: bool):
        import openvino as ov

        example = torch.zeros((1, bands, window, window))
        # OpenVINO traces with TorchScript: seconds faster than through torch.export here.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`torch.jit", FutureWarning)
            self.converted = ov.convert_model(
                model.cpu().eval(), example_input=example, input=[(-1, bands, -1, -1)]
            )
        self.core = ov.Core()
        self.hint = "bf16" if bf16 else "f32"
        self.requests: dict[tuple[int, int], object] = {}

    def _request(self, shape: tuple[int, ...]):
        key = (shape[2], shape[3])
        if key not in self.requests:
            model = self.converted.clone()
            model.reshape([-1, shape[1], *key])
            compiled = self.core.compile_model(
                model, "CPU", {"INFERENCE_PRECISION_HINT": self.hint}
            )
            self.requests[key] = compiled.create_infer_request()
        return self.requests[key]

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        request = self._request(tuple(batch.shape))
        request.infer([np.ascontiguousarray(batch.numpy())])
        # The output tensor is the request's own buffer, reused by the next call: copy it.
        return torch.from_numpy(request.get_output_tensor(0).data.copy())
