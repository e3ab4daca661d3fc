"""A one-page, self-contained HTML report of one explanation, for stakeholders.

The page holds the verdict in plain words (:mod:`xai_core.verdict`), the prediction, the
four views (frame, full, spatial, temporal relevance: the discriminative split of Hiley
et al. 2019) at the key frames — those with the most positive temporal relevance —,
the per-frame relevance plot, what single frames alone predict, and the settings and
versions that produced it. Pictures are embedded as ``data:`` URIs and plotly.js inline,
so the file opens offline and can be mailed as it is.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_text
from ..results import Explanation
from ..verdict import Verdict, verdict
from .encode import to_png
from .movie import DEFAULT_DISPLAY, Display, display_scales, frame_views
from .scale import relevance_over_time

#: Key frames shown by default.
KEY_FRAMES = 3

_COLOURS = {"full": "#222222", "spatial": "#2ca02c", "temporal": "#9467bd",
            "selective": "#ff7f0e"}
_NAMES = {"full": "full", "spatial": "spatial (appearance)", "temporal": "temporal (motion)",
          "selective": "selective (motion voxels)"}

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em}
.verdict{border-left:6px solid #d62728;background:#fbf3f3;padding:.8em 1.2em;margin:1em 0}
.verdict.motion{border-color:#9467bd;background:#f6f2fa}
.verdict.mixed{border-color:#ff7f0e;background:#fdf5ec}
.verdict.static{border-color:#888;background:#f4f4f4}
.verdict b{font-size:1.25em;display:block;margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:2px 10px;
border-bottom:1px solid #ddd;text-align:left} img{max-width:100%;display:block;margin:.5em 0}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em} .note{color:#555}
"""


def key_frames(expl: Explanation, method: str, count: int = KEY_FRAMES) -> list[int]:
    """The ``count`` frames with the most positive motion relevance of ``method``, in order.

    Motion relevance is the temporal map of the discriminative split (Hiley et al.
    2019), or the selective map (Hiley et al. 2020) when the method was not split. When
    there is none (a static clip) the frames are spread evenly over the clip.
    """
    n = expl.frames.shape[0]
    count = max(1, min(int(count), n))
    maps = expl[method].maps()
    motion = maps.get("temporal", maps["selective"])
    pos, _ = relevance_over_time(motion)
    if not np.any(pos > 0):
        return sorted({int(round(i)) for i in np.linspace(0, n - 1, count)})
    order = np.argsort(-pos, kind="stable")[:count]
    return sorted(int(i) for i in order)


def relevance_figure(expl: Explanation, method: str, marks: Sequence[int] = ()) -> Any:
    """Plotly figure: positive (solid) and negative (dotted) relevance summed per frame,
    for each map of ``method``; the key frames ``marks`` as dashed lines."""
    import plotly.graph_objects as go  # plotly is needed only to draw this figure

    maps = expl[method].maps()
    x = np.arange(expl.frames.shape[0])
    traces = []
    for kind in [k for k in ("full", "spatial", "temporal") if k in maps] or ["full"]:
        pos, neg = relevance_over_time(maps[kind])
        for values, sign, dash in ((pos, "+", "solid"), (neg, "−", "dot")):
            traces.append(go.Scatter(x=x, y=values, mode="lines+markers",
                                     name=f"{_NAMES[kind]} {sign}", legendgroup=kind,
                                     line={"color": _COLOURS[kind], "dash": dash, "width": 2}))
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": t, "x1": t, "y0": 0,
               "y1": 1, "line": {"color": "#d62728", "width": 1, "dash": "dash"}}
              for t in marks]
    layout = {"template": "none", "height": 340, "margin": {"l": 70, "r": 10, "t": 20, "b": 40},
              "xaxis": {"title": {"text": "frame"}, "dtick": 1 if len(x) <= 32 else None},
              "yaxis": {"title": {"text": f"sum of {method} relevance"}, "exponentformat": "e",
                        "zeroline": True},
              "legend": {"orientation": "h", "y": -0.25}, "shapes": shapes}
    return go.Figure(data=traces, layout=layout)


def report_html(expl: Explanation, *, truth: str | int | None = None,
                method: str | None = None, display: Display | None = None,
                settings: Mapping[str, Any] | None = None, count: int = KEY_FRAMES,
                the_verdict: Verdict | None = None) -> str:
    """The report page as one HTML string (no external resources).

    Parameters
    ----------
    expl
        The explanation.
    truth
        The ground-truth class when known (it enters the verdict).
    method
        The method shown in the views and the plot (default: the verdict's, i.e. the
        first split method, else the first method).
    display
        How the maps are drawn (:class:`~xai_core.render.movie.Display`).
    settings
        What produced the view (dashboard settings, command-line arguments), printed.
    count
        Number of key frames (:func:`key_frames`).
    the_verdict
        A verdict already computed for ``expl`` (else computed here).
    """
    display = display or DEFAULT_DISPLAY
    v = the_verdict or verdict(expl, truth, method)
    shown = method or v.method or next(iter(expl.methods), None)
    esc = html.escape
    title = f"{expl.model} on {Path(expl.clip.source).name}: {v.headline}"
    body = [f"<h1>{esc(title)}</h1>",
            f"<p class='note'>Explaining <b>{esc(expl.target_name)}</b> · model "
            f"<b>{esc(expl.model)}</b> · clip <b>{esc(expl.clip.source)}</b> (frames "
            f"{expl.clip.indices[0]}–{expl.clip.indices[-1]}, every {expl.clip.stride})"
            + (f" · ground truth <b>{esc(v.truth)}</b>" if v.truth else "") + "</p>",
            f"<div class='verdict {esc(v.reliance)}'><b>{esc(v.headline)}</b>"
            f"{esc(v.text)}</div>"]
    body += _prediction_tables(expl)
    if shown is not None:
        marks = key_frames(expl, shown, count)
        scales = display_scales(expl, [shown], display.normalisation)
        body.append(f"<h2>The four views at the key frames ({esc(shown)})</h2>")
        body.append("<p class='note'>Key frames: those with the most positive motion "
                    "relevance. Red is evidence for the class, blue against it; the spatial "
                    "part is what the frame's appearance alone explains (the model shown the "
                    "frame frozen), the temporal part is the rest: evidence that exists only "
                    "because things move.</p>")
        for t in marks:
            png = to_png(frame_views(expl, t, [shown], scales, display))
            body.append(f"<img alt='frame {t}' src='data:image/png;base64,"
                        f"{base64.b64encode(png).decode('ascii')}'>")
        fig = relevance_figure(expl, shown, marks)
        body.append("<h2>Relevance per frame</h2>")
        body.append(fig.to_html(full_html=False, include_plotlyjs=True,
                                config={"displaylogo": False, "responsive": True}))
        body.append("<p class='note'>Sum of positive (solid) and negative (dotted) relevance in "
                    "each frame; dashed lines mark the key frames.</p>")
    body += _freeze_frame_table(expl)
    body.append("<h2>Settings and versions</h2>")
    record = {"settings": dict(settings or {}), "display": dataclasses.asdict(display),
              "options": expl.options.key(), "versions": dict(expl.versions),
              "weights_sha256": expl.weights_hash, "clip_sha256": expl.clip.content_hash,
              "verdict": v.to_dict()}
    body.append(f"<pre>{esc(json.dumps(record, indent=2, default=str))}</pre>")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def write_report(path: str | os.PathLike, expl: Explanation, **kwargs: Any) -> Path:
    """Write :func:`report_html` to ``path`` (atomically) and return the path."""
    return write_text(path, report_html(expl, **kwargs))


def _prediction_tables(expl: Explanation) -> list[str]:
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{p:.1%}</td></tr>"
                   for _, name, p in expl.top5)
    out = ["<h2>What the model predicts</h2>",
           f"<table><tr><th>class</th><th>probability</th></tr>{rows}</table>"]
    shares = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_share(r.motion_share.get('discriminative'))}"
        f"</td><td>{_share(r.motion_share.get('selective'))}</td></tr>"
        if r.decomposed else
        f"<tr><td>{html.escape(name)}</td><td>not split (full relevance only)</td>"
        f"<td>{_share(r.motion_share.get('selective'))}</td></tr>"
        for name, r in expl.methods.items())
    if shares:
        out += ["<h2>Motion share by method</h2>",
                "<table><tr><th>method</th><th>motion share (discriminative)</th>"
                f"<th>selective share</th></tr>{shares}</table>"]
    return out


def _freeze_frame_table(expl: Explanation) -> list[str]:
    probs = expl.freeze_frame_probabilities
    cells = "".join(
        f"<tr><td>{t}</td><td>{html.escape(expl.class_names[i])}</td><td>{probs[t, i]:.1%}"
        f"</td><td>{probs[t, expl.target]:.1%}</td></tr>"
        for t, i in enumerate(expl.freeze_frame_top))
    return ["<h2>Each frame alone</h2>",
            "<p class='note'>What the model predicts when shown one frame, frozen (no "
            "motion): if single frames already give the class, the model does not need "
            "the motion.</p>",
            f"<table><tr><th>frame</th><th>predicted alone</th><th>probability</th>"
            f"<th>{html.escape(expl.target_name)}</th></tr>{cells}</table>"]


def _share(v: float | None) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.1%}"
