"""A second model on the same clip: its request and job, and its views beside the first's.

The request is the first model's, built by :func:`dashboard.compute.build_request` from the
same settings (methods, parameters, decomposition options) for the other model and its own
preprocessing of the clip; only the class may differ (the sidebar's choice: the class the
first model explains, when the second has it, or its own prediction). It is computed in
the background on the shared job runner like the first (:func:`dashboard.compute.obtain`,
its own session slot), so the first model's views never wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from xai_core.results import Explanation
from xai_core.video.clip import Clip

from . import over_time, predictions
from .compute import Shown, Slot, build_tolerant, obtain
from .display import percent, probability
from .resources import load_bundled, resolve_clip
from .settings import Settings
from .sidebar_compare import chosen

SLOT = Slot("_explanation_b", " (second model)", wait=False)


@dataclass
class Second:
    """The second model's state on this page."""

    name: str
    shown: Shown
    clip: Clip
    note: str | None = None

    @property
    def explanation(self) -> Explanation | None:
        return self.shown.explanation


def obtain_second(settings: Settings, clip_path: Path, first: Explanation) -> Second | None:
    """The second model's explanation (or its previous one while it computes), or None when
    no comparison is asked for."""
    choice = chosen()
    if choice is None:
        return None
    model = load_bundled(choice.model)
    clip = resolve_clip(clip_path, model, settings)
    target, note = None, None
    if choice.target == "same":
        names = list(model.class_names)
        if first.target_name in names:
            target = names.index(first.target_name)
        else:
            note = (f"{choice.model} has no class “{first.target_name}”: it explains its own "
                    "predicted class.")
    request, refused = build_tolerant(settings, model, clip, target=target)
    shown = obtain(request, SLOT)
    shown.errors.update(refused)
    return Second(choice.model, shown, clip, note)


def shares_table(explanations: list[Explanation]) -> pd.DataFrame:
    """Model × (prediction, explained class, motion share per method), numbers from the
    explanations (``motion_share`` is computed by xai_core)."""
    methods = list(dict.fromkeys(m for e in explanations for m in e.methods))
    rows = []
    for e in explanations:
        row = {"model": e.model,
               "predicts": f"{e.class_names[e.predicted]} "
                           f"({probability(e.probabilities[e.predicted])})",
               "explains": e.target_name}
        for m in methods:
            result = e.methods.get(m)
            share = None if result is None else result.motion_share.get("discriminative")
            row[f"motion share · {m}"] = "—" if result is None else percent(share)
        rows.append(row)
    return pd.DataFrame(rows)


def render_summary(first: Explanation, second: Second) -> None:
    """Both models' predictions and motion shares, one row per model."""
    expl = second.explanation
    if expl is None:
        return
    st.markdown(f"**Two models on this clip:** {first.model} and {second.name}")
    st.dataframe(shares_table([first, expl]), hide_index=True, width="stretch")
    st.caption("Motion share: how much of the evidence for the explained class comes from "
               "motion (the share of positive relevance that is temporal). Same clip, same "
               "methods and options: the models differ, nothing else."
               + (f" {second.note}" if second.note else ""))


def render_curves(first: Explanation, second: Second, method: str, t: int) -> None:
    """The per-frame relevance of both models, side by side (one marker frame)."""
    expl = second.explanation
    if expl is None:
        over_time.render_view(first, method, t)
        return
    left, right = st.columns(2)
    with left:
        st.markdown(f"**{first.model}** — {method}")
        over_time.render_view(first, method, t)
    with right:
        other = method if method in expl.methods else next(iter(expl.methods))
        st.markdown(f"**{second.name}** — {other}")
        over_time.render_view(expl, other, t, plot_key="over_time_plot_b")


def render_predictions(second: Second) -> None:
    """The second model's top-5, motion shares and freeze-frame predictions."""
    if second.explanation is None:
        return
    st.markdown(f"#### Second model: {second.name}")
    predictions.render_view(second.explanation, prefix="b_")
