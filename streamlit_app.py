"""DermLens: navigation only. Each page lives in pages/ and calls dermlib for everything it computes."""

from pathlib import Path

import streamlit as st

_PAGES = [
    ("pages/diagnose.py", "Diagnose", "🔬", "diagnose"),
    ("pages/disease_library.py", "Disease Library", "📚", "disease_library"),
    ("pages/dataset_explorer.py", "Dataset Explorer", "🗂️", "dataset_explorer"),
    ("pages/model.py", "Model", "📈", "model"),
]

st.set_page_config(page_title="DermLens", page_icon="🔬", layout="wide")
_ROOT = Path(__file__).parent
pages = [
    st.Page(path, title=title, icon=icon, url_path=url, default=(url == "diagnose"))
    for path, title, icon, url in _PAGES
    if (_ROOT / path).is_file()
]
st.navigation(pages).run()
