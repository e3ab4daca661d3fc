"""View 4 — predictions: top-5, what each frame alone predicts, and the motion share."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from xai_core.results import Explanation

from .display import NOT_SPLIT, percent, probability, token


def top5_figure(expl: Explanation) -> go.Figure:
    top = expl.top5[::-1]
    colours = ["#d62728" if i == expl.target else "#7f7f7f" for i, _, _ in top]
    fig = go.Figure(go.Bar(x=[p for _, _, p in top], y=[n for _, n, _ in top], orientation="h",
                           marker_color=colours, text=[probability(p) for _, _, p in top],
                           textposition="auto", hovertemplate="%{y}: %{text}<extra></extra>"))
    fig.update_layout(template="none", height=230, margin={"l": 110, "r": 10, "t": 10, "b": 40},
                      xaxis={"range": [0, 1], "tickformat": ".0%", "title": "probability"})
    return fig


def freeze_frame_figure(expl: Explanation) -> go.Figure:
    """Probability of the most relevant classes on each freeze-frame clip (frames × classes)."""
    probs = expl.freeze_frame_probabilities
    classes = [i for i, _, _ in expl.top5]
    for i in expl.freeze_frame_top:  # classes the single frames predict, if not in the top 5
        if i not in classes and len(classes) < 10:
            classes.append(i)
    z = probs[:, classes].T
    # print the probability where it matters (≥ 10 %), leave the rest quiet
    text = np.where(z >= 0.1, np.char.mod("%.0f", 100 * z), "")
    t = probs.shape[0]
    fig = go.Figure(go.Heatmap(
        z=z, x=np.arange(t), y=[expl.class_names[i] for i in classes], text=text,
        texttemplate="%{text}", textfont={"size": 9}, colorscale="Blues", zmin=0, zmax=1,
        colorbar={"title": {"text": "p"}, "tickformat": ".0%"},
        customdata=np.vectorize(probability, otypes=[object])(z),
        hovertemplate="frame %{x}<br>%{y}: %{customdata}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=np.arange(t), y=[expl.class_names[i] for i in expl.freeze_frame_top],
        mode="markers", marker={"symbol": "circle-open", "color": "#d62728", "size": 16,
                                "line": {"width": 2}},
        name="top class of the frame alone", hoverinfo="skip"))
    fig.update_layout(template="none", height=90 + 28 * len(classes),
                      margin={"l": 110, "r": 10, "t": 10, "b": 40},
                      xaxis={"title": {"text": "frame (repeated, no motion) — numbers are %"},
                             "dtick": 1, "range": [-0.5, t - 0.5]},
                      showlegend=False)
    return fig


def _figures(expl: Explanation) -> tuple[go.Figure, go.Figure]:
    """Both figures, built once per explanation (building a plotly figure costs ~0.1 s)."""
    memo = st.session_state.setdefault("_prediction_memo", {})
    key = token(expl)
    if key not in memo:
        while len(memo) >= 4:  # the explanations on the page (two models)
            memo.pop(next(iter(memo)))
        memo[key] = (top5_figure(expl), freeze_frame_figure(expl))
    return memo[key]


def render_view(expl: Explanation, prefix: str = "") -> None:
    """Top-5, motion shares and freeze-frame predictions; ``prefix`` keys the widgets of a
    second model's copy of this view."""
    top5, freeze = _figures(expl)
    left, right = st.columns([2, 3])
    with left:
        st.markdown("**Top-5 classes of the clip**")
        st.plotly_chart(top5, key=f"{prefix}top5_plot", width="stretch",
                        config={"displaylogo": False})
        cols = st.columns(len(expl.methods))
        for col, (name, result) in zip(cols, expl.methods.items(), strict=True):
            selective = percent(result.motion_share.get("selective"))
            if not result.decomposed:
                col.metric(f"Motion share · {name}", "n/a",
                           help=f"{NOT_SPLIT} Selective estimate (share of relevance on voxels "
                                f"that change sharply in time): {selective}.")
                continue
            col.metric(f"Motion share · {name}", percent(result.motion_share.get("discriminative")),
                       help="How much of the decision is motion: the share of positive relevance "
                            "that is temporal (full − spatial). 0% = appearance alone explains "
                            "it; 100% = all evidence comes from movement. Selective estimate: "
                            f"{selective}.")
    with right:
        st.markdown("**What each frame alone predicts** (freeze-frame clips)")
        st.plotly_chart(freeze, key=f"{prefix}freeze_plot", width="stretch",
                        config={"displaylogo": False})
        agree = np.mean(np.array(expl.freeze_frame_top) == expl.predicted)
        st.caption("Each column is one frame repeated over the whole clip, so the model sees its "
                   "appearance but no motion; darker = more probable, the red circle marks the "
                   "class that frame alone gets. Single frames agree with the clip's prediction "
                   f"in {agree:.0%} of frames: the lower this is, the more the decision needs "
                   "motion.")
