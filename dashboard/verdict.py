"""The verdict above the views: does the model need the motion, or does the scene decide?

The words and numbers come from :func:`xai_core.verdict.verdict`; this module only picks
the box they are shown in and finds the ground truth of a sample clip.
"""

from __future__ import annotations

import streamlit as st

from xai_core.results import Explanation
from xai_core.verdict import Verdict, verdict

from .samples import sample_clips
from .settings import Settings

#: The box of each verdict: motion is what these models should use; a scene that decides
#: is the bias the dashboard is there to reveal.
_BOXES = {"motion": st.success, "scene": st.warning, "mixed": st.info, "static": st.info}


def truth_of(settings: Settings) -> str | None:
    """The ground-truth class of the chosen sample clip (None for an upload)."""
    if settings.clip_source != "sample":
        return None
    return next((s.truth for s in sample_clips() if s.name == settings.sample), None)


def current(expl: Explanation, settings: Settings, truth: str | None = None) -> Verdict:
    """The verdict on the shown method (ground truth: ``truth``, else the sample's)."""
    method = settings.shown_method if settings.shown_method in expl.methods else None
    return verdict(expl, truth if truth is not None else truth_of(settings), method)


def render_view(expl: Explanation, settings: Settings, truth: str | None = None) -> None:
    v = current(expl, settings, truth)
    _BOXES[v.reliance](f"**{v.headline}.** {v.text}")
