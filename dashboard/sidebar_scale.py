"""Sidebar, Display: how the colour scale is shared and what gets full colour.

Two display choices beside the sidebar's colour-scale mode (per frame / per clip /
shared across methods), read by :func:`dashboard.display.scale_options`:

* ``s_scale_scope`` — one scale for the full, spatial and temporal panels of a method
  (default: the panels compare by eye; evidence 60× weaker looks 60× weaker), or each
  panel its own (shows the pattern of a weak map, but not its strength);
* ``s_scale_statistic`` — full colour at a robust high percentile of the non-zero
  ``|relevance|`` (default; a few extreme voxels otherwise leave a gradient map almost
  invisible) or at the largest value.

Display only: relevance keeps its sign and units in ``xai_core``. They are the settings
``scale_scope`` and ``scale_statistic`` (a settings file and the link carry them).
"""

from __future__ import annotations

import streamlit as st

from .settings import (
    DEFAULT_SCOPE,
    DEFAULT_STATISTIC,
    SCALE_SCOPES,
    STATISTIC_LABELS,
    widget_key,
)

SCOPE, STATISTIC = widget_key("scale_scope"), widget_key("scale_statistic")


def scale_inputs() -> None:
    for key, default, choices in ((SCOPE, DEFAULT_SCOPE, SCALE_SCOPES),
                                  (STATISTIC, DEFAULT_STATISTIC, STATISTIC_LABELS)):
        if st.session_state.get(key) not in choices:
            st.session_state[key] = default
    st.radio("Panels of a method", list(SCALE_SCOPES), key=SCOPE, format_func=SCALE_SCOPES.get,
             help="Same scale: full, spatial and temporal share one colour scale, so a weak "
                  "spatial map looks weak beside a strong full one. Own scale: each panel is "
                  "stretched to full colour (shows the pattern of a weak map, not its "
                  "strength). With “shared across methods” every panel shares one scale.")
    st.selectbox("Full colour at", list(STATISTIC_LABELS), key=STATISTIC,
                 format_func=STATISTIC_LABELS.get,
                 help="The |relevance| drawn at full colour. A high percentile of the non-zero "
                      "values is robust to a few extreme voxels (gradient maps otherwise look "
                      "empty); larger values are drawn at full colour. The colour bars give "
                      "the value.")
