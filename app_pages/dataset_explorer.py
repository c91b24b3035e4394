"""Dataset Explorer: what the training data looks like, above all how it covers skin tones.

The page picks the data folder and the dataset and lays out the tabs; each tab is drawn by
:mod:`dermlib.ui.explorer`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from dermlib import config
from dermlib.data import DATASETS
from dermlib.errors import DermLensError
from dermlib.ui import explorer as sections
from dermlib.ui.explorer import KEY, cached_discover, cached_index

SKIN_TYPE_DATASETS = ("fitzpatrick17k", "pad-ufes-20")
TABS = {
    "Classes & skin types": sections.show_overview,
    "Age, sex, body site": sections.show_demographics,
    "Gallery": sections.show_gallery,
    "Image statistics": sections.show_image_statistics,
    "Near-duplicates": sections.show_duplicates,
}


def choose_root() -> Path:
    """Pick the data folder: the configured one, or the shared development data when it exists."""
    roots = {"The app's data folder": config.data_root()}
    shared = config.shared_data_root()
    if shared is not None and shared.resolve() != config.data_root().resolve():
        roots["Shared development data"] = shared
    labels = list(roots)
    default = 0
    if len(labels) > 1 and not cached_discover(str(roots[labels[0]])):
        default = 1
    choice = st.radio("Data folder", labels, index=default, key=KEY + "root") if len(labels) > 1 else labels[0]
    root = roots[choice]
    if os.environ.get(config.DATA_ROOT_ENV) and root != roots[labels[0]]:  # the configured folder is set aside
        sections.developer_note(
            f"`{config.DATA_ROOT_ENV}` names `{roots[labels[0]]}`, which holds no dataset yet, so the shared "
            f"development data in `{root}` is shown; choose “{labels[0]}” above to see the configured folder."
        )
        return root
    sections.developer_note(
        f"Reading datasets from `{root}`. To use another folder set the environment variable "
        f"`{config.DATA_ROOT_ENV}` (for example `{config.DATA_ROOT_ENV}=/data/derm streamlit run "
        "streamlit_app.py`). Each sub-folder holding a known layout is offered as a dataset."
    )
    return root


def show_counts(index: pd.DataFrame) -> None:
    """Records, images, classes and images with a skin type, as four tiles."""
    on_disk = index["image_path"].notna()
    cols = st.columns(4)
    cols[0].metric("Records", f"{len(index):,}")
    cols[1].metric("Images on disk", f"{int(on_disk.sum()):,}")
    cols[2].metric("Classes", index.loc[on_disk, "label"].nunique() or index["label"].nunique())
    cols[3].metric("Images with a skin type", f"{int((on_disk & index['fitzpatrick'].notna()).sum()):,}")


def main() -> None:
    """Render the Dataset Explorer."""
    st.title("Dataset Explorer")
    st.write(
        "Who is in the data a model learns from? This page shows the classes, the Fitzpatrick skin types "
        "overall and per class, the patients' age, sex and body sites, the images themselves, and copies of "
        "the same photo that would leak between training and test."
    )
    root = choose_root()
    datasets = cached_discover(str(root))
    if not datasets:
        st.info("No dataset found in the data folder.")
        sections.show_how_to_get_data(root)
        sections.show_model_summaries()
        return
    names = list(datasets)
    # Open on a dataset that records skin types when there is one: that balance is the point of the page.
    with_skin_types = [k for k in names if datasets[k][1] in SKIN_TYPE_DATASETS]
    dataset = st.selectbox(
        "Dataset",
        names,
        index=names.index(with_skin_types[0]) if with_skin_types else 0,
        format_func=lambda k: f"{k} ({DATASETS[datasets[k][1]].title})",
        key=KEY + "dataset",
    )
    folder, adapter_name = datasets[dataset]
    adapter = DATASETS[adapter_name]
    try:
        index = cached_index(folder, adapter_name)
    except DermLensError as error:
        st.error(str(error))
        return
    st.caption(
        " · ".join(p for p in (adapter.description, adapter.licence and f"Licence: {adapter.licence}") if p)
        + (f"  \nCite: {adapter.citation}" if adapter.citation else "")
    )
    show_counts(index)
    tabs = st.tabs([*TABS, "Embedding map"])
    for tab, show in zip(tabs, TABS.values(), strict=False):
        with tab:
            show(index)
    with tabs[0]:
        sections.show_sub_labels(index, folder, adapter_name)  # DermNet NZ: the topics in each category
    with tabs[-1]:
        sections.show_embedding_map(index, dataset)


main()
