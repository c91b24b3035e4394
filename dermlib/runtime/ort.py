"""Opening ONNX Runtime CPU sessions, the one way DermLens configures them (no torch needed)."""

from __future__ import annotations

from pathlib import Path


def cpu_session(model: bytes | str | Path, threads: int = 1):
    """An ONNX Runtime CPU session of a serialised graph (bytes) or a graph file.

    Its threads never spin, so a waiting thread gives its core back and a busy neighbour slows it rather than
    stalling it, and it has no memory arena or pattern (batches of one or two photos gain nothing from them;
    they only hold memory).

    Args:
        model: The graph, serialised, or the path of an ``.onnx`` file.
        threads: Intra-op threads of the session.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
