"""View 5 — method comparison: methods × (full, spatial, temporal, selective) at one frame."""

from __future__ import annotations

import numpy as np
import streamlit as st

from xai_core import render
from xai_core.results import Explanation

from .display import KINDS, TITLES, Scales, panel, scale_sentence
from .settings import Settings

#: Cells are drawn smaller than the side-by-side panels: the grid is stretched to the
#: page width anyway, and encoding a picture twice the size costs twice the time.
CELL_ZOOM = 1.5


def grid_image(expl: Explanation, settings: Settings, scales: Scales, t: int) -> np.ndarray:
    rows = []
    for method in expl.methods:
        rows.append([render.titled(panel(expl, method, kind, t, settings, scales, CELL_ZOOM),
                                   f"±{render.format_value(float(scales[(method, kind)][t]))}"
                                   if (method, kind) in scales else "", size=11)
                     for kind in KINDS])
    return render.grid(rows, col_titles=[TITLES[k] for k in KINDS],
                       row_titles=list(expl.methods), gap=6)


def render_view(expl: Explanation, settings: Settings, scales: Scales, t: int) -> None:
    st.image(grid_image(expl, settings, scales, t), width="stretch", output_format="JPEG")
    st.caption(f"Frame {t}. {scale_sentence(settings)} The number above a cell is the "
               "relevance that gets full colour. Methods have different units: compare where "
               "they put relevance, not their values (choose “shared across methods” only for "
               "methods in the same units).")
