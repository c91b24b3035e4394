"""``python -m dermlib``: models and predict, including failures in a batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dermlib.cli import main
from dermlib.testing import image_bytes, synthetic_skin_image

REPO = Path(__file__).resolve().parents[1]


def test_models_lists_installed(tiny_weights_env: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["id"] for m in data["models"]] == ["tiny-test"]
    assert data["models"][0]["classes"] == ["class-0", "class-1", "class-2", "class-3"]


def test_models_with_none_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(tmp_path))
    assert main(["models"]) == 0
    assert "No models installed" in capsys.readouterr().out


def test_predict_json_and_bad_image(tiny_weights_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good1 = tmp_path / "a.png"
    good1.write_bytes(image_bytes(synthetic_skin_image(1)))
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not an image")
    good2 = tmp_path / "b.jpg"
    good2.write_bytes(image_bytes(synthetic_skin_image(2), "JPEG"))
    code = main(["predict", str(good1), str(bad), str(good2), "--top-k", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 1  # non-zero because one image failed ...
    records = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert [r["image"] for r in records] == [str(good1), str(good2)]  # ... after the others were processed
    for r in records:
        assert r["model"] == "tiny-test" and len(r["top_k"]) == 2
        assert set(r["top_k"][0]) == {"label", "name", "probability"}
        assert sum(r["risk"].values()) == pytest.approx(1.0, abs=1e-4)
        assert isinstance(r["uncertain"], bool)
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err) == 1 and "notes.jpg" in err[0] and "not an image" in err[0]


def test_predict_human_output_and_cams(tiny_weights_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img = tmp_path / "c.png"
    img.write_bytes(image_bytes(synthetic_skin_image(3)))
    cams = tmp_path / "cams"
    assert main(["predict", str(img), "--cam", "gradcam", "--cam-dir", str(cams)]) == 0
    out = capsys.readouterr().out
    assert "risk groups" in out and "%" in out
    assert len(list(cams.glob("c_gradcam_*.png"))) == 3


def test_predict_unknown_model(tiny_weights_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img = tmp_path / "c.png"
    img.write_bytes(image_bytes(synthetic_skin_image(3)))
    assert main(["predict", str(img), "--model", "nope"]) == 2
    assert "No model 'nope'" in capsys.readouterr().err


def test_module_entry_point(tiny_weights_env: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "dermlib", "models"], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "tiny-test" in result.stdout


def test_models_markdown_table(tiny_weights_env: Path, capsys: pytest.CaptureFixture) -> None:
    card_path = tiny_weights_env / "tiny-test" / "card.json"
    card = json.loads(card_path.read_text())
    card["metrics"] = {"n": 40, "top1_accuracy": 0.5, "top3_accuracy": 0.9, "by_skin_type": {
        "groups": {"I-II": {"n": 30, "top1_accuracy": 0.6}, "III-IV": {"n": 10, "top1_accuracy": 0.2},
                   "V-VI": {"n": 0, "top1_accuracy": None}}},
        "calibration": {"ece": 0.061}, "calibration_check": {"ece_cross_fitted": 0.042, "n": 80}}
    card_path.write_text(json.dumps(card))
    assert main(["models", "--markdown"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| model |") and len(lines) == 3
    assert "| 40 | 50.0% | 90.0% |" in lines[2]
    assert "| 0.061 | 0.042 (80) | 60.0% (30) / 20.0% (10) / n/a (0) |" in lines[2]


@pytest.mark.parametrize("command", [["predict"], ["segment"], ["report", "--pdf", "x.pdf"]])
def test_listing_models_and_refusing_a_non_image_load_no_heavy_library(tmp_path: Path, command: list[str]) -> None:
    """Cold start: `models` and a refused file must not import torch, timm, grad-cam or the report's libraries
    (seconds each), for every command that reads photos."""

    fake = tmp_path / "notes.jpg"
    fake.write_text("hello, I am text")
    root = Path(__file__).resolve().parents[1]
    args = [command[0], str(fake), *(str(tmp_path / a) if a.endswith(".pdf") else a for a in command[1:])]
    code = (
        "import sys\n"
        "from dermlib.cli import main\n"
        "main(['models', '--json'])\n"
        f"rc = main({args!r})\n"
        "heavy = sorted(m for m in ('torch', 'timm', 'pytorch_grad_cam', 'onnxruntime', 'openvino', 'fpdf',\n"
        "               'fhir', 'segmentation_models_pytorch') if m in sys.modules)\n"
        "print('RC', rc, 'HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert "RC 1 HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "not an image" in out.stderr
