"""Streamlit sections of the Dataset Explorer page: cached library calls and one renderer per tab.

The page (``app_pages/dataset_explorer.py``) picks the data folder and the dataset and lays out the tabs;
everything drawn inside them is here. Widget keys keep the page's ``dataset_explorer_`` prefix. Users see
dataset and model names, never file-system paths: those sit in expanders labelled for developers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dermlib import config
from dermlib.data import DATASETS, DEFAULT_MAX_DISTANCE, discover, explore, load_index
from dermlib.data.download import DOWNLOADERS, MANUAL_DOWNLOAD
from dermlib.data.duplicates import DERMOSCOPY_CENTRE, compute_hashes, duplicate_pairs, group_ids_from_hashes
from dermlib.errors import DermLensError
from dermlib.ui.charts import chart
from dermlib.viz import data_charts as charts
from dermlib.viz.palette import FITZPATRICK_NAMES

KEY = "dataset_explorer_"  # session-state prefix of the page
GALLERY_PAGE_SIZE = 12
GALLERY_COLUMNS = 4
MAX_STATS_IMAGES = 400
MAX_DUPLICATE_IMAGES = 3000
MAX_DUPLICATE_PAIRS_SHOWN = 8


def developer_note(markdown: str, title: str = "For developers: where DermLens reads this from") -> None:
    """File-system details (folders, environment variables), kept out of sight in an expander."""
    with st.expander(title):
        st.markdown(markdown)


# --- cached library calls -------------------------------------------------------------------------


# Every cache is bounded (docs/RELIABILITY.md): a student clicking through every dataset and setting must not
# grow the server without limit. The shared data holds 7 datasets, so 8 indexes keep them all.
@st.cache_data(show_spinner=False, ttl=60, max_entries=4)
def cached_discover(root: str) -> dict[str, tuple[str, str]]:
    return {name: (str(folder), adapter) for name, (folder, adapter) in discover(root).items()}


@st.cache_data(show_spinner="Indexing the dataset…", max_entries=8)
def cached_index(folder: str, adapter: str) -> pd.DataFrame:
    return load_index(adapter, folder)


@st.cache_data(show_spinner=False, max_entries=8)
def cached_sub_labels(folder: str, adapter: str) -> pd.DataFrame | None:
    return DATASETS[adapter].sub_labels(folder)


@st.cache_data(show_spinner=False, max_entries=4000)
def cached_thumbnail(path: str, size: int = 224) -> bytes:
    return explore.thumbnail_jpeg(path, size)


@st.cache_data(show_spinner="Measuring images…", max_entries=8)
def cached_stats(paths: tuple[str, ...]) -> pd.DataFrame:
    return explore.image_statistics(paths)


@st.cache_data(show_spinner="Hashing images…", max_entries=8)
def cached_hashes(paths: tuple[str, ...], centre: float = 1.0) -> np.ndarray:
    return compute_hashes(paths, centre=centre)


def cached_model(model_id: str) -> Any:
    # The same cached instance the Diagnose page uses: one copy of each model per server process.
    if model_id == explore.IMAGENET_EMBEDDER:
        return explore.ImageNetEmbedder()
    from dermlib.models import get_card
    from dermlib.ui.common import get_loaded_model, model_cache_key

    card = get_card(model_id)
    return get_loaded_model(card, model_cache_key(card))


@st.cache_data(show_spinner=False, max_entries=64)  # 64 batches of 16: 1,024 images' features, a few MB
def cached_embed_batch(model_id: str, paths: tuple[str, ...]) -> np.ndarray:
    return explore.embed_paths(cached_model(model_id), paths)


@st.cache_data(show_spinner="Projecting to 2-D…", max_entries=16)
def cached_projection(features: np.ndarray, method: str) -> np.ndarray:
    return explore.project_2d(features, method)


# --- sections ------------------------------------------------------------------------------------


def show_how_to_get_data(root: Path) -> None:
    """Explain how to download a dataset or point the app at one (commands and folders for developers)."""
    st.subheader("Getting a dataset")
    automatic = ", ".join(DATASETS[name].title for name in DOWNLOADERS)
    st.markdown(f"Whoever runs this app can download {automatic} with one command each; other public "
                "datasets must be requested from their publishers first:")
    for name, how in MANUAL_DOWNLOAD.items():
        st.markdown(f"- **{DATASETS[name].title}**: {how}")
    with st.expander("For developers: download commands and the data folder"):
        st.markdown("With internet access, these commands download, verify and unpack a dataset:")
        commands = "\n".join(f"python -m dermlib data download {name} --to {root / name}" for name in DOWNLOADERS)
        st.code(commands, language="bash")
        st.markdown(
            f"Or set `{config.DATA_ROOT_ENV}` to a folder that already holds datasets. "
            "`python -m dermlib data list` shows every supported layout."
        )


def show_model_summaries() -> None:
    """Show the training-data summary stored in each installed model card."""
    st.subheader("What the installed models were trained on")
    summaries = explore.model_data_summaries()
    if not summaries:
        st.info(
            "No installed model carries a training-data summary yet. Once a model is installed, the classes "
            "and skin types of its training photos appear here."
        )
        developer_note(f"Models are read from `{config.weights_dir()}` (one folder per model, with `card.json`).")
        return
    for item in summaries:
        summary = item.summary
        st.markdown(f"#### {item.model_name}")
        caption = ", ".join(p for p in (item.dataset, item.licence) if p)
        if caption:
            st.caption(caption + (f". {item.citation}" if item.citation else ""))
        splits = summary.get("split_counts", {})
        cols = st.columns(3)
        # The card counts every photo of the model's split, validation and test photos included.
        cols[0].metric("Images (all splits)", f"{int(summary.get('n_images', 0)):,}")
        cols[1].metric("Training images", f"{int(splits['train']):,}" if "train" in splits else "-")
        cols[2].metric("Classes", len(summary.get("class_counts", {})))
        if splits:
            st.caption("Split: " + ", ".join(f"{k} {int(v):,}" for k, v in splits.items()) + " photos.")
        left, right = st.columns(2)
        if summary.get("class_counts"):
            figure = charts.class_distribution_figure(summary["class_counts"], item.class_risk_groups or None,
                                                      item.class_names or None, title="Images per class (all splits)")
            chart(left, figure, key=KEY + f"card_classes_{item.model_id}")
        if summary.get("fitzpatrick_counts"):
            figure = charts.fitzpatrick_distribution_figure(summary["fitzpatrick_counts"], "Skin types (all splits)")
            chart(right, figure, key=KEY + f"card_fitz_{item.model_id}")


def show_overview(index: pd.DataFrame) -> None:
    """Class distribution and the skin-type balance overall and per class."""
    images = index[index["image_path"].notna()]
    if images.empty:
        st.warning("No image of this dataset is on disk; the charts below count metadata records instead.")
        images = index.assign(image_path="")
    first = images.drop_duplicates("label")
    figure = charts.class_distribution_figure(
        images["label"].value_counts(),
        dict(zip(first["label"], first["risk_group"].fillna(explore.UNKNOWN), strict=True)),
        dict(zip(first["label"], first["display_name"], strict=True)),
    )
    chart(st, figure, key=KEY + "classes")
    st.caption("Risk groups are the data set's own grouping (Fitzpatrick17k's three-partition label, for "
               "instance), which models trained on it count by. For a few conditions the clinical group differs "
               "(actinic keratosis, filed as malignant, is premalignant): the Disease Library gives the clinical one.")
    if images["fitzpatrick"].notna().any():
        chart(st, charts.fitzpatrick_distribution_figure(charts.fitzpatrick_counts(images)), key=KEY + "fitz")
        share = st.toggle("Show shares per class (otherwise counts)", value=True, key=KEY + "fitz_share")
        chart(st, charts.fitzpatrick_by_class_figure(images, normalize=share), key=KEY + "fitz_by_class")
        known = int(images["fitzpatrick"].notna().sum())
        dark = int(images["fitzpatrick"].isin([5, 6]).sum())
        st.caption(
            f"Types V-VI are {dark / known:.0%} of the {known:,} images with a recorded skin type ({dark} "
            "images). A model learns little about a skin tone it rarely sees: check its per-type accuracy "
            "before trusting it on darker skin."
        )
    else:
        st.info(
            "This dataset records no Fitzpatrick skin type, so its skin-tone balance cannot be shown; "
            "that is itself a limitation worth stating wherever a model trained on it is used."
        )


def show_sub_labels(index: pd.DataFrame, folder: str, adapter_name: str) -> None:
    """What each class groups, for a layout with finer labels (DermNet NZ's topic pages); nothing otherwise."""
    adapter = DATASETS[adapter_name]
    if not adapter.sub_label_title:
        return
    try:
        sub = cached_sub_labels(folder, adapter_name)
    except DermLensError as error:
        st.warning(f"The {adapter.sub_label_title}s could not be read: {error}")
        return
    if sub is None or sub.empty:
        return
    title = adapter.sub_label_title
    st.subheader(f"What each class holds: {title}s")
    names = dict(zip(index["label"], index["display_name"], strict=True))
    table = explore.sub_label_table(sub, names).rename(
        columns={"sub-labels": f"{title}s", "records": "photos"})
    st.table(table, hide_index=True)  # wraps the long lists of topics instead of cutting them off
    st.caption(
        f"A class here is a coarse group of {title}s, not a diagnosis made for each photo: a model "
        f"trained on it learns the group. A photo shown under two {title}s counts under both; "
        f"{sub['sub_label'].nunique()} {title}s in all."
    )


def show_demographics(index: pd.DataFrame) -> None:
    """Age, sex and body-site distributions where the dataset records them."""
    rows = index[index["image_path"].notna()]
    rows = rows if len(rows) else index
    shown = False
    if rows["age"].notna().any():
        chart(st, charts.age_histogram_figure(rows["age"]), key=KEY + "age")
        shown = True
    left, right = st.columns(2)
    if rows["sex"].notna().any():
        chart(left, charts.category_figure(rows["sex"], "Sex"), key=KEY + "sex")
        shown = True
    if rows["body_site"].notna().any():
        chart(right, charts.category_figure(rows["body_site"], "Body site"), key=KEY + "site")
        shown = True
    if not shown:
        st.info("This dataset records no age, sex or body site.")


def show_gallery(index: pd.DataFrame) -> None:
    """Thumbnails filtered by class and skin type, a page at a time, each with its metadata."""
    images = index[index["image_path"].notna()]
    if images.empty:
        st.info("No image of this dataset is on disk.")
        return
    names = images.drop_duplicates("label").set_index("label")["display_name"].sort_values()
    left, right = st.columns(2)
    chosen = left.multiselect(
        "Classes", names.index.tolist(), format_func=lambda v: names.get(v, v), key=KEY + "gallery_classes"
    )
    types = [t for t in FITZPATRICK_NAMES if t in set(explore.skin_type_labels(images["fitzpatrick"]))]
    skin = right.multiselect(
        "Skin types", types, format_func=lambda v: FITZPATRICK_NAMES[v], key=KEY + "gallery_skin"
    )
    selected = explore.filter_index(images, chosen, skin)
    pages = max(1, -(-len(selected) // GALLERY_PAGE_SIZE))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key=KEY + "gallery_page")
    st.caption(f"{len(selected)} images match.")
    start = (int(page) - 1) * GALLERY_PAGE_SIZE
    shown = selected.iloc[start : start + GALLERY_PAGE_SIZE]
    columns = st.columns(GALLERY_COLUMNS)
    for k, (_, row) in enumerate(shown.iterrows()):
        with columns[k % GALLERY_COLUMNS]:
            try:
                st.image(cached_thumbnail(row["image_path"]), caption=explore.caption_for(row))
            except DermLensError as error:
                st.warning(str(error))


def show_image_statistics(index: pd.DataFrame) -> None:
    """Pixel sizes and brightness on a bounded, class-stratified sample."""
    sample = explore.sample_images(index, MAX_STATS_IMAGES)
    if sample.empty:
        st.info("No image of this dataset is on disk.")
        return
    st.caption(f"Measured on {len(sample)} images (a class-stratified sample of at most {MAX_STATS_IMAGES}).")
    if not st.toggle("Measure images", key=KEY + "stats_on"):
        return
    stats = cached_stats(tuple(sample["image_path"]))
    stats["skin type"] = explore.skin_type_labels(sample["fitzpatrick"]).to_numpy()
    stats["class"] = sample["display_name"].to_numpy()
    unreadable = int((~stats["readable"]).sum())
    if unreadable:
        st.warning(f"{unreadable} {'image' if unreadable == 1 else 'images'} could not be read.")
    left, right = st.columns(2)
    chart(left, charts.image_size_figure(stats), key=KEY + "sizes")
    by = "skin type" if sample["fitzpatrick"].notna().any() else "class"
    chart(right, charts.brightness_figure(stats, by=by), key=KEY + "brightness")
    if by == "skin type":
        st.caption("Brightness follows skin tone, but also lighting and camera: a model can learn either.")


def show_duplicates(index: pd.DataFrame) -> None:
    """Near-duplicate photos found by perceptual hashing."""
    sample = explore.sample_images(index, MAX_DUPLICATE_IMAGES)
    if sample.empty:
        st.info("No image of this dataset is on disk.")
        return
    max_distance = st.slider(
        "Largest hash distance counted as a near-duplicate (bits of 64)",
        0,
        16,
        DEFAULT_MAX_DISTANCE,
        2,
        key=KEY + "dup_distance",
    )
    note = "" if len(sample) == len(index.dropna(subset=["image_path"])) else " (a class-stratified sample)"
    st.caption(
        f"Compares {len(sample)} images{note}. Copies of one photo under different names inflate test "
        "accuracy when they land on both sides of a split; the training CLI keeps each group on one side."
    )
    sources = set(index["source"].dropna())
    dermoscopy = bool(sources) and all(getattr(DATASETS.get(s), "modality", "") == "dermoscopy" for s in sources)
    if dermoscopy:
        st.caption(f"Dermoscopy: only the central {DERMOSCOPY_CENTRE:.0%} of each photo is compared, so the "
                   "dermatoscope's dark ring, the same in every photo, does not make different lesions look alike.")
    if not st.toggle("Find near-duplicates", key=KEY + "dup_on"):
        return
    paths = tuple(sample["image_path"])
    try:
        hashes = cached_hashes(paths, DERMOSCOPY_CENTRE if dermoscopy else 1.0)
    except DermLensError as error:
        st.error(str(error))
        return
    pairs = duplicate_pairs(paths, max_distance, hashes=hashes)
    groups = pd.Series(group_ids_from_hashes(hashes, [Path(p).stem for p in paths], max_distance))
    sizes = groups.value_counts()
    labels = dict(zip(sample["image_path"], sample["label"], strict=True))
    cross = int((pairs["path_a"].map(labels) != pairs["path_b"].map(labels)).sum())
    cols = st.columns(3)
    cols[0].metric("Near-duplicate pairs", len(pairs))
    cols[1].metric("Images in a duplicate group", int(sizes[sizes > 1].sum()))
    cols[2].metric("Pairs filed under two labels", cross)
    if pairs.empty:
        st.success("No near-duplicates at this distance.")
        return
    chart(st, charts.duplicate_distance_figure(pairs["distance"], max_distance), key=KEY + "dup_hist")
    rows = sample.set_index("image_path")
    for _, pair in pairs.head(MAX_DUPLICATE_PAIRS_SHOWN).iterrows():
        left, right = st.columns(2)
        for column, path in ((left, pair["path_a"]), (right, pair["path_b"])):
            row = rows.loc[path]
            column.image(
                cached_thumbnail(path, 160),
                caption=explore.caption_for(pd.Series({**row, "image_path": path}), with_file=True),
            )
        st.caption(f"distance {pair['distance']}")


def show_embedding_map(index: pd.DataFrame, dataset: str) -> None:
    """A 2-D map of a shipped model's features on a bounded sample, coloured by class or skin type."""
    models = explore.installed_models()
    if not models:
        st.info(
            "The embedding map needs an installed model (its backbone features place similar images "
            "close together). None is installed yet."
        )
        developer_note(f"Models are read from `{config.weights_dir()}` (one folder per model, with `card.json`).")
        return
    ids, skipped = explore.embedding_choices(models)
    names = {str(card.id): str(getattr(card, "name", card.id)) for card in models}
    names[explore.IMAGENET_EMBEDDER] = "General image features (ImageNet, fast)"
    if skipped:
        st.caption("Ensembles are not offered here: running several networks per image would take minutes for "
                   "a few hundred images on a small server.")
    c1, c2, c3, c4 = st.columns(4)
    model_id = c1.selectbox("Model", ids, format_func=lambda v: names[v], key=KEY + "emb_model")
    n = c2.slider("Images", 30, 1000, 300, 10, key=KEY + "emb_n")
    method = c3.radio(
        "Projection", list(explore.PROJECTIONS), format_func=explore.PROJECTIONS.get, key=KEY + "emb_method"
    )
    color = c4.radio("Colour by", ["class", "skin type", "risk group"], key=KEY + "emb_color")
    sample = explore.sample_images(index, n)
    if sample.empty:
        st.info("No image of this dataset is on disk.")
        return
    state_key = KEY + "emb_points"
    wanted = (dataset, model_id, n, method)
    if st.button("Compute embedding map", key=KEY + "emb_go"):
        paths = tuple(sample["image_path"])
        bar = st.progress(0.0, text="Embedding images…")
        chunks = []
        try:
            for start in range(0, len(paths), 16):
                chunks.append(cached_embed_batch(model_id, paths[start : start + 16]))
                bar.progress(
                    min(1.0, (start + 16) / len(paths)), text=f"Embedded {min(start + 16, len(paths))}"
                )
        except (DermLensError, ImportError) as error:
            bar.empty()
            st.error(f"Cannot embed with {names[model_id]}: {error}")
            return
        bar.empty()
        coords = cached_projection(np.concatenate(chunks), method)
        st.session_state[state_key] = (wanted, sample.index.to_numpy(), coords)
    stored = st.session_state.get(state_key)
    if stored is None or stored[0] != wanted:
        st.caption("Press the button to embed the sample (computed once, then cached).")
        return
    _, rows, coords = stored
    points = charts.embedding_points(index.loc[rows], coords)
    event = chart(st, charts.embedding_figure(points, color), key=KEY + "emb_chart", on_select="rerun",
                  selection_mode="points")
    st.caption("Click a point to see its image.")
    selected = getattr(getattr(event, "selection", None), "points", None) or []
    for point in selected[:4]:
        row_id = (point.get("customdata") or [None])[0]
        if row_id in index.index:
            row = index.loc[row_id]
            st.image(cached_thumbnail(row["image_path"], 256), caption=explore.caption_for(row), width=256)


