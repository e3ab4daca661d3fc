"""The timeline of an uploaded video: every window's top class and motion share, click to open.

A model sees one clip of ``T`` frames; an uploaded video is often much longer. Under it
the page shows :func:`xai_core.timeline.timeline` — windows sliding over the whole video,
each with its top classes and the motion share of Grad-CAM (the core's cheapest method
whose motion share separates the bundled models) — as a strip of thumbnails (the crop
the model sees outlined: :func:`xai_core.video.preprocess.crop_box`,
:func:`xai_core.render.outline`) and the core's plotly figure
(:meth:`~xai_core.timeline.Timeline.figure`). A window's *Open* button, or a click on the
figure, sets the clip's window start (and stride) in the sidebar: the four views then
explain that window.

The timeline is computed in the background with progress and Cancel
(:func:`dashboard.compute.run_job`), keyed by the video's content, the model's identity
and the timeline's parameters; the first :data:`AUTO_WINDOWS` windows start by
themselves, the rest on request (the result cache keeps the windows done). Only the
decomposition options that change a motion share (slice, normalisation) are passed on,
so moving the selective threshold does not recompute the timeline.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from xai_core import render
from xai_core.decompose import DEFAULT_OPTIONS, DecompositionOptions
from xai_core.hashing import file_hash, json_hash
from xai_core.models.registry import LoadedModel
from xai_core.progress import Progress
from xai_core.request import model_identity
from xai_core.timeline import DEFAULT_METHOD, Timeline, timeline
from xai_core.video.preprocess import crop_box
from xai_core.video.read import VideoInfo, probe

from .compute import error_text, job_runner, run_job
from .settings import Settings, widget_key

#: Windows computed without asking (a longer video continues on a click).
AUTO_WINDOWS = 48
#: Thumbnails in the strip at most (every k-th window; the figure has them all).
THUMBS = 8
#: Height of a thumbnail (pixels).
THUMB_HEIGHT = 72
PLOT_KEY = "timeline_plot"
_ALL = "_timeline_all"  # keys of timelines asked for in full


@dataclass
class Strip:
    """A computed timeline and its thumbnails (window index, RGB image with the crop)."""

    timeline: Timeline
    thumbs: list[tuple[int, np.ndarray]]


@st.cache_resource(show_spinner=False, max_entries=16)
def _video(path: str, mtime_ns: int, size: int) -> tuple[VideoInfo, str]:
    """The video's facts and its content hash (read once per file)."""
    return probe(path), file_hash(path)


def render_view(model: LoadedModel, video: Path, settings: Settings) -> None:
    """The timeline of an uploaded ``video`` longer than one clip (nothing otherwise)."""
    if settings.clip_source != "upload" or video is None or not Path(video).is_file():
        return
    stat = Path(video).stat()
    info, content = _video(str(video), stat.st_mtime_ns, stat.st_size)
    if info.frames <= model.input.num_frames:
        return
    st.subheader("Timeline of the whole video")
    options = dataclasses.replace(DEFAULT_OPTIONS, slice=settings.options.slice,
                                  normalise=settings.options.normalise)
    base = json_hash(["timeline", content, model_identity(model), model.input.to_dict(),
                      DEFAULT_METHOD, options.key()])
    limit = None if base in st.session_state.get(_ALL, set()) else AUTO_WINDOWS
    key = json_hash([base, limit])
    if key in st.session_state.get("_cancelled_keys", set()):
        st.info("The timeline was cancelled.")
        if st.button("Build the timeline", key="timeline_restart"):
            st.session_state["_cancelled_keys"].discard(key)
            st.rerun()
        return
    job = run_job(key, partial(_compute, model, Path(video), options, limit, info),
                  label="Timeline of the video", cancel="timeline_cancel")
    if job.status == "failed":
        job_runner().forget(key)
        st.error(f"**Could not build the timeline.** {error_text(job.error)}")
        return
    if job.status != "done":
        return
    _show(job.result, settings, base)


def _compute(model: LoadedModel, video: Path, options: DecompositionOptions,
             limit: int | None, info: VideoInfo, progress: Progress) -> Strip:
    """The job: the timeline, then the strip's thumbnails with the model's crop."""
    tl = timeline(model, video, options=options, max_windows=limit, progress=progress)
    every = max(1, math.ceil(len(tl.windows) / THUMBS))
    box = crop_box((info.height, info.width), model.input)
    thumbs = []
    for index, image in tl.thumbnails(THUMB_HEIGHT, every):
        s = image.shape[0] / info.height
        thumbs.append((index, render.outline(image, tuple(v * s for v in box), width=2)))
    return Strip(tl, thumbs)


def _show(strip: Strip, settings: Settings, base: str) -> None:
    tl = strip.timeline
    current = _current(tl, settings)
    st.caption(
        f"**{len(tl.windows)} windows** of {tl.clip_frames} frames"
        + (f" (every {tl.sample_every}th frame)" if tl.sample_every > 1 else "")
        + f", one every {tl.window_step / tl.fps:.2g} s; each with the model's top class and "
        f"the **motion share** of {tl.method} (how much of the decision is motion). "
        "The yellow box is the part of the frame the model sees. *Open* a window, or click "
        "the figure, to explain it in the views below.")
    cols = st.columns(len(strip.thumbs))
    for col, (index, image) in zip(cols, strip.thumbs, strict=True):
        w = tl.windows[index]
        share = "n/a" if math.isnan(w.motion_share) else f"{w.motion_share:.0%}"
        col.image(image, width="stretch", output_format="JPEG",
                  caption=f"{_clock(w.start_s)} · {w.top1} {w.top1_prob:.0%} · motion {share}")
        col.button("Shown" if index == current else "Open", key=f"timeline_open_{index}",
                   type="primary" if index == current else "secondary", width="stretch",
                   on_click=_open, args=(w.start_frame, tl.sample_every),
                   help=f"Explain frames {w.start_frame}–{w.end_frame} in the views below.")
    fig = tl.figure()
    if current is not None:
        w = tl.windows[current]
        fig.add_vrect(x0=w.start_s, x1=w.end_s, fillcolor="#ffd700", opacity=0.25,
                      line_width=0, layer="below")
    st.plotly_chart(fig, key=PLOT_KEY, on_select=partial(_select, tl),
                    selection_mode="points", width="stretch", config={"displaylogo": False})
    if not tl.complete:
        st.caption(f"The first {len(tl.windows)} of {tl.planned} windows.")
        if st.button(f"Compute all {tl.planned} windows", key="timeline_all"):
            st.session_state.setdefault(_ALL, set()).add(base)
            st.rerun()
    for note in tl.notes:
        st.caption(f"Note: {note}.")


def _current(tl: Timeline, settings: Settings) -> int | None:
    """The window the views show, if the clip is one of the timeline's windows."""
    if int(settings.stride) != tl.sample_every:
        return None
    found = [w.index for w in tl.windows if w.start_frame == int(settings.start)]
    return found[0] if found else None


def _open(start: int, stride: int) -> None:
    """Show the window from ``start`` (runs before the rerun, so the sidebar follows)."""
    st.session_state[widget_key("start")] = int(start)
    st.session_state[widget_key("stride")] = int(stride)


def _select(tl: Timeline) -> None:
    """A click on the figure: open the window under the clicked time."""
    state: Any = st.session_state.get(PLOT_KEY)
    points = (state or {}).get("selection", {}).get("points", [])
    if not points or points[0].get("x") is None:
        return
    x = float(points[0]["x"])
    inside = [w for w in tl.windows if w.start_s <= x < w.end_s]
    w = inside[0] if inside else min(tl.windows, key=lambda w: abs((w.start_s + w.end_s) / 2 - x))
    _open(w.start_frame, tl.sample_every)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"
