"""View 3 — staggered saliency tubes: every frame at once, stacked in depth."""

from __future__ import annotations

import numpy as np
import streamlit as st

from xai_core import render
from xai_core.results import Explanation

from .display import (
    NORMALISATION_LABELS,
    NOT_SPLIT,
    Scales,
    desaturation,
    has_map,
    maps_of,
    scale_options,
    token,
)
from .settings import Settings


def tube_image(expl: Explanation, method: str, kind: str, settings: Settings,
               scales: Scales) -> np.ndarray:
    t = expl.frames.shape[0]
    return render.staggered_tubes(expl.frames, maps_of(expl, method)[kind], cmap=settings.cmap,
                                  scale=scales[(method, kind)], alpha=max(settings.alpha, 0.5),
                                  every=2 if t > 8 else 1, zoom=1.5, gamma=settings.gamma,
                                  desaturate=desaturation(settings))


def render_view(expl: Explanation, settings: Settings, scales: Scales) -> None:
    method = settings.shown_method or next(iter(expl.methods))
    memo = st.session_state.setdefault("_tube_memo", {})
    for kind, title in (("full", "Full relevance"), ("temporal", "Temporal (motion) relevance")):
        if not has_map(expl, method, kind):
            st.markdown(f"**{title}** — {method}")
            st.caption(NOT_SPLIT)
            continue
        key = (token(expl), method, kind, settings.cmap, settings.normalisation, settings.alpha,
               settings.gamma, settings.grey, scale_options(settings))
        if key not in memo:
            if len(memo) > 16:
                memo.clear()
            # kept encoded: re-running the page then costs no image encoding
            memo[key] = render.to_jpeg(tube_image(expl, method, kind, settings, scales))
        st.markdown(f"**{title}** — {method}")
        st.image(memo[key], width="stretch")
    st.caption("Frames stacked in depth, first at the back-left, last at the front-right "
               "(every other frame for long clips), with relevance overlaid (red = for "
               f"“{expl.target_name}”, blue = against; scaled "
               f"{NORMALISATION_LABELS[settings.normalisation]}). The dark line joins the "
               "centre of the positive relevance of each frame: the path of the evidence "
               "through time. After Stergiou et al., *Saliency Tubes* (2019).")
