"""The interactive plot of a :class:`~xai_core.timeline.Timeline` (``timeline.html``).

Two rows over the video's seconds: the top-1 class of every window (bars as wide as the
window, one colour per class, the top-5 on hover) with the mean probability a single
frozen frame gives the explained class (dotted), and the motion share of the method.
plotly is imported on use: importing ``xai_core`` does not pay for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .timeline import Timeline

__all__ = ["timeline_figure"]


def timeline_figure(tl: Timeline) -> Any:
    """A plotly figure of ``tl``: top-1 class and probability, motion share, over time.

    Parameters
    ----------
    tl
        A complete or partial timeline (the title says when it is partial).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        row_heights=[0.6, 0.4],
                        subplot_titles=("top-1 class: probability (bars); a single frozen "
                                        "frame (dotted)", f"motion share ({tl.method}): how "
                                        "much of the decision is motion"))
    ws = tl.windows
    mid = [(w.start_s + w.end_s) / 2 for w in ws]
    hover = [f"{_clock(w.start_s)}–{_clock(w.end_s)} (window {w.index})<br>"
             + "<br>".join(f"{n}: {p:.1%}" for n, p in w.top) for w in ws]
    palette = qualitative.Plotly + qualitative.Dark24 + qualitative.Light24
    for c, name in enumerate(dict.fromkeys(w.top1 for w in ws)):
        idx = [i for i, w in enumerate(ws) if w.top1 == name]
        fig.add_trace(go.Bar(x=[mid[i] for i in idx], y=[ws[i].top1_prob for i in idx],
                             width=[ws[i].end_s - ws[i].start_s for i in idx], name=name,
                             marker_color=palette[c % len(palette)], legendgroup="classes",
                             hovertext=[hover[i] for i in idx], hoverinfo="text"), 1, 1)
    fig.add_trace(go.Scatter(x=mid, y=[w.freeze_frame_prob for w in ws], mode="lines",
                             name="explained class, one frozen frame (mean)",
                             line={"color": "black", "dash": "dot", "width": 1}), 1, 1)
    share = [None if math.isnan(w.motion_share) else w.motion_share for w in ws]
    fig.add_trace(go.Scatter(x=mid, y=share, mode="lines+markers", connectgaps=False,
                             name="motion share", line={"color": "#d62728"},
                             hovertext=[f"{h}<br>motion share of {w.target}: "
                                        + ("n/a" if s is None else f"{s:.0%}")
                                        for h, w, s in zip(hover, ws, share, strict=True)],
                             hoverinfo="text"), 2, 1)
    state = "" if tl.complete else f" — partial: {len(ws)} of {tl.planned} windows"
    fig.update_layout(title=f"{Path(tl.video).name}: {tl.model}, windows of {tl.clip_frames} "
                            f"frames, every {tl.sample_every} frame(s), step "
                            f"{tl.window_step}{state}",
                      barmode="overlay", bargap=0, height=620, hovermode="closest")
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    fig.update_xaxes(title_text="time in the video (s)", range=[0, tl.duration_s], row=2, col=1)
    return fig


def _clock(seconds: float) -> str:
    """``m:ss.ss`` for hover labels."""
    return f"{int(seconds // 60)}:{seconds % 60:05.2f}"
