"""The sidebar: model, clip, target, methods, decomposition options and display choices.

Every widget stores its value under :func:`~dashboard.settings.widget_key` so that
:class:`~dashboard.settings.Settings` can be read from, saved from and loaded into them.
The sections are drawn by the page in order, each from what is known before anything is
loaded (the clip length comes from the model's spec), except the class to explain, which
needs the explanation's top-5.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import streamlit as st

from xai_core import render
from xai_core.decompose import DEFAULT_OPTIONS, SLICES, SOBEL_BORDERS
from xai_core.decompose import NORMALISATIONS as DECOMP_NORMALISATIONS
from xai_core.errors import ParameterError, VideoError, XaiError
from xai_core.hashing import json_hash
from xai_core.methods.base import list_methods
from xai_core.models.cards import spec_card
from xai_core.models.registry import LoadedModel, get_spec
from xai_core.models.spec import InputSpec
from xai_core.request import model_identity
from xai_core.results import Explanation
from xai_core.selective import SELECTIVE_HELP, SELECTIVE_VARIANTS, selective_variants
from xai_core.video.clip import Clip
from xai_core.video.read import VideoInfo, probe

from . import real_models, samples
from .display import NORMALISATION_LABELS, probability
from .resources import (
    MAX_CHECKPOINT_MB,
    MAX_VIDEO_MB,
    MODELS_DIR_ENV,
    VIDEO_TYPES,
    architectures,
    bundled_model_names,
    folder_files,
    models_dir,
    uploads,
)
from .settings import (
    DEFAULT_METHODS,
    METHOD_PARAMS,
    PREDICTED,
    SIGMA_SLIDER,
    TARGET_FOR,
    WIDGET_RANGES,
    Settings,
    checked_params,
    param_key,
    param_widget_value,
    request_settings,
    widget_key,
)
from .widget_state import assign, keep_hidden, set_default

K = widget_key


# --------------------------------------------------------------------------- model
def model_inputs() -> None:
    st.header("Model")
    set_default(K("model_source"), "bundled")
    source = st.radio("Model", list(real_models.SOURCES), key=K("model_source"), horizontal=True,
                      format_func=real_models.SOURCES.get, label_visibility="collapsed")
    keep_hidden("model_source", source, real_models.SOURCE_WIDGETS)
    if source in real_models.EXTERNAL:
        return real_models.model_inputs(source)
    if source == "bundled":
        names = bundled_model_names()
        set_default(K("model"), names[0] if names else "motion")
        if st.session_state[K("model")] not in names:
            st.session_state[K("model")] = names[0]
        name = st.selectbox("Bundled model", names, key=K("model"))
        st.caption(get_spec(name).description)
        return real_models.show_card(spec_card(get_spec(name)))
    archs = architectures()
    set_default(K("arch"), archs[0])
    st.selectbox("Architecture", archs, key=K("arch"),
                 format_func=lambda a: f"{a} — {get_spec(a).description}")
    ckpt = st.file_uploader("Checkpoint (state dict, .pt/.pth)", type=["pt", "pth"],
                            max_upload_size=MAX_CHECKPOINT_MB, key="upload_checkpoint",
                            help="Saved with torch.save(model.state_dict(), path). Loaded with "
                                 "weights_only=True: files that contain code are refused.")
    names = st.file_uploader("Class names (.txt, one per line)", type=["txt"],
                             key="upload_classes")
    _own_file_input("checkpoint", ckpt, folder_files((".pt", ".pth")),
                    "…or a checkpoint from the models folder", optional=False)
    _own_file_input("classes", names, folder_files((".txt",)),
                    "…or class names from the models folder", optional=True)
    folder = models_dir()
    st.caption(f"Models folder: {folder}" if folder else
               f"Set {MODELS_DIR_ENV} to a folder of checkpoints to pick them here.")
    real_models.show_card(spec_card(get_spec(st.session_state[K("arch")])))


def _own_file_input(slot: str, upload: Any, choices: list[str], label: str,
                    optional: bool) -> None:
    """The file of ``slot``: the upload when there is one (kept in this session's folder),
    else one of the models folder's files (``optional``: or none)."""
    if upload is not None:
        uploads().store(slot, upload.name, upload.getvalue())
        assign(K(slot), f"upload:{upload.name}")
        return
    uploads().discard(slot)
    if not choices:
        assign(K(slot), None)
        return
    options = [None, *choices] if optional else list(choices)
    if st.session_state.get(K(slot)) not in options:
        st.session_state[K(slot)] = options[0]
    st.selectbox(label, options, key=K(slot),
                 format_func=lambda n: "none (classes are numbered)" if n is None else n)


# --------------------------------------------------------------------------- clip
def clip_inputs(spec: InputSpec) -> tuple[Path | None, str | None]:
    """Draw the clip choice; return (video path, ground-truth caption) or (None, None)."""
    st.header("Clip")
    catalogue = samples.sample_clips()
    set_default(K("clip_source"), "sample" if catalogue else "upload")
    source = st.radio("Clip", ["sample", "upload"], key=K("clip_source"), horizontal=True,
                      format_func={"sample": "Sample clip", "upload": "Upload a video"}.get,
                      label_visibility="collapsed")
    path: Path | None = None
    truth: str | None = None
    if source == "sample":
        if not catalogue:
            st.warning("No sample clips are installed; upload a video instead.")
            return None, None
        by_name = {s.name: s for s in catalogue}
        set_default(K("sample"), catalogue[0].name)
        if st.session_state[K("sample")] not in by_name:
            st.session_state[K("sample")] = catalogue[0].name
        name = st.selectbox("Sample clip", list(by_name), key=K("sample"),
                            format_func=lambda n: by_name[n].title)
        sample = by_name[name]
        path, truth = sample.path, sample.truth
        st.caption(f"Ground truth: **{sample.truth}**. {sample.description}")
    else:
        video = st.file_uploader(f"Video ({', '.join(VIDEO_TYPES)}; up to {MAX_VIDEO_MB} MB)",
                                 type=list(VIDEO_TYPES), max_upload_size=MAX_VIDEO_MB,
                                 key="upload_video")
        if video is None:
            uploads().discard("video")
            st.session_state[K("upload")] = None
            st.info("Upload a video to explain it.")
            return None, None
        if video.size > MAX_VIDEO_MB * 2**20:  # the widget's cap is the browser's; check here too
            uploads().discard("video")
            raise VideoError(f"{video.name} is {video.size / 2**20:.0f} MB, above the upload "
                             f"limit of {MAX_VIDEO_MB} MB",
                             hint="Cut the part of interest (ffmpeg -ss START -t SECONDS -i IN "
                                  "OUT.mp4) and upload that.")
        path = uploads().store("video", video.name, video.getvalue())
        st.session_state[K("upload")] = video.name
    try:
        _window_inputs(path, spec.num_frames)
    except XaiError:
        if source == "upload":  # a file that cannot be read is not kept on disk
            uploads().discard("video")
        raise
    return path, truth


@st.cache_resource(show_spinner=False, max_entries=32)
def _probe(path: str, mtime_ns: int, size: int) -> VideoInfo:
    return probe(path)  # errors are not cached: a bad file is probed (and refused) again


def _window_inputs(path: Path, clip_len: int) -> None:
    """Start and stride over the whole timeline, for videos longer than one clip."""
    stat = path.stat()
    info = _probe(str(path), stat.st_mtime_ns, stat.st_size)  # VideoError: shown by the page
    st.caption(f"{info.frames} frames, {info.width}×{info.height}, {info.fps:.3g} fps "
               f"({info.duration:.1f} s).")
    if info.frames <= clip_len:
        assign(K("start"), 0)
        assign(K("stride"), 1)
        return
    set_default(K("stride"), 1)
    max_stride = max(1, min(16, (info.frames - 1) // max(1, clip_len - 1)))
    assign(K("stride"), min(int(st.session_state[K("stride")]), max_stride))
    stride = st.number_input("Stride (take every n-th frame)", 1, max_stride, key=K("stride"))
    last_start = max(0, info.frames - 1 - (clip_len - 1) * int(stride))
    set_default(K("start"), 0)
    assign(K("start"), min(int(st.session_state[K("start")]), last_start), shape=(last_start,))
    if last_start > 0:
        start = st.slider("Window start (frame)", 0, last_start, key=K("start"),
                          help="Which part of the video the model sees.")
        end = start + (clip_len - 1) * int(stride)
        st.caption(f"The clip covers frames {start}–{end} "
                   f"({start / info.fps:.1f}–{end / info.fps:.1f} s).")


# --------------------------------------------------------------------------- target
def settle_target(settings: Settings, model: LoadedModel, clip: Clip, box: Any) -> Settings:
    """``settings`` with a target valid for this model and clip: a class index in range, or
    ``None`` (the predicted class).

    A target chosen for another clip or model is not carried over (its class may not
    even exist here), nor is a value that is not a class index; either is reset to the
    predicted class, and a caption in ``box`` says so.
    """
    target = settings.target
    here = json_hash([model_identity(model), model.name, clip.content_hash])
    before = st.session_state.get(TARGET_FOR)
    st.session_state[TARGET_FOR] = here
    auto = st.session_state.pop("_auto_rerun", False)  # the rerun that shows a new result
    note = st.session_state.pop("_target_note", None)  # … shows this run's note once more
    if note and note[0] == here and auto:
        box.caption(note[1])
    if target is None:
        return settings
    if before is not None and before != here:
        why = "the clip or the model changed"
    elif not _is_class(target, model.num_classes):
        why = f"{target!r} is not a class of this model"
    else:
        return settings
    st.session_state[K("target")] = PREDICTED
    st.session_state["_target_note"] = (here, f"The class to explain was reset to the predicted "
                                              f"one: {why}.")
    box.caption(st.session_state["_target_note"][1])
    return dataclasses.replace(settings, target=None)


def _is_class(value: Any, num_classes: int) -> bool:
    low, _ = WIDGET_RANGES["target"]
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < num_classes


def target_input(expl: Explanation) -> None:
    """Class to explain: the predicted one, one of the top 5, or any class.

    The options are values (``None``, class indices) with labels that never change for a
    model (no probabilities in them): Streamlit identifies a choice by its label, and a
    label that changed with the prediction would come back as a stale string.
    """
    names = expl.class_names
    top = [i for i, _, _ in expl.top5]
    # "predicted" is a value, not None: a selectbox holding None shows its placeholder
    options: list[int] = [PREDICTED, *top, *[i for i in range(len(names)) if i not in top]]
    if st.session_state.get(K("target")) not in options:
        st.session_state[K("target")] = PREDICTED
    unique = len(set(names)) == len(names)

    def label(i: int) -> str:
        if i == PREDICTED:
            return "The predicted class"
        return names[i] if unique else f"{names[i]} (class {i})"

    st.selectbox("Class to explain", options, key=K("target"), format_func=label,
                 help="Relevance is evidence for this class. The top-5 classes come first; "
                      "type to find any other class.")
    st.caption(f"Explaining **{expl.target_name}**. Predicted: "  # in full: the box may cut it
               + ", ".join(f"**{names[i]}** {probability(p)}" for i, _, p in expl.top5[:3]) + ".")


# --------------------------------------------------------------------------- methods
def method_inputs() -> None:
    st.header("Methods")
    methods = {m.name: m for m in list_methods()}
    set_default(K("methods"), [m for m in DEFAULT_METHODS if m in methods] or list(methods)[:1])
    assign(K("methods"), [m for m in st.session_state[K("methods")] if m in methods])

    def describe(name: str) -> str:
        return f"{name} ({methods[name].family})"

    chosen = st.multiselect("Explanation methods", list(methods), key=K("methods"),
                            format_func=describe,
                            help="\n".join(f"- **{n}**: {m.description}" for n, m in
                                           methods.items()))
    if chosen:
        if st.session_state.get(K("shown_method")) not in chosen:
            st.session_state[K("shown_method")] = chosen[0]
        st.selectbox("Method shown in the frame views", chosen, key=K("shown_method"))
    full_only = _full_only_defaults(chosen, methods)
    if full_only:
        st.caption(f"{', '.join(full_only)}: full relevance only — the spatial / temporal split "
                   "would explain one more clip per frame (see Decomposition options).")
    with st.expander("Decomposition options"):
        st.multiselect("Full relevance only (no spatial / temporal split)", chosen,
                       key=K("full_only"),
                       help="The split explains each frame's freeze-frame clip once more: "
                            "for optimisation methods (extremal perturbation) that is one more "
                            "optimisation per frame. Listed methods get full and selective "
                            "relevance only. Methods that stop early are listed when chosen.")
        set_default(K("slice"), DEFAULT_OPTIONS.slice)
        st.selectbox("Spatial slice of a freeze-frame explanation", SLICES, key=K("slice"),
                     help="same: frame t's own slice (a still clip has zero motion relevance); "
                          "first: slice 0, as the paper's scripts; mean: the mean over slices.")
        set_default(K("normalise"), DEFAULT_OPTIONS.normalise)
        st.selectbox("Scaling before the split", DECOMP_NORMALISATIONS, key=K("normalise"),
                     help="none keeps the method's units (full = spatial + temporal); max-abs is "
                          "the paper's choice (unit-less).")
        set_default(K("sigma"), DEFAULT_OPTIONS.sigma)
        sigma = float(st.session_state[K("sigma")])  # a loaded file may go beyond the slider
        st.slider("Selective threshold n (keep |∂R/∂t| > n·σ)", min(SIGMA_SLIDER[0], sigma),
                  max(SIGMA_SLIDER[1], sigma), step=0.5, key=K("sigma"),
                  help="Hiley et al. (2020) uses 4 and says to tune it per task: lower keeps more "
                       "voxels as 'motion'.")
        set_default(K("sobel_border"), DEFAULT_OPTIONS.sobel_border)
        st.selectbox("Temporal border of the derivative", SOBEL_BORDERS, key=K("sobel_border"))
        set_default(K("selective"), DEFAULT_OPTIONS.selective)
        st.selectbox("Selective relevance", selective_variants(), key=K("selective"),
                     format_func=lambda v: f"{v} — {SELECTIVE_VARIANTS[v].summary}",
                     help=SELECTIVE_HELP)  # the core's text, as the CLI's --selective
    params: dict[str, dict[str, Any]] = {}
    tunable = [n for n in chosen if methods[n].params]
    if tunable:
        with st.expander("Method parameters"):
            for name in tunable:
                values = _param_inputs(name, methods[name].params)
                if values:
                    params[name] = values
    st.session_state[METHOD_PARAMS] = params


def _full_only_defaults(chosen: list[str], methods: dict) -> list[str]:
    """Keep the user's full-only choices; add methods that are newly chosen and costly to
    split (those that stop early: optimisations)."""
    known = st.session_state.get("_known_methods", [])
    current = [m for m in st.session_state.get(K("full_only"), []) if m in chosen]
    current += [m for m in chosen if m not in known and m not in current
                and methods[m].stops_early]
    st.session_state["_known_methods"] = list(chosen)
    assign(K("full_only"), current)
    return current


def _param_inputs(method: str, params: dict) -> dict[str, Any]:
    """Widgets for a method's parameters; returns the values the method accepts that differ
    from the default. A value the method refuses is explained under its box, and the
    default is used until it is fixed."""
    st.markdown(f"**{method}**")
    values: dict[str, Any] = {}
    slots: dict[str, Any] = {}
    refused: dict[str, ParameterError] = {}
    for pname, p in params.items():
        key = param_key(method, pname)
        if p.default is None:
            continue  # "automatic" (e.g. the CAM layer): chosen from the model
        if key not in st.session_state:  # first value via session state, never both ways
            st.session_state[key] = param_widget_value(p.default)
        values[pname] = _param_widget(pname, p, key)
        slots[pname] = st.empty()
        if isinstance(p.default, tuple) and not str(values[pname]).strip(" ,;"):
            refused[pname] = ParameterError(f"parameter {pname!r} needs at least one value")
            del values[pname]
    accepted, rejected = checked_params(method, values)
    for pname, exc in {**refused, **rejected}.items():
        slots[pname].error(f"{exc.user_message().rstrip('.')}. Using the default "
                           f"({param_widget_value(params[pname].default)}).")
    return accepted


def _param_widget(pname: str, p: Any, key: str) -> Any:
    """The widget of one parameter, bounded by the parameter's own range and choices."""
    default = p.default
    if isinstance(default, tuple):
        return st.text_input(pname, key=key, help=f"{p.help} — comma-separated")
    if p.choices:
        return st.selectbox(pname, list(p.choices), key=key, help=p.help)
    if isinstance(default, bool):
        return st.checkbox(pname, key=key, help=p.help)
    if isinstance(default, int):
        return st.number_input(pname, step=1, key=key, help=p.help,
                               min_value=None if p.low is None else int(p.low),
                               max_value=None if p.high is None else int(p.high))
    if isinstance(default, float):
        return st.number_input(pname, key=key, help=p.help, format="%g",
                               min_value=None if p.low is None else float(p.low),
                               max_value=None if p.high is None else float(p.high))
    return st.text_input(pname, key=key, help=p.help)


# --------------------------------------------------------------------------- display
def display_inputs() -> None:
    st.header("Display")
    set_default(K("panel"), "overlay")
    st.radio("Show relevance", ["overlay", "heatmap"], key=K("panel"), horizontal=True,
             format_func={"overlay": "on the frame", "heatmap": "as a heat map"}.get)
    set_default(K("show_selective"), False)
    st.toggle("Motion panel: selective relevance", key=K("show_selective"),
              help="Show only voxels whose relevance changes sharply in time (Hiley et al. 2020) "
                   "instead of the temporal part of the discriminative split.")
    cmaps = list(render.DIVERGING_CMAPS + render.SEQUENTIAL_CMAPS)
    set_default(K("cmap"), "bwr")
    st.selectbox("Colour map", cmaps, key=K("cmap"),
                 format_func=lambda c: c + (" (centred on zero)" if render.is_diverging(c)
                                            else " (positive only)"))
    set_default(K("grey"), True)
    st.toggle("Grey frames under the relevance", key=K("grey"),
              help="Red and blue stand out from a grey picture; the first panel keeps the "
                   "frame's colours.")
    set_default(K("alpha"), 0.8)
    st.slider("Overlay opacity", 0.0, 1.0, step=0.05, key=K("alpha"))
    set_default(K("gamma"), 0.5)
    st.slider("Contrast γ (1 = linear)", 0.2, 1.0, step=0.05, key=K("gamma"),
              help="Colour follows (|relevance| / scale)^γ: below 1, weak relevance becomes "
                   "visible. Zero and the full-colour value do not move, and the colour bars "
                   "show the real values at their ticks.")
    set_default(K("normalisation"), "per-clip")
    st.radio("Colour scale", list(render.NORMALISATIONS), key=K("normalisation"),
             format_func=NORMALISATION_LABELS.get,
             help="Relevance keeps its sign and units; only the colour scale changes. "
                  "Per frame shows where in each frame; per clip lets frames compare; shared "
                  "uses one scale for every method.")


# --------------------------------------------------------------------------- settings file
def settings_loader() -> None:
    with st.expander("Load settings (JSON)"):
        st.file_uploader("Settings saved with the Export button", type=["json"],
                         key="settings_upload", on_change=_load_settings,
                         label_visibility="collapsed")


def _load_settings() -> None:
    upload = st.session_state.get("settings_upload")
    if upload is None:
        return
    try:
        request_settings(Settings.from_json(upload.getvalue()))
        st.session_state["_flash"] = ("success", f"Settings loaded from {upload.name}.")
    except XaiError as exc:
        st.session_state["_flash"] = ("error", exc.user_message())
