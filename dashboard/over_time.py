"""View 2 — relevance per frame: positive and negative relevance over time, click to seek."""

from __future__ import annotations

from functools import partial

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from xai_core import render
from xai_core.results import Explanation

from .display import NOT_SPLIT, maps_of, token, units
from .player import SYNCED
from .settings import widget_key

PLOT_KEY = "over_time_plot"
#: Session key: the frame of the point last clicked in each plot (by its key).
CLICKED = "_plot_clicked"

_COLOURS = {"full": "#222222", "spatial": "#2ca02c", "temporal": "#9467bd"}
_NAMES = {"full": "full", "spatial": "spatial (appearance)", "temporal": "temporal (motion)"}
_MARKER = "#d62728"


def figure(expl: Explanation, method: str, t: int) -> go.Figure:
    """Sum of positive (solid, above 0) and negative (dotted, below 0) relevance per frame.

    Built without plotly's template and ``add_vline`` helpers (their validation costs
    ~0.2 s); the current-frame marker is a shape that :func:`mark_frame` moves.
    """
    maps = maps_of(expl, method)
    x = np.arange(expl.frames.shape[0])
    traces = []
    for kind in [k for k in ("full", "spatial", "temporal") if k in maps]:
        pos, neg = render.relevance_over_time(maps[kind])
        for values, sign, dash in ((pos, "+", "solid"), (neg, "−", "dot")):
            traces.append(go.Scatter(
                x=x, y=values, mode="lines+markers", name=f"{_NAMES[kind]} {sign}",
                legendgroup=kind, line={"color": _COLOURS[kind], "dash": dash, "width": 2},
                marker={"size": 7},
                hovertemplate=f"frame %{{x}}<br>{_NAMES[kind]} {sign}: %{{y:.3g}}<extra></extra>"))
    layout = {
        "template": "none", "height": 300, "margin": {"l": 60, "r": 10, "t": 30, "b": 40},
        "clickmode": "event+select", "dragmode": False, "hovermode": "closest",
        "xaxis": {"title": {"text": "frame"}, "dtick": 1 if len(x) <= 32 else None},
        "yaxis": {"title": {"text": f"sum of relevance ({units(expl, method)})"},
                  "exponentformat": "e", "tickformat": ".2~g", "zeroline": True},
        "legend": {"orientation": "h", "y": -0.3},
        "shapes": [{"type": "line", "xref": "x", "yref": "paper", "x0": t, "x1": t, "y0": 0,
                    "y1": 1, "line": {"color": _MARKER, "width": 2, "dash": "dash"}}],
        "annotations": [{"x": t, "y": 1, "xref": "x", "yref": "paper", "text": f"frame {t}",
                         "showarrow": False, "yanchor": "bottom",
                         "font": {"color": _MARKER}}],
    }
    return go.Figure(data=traces, layout=layout)


def mark_frame(fig: go.Figure, t: int) -> go.Figure:
    """Move the current-frame marker (cheap: two properties, no rebuild)."""
    fig.layout.shapes[0].x0 = fig.layout.shapes[0].x1 = t
    fig.layout.annotations[0].x = t
    fig.layout.annotations[0].text = f"frame {t}"
    return fig


def _seek(plot_key: str = PLOT_KEY) -> None:
    """Move the server's frame to the clicked one (runs before the rerun); the frame
    player follows it (:func:`dashboard.player.seek_request`).

    Plotly takes a click on the point it holds selected as "deselect" (no points): that
    is the same point clicked again, after the player was scrubbed away from it.
    """
    state = st.session_state.get(plot_key)
    points = (state or {}).get("selection", {}).get("points", [])
    clicked = st.session_state.setdefault(CLICKED, {})
    if points:
        clicked[plot_key] = int(round(points[0]["x"]))
    elif plot_key not in clicked:
        return
    st.session_state[widget_key("frame")] = clicked[plot_key]
    # the player may have been scrubbed away from the frame it last synced: a click on
    # that frame's point must still move it there (a seek, even to the same frame)
    st.session_state.pop(SYNCED, None)


def render_view(expl: Explanation, method: str, t: int, plot_key: str = PLOT_KEY) -> None:
    memo = st.session_state.setdefault("_plot_memo", {})
    key = (token(expl), method)
    if key not in memo:
        while len(memo) >= 4:  # the figures of the explanations on the page (two models)
            memo.pop(next(iter(memo)))
        memo[key] = figure(expl, method, t)
    st.plotly_chart(mark_frame(memo[key], t), key=plot_key, on_select=partial(_seek, plot_key),
                    selection_mode="points", width="stretch", config={"displaylogo": False})
    if expl[method].decomposed:
        st.caption("Total positive (solid) and negative (dotted) relevance in each frame of the "
                   f"clip for **{method}**. Where the purple (motion) curve is high, the decision "
                   "rests on movement in those frames. Click a point to show that frame.")
    else:
        st.caption(f"Total positive (solid) and negative (dotted) full relevance in each frame "
                   f"for **{method}**. Click a point to show that frame. Spatial and temporal "
                   f"curves: {NOT_SPLIT[0].lower()}{NOT_SPLIT[1:]}")
