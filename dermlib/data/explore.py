"""Computations behind the Dataset Explorer page: filtering, sampling, thumbnails, image statistics,
embedding projections and the training-data summaries stored in model cards.

Nothing here imports Streamlit; the page caches these calls.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from dermlib.data.files import open_thumbnail
from dermlib.errors import DermLensError
from dermlib.viz.palette import skin_type_name  # the one way skin types are written (I-VI)

UNKNOWN = "unknown"


def skin_type_labels(values: pd.Series) -> pd.Series:
    """Return Fitzpatrick types as stored text ``"1"``..``"6"`` with ``"unknown"`` for missing values.

    These are keys, not labels: :func:`dermlib.viz.palette.skin_type_name` writes them I..VI for people.
    """
    return values.astype("string").fillna(UNKNOWN)


def filter_index(
    index: pd.DataFrame,
    labels: Sequence[str] | None = None,
    skin_types: Sequence[str] | None = None,
    *,
    images_only: bool = True,
) -> pd.DataFrame:
    """Select rows by label and Fitzpatrick type.

    Args:
        index: A dataset index.
        labels: Keep these labels (``None`` or empty: all).
        skin_types: Keep these skin types as text (``"1"``..``"6"``, ``"unknown"``); ``None`` or empty: all.
        images_only: Drop metadata-only rows.

    Returns:
        The matching rows, index order kept.
    """
    mask = pd.Series(True, index=index.index)
    if images_only:
        mask &= index["image_path"].notna()
    if labels:
        mask &= index["label"].isin(list(labels)).fillna(False).astype(bool)
    if skin_types:
        mask &= skin_type_labels(index["fitzpatrick"]).isin(list(skin_types)).astype(bool)
    return index[mask]


def sub_label_table(sub: pd.DataFrame, names: dict[str, str] | None = None, top: int = 4) -> pd.DataFrame:
    """One row per class: its records, how many sub-labels it groups, and the most common ones.

    Args:
        sub: An adapter's :meth:`~dermlib.data.adapters.Adapter.sub_labels` (``record``, ``label``,
            ``sub_label``; a record shown under two sub-labels has two rows and counts under each).
        names: Class id -> display name (ids are shown where a name is missing).
        top: How many sub-labels to name per class, most records first (ties alphabetically).

    Returns:
        Columns ``class``, ``records``, ``sub-labels`` and ``most common`` (``"Atopic dermatitis (115),
        ..."``), classes with the most records first.
    """
    names = names or {}
    rows = []
    for label, part in sub.groupby("label", sort=True):
        counts = part.groupby("sub_label")["record"].nunique()
        counts = counts.sort_index().sort_values(ascending=False, kind="stable")
        shown = ", ".join(f"{name} ({n})" for name, n in counts.head(top).items())
        more = len(counts) - min(top, len(counts))
        rows.append({"class": names.get(str(label), str(label)), "records": int(part["record"].nunique()),
                     "sub-labels": len(counts), "most common": shown + (f", and {more} more" if more else "")})
    table = pd.DataFrame(rows, columns=["class", "records", "sub-labels", "most common"])
    return table.sort_values(["records", "class"], ascending=[False, True], kind="stable").reset_index(drop=True)


def sample_images(index: pd.DataFrame, n: int, *, seed: int = 0) -> pd.DataFrame:
    """Return at most ``n`` rows with images, stratified by label so small classes still appear.

    Each class gets a share proportional to its size (at least one image), then the sample is trimmed or
    topped up to exactly ``n`` at random. Deterministic for a given ``seed``.
    """
    rows = index[index["image_path"].notna()]
    if len(rows) <= n:
        return rows
    share = n / len(rows)
    parts = [
        group.sample(min(len(group), max(1, math.floor(len(group) * share))), random_state=seed)
        for _, group in rows.groupby("label", sort=True)
    ]
    sample = pd.concat(parts)
    if len(sample) > n:
        sample = sample.sample(n, random_state=seed)
    elif len(sample) < n:  # rounding down left room: top up at random from the rest
        sample = pd.concat([sample, rows.drop(sample.index).sample(n - len(sample), random_state=seed)])
    return sample.sort_index()


def thumbnail_jpeg(path: str, size: int = 192, quality: int = 85) -> bytes:
    """Return JPEG bytes of a thumbnail (longest side ``size``), decoded in JPEG draft mode."""
    buffer = io.BytesIO()
    open_thumbnail(path, size).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def thumbnail_data_uri(path: str, size: int = 96) -> str:
    """Return a ``data:image/jpeg;base64,...`` URI of a small thumbnail (for HTML and chart hovers)."""
    return "data:image/jpeg;base64," + base64.b64encode(thumbnail_jpeg(path, size, quality=75)).decode(
        "ascii"
    )


def image_statistics(paths: Sequence[str], size: int = 64) -> pd.DataFrame:
    """Measure images cheaply: pixel size from the header, brightness and colour from a draft thumbnail.

    Args:
        paths: Image files.
        size: Thumbnail size the colour statistics are measured on.

    Returns:
        Columns ``image_path``, ``width``, ``height``, ``brightness`` (mean grey 0-255), ``red``, ``green``,
        ``blue`` (channel means), ``readable`` (bool). Unreadable files get NaNs and ``readable=False``.
    """
    records: list[dict[str, Any]] = []
    for path in paths:
        record: dict[str, Any] = {"image_path": path, "readable": True}
        try:
            with Image.open(path) as image:
                record["width"], record["height"] = image.size
                image.draft("RGB", (size, size))
                pixels = np.asarray(image.convert("RGB").resize((size, size)), dtype=np.float32)
            red, green, blue = pixels.reshape(-1, 3).mean(axis=0)
            record.update(
                red=red, green=green, blue=blue, brightness=0.299 * red + 0.587 * green + 0.114 * blue
            )
        except (OSError, UnidentifiedImageError, ValueError):
            record["readable"] = False
        records.append(record)
    columns = ["image_path", "width", "height", "brightness", "red", "green", "blue", "readable"]
    return pd.DataFrame.from_records(records, columns=columns)


def project_2d(features: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """Project feature vectors to 2-D.

    Args:
        features: ``(N, D)`` array.
        method: ``"pca"`` (fast, linear) or ``"tsne"`` (neighbourhoods; seconds for a few hundred points).
        seed: Random state for t-SNE.

    Returns:
        ``(N, 2)`` float array.
    """
    from sklearn.decomposition import PCA

    features = np.asarray(features, dtype=np.float32)
    if len(features) < 3:
        return np.zeros((len(features), 2), dtype=np.float32)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        from sklearn.manifold import TSNE

        # PCA to 50 dims first, as the t-SNE authors recommend, to denoise and speed it up.
        reduced = PCA(n_components=min(50, features.shape[1], len(features) - 1), random_state=seed)
        compact = reduced.fit_transform(features)
        perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            compact
        )
    raise ValueError(f"unknown projection {method!r}; use 'pca' or 'tsne'")


PROJECTIONS: dict[str, str] = {"pca": "PCA (fast, linear)", "tsne": "t-SNE (local neighbourhoods)"}


IMAGENET_EMBEDDER = "imagenet-lite0"
"""Embedding-map choice that uses the scope check's frozen ImageNet extractor (ONNX Runtime, 128 px):
about 6 ms an image on one core, so a map of 300 images takes seconds, not minutes."""


class ImageNetEmbedder:
    """``embed(images)`` with the frozen ImageNet EfficientNet-Lite0 of :mod:`dermlib.scope.features`."""

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        from dermlib.scope.features import get_extractor

        return get_extractor()(list(images))


def embedding_choices(cards: Sequence[Any]) -> tuple[list[str], list[str]]:
    """What the embedding map can embed with: the ImageNet extractor first, then every single network.

    Returns:
        ``(ids, skipped)``: choices (:data:`IMAGENET_EMBEDDER` or model ids) and the ids of ensembles left
        out (several networks per image would take minutes for a few hundred images on a small server).
    """
    ids = [IMAGENET_EMBEDDER]
    skipped = []
    for card in cards:
        (skipped if getattr(card, "is_ensemble", False) else ids).append(str(card.id))
    return ids, skipped


def embed_paths(
    model: Any,
    paths: Sequence[str],
    *,
    batch_size: int = 16,
    size: int = 320,
    on_batch: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embed images with a loaded model's ``embed(images)`` in batches.

    Args:
        model: An object with ``embed(list[PIL.Image]) -> np.ndarray`` (``dermlib.models.LoadedModel``).
        paths: Image files.
        batch_size: Images per call.
        size: Images are opened as thumbnails of this size (the model resizes to its own input anyway).
        on_batch: Called with (done, total) after each batch, e.g. to move a progress bar.

    Returns:
        ``(N, D)`` features.
    """
    chunks: list[np.ndarray] = []
    for start in range(0, len(paths), batch_size):
        batch = [open_thumbnail(p, size) for p in paths[start : start + batch_size]]
        chunks.append(np.asarray(model.embed(batch), dtype=np.float32))
        if on_batch is not None:
            on_batch(min(start + batch_size, len(paths)), len(paths))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True)
class ModelDataSummary:
    """The training-data summary stored in one installed model's card."""

    model_id: str
    model_name: str
    dataset: str
    licence: str
    citation: str
    summary: dict[str, Any]
    #: Class id -> the card's display name and risk group, so charts never show raw ids.
    class_names: dict[str, str] = field(default_factory=dict)
    class_risk_groups: dict[str, str] = field(default_factory=dict)


def installed_models() -> list[Any]:
    """Return the installed model cards, or ``[]`` when the model registry is unavailable or empty."""
    try:
        from dermlib.models import list_models
    except ImportError:
        return []
    try:
        return list(list_models())
    except DermLensError:
        return []


def model_data_summaries() -> list[ModelDataSummary]:
    """Collect ``card.training["data_summary"]`` from every installed model that has one."""
    out: list[ModelDataSummary] = []
    for card in installed_models():
        training = getattr(card, "training", None) or {}
        summary = training.get("data_summary")
        if not summary:
            continue
        out.append(
            ModelDataSummary(
                model_id=str(card.id),
                model_name=str(getattr(card, "name", card.id)),
                dataset=str(training.get("dataset", "")),
                licence=str(training.get("licence", "")),
                citation=str(training.get("citation", "")),
                summary=dict(summary),
                class_names={str(c.id): str(c.name) for c in getattr(card, "classes", ())},
                class_risk_groups={str(c.id): str(c.risk_group) for c in getattr(card, "classes", ())},
            )
        )
    return out


def caption_for(row: pd.Series, with_file: bool = False) -> str:
    """Return a one-line description of an index row for a gallery caption (skin type written I-VI).

    Args:
        row: An index row.
        with_file: End with the file's name (where two photos are compared and a reviewer may look them up;
            elsewhere a hash-named file means nothing to a reader).
    """
    parts = [str(row["display_name"])]
    if pd.notna(row["risk_group"]):
        parts.append(str(row["risk_group"]))
    known = pd.notna(row["fitzpatrick"])
    parts.append(f"skin type {skin_type_name(row['fitzpatrick'])}" if known else "skin type unknown")
    if pd.notna(row["age"]):
        parts.append(f"{int(row['age'])} y")
    for column in ("sex", "body_site", "split"):
        if pd.notna(row[column]):
            parts.append(str(row[column]))
    if with_file:
        parts.append(os.path.basename(str(row["image_path"])))
    return " · ".join(parts)
