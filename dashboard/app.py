"""The page: inputs in the sidebar, the explanation computed once, six views drawn from it.

Order of a run: settings requested by a loaded JSON are applied; every sidebar section is
drawn (model → clip → methods → display), so that no choice or upload is lost when a
later step fails; the model and the clip are loaded, the target is checked against them,
and ONE :class:`~xai_core.request.ExplainRequest` is built from the settings; its
explanation is taken from this session, from the shared job runner, or computed there
with progress (:mod:`dashboard.compute`) while the previous result stays on the page;
then the views render. The frame views are a player that holds every frame
(:mod:`dashboard.player`): scrubbing and Play run in the browser, nothing is sent back
until the player syncs its frame. A second model can be explained beside the first
(:mod:`dashboard.second_model`). Every error becomes a readable message in the page;
the app keeps running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import streamlit as st
import torch

from xai_core.errors import XaiError
from xai_core.results import Explanation

from . import (
    comparison,
    dataset_view,
    export,
    metrics_panel,
    model_view,
    over_time,
    player,
    predictions,
    real_models,
    second_model,
    side_by_side,
    sidebar_compare,
    sidebar_scale,
    timeline_view,
    tubes,
)
from . import sidebar as sb
from . import verdict as verdict_view
from .compute import build_tolerant, obtain, wait_pending
from .display import NOT_SPLIT, percent, probability, scales_for, shown_method
from .link import read_link, show_link_notes, write_link
from .resources import clip_masks, input_spec, model_chosen, resolve_clip, resolve_model, uploads
from .settings import Settings, apply_pending_settings

log = logging.getLogger("dashboard")

TITLE = "Motion or scene? What a video action model looks at"
INTRO = ("Explains the decision of a 3D-CNN action classifier on a clip: which pixels, in which "
         "frames, are evidence for the class — and how much of that evidence is **motion** "
         "(temporal relevance) rather than **appearance** (spatial relevance).")

# --------------------------------------------------------------------------- errors
class _Stop(Exception):
    """Internal: a section failed and its message has been shown."""


@contextlib.contextmanager
def boundary(doing: str) -> Iterator[None]:
    """Show any error raised inside as a readable message (no traceback), then stop the section.

    Expected problems (:class:`~xai_core.errors.XaiError`) show their own message, which
    says what to do; out-of-memory gets advice; anything else a short line (the
    traceback goes to the server log).
    """
    try:
        yield
    except _Stop:
        raise
    except XaiError as exc:
        st.error(f"**Could not {doing}.** {exc.user_message()}")
        raise _Stop from exc
    except (MemoryError, torch.OutOfMemoryError) as exc:
        st.error(f"**Ran out of memory while trying to {doing}.** Choose fewer methods, a "
                 "smaller model or a shorter clip.")
        raise _Stop from exc
    except Exception as exc:
        log.exception("unexpected error while trying to %s", doing)
        first = (str(exc).splitlines() or [""])[0][:200]
        st.error(f"**Something went wrong while trying to {doing}** ({type(exc).__name__}: "
                 f"{first}). The app is still running: change a setting to try again.")
        raise _Stop from exc


# --------------------------------------------------------------------------- views
def summary_row(expl: Explanation, settings: Settings, truth: str | None) -> None:
    """Prediction, explained class, motion share, computation: plain values with a line of
    context under each (no metric deltas: none of these is a change)."""
    method = shown_method(expl, settings)
    share = expl[method].motion_share.get("discriminative")
    cols = st.columns(4)
    p = probability(expl.probabilities[expl.predicted])
    cols[0].metric("Model predicts", expl.class_names[expl.predicted])
    cols[0].caption(f"with {p} probability")
    cols[1].metric("Explaining the class", expl.target_name)
    cols[1].caption("the predicted class" if expl.target == expl.predicted else
                    "chosen in the sidebar")
    cols[2].metric(f"Motion share ({method})", percent(share),
                   help="How much of the evidence for the class comes from motion: the share "
                        "of positive relevance that is temporal." if expl[method].decomposed
                   else NOT_SPLIT)
    hits = sum(expl.cache_hits.values())
    total = expl.timings.get("total", 0.0)
    cols[3].metric("Computation", f"{total:.1f} s")
    cols[3].caption(f"{hits} of {len(expl.methods)} methods from the cache")
    st.caption(f"Model **{expl.model}** · clip **{Path(expl.clip.source).name}** "
               f"({window_words(expl)})" + (f" · ground truth **{truth}**" if truth else ""))


def window_words(expl: Explanation) -> str:
    """Which frames of the video the clip holds, in words: ``video frames 4–19``, ``…,
    every 2nd``, ``video frame 0 only, repeated 16 times``, ``…, looped to fill 16 frames``."""
    c, n = expl.clip, expl.frames.shape[0]
    distinct = sorted(set(c.indices))
    if len(distinct) == 1:
        return f"video frame {distinct[0]} only, repeated {n} times"
    span = f"video frames {distinct[0]}–{distinct[-1]}"
    if c.stride > 1:
        span += f", every {c.stride}{'nd' if c.stride == 2 else 'rd' if c.stride == 3 else 'th'}"
    return span + (f", looped to fill {n} frames" if c.padded else "")


def frame_section(expl: Explanation, settings: Settings, scales, groups, fps: float,
                  second=None) -> None:
    """The frame player and the views that follow the server's frame (re-run alone when the
    player syncs its frame, or a point of the per-frame plot is clicked)."""
    # a fragment re-run happens outside the page's error boundary: it needs its own
    with contextlib.suppress(_Stop), boundary("draw the frame views"):
        _frame_views(expl, settings, scales, groups, fps, second)


def _frame_views(expl: Explanation, settings: Settings, scales, groups, fps: float,
                 second) -> None:
    st.subheader("Side by side")
    t = side_by_side.render_view(expl, settings, groups, fps)
    settings = dataclasses.replace(settings, frame=t)
    st.subheader("Relevance per frame")
    if second is not None and second.explanation is not None:
        second_model.render_curves(expl, second, settings.shown_method, t)
    else:
        over_time.render_view(expl, settings.shown_method, t)
    st.subheader("Method comparison")
    comparison.render_view(expl, settings, scales, t)
    st.subheader("Export")
    export.render_view(expl, settings, scales, t)


def _flash() -> None:
    message = st.session_state.pop("_flash", None)
    if message:
        (st.success if message[0] == "success" else st.error)(message[1])


def main() -> None:
    st.set_page_config(page_title="Motion or scene? Video XAI", page_icon="🎞️", layout="wide")
    link_notes = read_link()  # a shared link's settings, on a session's first run
    apply_pending_settings()
    st.title(TITLE)
    st.markdown(INTRO)
    _flash()
    show_link_notes(link_notes)
    with contextlib.suppress(_Stop):
        _page()


def _page() -> None:
    with st.sidebar:
        page = dataset_view.page_choice()
    if page == "dataset":  # an evaluation run: its own page
        with boundary("open the evaluation"):
            dataset_view.render_page(boundary)
        return
    with st.sidebar:
        sb.model_inputs()
        sidebar_compare.compare_inputs(Settings.from_session().model)
        clip_path = truth = clip_error = None
        try:  # the clip section is drawn whatever the model: an upload is never dropped
            with boundary("read the clip"):
                clip_path, truth = sb.clip_inputs(input_spec(Settings.from_session()))
        except _Stop as exc:
            clip_error = exc
        target_box = st.container()
        sb.method_inputs()
        sb.display_inputs()
        sidebar_scale.scale_inputs()
        sb.settings_loader()
    settings = Settings.from_session()
    write_link(settings)
    if not model_chosen(settings):
        st.info(real_models.MISSING[settings.model_source])
        return
    with boundary("load the model"):
        model = resolve_model(settings)
    if clip_error is not None:
        st.error("The clip above could not be used; choose a sample clip or another file.")
        raise clip_error
    if clip_path is None:
        st.info("Choose a sample clip or upload a video in the sidebar.")
        return
    if not settings.methods:
        st.info("Choose at least one explanation method in the sidebar.")
        return
    with boundary("read the clip"):
        try:
            clip = resolve_clip(clip_path, model, settings)
        except XaiError:
            if settings.clip_source == "upload":  # a file that cannot be read is not kept
                uploads().discard("video")
            raise
    if clip.padded:
        st.warning("The video is shorter than the model's clip: frames were repeated from the "
                   "start, and that jump looks like motion to the model.")
    settings = sb.settle_target(settings, model, clip, target_box)
    write_link(settings)
    with boundary("explain the clip"):
        request, refused = build_tolerant(settings, model, clip)
        shown = obtain(request)
        shown.errors.update(refused)  # methods refused up front, shown in their place
    expl = shown.explanation
    if expl is None:
        return
    for note in getattr(expl, "warnings", ()):  # e.g. computed on the CPU after GPU memory ran out
        st.warning(note)
    with target_box:
        sb.target_input(expl)
    second = None
    with contextlib.suppress(_Stop), boundary("explain the clip with the second model"):
        second = second_model.obtain_second(settings, clip_path, expl)
    settings = dataclasses.replace(settings, shown_method=shown_method(expl, settings))
    with boundary("show the explanation"):
        scales = scales_for(expl, settings)
        verdict_view.render_view(expl, settings, truth)
        summary_row(expl, settings, truth)
        model_view.render_view(expl, model.input, clip_path)
        timeline_box = st.container()  # filled at the end: the views come first
        groups = [player.Group(expl, scales, expl.model if second else "", shown.errors)]
        if second is not None and second.explanation is not None:
            second_model.render_summary(expl, second)
            groups.append(player.Group(second.explanation,
                                       scales_for(second.explanation, settings),
                                       second.name, second.shown.errors))
        st.fragment(frame_section)(expl, settings, scales, groups,
                                   player.clip_fps(clip.fps, clip.stride), second)
        st.subheader("Saliency tubes")
        tubes.render_view(expl, settings, scales)
        st.subheader("Predictions")
        predictions.render_view(expl)
        if second is not None:
            second_model.render_predictions(second)
    st.subheader("Metrics")
    with boundary("compute the metrics"):
        metrics_panel.render_view(expl, request, clip_masks(settings, clip))
    with timeline_box, contextlib.suppress(_Stop), boundary("build the timeline"):
        timeline_view.render_view(model, clip_path, settings)
    wait_pending([shown] + ([second.shown] if second is not None else []))
