"""The shareable link: the view's settings in the page's URL, read on a session's first run.

The URL holds :func:`to_query_params` of the settings and is rewritten on every run whose
settings differ; a session's first run reads it (:func:`from_query_params`), so opening a
link shows the same model, clip, methods, class, frame and display. Uploaded files cannot
travel in a link; the page says so where it offers the link.

The link and the settings JSON use one mapping (:meth:`Settings.flat`): every setting
under its field name, the decomposition options flat, method parameters as
``param=NAME:key=value,...`` (:func:`~xai_core.registry.format_spec`). A value of the link
is checked as the JSON's are (one at a time): a bad one is reported and replaced by its
default, the others still apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from xai_core.decompose import DecompositionOptions
from xai_core.errors import ParameterError
from xai_core.methods.base import METHODS
from xai_core.models.registry import get_spec
from xai_core.registry import format_spec, parse_spec

from .resources import bundled_model_names, folder_files
from .samples import sample_clips
from .settings import (
    FIELD_TYPES,
    OPTION_FIELDS,
    WIDGET_RANGES,
    Settings,
    checked_params,
    request_settings,
    same_kind,
    widget_choices,
)

#: Session key: this session has read its link (only its first run does).
LINK_READ = "_link_read"


def to_query_params(settings: Settings) -> dict[str, str | list[str]]:
    """The link's query parameters: the settings that differ from the defaults (and
    always the model, the sample clip and the methods); nothing of an uploaded file."""
    default = Settings().flat()
    out: dict[str, str | list[str]] = {}
    for key, value in settings.flat().items():
        if key == "upload" or value is None or (isinstance(value, str) and
                                                value.startswith("upload:")):
            continue
        if value != default[key] or key in ("model", "sample", "methods"):
            out[key] = _link_text(value)
    if settings.params():
        out[LINK_PARAM] = [format_spec(m, p) for m, p in settings.params().items()]
    return out

def from_query_params(params: Mapping[str, str | list[str]],
                      base: Settings | None = None) -> tuple[Settings, list[str]]:
    """``base`` (default: the defaults) with the link's values; and, per value that
    cannot be used here (unknown, mistyped, out of range, stale), why, in one line.
    A refused value leaves its setting at the default."""
    values = (base or Settings()).flat()
    default = Settings().flat()
    notes: list[str] = []
    specs: list[str] = []
    for key, raw in params.items():
        texts = [str(r) for r in (raw if isinstance(raw, (list, tuple)) else [raw])]
        if key == LINK_PARAM:
            specs += texts
            continue
        if key not in values or key == "upload":
            notes.append(f"`{key}` is not a setting (ignored).")
            continue
        text = texts[-1] if texts else ""
        try:
            values[key] = _link_value(key, text, default[key])
        except ParameterError as exc:
            notes.append(f"`{key}={text}`: {exc.message} — using the default.")
            values[key] = default[key]
    _settle_link(values, default, notes)
    options = DecompositionOptions(**{k: values.pop(k) for k in OPTION_FIELDS})
    params: dict[str, dict[str, Any]] = {}
    for spec in specs:
        try:
            name, kv = parse_spec(spec)
            if name not in values["methods"]:
                raise ParameterError(f"{name!r} is not among the methods")
            accepted, refused = checked_params(name, kv)
        except ParameterError as exc:
            notes.append(f"`{LINK_PARAM}={spec}`: {exc.message} — ignored.")
            continue
        notes += [f"`{LINK_PARAM}={spec}`: {e.message} — using the default {k}."
                  for k, e in refused.items()]
        if accepted:
            params[name] = accepted
    settings = Settings(**values, options=options, method_params=params)
    try:
        settings.check_widget_values()
    except ParameterError as exc:  # cannot happen field by field; never keep a bad view
        return Settings(), [*notes, f"{exc.message} — using the defaults."]
    return settings, notes


#: Query parameter of the method parameters (repeated: one ``NAME:key=value,...`` each).
LINK_PARAM = "param"

def _link_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _link_value(key: str, text: str, default: Any) -> Any:
    """One link value read as the type of its setting and checked as the JSON's are."""
    kind = FIELD_TYPES.get(key) or (int if key == "chunk_size" else None)
    like = default if default is not None else (kind or str)()
    try:
        if isinstance(like, bool):
            value = {"true": True, "1": True, "false": False, "0": False}[text.lower()]
        elif isinstance(like, (int, float)):
            value = type(like)(text)
        elif isinstance(like, list):
            value = [v.strip() for v in text.split(",") if v.strip()]
        else:
            value = text
    except (KeyError, ValueError):
        raise ParameterError(f"{text!r} is not {type(like).__name__}") from None
    if not same_kind(like, value):
        raise ParameterError(f"{text!r} is not {type(like).__name__}")
    choices = {**widget_choices(), "model": tuple(bundled_model_names()),
               "compare_model": tuple(bundled_model_names()),
               "sample": tuple(s.name for s in sample_clips()), "methods": tuple(METHODS),
               "full_only": tuple(METHODS),
               "checkpoint": tuple(folder_files((".pt", ".pth"))),
               "classes": tuple(folder_files((".txt",)))}.get(key)
    for item in value if isinstance(value, list) else [value]:
        if choices is not None and item not in choices:
            raise ParameterError(f"{item!r} is not available here")
    low, high = WIDGET_RANGES.get(key, (None, None))
    if low is not None and (value < low or (high is not None and value > high)):
        raise ParameterError(f"{value!r} is out of range")
    if key in OPTION_FIELDS:
        DecompositionOptions(**{key: value})  # the core checks its own options
    if key == "methods" and not value:
        raise ParameterError("no method")
    return value


def _settle_link(values: dict[str, Any], default: dict[str, Any], notes: list[str]) -> None:
    """Settings of a link that must fit each other: methods, shown method, frame."""
    stray = [m for m in values["full_only"] if m not in values["methods"]]
    if stray:
        notes.append(f"`full_only`: {', '.join(stray)} not among the methods (ignored).")
        values["full_only"] = [m for m in values["full_only"] if m in values["methods"]]
    if values["shown_method"] not in (None, *values["methods"]):
        notes.append(f"`shown_method={values['shown_method']}` is not among the methods.")
        values["shown_method"] = None
    if values["model_source"] == "bundled" and values["model"] in bundled_model_names():
        frames = get_spec(values["model"]).input.num_frames
        if values["frame"] >= frames:
            notes.append(f"`frame={values['frame']}`: the clip has {frames} frames — using "
                         "the first.")
            values["frame"] = default["frame"]


def read_link() -> list[str]:
    """On a session's first run only, the link's settings win over the defaults.

    Call before any widget is drawn: they are applied like a loaded settings file.
    Returns, one line each, what in the link could not be used (its default was).
    """
    if st.session_state.get(LINK_READ):
        return []
    st.session_state[LINK_READ] = True
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    if not params:
        return []
    settings, notes = from_query_params(params, Settings.from_session())
    request_settings(settings)
    return notes


def show_link_notes(notes: list[str]) -> None:
    """One short warning for what a link asked and this app cannot do."""
    if notes:
        st.warning("**Part of the link could not be used; defaults were used instead.** "
                   + " ".join(notes))


def write_link(settings: Settings) -> None:
    """Put ``settings`` in the page's URL (only when they differ from what it holds)."""
    want = to_query_params(settings)
    have = {k: st.query_params.get_all(k) for k in st.query_params}
    if {k: v if isinstance(v, list) else [v] for k, v in want.items()} != have:
        st.query_params.from_dict(want)


def link_url(settings: Settings) -> str:
    """The address that reproduces ``settings``: this page's URL and the query."""
    base = (st.context.url or "").split("?")[0]
    return f"{base}?{urlencode(to_query_params(settings), doseq=True)}"


def render_link(settings: Settings) -> None:
    """The link to this view, to copy (the code box has a copy button), and what it lacks."""
    write_link(settings)  # the frame moves in a fragment run: keep the URL up to date
    st.markdown("**Link to this view** — opening it shows this model, clip, methods, class, "
                "frame and display.")
    st.code(link_url(settings), language=None, wrap_lines=True)
    missing = []
    if settings.clip_source == "upload":
        missing.append("the uploaded video")
    if settings.model_source == "own" and any(
            str(v).startswith("upload:") for v in (settings.checkpoint, settings.classes)):
        missing.append("the uploaded checkpoint or class names")
    if missing:
        st.caption(f"Uploaded files cannot be part of a link: {' and '.join(missing)} must be "
                   "uploaded again by whoever opens it.")
