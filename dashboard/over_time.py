"""View 2 — relevance per frame: positive and negative relevance over time, click to seek."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from xai_core import render
from xai_core.results import Explanation

from .display import maps_of, units
from .state import widget_key

PLOT_KEY = "over_time_plot"

_COLOURS = {"full": "#222222", "spatial": "#2ca02c", "temporal": "#9467bd"}
_NAMES = {"full": "full", "spatial": "spatial (appearance)", "temporal": "temporal (motion)"}


def figure(expl: Explanation, method: str, t: int) -> go.Figure:
    """Sum of positive (solid, above 0) and negative (dotted, below 0) relevance per frame."""
    maps = maps_of(expl, method)
    x = np.arange(expl.frames.shape[0])
    fig = go.Figure()
    for kind in ("full", "spatial", "temporal"):
        pos, neg = render.relevance_over_time(maps[kind])
        for values, sign, dash in ((pos, "+", "solid"), (neg, "−", "dot")):
            fig.add_trace(go.Scatter(
                x=x, y=values, mode="lines+markers", name=f"{_NAMES[kind]} {sign}",
                legendgroup=kind, line={"color": _COLOURS[kind], "dash": dash, "width": 2},
                marker={"size": 7},
                hovertemplate=f"frame %{{x}}<br>{_NAMES[kind]} {sign}: %{{y:.3g}}<extra></extra>"))
    fig.add_hline(y=0, line={"color": "#999", "width": 1})
    fig.add_vline(x=t, line={"color": "#d62728", "width": 2, "dash": "dash"},
                  annotation_text=f"frame {t}", annotation_position="top")
    fig.update_layout(
        height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, clickmode="event+select",
        xaxis={"title": "frame", "dtick": 1 if len(x) <= 32 else None},
        yaxis={"title": f"sum of relevance ({units(expl, method)})", "exponentformat": "e",
               "tickformat": ".2~g"},
        legend={"orientation": "h", "y": -0.3}, dragmode=False, hovermode="closest")
    return fig


def _seek() -> None:
    """Move the scrubber to the clicked frame (runs before the rerun)."""
    state = st.session_state.get(PLOT_KEY)
    points = (state or {}).get("selection", {}).get("points", [])
    if points:
        st.session_state[widget_key("frame")] = int(round(points[0]["x"]))


def render_view(expl: Explanation, method: str, t: int) -> None:
    st.plotly_chart(figure(expl, method, t), key=PLOT_KEY, on_select=_seek,
                    selection_mode="points", width="stretch", config={"displaylogo": False})
    st.caption("Total positive (solid) and negative (dotted) relevance in each frame of the "
               f"clip for **{method}**. Where the purple (motion) curve is high, the decision "
               "rests on movement in those frames. Click a point to show that frame.")
