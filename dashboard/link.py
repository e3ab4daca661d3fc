"""The shareable link: the view's settings in the page's URL, read on a session's first run.

The URL holds :meth:`~dashboard.settings.Settings.to_query_params` and is rewritten on
every run whose settings differ; a session's first run reads it
(:meth:`~dashboard.settings.Settings.from_query_params`), so opening a link shows the same
model, clip, methods, class, frame and display. Uploaded files cannot travel in a link;
the page says so where it offers the link.
"""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from .settings import Settings, request_settings

#: Session key: this session has read its link (only its first run does).
LINK_READ = "_link_read"


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
    settings, notes = Settings.from_query_params(params, Settings.from_session())
    request_settings(settings)
    return notes


def show_link_notes(notes: list[str]) -> None:
    """One short warning for what a link asked and this app cannot do."""
    if notes:
        st.warning("**Part of the link could not be used; defaults were used instead.** "
                   + " ".join(notes))


def write_link(settings: Settings) -> None:
    """Put ``settings`` in the page's URL (only when they differ from what it holds)."""
    want = settings.to_query_params()
    have = {k: st.query_params.get_all(k) for k in st.query_params}
    if {k: v if isinstance(v, list) else [v] for k, v in want.items()} != have:
        st.query_params.from_dict(want)


def link_url(settings: Settings) -> str:
    """The address that reproduces ``settings``: this page's URL and the query."""
    base = (st.context.url or "").split("?")[0]
    return f"{base}?{urlencode(settings.to_query_params(), doseq=True)}"


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
