"""DermLens: navigation only. Each page lives in app_pages/ and calls dermlib for everything it computes."""

from pathlib import Path

import streamlit as st

from dermlib.ui.privacy import keep_uploads_in_memory
from dermlib.ui.warmup import start_background_imports

# Before any upload arrives: the web server must not spool photos to temporary files (docs/RELIABILITY.md).
keep_uploads_in_memory()
# grad-cam and matplotlib load in the background: the first page does not wait for them (dermlib.ui.warmup).
start_background_imports()

_PAGES = [
    ("app_pages/diagnose.py", "Diagnose", "🔬", "diagnose"),
    ("app_pages/disease_library.py", "Disease Library", "📚", "disease_library"),
    ("app_pages/dataset_explorer.py", "Dataset Explorer", "🗂️", "dataset_explorer"),
    ("app_pages/model.py", "Model", "📈", "model"),
]

st.set_page_config(page_title="DermLens", page_icon="🔬", layout="wide")
_ROOT = Path(__file__).parent
pages = [
    st.Page(path, title=title, icon=icon, url_path=url, default=(url == "diagnose"))
    for path, title, icon, url in _PAGES
    if (_ROOT / path).is_file()
]
st.navigation(pages).run()
