"""The Streamlit dashboard: sidebar inputs, one module per view, export.

It computes nothing itself: the sidebar's :class:`~dashboard.settings.Settings` become one
:class:`~xai_core.request.ExplainRequest` (:mod:`dashboard.compute`), computed by
:func:`xai_core.engine.run` through its cache; pictures come from :mod:`xai_core.render`.
Run it with ``make run`` or ``streamlit run streamlit_app.py``.
"""
