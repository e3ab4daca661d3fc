"""View 6 — metrics: how good are the explanations of this clip? Computed on demand.

Scores come from :func:`xai_core.evaluate.evaluate_clip` (through the result cache), run by
the shared job runner so that a slow metric shows progress and is never started twice.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from xai_core.evaluate import ClipScores, evaluate_clip
from xai_core.metrics import list_metrics
from xai_core.models.registry import LoadedModel
from xai_core.results import Explanation
from xai_core.video.clip import Clip

from .state import job_runner

#: Metrics ticked by default: cheap, no extra model passes.
DEFAULT_METRICS = ("motion_precision", "selectivity", "agreement", "motion_share",
                   "ground_truth", "pointing_game")

_DIRECTION = {True: "higher is better", False: "lower is better", None: "descriptive"}


def curves_figure(scores: ClipScores) -> go.Figure | None:
    """Insertion/deletion curves (target probability vs fraction revealed/removed)."""
    if not scores.curves:
        return None
    fig = go.Figure()
    for name, values in sorted(scores.curves.items()):
        x = np.linspace(0, 1, len(values))
        fig.add_trace(go.Scatter(x=x, y=values, mode="lines", name=name.replace("|", " · ")))
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis={"title": "fraction of the clip revealed / removed",
                             "tickformat": ".0%"},
                      yaxis={"title": "probability of the class", "range": [0, 1]})
    return fig


def render_view(expl: Explanation, exp_key: str, model: LoadedModel, clip: Clip,
                masks: dict[str, np.ndarray] | None) -> None:
    metrics = {cls.name: cls for cls in list_metrics()}
    names = st.multiselect(
        "Metrics to compute", list(metrics),
        default=[n for n in DEFAULT_METRICS if n in metrics], key="metric_names",
        help="\n".join(f"- **{n}** ({_DIRECTION[c.higher_is_better]}): {c.description}"
                       for n, c in metrics.items())
        + "\n\nInsertion/deletion, the saliency metric and model randomisation run the model "
          "many times: expect tens of seconds or more.")
    key = hashlib.sha256(json.dumps([exp_key, sorted(names), masks is not None]).encode()
                         ).hexdigest()
    runner = job_runner()
    job = runner.get(key)
    clicked = st.button("Compute metrics", key="compute_metrics", disabled=not names,
                        type="primary")
    if clicked or (job is not None and not job.finished):
        job = runner.submit(
            key, lambda progress: evaluate_clip(model, clip, expl, names, masks, progress),
            label="Metrics", stages=list(names))
        slot = st.empty()
        bar = slot.progress(job.fraction, text=job.describe())
        while not job.wait(0.2):
            bar.progress(job.fraction, text=job.describe())
        slot.empty()
    if job is None or not job.finished:
        st.caption("Metrics are computed when you ask: pick them and press the button. "
                   + ("Ground-truth masks of this sample clip are used." if masks else
                      "This clip has no ground-truth masks: localisation metrics are skipped."))
        return
    if job.status == "failed":
        runner.forget(key)
        raise job.error
    if job.status == "cancelled":
        st.info("The metrics computation was cancelled.")
        return
    scores: ClipScores = job.result
    table = scores.to_frame()
    if table.empty:
        st.info("These metrics gave no scores for this clip.")
    else:
        table["higher_is_better"] = table["higher_is_better"].map(_DIRECTION)
        table = table.rename(columns={"variant": "map", "higher_is_better": "direction"})
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={"value": st.column_config.NumberColumn(format="%.3f")})
    if scores.skipped:
        st.caption("Skipped: " + "; ".join(f"{m} ({why})" for m, why in scores.skipped.items()))
    fig = curves_figure(scores)
    if fig is not None:
        st.plotly_chart(fig, key="metric_curves", width="stretch", config={"displaylogo": False})
    st.caption("Rows for “random” score a random map on the same clip: an explanation should "
               "beat it. Motion precision: share of relevant pixels that actually move (optical "
               "flow). Ground truth: share of positive relevance on the moving actor and on the "
               "static context object.")
