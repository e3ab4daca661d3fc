"""Export: the result arrays, the current view as PNG, an overlay video, the settings; for
demos a side-by-side movie and a one-page HTML report (both built by ``xai_core.render``);
and the link to this view.

Files are produced only when their button is clicked (Streamlit calls the ``data``
function then), so scrubbing never pays for encoding.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import streamlit as st

from xai_core import render
from xai_core.render.movie import Display, write_side_by_side
from xai_core.render.report_page import report_html
from xai_core.results import Explanation

from .display import (
    TITLES,
    Scales,
    desaturation,
    frame_image,
    maps_of,
    panel,
    scale_label,
    shown_kind,
)
from .link import render_link
from .settings import Settings
from .verdict import current, truth_of


def npz_zip(expl: Explanation) -> bytes:
    """``to_npz`` folder (one npz per method + summary.json) as a zip."""
    with tempfile.TemporaryDirectory(prefix="xai-export-") as tmp:
        folder = expl.to_npz(Path(tmp) / "explanation")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.iterdir()):
                zf.write(path, f"explanation/{path.name}")
        return buf.getvalue()


def view_image(expl: Explanation, settings: Settings, scales: Scales, t: int) -> np.ndarray:
    """The side-by-side view of frame ``t`` as one image, with titles and colour bars."""
    method = settings.shown_method or next(iter(expl.methods))
    kinds = ("full", "spatial", shown_kind(settings))
    tiles = [frame_image(expl, t)] + [panel(expl, method, k, t, settings, scales) for k in kinds]
    w = tiles[0].shape[1]
    bars = [np.full((56, w, 3), 255, np.uint8)]
    bars += [render.colour_bar(settings.cmap, float(scales[(method, k)][t]), width=w, height=56,
                               label=scale_label(settings), gamma=settings.gamma)
             if (method, k) in scales else np.full((56, w, 3), 255, np.uint8) for k in kinds]
    body = render.grid([tiles, bars], col_titles=[f"Frame {t}"] + [TITLES[k] for k in kinds], gap=4)
    title = (f"{expl.model} · {method} · explaining “{expl.target_name}” · red = for, "
             "blue = against")
    return render.titled(body, title, size=13)


def view_image_png(expl: Explanation, settings: Settings, scales: Scales, t: int) -> bytes:
    return render.to_png(view_image(expl, settings, scales, t))


def overlay_mp4(expl: Explanation, settings: Settings, scales: Scales) -> bytes:
    method = settings.shown_method or next(iter(expl.methods))
    with tempfile.TemporaryDirectory(prefix="xai-export-") as tmp:
        path = render.overlay_video(Path(tmp) / "overlay.mp4", expl.frames,
                                    maps_of(expl, method)["full"], fps=8.0, cmap=settings.cmap,
                                    scale=scales[(method, "full")], alpha=settings.alpha,
                                    gamma=settings.gamma, desaturate=desaturation(settings))
        return path.read_bytes()


def display_of(settings: Settings) -> Display:
    """The sidebar's display choices, as ``xai_core.render`` takes them."""
    return Display(cmap=settings.cmap, normalisation=settings.normalisation,
                   panel=settings.panel, alpha=settings.alpha, gamma=settings.gamma,
                   desaturate=desaturation(settings), motion=shown_kind(settings))


def side_by_side_mp4(expl: Explanation, settings: Settings) -> bytes:
    """The side-by-side movie (frame | full | spatial | motion, a row per method)."""
    with tempfile.TemporaryDirectory(prefix="xai-export-") as tmp:
        return write_side_by_side(Path(tmp) / "side_by_side.mp4", expl, list(expl.methods),
                                  display_of(settings)).read_bytes()


def report_page(expl: Explanation, settings: Settings) -> bytes:
    """The one-page HTML report (verdict, key frames, per-frame plot, settings, versions)."""
    method = settings.shown_method if settings.shown_method in expl.methods else None
    page = report_html(expl, truth=truth_of(settings), method=method,
                       display=display_of(settings), settings=json.loads(settings.to_json()),
                       the_verdict=current(expl, settings))
    return page.encode("utf-8")


def render_view(expl: Explanation, settings: Settings, scales: Scales, t: int) -> None:
    stem = f"{expl.model}-{Path(expl.clip.source).stem}-{expl.target_name}".replace(" ", "_")
    cols = st.columns(4)
    cols[0].download_button("Result arrays (npz, zip)", lambda: npz_zip(expl),
                            file_name=f"{stem}.zip", mime="application/zip", on_click="ignore",
                            help="One npz per method (full, spatial and temporal when split, "
                                 "selective; signed, in the method's units) and summary.json.")
    cols[1].download_button("Current view (PNG)",
                            lambda: view_image_png(expl, settings, scales, t),
                            file_name=f"{stem}-frame{t}.png", mime="image/png", on_click="ignore")
    cols[2].download_button("Overlay video (mp4)", lambda: overlay_mp4(expl, settings, scales),
                            file_name=f"{stem}.mp4", mime="video/mp4", on_click="ignore",
                            help="Full relevance of the shown method over the clip, H.264.")
    cols[3].download_button("Settings (JSON)", settings.to_json(), file_name=f"{stem}.json",
                            mime="application/json", on_click="ignore",
                            help="All that reproduces this view; load it in the sidebar.")
    demo = st.columns(4)
    demo[0].download_button("Side-by-side video (mp4)", lambda: side_by_side_mp4(expl, settings),
                            file_name=f"{stem}-side_by_side.mp4", mime="video/mp4",
                            on_click="ignore",
                            help="Every frame with full, spatial and motion relevance, a row "
                                 "per method, colour bars and a frame counter (H.264).")
    demo[1].download_button("Report (HTML)", lambda: report_page(expl, settings),
                            file_name=f"{stem}-report.html", mime="text/html",
                            on_click="ignore",
                            help="One self-contained page for stakeholders: the verdict, the "
                                 "four views at the key frames, relevance per frame, settings "
                                 "and versions. Opens offline.")
    render_link(settings)
