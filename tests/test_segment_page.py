"""AppTest of the Diagnose page's lesion section: outline toggle, measurements, the optional crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dermlib.segment.model import LoadedSegmenter
from dermlib.testing import image_bytes, synthetic_lesion_pair, write_tiny_model, write_tiny_segmenter

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "diagnose.py")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def dermoscopy_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dermoscopy classifier and a segmenter whose mask is the synthetic lesion's true ellipse."""
    root = tmp_path / "weights"
    write_tiny_model(root / "tiny-derm", extra={"id": "tiny-derm", "name": "Tiny dermoscopy", "default": True,
                                                "task": "dermoscopy"})
    write_tiny_model(root / "tiny-clinical", extra={"id": "tiny-clinical", "name": "Tiny clinical",
                                                    "task": "clinical"})
    write_tiny_segmenter(root / "tiny-seg")
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(root))
    monkeypatch.setattr(LoadedSegmenter, "segment", lambda self, image: _true_mask(image))
    return root


def _true_mask(image) -> np.ndarray:
    return synthetic_lesion_pair(seed=5, size=image.size)[1]


def _upload(at: AppTest) -> AppTest:
    image, _ = synthetic_lesion_pair(seed=5, size=(240, 180))
    at.file_uploader(key="diagnose_upload").upload("lesion.png", image_bytes(image), "image/png")
    return at.run(timeout=120)


def test_outline_toggle_and_measurements(dermoscopy_env: Path) -> None:
    at = _upload(AppTest.from_file(PAGE).run(timeout=60))
    assert not at.exception
    assert "The lesion" in [s.value for s in at.subheader]
    assert at.toggle(key="diagnose_outline").value is True
    assert any("Outline by Tiny test segmenter" in str(e.proto) for e in at.get("image"))
    table = at.table[0].value
    assert list(table.index) == ["Area", "Asymmetry", "Border", "Colours", "Longest extent"]
    assert table["Value"].iloc[0].endswith("of the image")
    captions = "\n".join(c.value for c in at.caption)
    assert "What the classifier saw:** the whole photo" in captions

    at.toggle(key="diagnose_outline").set_value(False).run(timeout=120)
    assert not at.exception
    assert not any("Outline by" in str(e.proto) for e in at.get("image"))
    assert any("Your photo" in str(e.proto) for e in at.get("image"))


def test_crop_toggle_changes_what_the_classifier_sees(dermoscopy_env: Path) -> None:
    at = _upload(AppTest.from_file(PAGE).run(timeout=60))
    first = at.session_state["diagnose_crop"]
    assert first is False
    at.toggle(key="diagnose_crop").set_value(True).run(timeout=120)
    assert not at.exception
    captions = "\n".join(c.value for c in at.caption)
    assert "cropped to the outlined lesion" in captions
    assert len(at.get("plotly_chart")) == 2  # the prediction ran on the crop


def test_clinical_model_has_no_lesion_section(dermoscopy_env: Path) -> None:
    at = AppTest.from_file(PAGE).run(timeout=60)
    at.selectbox(key="diagnose_model").set_value("tiny-clinical").run(timeout=60)
    at = _upload(at)
    assert not at.exception
    assert "The lesion" not in [s.value for s in at.subheader]
    assert len(at.toggle) == 0 or "diagnose_outline" not in [t.key for t in at.toggle]


def test_model_page_shows_the_outliners_dice_for_a_dermoscopy_model() -> None:
    """On the shipped weights: the dermoscopy classifier's page names the outliner and its measured Dice."""
    page = str(Path(__file__).resolve().parents[1] / "app_pages" / "model.py")
    at = AppTest.from_file(page, default_timeout=60).run()
    derm = next(o for o in at.selectbox(key="model_page_model").options if "dermoscopy-melanoma" in o)
    at.selectbox(key="model_page_model").select(derm).run()
    assert not at.exception
    assert "Lesion outliner used with it" in [h.value for h in at.header]
    text = "\n".join(m.value for m in at.markdown)
    assert "Dice on its 33 held-out test images: **0.937**" in text
    assert list(at.table[-1].value.index) == ["atypical nevus", "common nevus", "melanoma"]


def test_lesion_section_does_not_scan_the_weights_for_a_clinical_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clinical path returns before the weights folder is read (it cost 15 ms on every upload)."""
    from types import SimpleNamespace

    from PIL import Image

    from dermlib.ui import lesion

    monkeypatch.setattr(lesion, "segmentation_models", lambda: pytest.fail("the weights folder was scanned"))
    photo = Image.new("RGB", (32, 24), (180, 120, 100))
    assert lesion.lesion_section(SimpleNamespace(task="clinical"), photo, "digest") == (photo, "digest")
