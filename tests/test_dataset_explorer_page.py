"""AppTest of the Dataset Explorer page with and without data (and with a stand-in model registry)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dermlib import config
from dermlib.data import synthetic as syn
from dermlib.testing import write_tiny_model

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "dataset_explorer.py")
KEY = "dataset_explorer_"


SUMMARY = {
    "n_images": 120,
    "class_counts": {"melanoma": 40, "acne": 80},
    "fitzpatrick_counts": {"1": 30, "2": 40, "3": 30, "5": 15},
    "split_counts": {"train": 90, "val": 15, "test": 15},
}


@pytest.fixture
def with_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real tiny model (card + safetensors) whose card carries a training-data summary."""
    root = tmp_path / "weights"
    classes = [{"id": "melanoma", "name": "Melanoma (card name)", "risk_group": "malignant"},
               {"id": "acne", "name": "Acne (card name)", "risk_group": "non-neoplastic"}]
    write_tiny_model(root / "tiny-test", num_classes=2, extra={
        "classes": classes,
        "training": {"dataset": "fitzpatrick17k (subset)", "licence": "CC BY-NC-SA 3.0", "data_summary": SUMMARY}})
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(root))
    return root


@pytest.fixture
def no_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "shared_data_root", lambda: None)


@pytest.fixture
def without_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DERMLENS_WEIGHTS_DIR", str(tmp_path / "no-weights"))


def run_page(monkeypatch: pytest.MonkeyPatch, root: Path) -> AppTest:
    monkeypatch.setenv(config.DATA_ROOT_ENV, str(root))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_no_data_no_model_teaches(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_shared: None, without_models: None
) -> None:
    at = run_page(monkeypatch, tmp_path)
    assert any("No dataset found" in i.value for i in at.info)
    assert any("python -m dermlib data download fitzpatrick17k" in c.value for c in at.code)
    assert any("DERMLENS_DATA_ROOT" in m.value for m in at.markdown)
    assert any("No installed model carries a training-data summary" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_no_data_shows_model_card_summary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_shared: None, with_model: Path
) -> None:
    at = run_page(monkeypatch, tmp_path)
    metrics = {m.label: m.value for m in at.metric}
    # The card counts all 120 photos of the split; 90 of them trained the model.
    assert metrics["Images (all splits)"] == "120" and metrics["Training images"] == "90"
    assert any(c.value == "Split: train 90, val 15, test 15 photos." for c in at.caption)
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # classes and skin types from the card
    spec = charts[0].proto.spec
    assert "Acne (card name)" in spec and "Melanoma (card name)" in spec  # the card's names, not raw ids


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    syn.make_fitzpatrick17k(tmp_path / "fitzpatrick17k", n_images=14, n_metadata_only=4)
    syn.make_ham10000(tmp_path / "ham10000", n_images=4, n_metadata_only=2)
    # A re-encoded copy of the first photo under its own md5 (as in the real data): a near-duplicate to find.
    root = tmp_path / "fitzpatrick17k"
    csv = pd.read_csv(root / "fitzpatrick17k.csv")
    original = root / "images" / "acne-vulgaris" / f"{csv.loc[0, 'md5hash']}.jpg"
    copy = original.with_name("copy.jpg")
    with Image.open(original) as image:
        image.save(copy, quality=60)
    digest = hashlib.md5(copy.read_bytes()).hexdigest()
    copy.rename(copy.with_name(f"{digest}.jpg"))
    extra = csv.iloc[[0]].assign(md5hash=digest)
    pd.concat([csv, extra]).to_csv(root / "fitzpatrick17k.csv", index=False)
    return tmp_path


def test_with_data_charts_gallery_and_duplicates(
    monkeypatch: pytest.MonkeyPatch, data_root: Path, no_shared: None, without_models: None
) -> None:
    at = run_page(monkeypatch, data_root)
    assert at.selectbox(key=KEY + "dataset").value == "fitzpatrick17k"
    assert at.selectbox(key=KEY + "dataset").options == [
        "fitzpatrick17k (Fitzpatrick17k)",
        "ham10000 (HAM10000)",
    ]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Records"] == "19" and metrics["Images on disk"] == "15"
    # class distribution, skin types overall and per class
    assert len(at.get("plotly_chart")) == 3
    assert len(at.get("image")) == 12  # a full gallery page
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert all(" · skin type " in c and not c.endswith(".jpg") for c in captions)  # no hash-named files
    assert not any(" · FST " in c or re.search(r"skin type [1-6]\b", c) for c in captions)
    assert any("needs an installed model" in i.value for i in at.info)

    at.multiselect(key=KEY + "gallery_classes").set_value(["melanoma"]).run()
    assert not at.exception
    assert len(at.get("image")) == 5  # rows 1, 4, 7, 10, 13 of the synthetic csv
    at.multiselect(key=KEY + "gallery_classes").set_value([]).run()
    at.number_input(key=KEY + "gallery_page").set_value(2).run()
    assert len(at.get("image")) == 3

    at.toggle(key=KEY + "stats_on").set_value(True).run()
    at.toggle(key=KEY + "dup_on").set_value(True).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Near-duplicate pairs"] == "1"
    assert metrics["Images in a duplicate group"] == "2"
    assert len(at.get("plotly_chart")) == 3 + 2 + 1  # + sizes, brightness, duplicate distances

    at.selectbox(key=KEY + "dataset").set_value("ham10000").run()
    assert not at.exception
    assert any("records no Fitzpatrick skin type" in i.value for i in at.info)
    assert {m.label: m.value for m in at.metric}["Records"] == "6"


def test_embedding_map_with_a_model(
    monkeypatch: pytest.MonkeyPatch, data_root: Path, no_shared: None, with_model: Path
) -> None:
    at = run_page(monkeypatch, data_root)
    at.button(key=KEY + "emb_go").click().run()
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # the three overview charts and the embedding map
    assert "Click a point" in " ".join(c.value for c in at.caption)


def test_shared_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, without_models: None) -> None:
    if config.shared_data_root() is None or not (config.shared_data_root() / "fitzpatrick17k").is_dir():
        pytest.skip("shared data not present")
    at = run_page(monkeypatch, tmp_path)  # the empty configured root falls back to the shared data
    assert "Shared development data" in at.radio(key=KEY + "root").value
    # The note says why the configured folder was set aside, not "set DERMLENS_DATA_ROOT" (it is set).
    notes = "\n".join(m.value for m in at.markdown)
    assert f"names `{tmp_path}`, which holds no dataset yet" in notes and "To use another folder" not in notes
    assert at.selectbox(key=KEY + "dataset").value == "fitzpatrick17k"
    assert {m.label: m.value for m in at.metric}["Images on disk"] == "2,860"
    assert len(at.get("plotly_chart")) == 3 and len(at.get("image")) == 12


def _visible_text(at: AppTest) -> str:
    """Every text on the page except what sits in the expanders labelled for developers."""
    developer = [e for e in at.expander if e.label.startswith("For developers")]
    hidden = {m.value for e in developer for m in [*e.markdown, *e.caption, *e.code]}
    texts = [m.value for m in [*at.markdown, *at.caption, *at.info, *at.code, *at.warning, *at.title,
                               *at.subheader] if m.value not in hidden]
    texts += [str(o) for r in at.radio for o in r.options] + [s.value for s in at.selectbox if s.value]
    return "\n".join(texts)


def test_no_file_paths_outside_the_developer_expanders(
    monkeypatch: pytest.MonkeyPatch, data_root: Path, tmp_path: Path, no_shared: None, without_models: None
) -> None:
    empty = tmp_path / "empty-root"
    empty.mkdir()
    weights = str(config.weights_dir())
    for root in (empty, data_root):
        at = run_page(monkeypatch, root)
        text = _visible_text(at)
        assert str(root) not in text and weights not in text and str(tmp_path) not in text, text
        developer = [e for e in at.expander if e.label.startswith("For developers")]
        assert any(str(root) in m.value for e in developer for m in [*e.markdown, *e.code])
    assert any("None is installed yet" in i.value for i in at.info)  # the embedding tab, in plain words


def test_dermnet_topics_are_shown_for_each_category(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_shared: None, without_models: None
) -> None:
    syn.make_dermnet_nz(tmp_path / "dermnet", per_class=3)
    syn.make_fitzpatrick17k(tmp_path / "fitzpatrick17k", n_images=6, n_metadata_only=0)
    at = run_page(monkeypatch, tmp_path)
    assert at.selectbox(key=KEY + "dataset").value == "fitzpatrick17k"
    assert not any("topic" in h.value.lower() for h in at.subheader)  # no sub-labels in that layout
    at.selectbox(key=KEY + "dataset").set_value("dermnet").run()
    assert not at.exception, at.exception
    assert "What each class holds: DermNet topics" in [h.value for h in at.subheader]
    table = next(t.value for t in at.table if "DermNet topics" in t.value.columns)
    assert list(table["class"]) == ["Eczema", "Melanoma", "Psoriasis"]
    assert list(table["photos"]) == [3, 3, 3] and list(table["DermNet topics"]) == [2, 2, 2]
    assert table.loc[0, "most common"] == "Eczema topic (3), Other topic (3)"
    assert any("4 DermNet topics in all" in c.value for c in at.caption)

