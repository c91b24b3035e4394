"""Running an exported ONNX graph on the CPU: ONNX Runtime by default, OpenVINO on request.

Every small-batch forward pass DermLens makes on a CPU (a prediction and its flip, the scope check's
extractor, the lesion outline) runs a graph that torch exported once (:mod:`dermlib.models.fast`,
:mod:`dermlib.runtime.export`). Which library runs that graph is chosen here, in one place.

Measured on the 2-core Xeon (Sapphire Rapids) this project is developed on, 2026-12-06, on the default
model's graph (EfficientNet-Lite0, 224 px, the photo and its flip, the two engines interleaved in one
process): ONNX Runtime 32.4 ms with 1 thread and 28.0 ms with 2; OpenVINO in float32 19.1 and 16.2 ms,
with logits equal to ONNX Runtime's within 5e-6; a whole diagnosis about 10 ms faster
(``benchmarks/bench_predict.py``). But OpenVINO holds more
memory: 20-50 MB more per loaded model and about 60 MB once, which took the 4-session tour of every page
in a fresh environment to 2,198 MB, over the free demo server's 2.0 GB budget (``tests/test_memory_budget.py``).
So ONNX Runtime stays the default, and ``DERMLENS_GRAPH_ENGINE=openvino`` (with the ``openvino`` package
installed, ``pip install .[openvino]``) trades that memory for the speed on a server that has it. Those
timings were of graphs with a dynamic batch axis; since every graph is exported for one image (evening of
the same day), ONNX Runtime has all but caught up: 11.5 ms against OpenVINO's 10.7 ms for the photo alone.
OpenVINO runs in float32 on purpose: on CPUs with AMX or AVX-512 BF16 it would otherwise pick bfloat16,
which moved the same logits by up to 0.03 and so could change a top-k. When OpenVINO is missing or cannot
compile a graph, ONNX Runtime runs it and the log says why.
"""

from __future__ import annotations

import functools
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from dermlib.config import env_choice

logger = logging.getLogger(__name__)

ENGINE_ENV = "DERMLENS_GRAPH_ENGINE"
ENGINES = ("onnxruntime", "openvino")


def engine_choice() -> str:
    """The engine that runs exported graphs: ``DERMLENS_GRAPH_ENGINE``, else ONNX Runtime.

    Raises:
        ValueError: The environment variable names another engine.
    """
    return env_choice(ENGINE_ENV, ENGINES, "onnxruntime")


def cpu_session(model: bytes | str | Path, threads: int = 1, engine: str | None = None,
                compiled_dir: Path | None = None) -> Any:
    """A session of a serialised ONNX graph (bytes) or a graph file, run on the CPU.

    Whatever the engine, the session answers ``session.run(None, {"x": batch})`` with the list of the
    graph's outputs as float32 arrays the caller owns, may be called from several threads at once, and
    names its engine in ``session.engine``. A graph exported for one image takes a batch of any size
    (:class:`OneAtATime`).

    Args:
        model: The graph, serialised, or the path of an ``.onnx`` file.
        threads: Intra-op threads of the session.
        engine: ``openvino`` or ``onnxruntime`` (default: :func:`engine_choice`).
        compiled_dir: A folder where OpenVINO may keep the compiled graph for the next process (the command
            line's cache, :mod:`dermlib.runtime.cache`); none by default.
    """
    engine = engine or engine_choice()
    session: Any = None
    if engine == "openvino":
        try:
            session = OpenVinoSession(model, threads, compiled_dir)
        except Exception as exc:  # not installed, or a graph it cannot compile: the other engine runs it
            logger.warning("OpenVINO cannot run this graph (%s); using ONNX Runtime.", exc)
    if session is None:
        from dermlib.runtime.ort import cpu_session as ort_session

        session = ort_session(model, threads)
        session.engine = "onnxruntime"
        fixed = session.get_inputs()[0].shape[0] == 1  # a dynamic axis has a name here, not a number
    else:
        fixed = session.batch_fixed
    return OneAtATime(session) if fixed else session


class OneAtATime:
    """A session of a graph exported for one image (:func:`dermlib.models.fast.export_onnx`) that takes a
    batch of any size and runs it one image at a time.

    With the batch fixed, ONNX Runtime plans the graph for that one shape. Measured on 2 cores
    (2026-12-06), one thread, identical outputs: the default model's Lite0 at 224 px 10.7 ms a photo against
    16.2 ms with a dynamic batch axis, the scope extractor 5.4 against 7.8 ms, the lesion outliner 32.5
    against 40.2 ms; and 16 photos one at a time took 77 ms against 168 ms as one dynamic batch of 16.

    Args:
        session: The engine's session of the one-image graph.
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self.engine = session.engine

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The graph's outputs for the batch ``feeds["x"]``, each stacked along the first axis."""
        x = feeds["x"]
        if len(x) == 1:
            return self.session.run(output_names, feeds)
        if len(x) == 0:  # the outputs' shapes come from a run; an empty batch gets empty arrays of them
            probe = self.session.run(output_names, {**feeds, "x": np.zeros((1, *x.shape[1:]), dtype=np.float32)})
            return [out[:0] for out in probe]
        parts = [self.session.run(output_names, {**feeds, "x": x[i : i + 1]}) for i in range(len(x))]
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]


@functools.cache
def _core() -> Any:
    import openvino

    return openvino.Core()


class OpenVinoSession:
    """A graph compiled by OpenVINO's CPU plugin, with ONNX Runtime's ``run`` interface.

    The compiled graph is shared; each call makes its own inference request (they are not thread-safe), so
    sessions of several users can classify at once. A request costs 0.2 ms to make, and its buffers (about
    25 MB for a Lite0 at 224 px) are freed when the call returns instead of being kept per thread.

    Args:
        model: The graph, serialised, or the path of an ``.onnx`` file.
        threads: Inference threads.
        compiled_dir: Where to keep (and find) the compiled graph of a graph file; ignored when it cannot be
            created.
    """

    engine = "openvino"

    def __init__(self, model: bytes | str | Path, threads: int = 1, compiled_dir: Path | None = None) -> None:
        core = _core()
        config: dict[str, Any] = {}
        if compiled_dir is not None and not isinstance(model, bytes):
            try:
                compiled_dir.mkdir(parents=True, exist_ok=True)
                config["CACHE_DIR"] = str(compiled_dir)
                source: Any = str(model)  # from a path, OpenVINO can find its compiled form without reading it
            except OSError:
                source = core.read_model(str(model))
        else:
            source = core.read_model(io.BytesIO(model) if isinstance(model, bytes) else str(model))
        self._compiled = core.compile_model(source, "CPU", {
            **config,
            "INFERENCE_NUM_THREADS": max(1, int(threads)),
            "INFERENCE_PRECISION_HINT": "f32",  # bfloat16 could change a top-k (module docstring)
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # Threads are not pinned to cores: another process may be busy on any of them (the busy
            # neighbour of benchmarks/bench_predict.py), and pinned threads would wait for it.
            "ENABLE_CPU_PINNING": False,
        })
        self._outputs = list(self._compiled.outputs)
        batch = self._compiled.inputs[0].get_partial_shape()[0]
        self.batch_fixed = batch.is_static and batch.get_length() == 1

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Every output of the graph for ``feeds`` (``output_names`` must be None: all outputs, in order)."""
        if output_names is not None:
            raise ValueError("OpenVinoSession.run returns every output; pass None.")
        request = self._compiled.create_infer_request()
        # share_outputs=False: the arrays are copies that outlive the request.
        result = request.infer({name: np.ascontiguousarray(value, dtype=np.float32)
                                for name, value in feeds.items()}, share_outputs=False)
        return [result[output] for output in self._outputs]
