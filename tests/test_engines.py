"""The engines that run exported graphs: OpenVINO and ONNX Runtime give the same outputs, from any thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from dermlib.models.fast import export_onnx
from dermlib.runtime import engines

pytest.importorskip("openvino")


class _Tiny(torch.nn.Module):
    """Two outputs, like the prediction graph: logits and a feature map."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.relu(self.conv(x))
        return self.head(features.mean(dim=(2, 3))), features


@pytest.fixture(scope="module")
def graph() -> bytes:
    return export_onnx(_Tiny().eval(), (32, 32))


def test_engine_choice_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(engines.ENGINE_ENV, raising=False)
    assert engines.engine_choice() == "onnxruntime"  # the default, though OpenVINO is installed here
    monkeypatch.setenv(engines.ENGINE_ENV, " OpenVINO ")
    assert engines.engine_choice() == "openvino"
    monkeypatch.setenv(engines.ENGINE_ENV, "tensorrt")
    with pytest.raises(ValueError, match="DERMLENS_GRAPH_ENGINE"):
        engines.engine_choice()


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_both_engines_give_torchs_outputs(graph: bytes, batch: int) -> None:
    """The graph is exported for one image; a batch of any size runs one image at a time (OneAtATime)."""
    x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in _Tiny().eval()(torch.from_numpy(x))]
    for name in engines.ENGINES:
        session = engines.cpu_session(graph, threads=2, engine=name)
        assert session.engine == name and isinstance(session, engines.OneAtATime)
        outputs = session.run(None, {"x": x})
        assert [o.shape for o in outputs] == [(batch, 5), (batch, 8, 32, 32)]
        for got, want in zip(outputs, expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_an_empty_batch_gets_empty_outputs_and_a_dynamic_graph_runs_whole(graph: bytes) -> None:
    for name in engines.ENGINES:
        outputs = engines.cpu_session(graph, engine=name).run(None, {"x": np.zeros((0, 3, 32, 32), np.float32)})
        assert [o.shape for o in outputs] == [(0, 5), (0, 8, 32, 32)]
    import io

    buffer = io.BytesIO()  # a graph with a dynamic batch axis (as exported before 2026-12-06) is run as it is
    torch.onnx.export(_Tiny().eval(), (torch.zeros(1, 3, 32, 32),), buffer, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}}, dynamo=False)
    x = np.random.default_rng(3).standard_normal((3, 3, 32, 32)).astype(np.float32)
    fixed = engines.cpu_session(graph, engine="onnxruntime").run(None, {"x": x})
    for name in engines.ENGINES:
        dynamic = engines.cpu_session(buffer.getvalue(), engine=name)
        assert not isinstance(dynamic, engines.OneAtATime)
        for a, b in zip(dynamic.run(None, {"x": x}), fixed, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_openvino_session_serves_several_threads_at_once(graph: bytes) -> None:
    session = engines.cpu_session(graph, threads=1, engine="openvino")
    inputs = [np.full((1, 3, 32, 32), i / 10, dtype=np.float32) for i in range(12)]
    expected = [session.run(None, {"x": x})[0] for x in inputs]
    got: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(inputs))

    def work(i: int) -> None:
        start.wait()
        for _ in range(5):
            got[i] = session.run(None, {"x": inputs[i]})[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(got[i], want)  # no request's outputs were overwritten by another's
    with pytest.raises(ValueError, match="pass None"):
        session.run(["logits"], {"x": inputs[0]})


def test_a_graph_openvino_cannot_compile_falls_back_to_onnxruntime(
        graph: bytes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(engines, "OpenVinoSession", refuse)
    session = engines.cpu_session(graph, engine="openvino")
    assert session.engine == "onnxruntime"
    assert session.run(None, {"x": np.zeros((1, 3, 32, 32), np.float32)})[0].shape == (1, 5)
    assert "unsupported operation" in caplog.text


def test_a_graph_file_is_compiled_once_into_its_folder(graph: bytes, tmp_path) -> None:
    path = tmp_path / "graph.onnx"
    path.write_bytes(graph)
    compiled = tmp_path / "openvino"
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    first = engines.cpu_session(path, engine="openvino", compiled_dir=compiled).run(None, {"x": x})
    blobs = sorted(p.name for p in compiled.iterdir())
    assert blobs  # OpenVINO wrote its compiled form
    second = engines.cpu_session(path, engine="openvino", compiled_dir=compiled).run(None, {"x": x})
    assert sorted(p.name for p in compiled.iterdir()) == blobs  # the next process reuses it
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "locked").write_text("a file where the folder should go")
    assert engines.cpu_session(path, engine="openvino", compiled_dir=tmp_path / "locked" / "x").engine == "openvino"
