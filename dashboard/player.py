"""The frame player: every frame of the four views sent once, switched in the browser.

Scrubbing used to be a Streamlit round trip per step (the images re-sent each time:
130–300 ms until the first panel changed). Here the frames of the clip and of the full,
spatial and temporal (or selective) relevance of every method — of one model, or of two
side by side — are encoded once per explanation and display choice (JPEG data URIs, each
distinct picture once: the frame column is shared by the methods of a model, a colour
bar by every frame with the same scale) and handed to a small component
(``player_frontend/index.html``: plain JavaScript, no build step). In the browser a step
swaps picture sources, Play runs at the clip's frame rate, and ← → / Space work on the
whole page (the component listens on its own document and on the page's).

The server keeps a coarser notion of the current frame, ``st.session_state["s_frame"]``
(the per-frame plot's marker, the method grid, the export): the player sends its frame
back only when the user presses *Sync* or pauses playback. A frame set on the server (a
click on the per-frame plot, a loaded settings file) is passed to the player as a *seek*,
which it follows once.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from streamlit.components import v1 as components

from xai_core import render
from xai_core.results import Explanation

from .display import (
    TITLES,
    Scales,
    colour_bar,
    frame_image,
    has_map,
    panel,
    percent,
    scale_options,
    shown_kind,
    token,
)
from .settings import Settings, widget_key

FRONTEND = Path(__file__).resolve().parent / "player_frontend"

#: Session keys: the server's frame, the last frame the player synced, the seek handed
#: to the player, the last sync handled.
FRAME_KEY = widget_key("frame")
SYNCED, SEEK, HANDLED = "_player_synced", "_player_seek", "_player_handled"

#: Frames per second when the video's rate is unknown, and the range Play runs at.
DEFAULT_FPS, FPS_RANGE = 8.0, (1.0, 30.0)

JPEG_QUALITY = 85


@dataclass
class Group:
    """One model's rows in the player: its explanation, scales and failed methods."""

    expl: Explanation
    scales: Scales
    title: str
    errors: dict[str, str] = field(default_factory=dict)
    methods: Sequence[str] = ()  # display order; default: the explanation's, then errors


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class _Pool:
    """Distinct pictures, each encoded once; rows refer to them by index."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[bytes, int] = {}

    def add(self, img: np.ndarray, png: bool = False) -> int:
        arr = np.ascontiguousarray(img)
        key = hashlib.blake2b(arr.tobytes() + repr((arr.shape, png)).encode(),
                              digest_size=16).digest()
        if key not in self._index:
            data = render.to_png(arr) if png else render.to_jpeg(arr, JPEG_QUALITY)
            self.items.append(_uri(data, "image/png" if png else "image/jpeg"))
            self._index[key] = len(self.items) - 1
        return self._index[key]


def clip_fps(fps: float | None, stride: int) -> float:
    """Play rate: the video's frames per second over the stride (real time), clamped."""
    rate = (fps or DEFAULT_FPS) / max(1, int(stride))
    return float(min(max(rate, FPS_RANGE[0]), FPS_RANGE[1]))


def payload(groups: Sequence[Group], settings: Settings, fps: float) -> dict[str, Any]:
    """What the player needs, JSON-ready: the pictures once, rows of indices into them."""
    pool = _Pool()
    kinds = ("full", "spatial", shown_kind(settings))
    out_groups = []
    for group in groups:
        expl = group.expl
        n = int(expl.frames.shape[0])
        frames = [pool.add(frame_image(expl, t)) for t in range(n)]
        names = list(group.methods) or [*expl.methods, *group.errors]
        rows = []
        for method in names:
            if method in group.errors or method not in expl.methods:
                rows.append({"method": method, "frames": frames, "cells": [], "bars": [],
                             "error": group.errors.get(method, "not computed")})
                continue
            result = expl[method]
            share = result.motion_share.get("discriminative")
            cells, bars = [], []
            for kind in kinds:
                cells.append([pool.add(panel(expl, method, kind, t, settings, group.scales))
                              for t in range(n)])
                bars.append([pool.add(colour_bar(expl, method, kind, t, settings, group.scales),
                                      png=True) for t in range(n)]
                            if has_map(expl, method, kind) else None)
            rows.append({"method": method, "frames": frames, "cells": cells, "bars": bars,
                         "share": (f"motion share {percent(share)}" if result.decomposed
                                   else "full relevance only (not split)"),
                         "error": None})
        out_groups.append({"title": group.title, "n": n, "rows": rows,
                           "video": [int(i) for i in expl.clip.indices]})
    scope, statistic = scale_options(settings)
    return {
        "token": _payload_token(groups, settings, kinds, scope, statistic),
        "pool": pool.items,
        "columns": ["Frame", *(TITLES[k] for k in kinds)],
        "groups": out_groups,
        "n": max(g["n"] for g in out_groups),
        "fps": fps,
    }


def _payload_token(groups: Sequence[Group], settings: Settings, kinds: tuple[str, ...],
                   scope: str, statistic: str) -> str:
    """Identity of the pictures: the explanations and every display choice they depend on."""
    parts = [token(g.expl) + "|" + g.title + "|" + repr(sorted(g.errors.items()))
             + "|" + repr(list(g.methods)) for g in groups]
    parts.append(repr((kinds, settings.panel, settings.cmap, settings.alpha, settings.gamma,
                       settings.grey, settings.normalisation, scope, statistic)))
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=12).hexdigest()


def _memo_payload(groups: Sequence[Group], settings: Settings, fps: float) -> dict[str, Any]:
    """:func:`payload`, built once per explanation and display choice in this session."""
    kinds = ("full", "spatial", shown_kind(settings))
    scope, statistic = scale_options(settings)
    key = (_payload_token(groups, settings, kinds, scope, statistic), fps)
    memo = st.session_state.get("_player_memo")
    if memo is None or memo[0] != key:
        memo = (key, payload(groups, settings, fps))
        st.session_state["_player_memo"] = memo
    return memo[1]


def seek_request(n: int) -> dict[str, int]:
    """The seek handed to the player: bumped whenever the server's frame was set by
    something other than the player itself (plot click, loaded settings)."""
    frame = int(st.session_state.get(FRAME_KEY, 0) or 0)
    frame = frame if 0 <= frame < n else 0
    st.session_state[FRAME_KEY] = frame
    seek = st.session_state.get(SEEK) or {"id": 0, "frame": 0}
    if st.session_state.get(SYNCED) != frame:
        seek = {"id": int(seek["id"]) + 1, "frame": frame}
        st.session_state[SEEK] = seek
        st.session_state[SYNCED] = frame
    return seek


def take_sync(value: Any, n: int) -> int | None:
    """The frame the player sent (Sync pressed, or playback paused), once per sending."""
    if not isinstance(value, dict) or value.get("nonce") == st.session_state.get(HANDLED):
        return None
    st.session_state[HANDLED] = value.get("nonce")
    try:
        frame = int(value.get("frame"))
    except (TypeError, ValueError):
        return None
    if not 0 <= frame < n:
        return None
    st.session_state[FRAME_KEY] = frame
    st.session_state[SYNCED] = frame
    return frame


_declared: Any = None


def _component() -> Any:
    """The player component, registered with the running Streamlit server (again on every
    run: a server restarted in the same process, or a test's runtime, needs it)."""
    global _declared
    try:
        _declared = components.declare_component("frame_player", path=str(FRONTEND))
    except RuntimeError:  # the runtime went away meanwhile (tests): the declared one serves
        if _declared is None:
            raise
    return _declared


def render_player(groups: Sequence[Group], settings: Settings, fps: float,
                  key: str = "player") -> int:
    """Draw the player; returns the server's current frame (after a sync, the player's)."""
    data = _memo_payload(groups, settings, fps)
    seek = seek_request(data["n"])
    value = _component()(data=data, seek=seek, key=key, default=None)
    synced = take_sync(value, data["n"])
    return int(st.session_state[FRAME_KEY]) if synced is None else synced
