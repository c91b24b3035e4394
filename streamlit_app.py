"""DermLens: navigation only. Each page lives in app_pages/ and calls dermlib for everything it computes."""

from pathlib import Path

import streamlit as st

from dermlib.runtime.memory import keep_triton_out
from dermlib.ui.privacy import keep_uploads_in_memory
from dermlib.ui.warmup import freeze_after_run

# Before any upload arrives: the web server must not spool photos to temporary files (docs/RELIABILITY.md).
# grad-cam, matplotlib and the ONNX export warm up once Diagnose is on screen (dermlib.ui.warmup), not here.
keep_uploads_in_memory()
# Before torch is first imported: torch would load the GPU kernel compiler Triton, 96 MB the app never uses.
keep_triton_out()

# Material icons ship inside Streamlit as a font, so they render on any browser; emoji need an emoji font.
_PAGES = [
    ("app_pages/diagnose.py", "Diagnose", ":material/biotech:", "diagnose_page"),
    ("app_pages/disease_library.py", "Disease Library", ":material/menu_book:", "disease_library"),
    ("app_pages/dataset_explorer.py", "Dataset Explorer", ":material/dataset:", "dataset_explorer"),
    ("app_pages/model.py", "Model", ":material/monitoring:", "model"),
]

st.set_page_config(page_title="DermLens", page_icon="🔬", layout="wide")
_ROOT = Path(__file__).parent
pages = [
    st.Page(path, title=title, icon=icon, url_path=url, default=(url == "diagnose_page"))
    for path, title, icon, url in _PAGES
    if (_ROOT / path).is_file()
]


def _to_diagnose() -> None:
    st.switch_page(pages[0])


# Streamlit serves the default page only at "/": a bookmarked /diagnose met "Page not found". It now leads there.
pages.append(st.Page(_to_diagnose, title="Diagnose", url_path="diagnose", visibility="hidden"))
# In the header on a wide screen, where a sidebar only for four page names took a quarter of the width; on a
# phone Streamlit folds it into the sidebar as before.
st.navigation(pages, position="top").run()
# After a run that imported modules: Streamlit collects garbage fully after every run, and without this each
# collection walks every object torch, timm and plotly left behind (0.4 s, twice per upload; RELIABILITY.md).
freeze_after_run()
