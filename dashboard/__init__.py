"""The Streamlit dashboard: sidebar inputs, one module per view, export.

It computes nothing itself: explanations come from :func:`xai_core.explain` (through its
cache), pictures from :mod:`xai_core.render`. Run it with ``make run`` or
``streamlit run streamlit_app.py``.
"""
