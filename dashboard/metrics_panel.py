"""View 6 — metrics: how good are the explanations of this clip? Computed on demand.

Scores come from :func:`xai_core.evaluation.evaluate_clip` (through the result cache), run
by the shared job runner (:func:`dashboard.compute.run_job`) so that a slow metric shows
progress and is never started twice. The job's key is the key the scores are cached under.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from xai_core.cache import DEFAULT_CACHE, resolve_cache
from xai_core.evaluation import ClipScores, evaluate_clip, resolve_metrics
from xai_core.hashing import array_hash
from xai_core.metrics import list_metrics
from xai_core.request import ExplainRequest, metrics_key
from xai_core.results import Explanation

from .compute import job_runner, run_job

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


def scores_key(expl: Explanation, names: list[str], masks: dict[str, np.ndarray] | None,
               seed: int = 0) -> str:
    """The key ``evaluate_clip`` stores these scores under
    (:func:`xai_core.request.metrics_key`), used as the job's key too."""
    metric_keys = [m.key() for m in resolve_metrics(names)]
    mask_hashes = {k: array_hash(v) for k, v in sorted((masks or {}).items())}
    return metrics_key(resolve_cache(DEFAULT_CACHE), expl, metric_keys, seed, mask_hashes)


def render_view(expl: Explanation, request: ExplainRequest,
                masks: dict[str, np.ndarray] | None) -> None:
    metrics = {cls.name: cls for cls in list_metrics()}
    names = st.multiselect(
        "Metrics to compute", list(metrics),
        default=[n for n in DEFAULT_METRICS if n in metrics], key="metric_names",
        help="\n".join(f"- **{n}** ({_DIRECTION[c.higher_is_better]}): {c.description}"
                       for n, c in metrics.items())
        + "\n\nInsertion/deletion, the saliency metric and model randomisation run the model "
          "many times: expect tens of seconds or more.")
    key = scores_key(expl, names, masks)
    runner = job_runner()
    job = runner.get(key)
    clicked = st.button("Compute metrics", key="compute_metrics", disabled=not names,
                        type="primary")
    if clicked or (job is not None and not job.finished):
        job = run_job(key, lambda progress: evaluate_clip(
            request.model, request.x, expl, names, masks, progress),
            label="Metrics", cancel="cancel_metrics")
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
    table = scores.to_wide()  # method × metric, from xai_core
    if table.empty:
        st.info("These metrics gave no scores for this clip.")
    else:
        directions = table.attrs.get("higher_is_better", {})
        config = {col: st.column_config.NumberColumn(
            col, format="%.3f",
            help=f"{_DIRECTION[directions.get(col)]}. "
                 + getattr(metrics.get(col.split(" · ")[0]), "description", ""))
            for col in table.columns if col not in ("method", "map")}
        st.dataframe(table, hide_index=True, width="stretch", column_config=config)
        st.caption("One row per method and map (full relevance, or its selective part), one "
                   "column per metric; hover a column's name for what it measures and whether "
                   "higher is better.")
    if scores.skipped:
        st.caption("Skipped: " + "; ".join(f"{m} ({why})" for m, why in scores.skipped.items()))
    fig = curves_figure(scores)
    if fig is not None:
        st.plotly_chart(fig, key="metric_curves", width="stretch", config={"displaylogo": False})
    st.caption("Rows for “random” score a random map on the same clip: an explanation should "
               "beat it. Motion precision: share of relevant pixels that actually move (optical "
               "flow). Ground truth: share of positive relevance on the moving actor and on the "
               "static context object.")
