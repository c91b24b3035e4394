"""Streamlit-specific helpers shared by the pages (the rest of dermlib never imports Streamlit)."""
