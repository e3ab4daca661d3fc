"""Sidebar: compare the explanation with a second model's on the same clip.

The second model is one of the bundled models (for the demo: the motion model beside the
context-biased one). Its explanation is built with the same methods, parameters and
options as the first (:func:`dashboard.compute.build_request` — one more request, its own
job), so the two differ only by the model.

The widgets hold the settings ``compare``, ``compare_model`` and ``compare_target`` of
:class:`~dashboard.settings.Settings` (keys ``s_<name>``), so a settings file and the link
carry the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from xai_core.models.registry import get_spec

from .resources import bundled_model_names
from .settings import COMPARE_TARGETS, widget_key

ON, MODEL, TARGET = (widget_key(n) for n in ("compare", "compare_model", "compare_target"))

#: Which class the second model explains (:data:`~dashboard.settings.COMPARE_TARGETS`).
TARGETS = dict(zip(COMPARE_TARGETS, ("the same class as the first model",
                                      "its own predicted class"), strict=True))


@dataclass(frozen=True)
class Comparison:
    """The sidebar's choice: the second model and which class it explains."""

    model: str
    target: str  # same | own


def compare_inputs(first: str | None) -> None:
    """The toggle and, when on, the second model and its class. ``first`` is the first
    model's bundled name (offered last, a model compared with itself shows nothing new)."""
    names = bundled_model_names()
    if not names:
        return
    st.session_state.setdefault(ON, False)
    st.toggle("Compare with a second model", key=ON,
              help="Explain the same clip with a second model, with the same methods and "
                   "options: the four views of both with one scrubber, their motion shares, "
                   "per-frame curves and freeze-frame predictions. For a model retrained on "
                   "your data, compare it with its earlier version.")
    if not st.session_state[ON]:
        return
    options = [n for n in names if n != first] + [n for n in names if n == first]
    if st.session_state.get(MODEL) not in options:
        st.session_state[MODEL] = options[0]
    st.selectbox("Second model", options, key=MODEL,
                 format_func=lambda n: f"{n} — {get_spec(n).description}")
    if st.session_state.get(TARGET) not in TARGETS:
        st.session_state[TARGET] = "same"
    st.radio("The second model explains", list(TARGETS), key=TARGET, format_func=TARGETS.get,
             help="The same class: how each model's evidence for one class differs. Its own "
                  "prediction: why each model decides as it does.")


def chosen() -> Comparison | None:
    """The comparison asked for in the sidebar, or None."""
    if not st.session_state.get(ON) or st.session_state.get(MODEL) not in bundled_model_names():
        return None
    return Comparison(st.session_state[MODEL], st.session_state.get(TARGET, "same"))
