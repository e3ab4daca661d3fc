"""View 1 — side by side: the frame, its full, spatial and temporal relevance, one scrubber."""

from __future__ import annotations

import streamlit as st

from xai_core import render
from xai_core.results import Explanation

from .display import (
    NORMALISATION_LABELS,
    NOT_SPLIT,
    TITLES,
    Scales,
    colour_bar,
    frame_image,
    has_map,
    panel,
    shown_kind,
    units,
)
from .state import Settings


def render_view(expl: Explanation, settings: Settings, scales: Scales, t: int) -> None:
    method = settings.shown_method or next(iter(expl.methods))
    kinds = ("full", "spatial", shown_kind(settings))
    cols = st.columns(4)
    source = expl.clip.indices[t] if t < len(expl.clip.indices) else t
    # JPEG: encoding these photos as PNG would dominate the time of a scrubber step
    cols[0].image(frame_image(expl, t), caption=f"Frame {t} of the clip (video frame {source})",
                  width="stretch", output_format="JPEG")
    for col, kind in zip(cols[1:], kinds, strict=True):
        col.image(panel(expl, method, kind, t, settings, scales), caption=TITLES[kind],
                  width="stretch", output_format="JPEG")
        if has_map(expl, method, kind):
            col.image(colour_bar(expl, method, kind, t, settings, scales), width="stretch")
        else:
            col.caption(NOT_SPLIT)
    scale_text = ", ".join(
        f"{TITLES[k].split(' (')[0].lower()} ±{render.format_value(float(scales[(method, k)][t]))}"
        for k in kinds if has_map(expl, method, k))
    split = ("Full = spatial + temporal: spatial is what one frame's appearance alone explains "
             "(the frame repeated, no motion); temporal is the rest, the part due to motion."
             if expl[method].decomposed else
             "Full relevance only: the spatial / temporal split was not computed for this method.")
    st.caption(
        f"**Red = evidence for “{expl.target_name}”, blue = evidence against**, no colour = no "
        f"relevance. Method: **{method}**. {split} Colours are scaled "
        f"{NORMALISATION_LABELS[settings.normalisation]} ({scale_text}; {units(expl, method)}).")
