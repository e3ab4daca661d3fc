"""The page: inputs in the sidebar, the explanation computed once, six views drawn from it.

Order of a run: settings requested by a loaded JSON are applied; the sidebar sections are
drawn and resolved one by one (model → clip → methods → display); the explanation is
taken from this session, from the shared job runner, or computed there with progress;
then the views render. Moving the frame scrubber re-runs only the fragment holding the
frame views, from the stored explanation: nothing is recomputed. Every error becomes a
readable message in the page; the app keeps running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import streamlit as st
import torch

from xai_core.engine import explain
from xai_core.errors import CheckpointError, XaiError
from xai_core.estimate import CostEstimate, estimate_cost
from xai_core.models.registry import LoadedModel
from xai_core.results import Explanation
from xai_core.video.clip import Clip, load_clip

from . import comparison, export, metrics_panel, over_time, predictions, side_by_side, tubes
from . import sidebar as sb
from .display import NOT_SPLIT, percent, scales_for
from .samples import sample_masks
from .state import (
    Settings,
    apply_pending_settings,
    file_fingerprint,
    folder_path,
    job_runner,
    load_bundled,
    load_own,
    uploads,
    widget_key,
)

log = logging.getLogger("dashboard")

TITLE = "Motion or scene? What a video action model looks at"
INTRO = ("Explains the decision of a 3D-CNN action classifier on a clip: which pixels, in which "
         "frames, are evidence for the class — and how much of that evidence is **motion** "
         "(temporal relevance) rather than **appearance** (spatial relevance).")

#: Seconds between frames while playing.
PLAY_INTERVAL = 0.4

#: Explanations needing more model passes than this wait for a click on Start, with a
#: time estimate (DTD + Grad-CAM on a 16-frame clip need 85; one extremal perturbation
#: 2,400). A pass count, not seconds: the same request asks on any machine.
CONFIRM_ABOVE_PASSES = 400


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


# --------------------------------------------------------------------------- resolving inputs
def resolve_model(settings: Settings) -> LoadedModel:
    if settings.model_source == "bundled":
        return load_bundled(settings.model)
    if not settings.checkpoint:
        raise CheckpointError("no checkpoint chosen",
                       hint="Upload a .pt/.pth state dict or pick one from the models folder.")
    ckpt = _own_file("checkpoint", settings.checkpoint)
    classes = _own_file("classes", settings.classes) if settings.classes else None
    return load_own(settings.arch, str(ckpt), None if classes is None else str(classes),
                    file_fingerprint(ckpt, classes))


def _own_file(slot: str, name: str) -> Path:
    if name.startswith("upload:"):
        path = uploads().get(slot)
        if path is None:
            raise CheckpointError(f"the uploaded {slot} file is gone", hint="Upload it again.")
        return path
    return folder_path(name)


@st.cache_resource(show_spinner=False, max_entries=16)
def _cached_clip(path: str, mtime_ns: int, size: int, start: int, stride: int, spec_key: str,
                 name: str, _spec) -> Clip:
    return load_clip(path, _spec, start=start, stride=stride, name=name)


def resolve_clip(path: Path, model: LoadedModel, settings: Settings) -> Clip:
    stat = path.stat()
    name = settings.upload if settings.clip_source == "upload" and settings.upload else path.name
    return _cached_clip(str(path), stat.st_mtime_ns, stat.st_size, int(settings.start),
                        int(settings.stride), json.dumps(model.input.to_dict()), name, model.input)


def clip_masks(settings: Settings, clip: Clip) -> dict | None:
    """Ground truth of a sample clip on the clip's frames (None for uploads)."""
    if settings.clip_source != "sample" or not settings.sample:
        return None
    return sample_masks(settings.sample, clip.indices, clip.frames.shape[1:3])


# --------------------------------------------------------------------------- explanation
def explanation_key(model: LoadedModel, clip: Clip, settings: Settings) -> str:
    payload = {"weights": model.weights_hash, "model": model.name, "clip": clip.content_hash,
               "source": clip.source, "methods": list(settings.methods),
               "target": settings.target, "options": settings.options().key(),
               "params": settings.method_params, "full_only": sorted(settings.full_only)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def stages(methods: list[str], decomposed: list[str] | None = None) -> list[str]:
    out = ["prediction", "freeze-frame predictions"]
    for m in methods:
        split = decomposed is None or m in decomposed
        out += [f"{m}: full", *([f"{m}: freeze frames"] if split else []), f"{m}: selective"]
    return out


def cost_estimate(model: LoadedModel, clip: Clip, settings: Settings, key: str,
                  measure: bool) -> CostEstimate:
    """What the explanation will cost: passes, and with ``measure`` the seconds (a timed
    pass × passes); once per request."""
    memo = st.session_state.setdefault("_estimates", {})
    if (key, measure) not in memo:
        if any(k != key for k, _ in memo):
            memo.clear()  # the estimates of the current request only
        params = {m: p for m, p in settings.method_params.items() if m in settings.methods}
        memo[(key, measure)] = estimate_cost(
            model, clip, settings.methods, target=settings.target, options=settings.options(),
            method_params=params or None, decompose=settings.decomposed(), measure=measure)
    return memo[(key, measure)]


def confirmed(estimate: CostEstimate, key: str) -> bool:
    """Long computations start only when asked: shows the estimate and a Start button."""
    if st.session_state.get("_confirmed") == key:
        return True
    st.warning(f"This explanation runs **{estimate.passes:,} model passes**: "
               f"**{estimate.total()}** on this machine, estimated from a "
               f"measured pass of this clip ({estimate.pass_seconds:.2f} s per clip).")
    st.code(estimate.describe(), language=None)
    st.caption("Faster: fewer iterations or areas (Method parameters), full relevance only "
               "(Decomposition options), or fewer methods. Results are cached: a second look "
               "costs nothing.")
    if st.button(f"Start ({estimate.total()})", type="primary",
                 key="confirm_start"):
        st.session_state["_confirmed"] = key
        st.rerun()
    return False


def obtain_explanation(model: LoadedModel, clip: Clip, settings: Settings
                       ) -> tuple[Explanation, str] | None:
    """The explanation for these inputs: stored, shared, or computed now with progress.

    Returns None when the user cancelled it (a button offers to start again).
    """
    key = explanation_key(model, clip, settings)
    stored = st.session_state.get("_explanation")
    if stored is not None and stored[0] == key:
        return stored[1], key
    if st.session_state.get("_cancelled") == key:
        st.info("Computation cancelled.")
        if st.button("Explain", type="primary", key="restart"):
            st.session_state.pop("_cancelled")
            st.rerun()
        return None

    runner = job_runner()
    previous = st.session_state.get("_job_key")
    if previous and previous != key:  # settings changed while computing: drop the old job
        old = runner.get(previous)
        if old is not None and not old.finished:
            old.cancel()
    st.session_state["_job_key"] = key
    if runner.get(key) is None:  # not started yet (by this or another session)
        # counting passes is cheap; timing one is done only for a request that may wait
        if cost_estimate(model, clip, settings, key, measure=False).passes > CONFIRM_ABOVE_PASSES:
            with st.spinner("Estimating how long this takes…"):
                estimate = cost_estimate(model, clip, settings, key, measure=True)
            if not confirmed(estimate, key):
                return None

    methods, target, options = list(settings.methods), settings.target, settings.options()
    params = {m: p for m, p in settings.method_params.items() if m in methods}
    decomposed = settings.decomposed()

    def run(progress):
        return explain(model, clip, methods, target=target, options=options,
                       method_params=params or None, decompose=decomposed, progress=progress)

    label = f"Explaining with {', '.join(methods)}"
    estimate = st.session_state.get("_estimates", {}).get((key, True))
    if estimate is not None:
        label += f" ({estimate.total()} in all)"
    while True:
        job = runner.submit(key, run, label=label, stages=stages(methods, decomposed))
        if not job.finished:
            slot = st.empty()  # emptied when done, so no stale progress stays on the page
            with slot.container():
                if st.button("Cancel", key="cancel_job"):
                    job.cancel()
                    st.session_state["_cancelled"] = key
                    st.rerun()
                waiting = runner.pending() - 1
                bar = st.progress(job.fraction, text=job.describe())
                if waiting > 0 and job.status == "queued":
                    st.caption(f"Waiting for {waiting} other computation(s) to finish.")
            while not job.wait(0.2):
                bar.progress(job.fraction, text=job.describe())
            slot.empty()
        if job.status == "cancelled":
            continue  # cancelled by a newer request of another run: ours still wants it
        break
    if job.status == "failed":
        runner.forget(key)
        raise job.error
    st.session_state["_explanation"] = (key, job.result)
    st.session_state.pop("_tube_memo", None)
    return job.result, key


# --------------------------------------------------------------------------- views
def summary_row(expl: Explanation, settings: Settings, truth: str | None) -> None:
    method = settings.shown_method or next(iter(expl.methods))
    share = expl[method].motion_share.get("discriminative")
    cols = st.columns(4)
    cols[0].metric("Model predicts", expl.class_names[expl.predicted],
                   f"{expl.probabilities[expl.predicted]:.0%} probability", delta_color="off")
    cols[1].metric("Explaining the class", expl.target_name,
                   "predicted" if expl.target == expl.predicted else "chosen", delta_color="off")
    cols[2].metric(f"Motion share ({method})", percent(share),
                   help="How much of the evidence for the class comes from motion: the share "
                        "of positive relevance that is temporal." if expl[method].decomposed
                   else NOT_SPLIT)
    hits = sum(expl.cache_hits.values())
    total = expl.timings.get("total", 0.0)
    cols[3].metric("Computation", f"{total:.1f} s",
                   f"{hits}/{len(expl.methods)} methods from cache", delta_color="off")
    c = expl.clip
    where = (f"frames {c.indices[0]}–{c.indices[-1]}" + (f", every {c.stride}" if c.stride > 1
                                                        else ""))
    st.caption(f"Model **{expl.model}** · clip **{Path(c.source).name}** ({where}"
               + (", padded" if c.padded else "") + ")"
               + (f" · ground truth **{truth}**" if truth else ""))


def frame_section(expl: Explanation, settings: Settings, scales, playing: bool) -> None:
    """Everything that follows the frame scrubber (re-run alone when the frame changes)."""
    # a fragment re-run happens outside the page's error boundary: it needs its own
    with contextlib.suppress(_Stop), boundary("draw the frame views"):
        _frame_views(expl, settings, scales, playing)


def _frame_views(expl: Explanation, settings: Settings, scales, playing: bool) -> None:
    n = expl.frames.shape[0]
    key = widget_key("frame")
    if not 0 <= int(st.session_state.get(key, 0)) < n:
        st.session_state[key] = 0
    if playing:
        st.session_state[key] = (int(st.session_state.get(key, 0)) + 1) % n
    if n > 1:
        t = st.slider("Frame", 0, n - 1, key=key,
                      help="Scrub through the clip; every view below follows.")
    else:
        t = 0
    settings = dataclasses.replace(settings, frame=t)
    st.subheader("Side by side")
    side_by_side.render_view(expl, settings, scales, t)
    st.subheader("Relevance per frame")
    over_time.render_view(expl, settings.shown_method or next(iter(expl.methods)), t)
    st.subheader("Method comparison")
    comparison.render_view(expl, settings, scales, t)
    st.subheader("Export")
    export.render_view(expl, settings, scales, t)


def _toggle_play() -> None:
    st.session_state["_playing"] = not st.session_state.get("_playing", False)


def _flash() -> None:
    message = st.session_state.pop("_flash", None)
    if message:
        (st.success if message[0] == "success" else st.error)(message[1])


def main() -> None:
    st.set_page_config(page_title="Motion or scene? Video XAI", page_icon="🎞️", layout="wide")
    apply_pending_settings()
    st.title(TITLE)
    st.markdown(INTRO)
    _flash()
    with contextlib.suppress(_Stop):
        _page()


def _page() -> None:
    model = clip_path = truth = None
    with st.sidebar:
        sb.model_inputs()
    with boundary("load the model"):
        model = resolve_model(Settings.from_session())
    with st.sidebar:
        clip_error: _Stop | None = None
        try:
            with boundary("read the clip"):
                clip_path, truth = sb.clip_inputs(model)
        except _Stop as exc:
            clip_error = exc
        target_box = st.container()
        sb.method_inputs()
        sb.display_inputs()
        sb.settings_loader()
    if clip_error is not None:
        st.error("The clip above could not be used; choose a sample clip or another file.")
        raise clip_error
    if clip_path is None:
        st.info("Choose a sample clip or upload a video in the sidebar.")
        return
    settings = Settings.from_session()
    if settings.target is not None and not 0 <= settings.target < model.num_classes:
        # e.g. loaded from the settings of a model with more classes: explain the prediction
        st.session_state[widget_key("target")] = None
        settings = dataclasses.replace(settings, target=None)
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
    with boundary("explain the clip"):
        found = obtain_explanation(model, clip, settings)
    if found is None:
        return
    expl, key = found
    for note in getattr(expl, "warnings", ()):  # e.g. computed on the CPU after GPU memory ran out
        st.warning(note)
    with target_box:
        sb.target_input(expl)
    with boundary("show the explanation"):
        scales = scales_for(expl, settings)
        summary_row(expl, settings, truth)
        playing = bool(st.session_state.get("_playing", False))
        # a callback flips the state before the run, so the label is right at once
        st.button("⏸ Pause" if playing else "▶ Play", key="play", on_click=_toggle_play,
                  help="Play the clip: the frame views advance by themselves.")
        st.fragment(frame_section, run_every=PLAY_INTERVAL if playing else None)(
            expl, settings, scales, playing)
        st.subheader("Saliency tubes")
        tubes.render_view(expl, settings, scales)
        st.subheader("Predictions")
        predictions.render_view(expl)
    st.subheader("Metrics")
    with boundary("compute the metrics"):
        metrics_panel.render_view(expl, key, model, clip, clip_masks(settings, clip))
