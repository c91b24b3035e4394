"""DermLens: navigation only. Each page lives in pages/ and calls dermlib for everything it computes."""

import streamlit as st

PAGES = [
    st.Page("pages/diagnose.py", title="Diagnose", icon="🔬", url_path="diagnose", default=True),
]

st.set_page_config(page_title="DermLens", page_icon="🔬", layout="wide")
st.navigation(PAGES).run()
