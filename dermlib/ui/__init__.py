"""Streamlit helpers shared by the pages: cached resources, common notices."""
