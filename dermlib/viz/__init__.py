"""Plotly figure builders shared by the pages (no Streamlit here)."""
