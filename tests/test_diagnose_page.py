"""AppTest for the Diagnose page: no model, a tiny injected model, bad uploads, cached heatmaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dermlib.testing import image_bytes, synthetic_skin_image

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "diagnose.py")


def _texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.info, *at.warning, *at.error, *at.caption)]
    return "\n".join(str(p) for p in parts)


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def test_no_model_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(tmp_path / "empty"))
    at = AppTest.from_file(PAGE).run(timeout=60)
    assert not at.exception
    assert "No model is installed" in _texts(at)
    assert "decision support, not a diagnosis" in _texts(at)


def test_upload_shows_chart_and_heatmaps(tiny_weights_env: Path) -> None:
    at = AppTest.from_file(PAGE).run(timeout=60)
    assert not at.exception
    assert at.selectbox(key="diagnose_model").value == "tiny-test"
    at.file_uploader(key="diagnose_upload").upload("lesion.png", image_bytes(synthetic_skin_image(1)), "image/png")
    at.run(timeout=120)
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # probabilities + risk groups
    # Plotly's toolbar covered chart titles on phones (always shown on touch screens): drawn without it.
    assert all(json.loads(c.proto.config) == {"displayModeBar": False} for c in charts)
    # Each chart is named for screen readers, with the figures it shows.
    assert charts[0].proto.alt.startswith("Top diagnoses by calibrated probability: Class ")
    assert charts[1].proto.alt.startswith("Probability by risk group: ")
    images = at.get("image")
    # the model's view, then the original + one overlay per top-3 class
    assert len(images) >= 5
    captions = _texts(at)
    assert "Where the model looked" in "\n".join(s.value for s in at.subheader)
    assert "decision support, not a diagnosis" in captions


def test_opacity_change_does_not_recompute(tiny_weights_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.explain import engine

    calls = {"n": 0}
    real = engine.cams_for_tensor

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "cams_for_tensor", counting)
    at = AppTest.from_file(PAGE).run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload("lesion.png", image_bytes(synthetic_skin_image(2)), "image/png")
    at.run(timeout=120)
    assert calls["n"] == 1
    at.slider(key="diagnose_opacity").set_value(0.8).run(timeout=120)
    assert not at.exception
    assert calls["n"] == 1
    at.selectbox(key="diagnose_cam_method").set_value("hirescam").run(timeout=120)
    assert calls["n"] == 2


@pytest.mark.parametrize(
    ("name", "payload", "phrase"),
    [
        ("empty.png", b"", "empty"),
        ("notes.jpg", b"hello, I am text", "not an image"),
        ("tiny.png", image_bytes(synthetic_skin_image(0, size=(8, 8))), "pixels"),
    ],
)
def test_bad_upload_shows_a_clear_message(tiny_weights_env: Path, name: str, payload: bytes, phrase: str) -> None:
    at = AppTest.from_file(PAGE).run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload(name, payload, "image/png")
    at.run(timeout=60)
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "cannot be used" in errors and phrase in errors
    # the session keeps working: a good upload afterwards gives a result
    at.file_uploader(key="diagnose_upload").upload("ok.png", image_bytes(synthetic_skin_image(3)), "image/png")
    at.run(timeout=120)
    assert not at.exception and len(at.get("plotly_chart")) == 2


def test_broken_model_is_reported(tiny_weights_env: Path) -> None:
    broken = tiny_weights_env / "broken"
    broken.mkdir()
    (broken / "card.json").write_text("[]")
    at = AppTest.from_file(PAGE).run(timeout=60)
    assert not at.exception
    assert any("broken" in e.value for e in at.error)
    assert at.selectbox(key="diagnose_model").value == "tiny-test"


def test_predictions_link_to_the_disease_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.testing import write_tiny_model

    classes = [("melanoma", "Melanoma", "malignant"), ("acne-vulgaris", "Acne vulgaris", "non-neoplastic"),
               ("psoriasis", "Psoriasis", "non-neoplastic"), ("keloid", "Keloid", "non-neoplastic")]
    root = tmp_path / "weights"
    write_tiny_model(root / "fitz", extra={
        "classes": [{"id": i, "name": n, "risk_group": r} for i, n, r in classes],
        "training": {"dataset": "fitzpatrick17k", "licence": "CC BY-NC-SA 3.0"},
    })
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(root))
    at = AppTest.from_file(PAGE).run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload("x.png", image_bytes(synthetic_skin_image(4)), "image/png")
    at.run(timeout=120)
    assert not at.exception
    learn = next(m.value for m in at.markdown if m.value.startswith("Learn more"))
    import re

    links = dict(re.findall(r"\[([^\]]+)\]\(([^)]+)\)", learn))
    assert len(links) == 3
    expected = {"Melanoma": "melanoma", "Acne vulgaris": "acne", "Psoriasis": "psoriasis", "Keloid": "keloid"}
    for name, url in links.items():  # acne-vulgaris resolves to the acne entry through its dataset label
        assert url == f"disease_library?condition={expected[name]}"


def test_tampered_weights_show_an_error_and_other_models_still_work(tiny_weights_env: Path) -> None:
    from dermlib.testing import write_tiny_model

    bad = write_tiny_model(tiny_weights_env / "a-bad", model_id="a-bad", extra={"default": True})
    weights = bad / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    before = weights.read_bytes()
    at = AppTest.from_file(PAGE).run(timeout=60)
    assert not at.exception
    assert at.selectbox(key="diagnose_model").value == "a-bad"
    assert any("could not be loaded" in e.value and "checksum" in e.value for e in at.error)
    at.selectbox(key="diagnose_model").set_value("tiny-test").run(timeout=60)
    at.file_uploader(key="diagnose_upload").upload("ok.png", image_bytes(synthetic_skin_image(5)), "image/png")
    at.run(timeout=120)
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert weights.read_bytes() == before  # nothing on disk was changed


def test_other_models_hint_names_the_extra_conditions_most_photographed_first() -> None:
    import dataclasses

    from dermlib.models import list_models
    from dermlib.ui.model_summary import other_models_hint

    cards = list_models()
    small = next(c for c in cards if c.id == "clinical-fitz21")
    big = next(c for c in cards if c.id == "clinical-common38")
    hint = other_models_hint(small, cards)
    assert hint.startswith("This model knows 21 conditions.") and big.name in hint
    assert "psoriasis" in hint.lower()
    assert other_models_hint(big, cards) is None  # nothing installed knows more than it
    assert other_models_hint(small, [small, dataclasses.replace(big, task="dermoscopy")]) is None


def test_the_first_page_is_drawn_before_torch_is_imported() -> None:
    """App start: the picker and the uploader come before the model, and nothing drawn so far needs torch,
    timm, grad-cam or ONNX Runtime (seconds to import). Run in a fresh interpreter, where none is loaded."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "import dermlib.ui.common as common\n"
        "from dermlib.errors import DermLensError\n"
        "seen = {}\n"
        "def load(card):\n"
        "    seen['heavy'] = sorted(m for m in ('torch', 'timm', 'pytorch_grad_cam', 'onnxruntime', 'openvino')\n"
        "                           if m in sys.modules)\n"
        "    raise DermLensError('stopped before loading')\n"
        "common.load_model = load\n"
        "at = AppTest.from_file('app_pages/diagnose.py').run(timeout=60)\n"
        "print('HEAVY', seen.get('heavy'), 'UPLOADERS', len(at.get('file_uploader')))\n"
        "print('ERRORS', [e.value for e in at.error])\n"
    )
    env = {**os.environ, "DERMLENS_WEIGHTS_DIR": str(root / "weights"),
           "DERMLENS_BACKGROUND_IMPORTS": "0"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=180,
                         env=env)
    assert "HEAVY [] UPLOADERS 1" in out.stdout, out.stdout + out.stderr
    assert "The model could not be loaded: stopped before loading" in out.stdout


def test_a_model_whose_card_withholds_it_is_left_out_of_the_picker(
        tiny_weights_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.testing import write_tiny_model

    write_tiny_model(tiny_weights_env / "heavy", model_id="heavy", extra={
        "name": "Heavy benchmark", "diagnose": {"offered": False, "reason": "too big for a shared server"}})
    at = AppTest.from_file(PAGE).run(timeout=60)
    assert not at.exception
    picker = at.selectbox(key="diagnose_model")
    assert picker.value == "tiny-test" and len(picker.options) == 1 and "Heavy benchmark" not in picker.options
    note = next(c.value for c in at.caption if "not offered here" in c.value)
    assert "Heavy benchmark" in note and "too big for a shared server" in note and "Model page" in note
    assert "Its measured results" in note and "offers it on" in note
    write_tiny_model(tiny_weights_env / "heavier", model_id="heavier", extra={
        "name": "Heavier benchmark", "diagnose": {"offered": False, "reason": "even bigger"}})
    note = next(c.value for c in AppTest.from_file(PAGE).run(timeout=60).caption if "not offered here" in c.value)
    assert "Heavier benchmark*: even bigger" in note and "Their measured results" in note and "offers them on" in note

    monkeypatch.setenv("DERMLENS_OFFER_ALL_MODELS", "1")
    at = AppTest.from_file(PAGE).run(timeout=60)
    picker = at.selectbox(key="diagnose_model")
    assert picker.value == "tiny-test" and sorted(picker.options[1:]) == ["Heavier benchmark", "Heavy benchmark"]
    assert not any("not offered here" in c.value for c in at.caption)


def test_shipped_ensemble_is_on_the_model_page_but_not_in_the_diagnose_picker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dermlib.models import list_models
    from dermlib.ui.model_summary import diagnose_models

    monkeypatch.delenv("DERMLENS_OFFER_ALL_MODELS", raising=False)
    cards = list_models()
    offered = [c.id for c in diagnose_models(cards)]
    withheld = {"clinical-fitz21-ensemble", "clinical-common38-ensemble"}  # the two teachers
    assert withheld <= {c.id for c in cards}
    assert not withheld & set(offered)
    assert offered[0] == next(c.id for c in cards if c.default) == "clinical-common38"
    # Only a card that says so is withheld: every other shipped model stays in the picker.
    assert set(offered) == {c.id for c in cards if c.diagnose_withheld is None}
    assert len(offered) == len(cards) - len(withheld)


APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def test_a_trip_to_another_page_keeps_the_photo_result_and_options(tiny_weights_env: Path) -> None:
    """Streamlit forgets the widgets of a page it does not draw: the page keeps the photo and options itself."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    at.file_uploader(key="diagnose_upload").upload("lesion.png", image_bytes(synthetic_skin_image(4)), "image/png")
    at.run()
    at.slider(key="diagnose_top_k").set_value(2).run()
    at.selectbox(key="diagnose_cam_method").set_value("hirescam").run()
    result = [s.value for s in at.subheader]
    assert "Where the model looked" in result
    at.switch_page("app_pages/disease_library.py").run()
    assert not at.exception
    assert "Where the model looked" not in [s.value for s in at.subheader]
    at.switch_page("app_pages/diagnose.py").run()
    assert not at.exception
    assert [s.value for s in at.subheader] == result  # the same result, drawn again from the kept photo
    assert at.slider(key="diagnose_top_k").value == 2
    assert at.selectbox(key="diagnose_cam_method").value == "hirescam"
    assert "Your photo from before (lesion.png) is shown again" in _texts(at)
    # Clearing it leaves the page as on a first visit.
    at.button(key="diagnose_clear_kept").click().run()
    assert "Where the model looked" not in [s.value for s in at.subheader]
    assert "Frame the affected skin closely" in _texts(at)


def test_removing_the_photo_in_the_uploader_does_not_bring_it_back(tiny_weights_env: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.file_uploader(key="diagnose_upload").upload("lesion.png", image_bytes(synthetic_skin_image(5)), "image/png")
    at.run()
    assert "Where the model looked" in [s.value for s in at.subheader]
    at.file_uploader(key="diagnose_upload").clear().run()
    assert not at.exception
    assert "Where the model looked" not in [s.value for s in at.subheader]
    assert "shown again" not in _texts(at)


def test_every_page_draws_plotly_figures_through_one_helper() -> None:
    """A chart drawn with st.plotly_chart directly would bring the toolbar back on phones."""
    root = Path(__file__).resolve().parents[1]
    direct = [str(f.relative_to(root)) for f in [*root.glob("app_pages/*.py"), *root.glob("dermlib/ui/*.py")]
              if ".plotly_chart(" in f.read_text() and f.name != "charts.py"]
    assert direct == []
