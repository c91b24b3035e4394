"""Explorer computations (filtering, sampling, thumbnails, statistics, projection) and the chart builders."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dermlib.data import explore, load_index
from dermlib.data import synthetic as syn
from dermlib.viz import data_charts as charts


@pytest.fixture
def index(tmp_path: Path) -> pd.DataFrame:
    syn.make_fitzpatrick17k(tmp_path, n_images=9, n_metadata_only=2)
    return load_index("fitzpatrick17k", tmp_path)


def test_filter_and_sample(index: pd.DataFrame) -> None:
    assert len(explore.filter_index(index)) == 9
    assert len(explore.filter_index(index, images_only=False)) == 11
    melanoma = explore.filter_index(index, ["melanoma"])
    assert set(melanoma["label"]) == {"melanoma"} and len(melanoma) == 3
    unknown = explore.filter_index(index, skin_types=["unknown"])
    assert unknown["fitzpatrick"].isna().all() and len(unknown) == 2  # rows 0 and 7 carry -1
    both = explore.filter_index(index, ["acne-vulgaris"], ["unknown", "4"])
    assert set(explore.skin_type_labels(both["fitzpatrick"])) <= {"unknown", "4"}
    sample = explore.sample_images(index, 4, seed=1)
    assert len(sample) == 4 and sample["image_path"].notna().all()
    assert sample.equals(explore.sample_images(index, 4, seed=1))
    assert len(explore.sample_images(index, 100)) == 9


def test_thumbnails_and_statistics(tmp_path: Path) -> None:
    big = syn.make_image(tmp_path / "big.jpg", 5, size=(1200, 800))
    data = explore.thumbnail_jpeg(str(big), 100)
    with Image.open(io.BytesIO(data)) as thumb:
        assert max(thumb.size) == 100 and thumb.format == "JPEG"
    uri = explore.thumbnail_data_uri(str(big), 50)
    assert (
        uri.startswith("data:image/jpeg;base64,")
        and base64.b64decode(uri.split(",", 1)[1])[:2] == b"\xff\xd8"
    )
    white = tmp_path / "white.png"
    Image.new("RGB", (30, 20), (255, 255, 255)).save(white)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    stats = explore.image_statistics([str(big), str(white), str(broken)])
    assert stats["width"].tolist()[:2] == [1200, 30] and stats["height"].tolist()[:2] == [800, 20]
    assert stats.loc[1, "brightness"] == pytest.approx(255, abs=0.5)
    assert stats["readable"].tolist() == [True, True, False] and np.isnan(stats.loc[2, "brightness"])


def test_projection_shapes() -> None:
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0, 1, (20, 16)), rng.normal(8, 1, (20, 16))])
    pca = explore.project_2d(features, "pca")
    assert pca.shape == (40, 2)
    # the two clusters separate along the first component
    assert abs(pca[:20, 0].mean() - pca[20:, 0].mean()) > 10
    assert explore.project_2d(features, "tsne").shape == (40, 2)
    with pytest.raises(ValueError, match="unknown projection"):
        explore.project_2d(features, "umap")


def test_embed_paths_batches(tmp_path: Path) -> None:
    paths = [str(syn.make_image(tmp_path / f"{k}.jpg", k)) for k in range(5)]
    calls: list[tuple[int, int]] = []

    class Model:
        def embed(self, images: list[Image.Image]) -> np.ndarray:
            return np.array([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) for im in images])

    features = explore.embed_paths(Model(), paths, batch_size=2, on_batch=lambda d, t: calls.append((d, t)))
    assert features.shape == (5, 3)
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_caption(index: pd.DataFrame) -> None:
    row = index.dropna(subset=["image_path"]).iloc[1]
    text = explore.caption_for(row)
    assert text.startswith("Melanoma · malignant · skin type I") and not text.endswith(".jpg")  # I-VI, never 1-6
    assert explore.caption_for(row, with_file=True).endswith(".jpg")  # near-duplicate pairs name their files
    unknown = index.dropna(subset=["image_path"]).iloc[0]  # row 0 carries -1
    assert explore.caption_for(unknown) == "Acne vulgaris · non-neoplastic · skin type unknown"


def test_chart_builders(index: pd.DataFrame) -> None:
    counts = charts.fitzpatrick_counts(index)
    assert counts.sum() == 9
    figure = charts.fitzpatrick_distribution_figure(counts)
    assert list(figure.data[0].x) == [
        charts.FITZPATRICK_NAMES[k] for k in charts.FITZPATRICK_NAMES if k in counts
    ]
    assert sum(figure.data[0].y) == 9
    per_class = charts.fitzpatrick_by_class_figure(index)
    totals = np.sum([np.asarray(trace.x, dtype=float) for trace in per_class.data], axis=0)
    assert np.allclose(totals, 1.0)  # each class's shares sum to 100 %
    classes = charts.class_distribution_figure(
        {"melanoma": 3, "acne-vulgaris": 4}, {"melanoma": "malignant"}, {"melanoma": "Melanoma"}
    )
    assert {trace.name for trace in classes.data} == {"malignant", "unknown"}
    assert charts.age_histogram_figure(pd.Series([30, None, 50])).layout.title.text == "Age (1 without age)"
    assert list(charts.category_figure(pd.Series(["a", "b", "b", None]), "x").data[0].x) == [1, 1, 2]
    points = pd.DataFrame(
        {"x": [0.0, 1.0], "y": [1.0, 0.0], "row": [3, 7], "hover": ["a", "b"], "skin type": ["1", None]}
    )
    emb = charts.embedding_figure(points, "skin type")
    assert sorted(int(t.customdata[0][0]) for t in emb.data) == [3, 7]


def test_embedding_choices_put_the_fast_extractor_first_and_leave_out_ensembles() -> None:
    from types import SimpleNamespace

    from dermlib.data.explore import IMAGENET_EMBEDDER, embedding_choices

    cards = [SimpleNamespace(id="single", is_ensemble=False), SimpleNamespace(id="six-nets", is_ensemble=True)]
    assert embedding_choices(cards) == ([IMAGENET_EMBEDDER, "single"], ["six-nets"])


def test_imagenet_embedder_gives_one_feature_row_per_image() -> None:
    from dermlib.data.explore import ImageNetEmbedder
    from dermlib.testing import synthetic_scene_image, synthetic_skin_image

    feats = ImageNetEmbedder().embed([synthetic_skin_image(1), synthetic_skin_image(2), synthetic_scene_image(3)])
    assert feats.shape[0] == 3 and feats.shape[1] >= 100
    assert np.isfinite(feats).all()
    skin = np.linalg.norm(feats[0] - feats[1])
    assert skin < np.linalg.norm(feats[0] - feats[2])  # two skin photos are closer than skin and a scene


def test_sub_label_table_counts_photos_per_class_and_names_the_commonest() -> None:
    sub = pd.DataFrame({"record": [0, 0, 1, 2, 3, 4, 5, 6],
                        "label": ["ecz", "ecz", "ecz", "ecz", "ecz", "pso", "pso", "acne"],
                        "sub_label": ["Atopic", "Hand", "Atopic", "Hand", "Discoid", "Plaque", "Plaque", "Acne"]})
    table = explore.sub_label_table(sub, {"ecz": "Eczema", "pso": "Psoriasis"}, top=2)
    assert list(table.columns) == ["class", "records", "sub-labels", "most common"]
    # A photo under two sub-labels counts once among the class's records and once under each sub-label.
    assert table.to_dict("records") == [
        {"class": "Eczema", "records": 4, "sub-labels": 3, "most common": "Atopic (2), Hand (2), and 1 more"},
        {"class": "Psoriasis", "records": 2, "sub-labels": 1, "most common": "Plaque (2)"},
        {"class": "acne", "records": 1, "sub-labels": 1, "most common": "Acne (1)"},  # no name: the id
    ]
    assert explore.sub_label_table(sub.iloc[:0]).empty

