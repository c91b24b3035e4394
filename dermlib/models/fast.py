"""The prediction's forward pass in ONNX Runtime: the same network, 2-2.5x faster on a CPU.

Eager torch pays a per-layer overhead that dominates networks as small as EfficientNet-Lite at batch
sizes of one or two; ONNX Runtime runs the exported graph with fused kernels. Measured on 2 CPU cores
(one thread each, a training run beside): Lite0 at 224 px 8.5 ms against 20.5 ms for one photo and 14 ms
against 58 ms for the photo and its flip; the six-network default 185 ms against 382 ms for both.
Logits agree with torch's to about 2e-5, so the top-k is the same (tested).

What is exported: the network up to its logits (each member's, for an ensemble) plus the output of its
feature extractor, so that :mod:`dermlib.explain.reuse` can draw the heatmaps from this very pass. The
export happens in memory on the first prediction (about 1 s for one Lite0, 8 s for the six-network
ensemble, once per process); nothing is written to disk. Only batches of at most :data:`MAX_BATCH` photos
use it; heatmaps, evaluation and training keep torch.

``DERMLENS_PREDICT_BACKEND=torch`` turns it off; it is off on a GPU, and a network that does not export
falls back to torch with a warning in the log.
"""

from __future__ import annotations

import atexit
import io
import logging
import threading
import warnings
from collections.abc import Callable

import numpy as np
import torch

logger = logging.getLogger(__name__)

BACKEND_ENV = "DERMLENS_PREDICT_BACKEND"
BACKENDS = ("onnxruntime", "torch")

_recorder = threading.local()

EXPORT_LOCK = threading.Lock()
"""Held around every ONNX export in the process: torch's exporter keeps its state in process-wide globals,
so two exports at once (a model's in the background, the scope extractor's in a request) would fail."""


def backend_choice() -> str:
    """The configured backend: ``onnxruntime`` (default) or ``torch``.

    Raises:
        ValueError: The environment variable names another backend.
    """
    from dermlib.config import env_choice

    return env_choice(BACKEND_ENV, BACKENDS, "onnxruntime")


class _WithFeatures(torch.nn.Module):
    """The network's logits (member logits for an ensemble) and its feature map(s), for export."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.network.forward_features(x)
        if isinstance(features, list):  # an ensemble: one feature map per member
            return (self.network._heads(features), *features)
        return self.network.forward_head(features), features


def export_onnx(module: torch.nn.Module, input_size: tuple[int, int], output_names: list[str] | None = None) -> bytes:
    """Export ``module`` to a serialised ONNX graph in memory.

    The one place DermLens exports: one export at a time in the process (:data:`EXPORT_LOCK`), for one
    image of a fixed size (an ensemble's per-member resizing becomes constant in the trace: inputs always
    arrive preprocessed to the card's size, and ONNX Runtime refuses others). A fixed batch of one lets ONNX
    Runtime plan the graph for that shape: 10.7 ms against 16.2 ms with a dynamic batch axis for the
    default model's photo, outputs identical; sessions run larger batches one image at a time
    (:class:`dermlib.runtime.engines.OneAtATime`).

    Args:
        module: The network (or a wrapper) to export, in eval mode.
        input_size: (height, width) of the example input.
        output_names: Names of the outputs (default: unnamed).
    """
    buffer = io.BytesIO()
    example = torch.zeros(1, 3, *input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        with EXPORT_LOCK:
            torch.onnx.export(module.eval(), (example,), buffer, input_names=["x"], output_names=output_names,
                              dynamo=False)
    return buffer.getvalue()


def onnx_session(module: torch.nn.Module, input_size: tuple[int, int], threads: int = 1,
                 output_names: list[str] | None = None):
    """Export ``module`` in memory (nothing is written, :func:`export_onnx`) and open a CPU session of it
    (:func:`dermlib.runtime.engines.cpu_session`: ONNX Runtime, or OpenVINO on request).

    Args:
        module: The network (or a wrapper) to export, in eval mode.
        input_size: (height, width) of the example input.
        threads: Intra-op threads of the session.
        output_names: Names of the outputs (default: unnamed).
    """
    from dermlib.runtime.engines import cpu_session

    return cpu_session(export_onnx(module, input_size, output_names), threads)


class OnnxForward:
    """An ONNX Runtime session of a network; call it with a preprocessed CPU batch.

    Returns ``(logits, features)``: logits (B, C), or member logits (B, M, C) for an ensemble, and the
    list of feature maps (one per network).
    """

    def __init__(self, network: torch.nn.Module, input_size: tuple[int, int], threads: int | None = None) -> None:
        from dermlib.models.threads import prediction_threads

        self.threads = int(threads or prediction_threads())
        self.session = onnx_session(_WithFeatures(network), input_size, self.threads)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        outputs = self.session.run(None, {"x": np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)})
        return torch.from_numpy(outputs[0]), [torch.from_numpy(a) for a in outputs[1:]]


MAX_BATCH = 2
"""Largest batch that runs in ONNX Runtime (one photo, or one and its flip). Evaluation and training batches
stay in torch, whose per-layer overhead is spread over many photos, and never start an export."""

_exports: list[threading.Thread] = []


def start_export(target: Callable[[], None]) -> threading.Thread:
    """Run an export in a daemon thread that the interpreter waits for at exit.

    A daemon thread still inside torch when the interpreter shuts down aborts the process (exit code -6,
    seen when a short-lived process, such as a torchrun rank, ended during an export).
    """
    thread = threading.Thread(target=target, name="dermlens-onnx-export", daemon=True)
    if not _exports:
        atexit.register(_join_exports)
    _exports.append(thread)
    thread.start()
    return thread


def _join_exports() -> None:
    for thread in _exports:
        thread.join()


def build(network: torch.nn.Module, input_size: tuple[int, int], device: torch.device,
          threads: int | None = None) -> OnnxForward | None:
    """An :class:`OnnxForward` for a CPU model; None on another device.

    ``threads`` defaults to :func:`dermlib.models.threads.prediction_threads`.

    The caller checks :func:`backend_choice` first. A network the exporter cannot handle is logged and left
    to torch.
    """
    if device.type != "cpu":
        return None
    from dermlib.runtime.memory import release_freed_memory

    try:
        return OnnxForward(network, input_size, threads)
    except Exception as exc:
        logger.warning("ONNX Runtime export failed (%s); predictions use torch.", exc)
        return None
    finally:
        # The trace of a six-network ensemble frees hundreds of MB, in the export thread's own arena.
        release_freed_memory()


def record_features(callback: Callable[[torch.Tensor, list[torch.Tensor]], None] | None) -> None:
    """Register (or with None, clear) this thread's receiver of the next pass's input and feature maps."""
    _recorder.callback = callback


def offer_features(x: torch.Tensor, features: list[torch.Tensor]) -> None:
    """Hand one pass's input and feature maps to this thread's receiver, if one is registered."""
    callback = getattr(_recorder, "callback", None)
    if callback is not None:
        callback(x, features)
