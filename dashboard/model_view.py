"""What the model sees: its crop drawn on the video's own frame, and doubts about the input.

The box is :func:`xai_core.video.preprocess.crop_box` — the geometry the preprocessing
itself uses — and the notices (near-chance prediction, sides cut off, squashed, far from
the input size) are :func:`xai_core.input_fit.input_notices`; this module only draws them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from xai_core import render
from xai_core.input_fit import InputNotice, input_notices, seen_fractions
from xai_core.models.spec import InputSpec
from xai_core.results import Explanation
from xai_core.video.preprocess import crop_box
from xai_core.video.read import read_sample

#: Width of the source frame as shown (the box is drawn at this size).
SHOWN_WIDTH = 360


@st.cache_data(show_spinner=False, max_entries=16)
def _source_frame(path: str, mtime_ns: int, index: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One frame of the video, shrunk for display, and the video's (H, W)."""
    sample = read_sample(path, start=index, num_frames=1)
    frame = sample.frames[0]
    h, w = frame.shape[:2]
    zoom = min(1.0, SHOWN_WIDTH / w) if w > SHOWN_WIDTH else SHOWN_WIDTH / w
    return render.enlarge(frame, zoom), (h, w)


def notices(expl: Explanation, spec: InputSpec, source_hw: tuple[int, int] | None
            ) -> list[InputNotice]:
    return input_notices(expl.probabilities, source_hw, spec)


def render_view(expl: Explanation, spec: InputSpec, video: Path | None) -> None:
    """The notices (as warnings) and, in an expander, the crop on the source frame."""
    shown = source_hw = None
    if video is not None and Path(video).is_file():
        index = int(expl.clip.indices[0]) if expl.clip.indices else 0
        shown, source_hw = _source_frame(str(video), Path(video).stat().st_mtime_ns, index)
    found = notices(expl, spec, source_hw)
    for notice in found:
        st.warning(f"**Out of the model's world?** {notice.message}")
    if shown is None:
        return
    h, w = source_hw
    top, left, bh, bw = crop_box((h, w), spec)
    sy, sx = shown.shape[0] / h, shown.shape[1] / w
    img = render.outline(shown, (top * sy, left * sx, bh * sy, bw * sx))
    seen = seen_fractions((h, w), spec)
    with st.expander("What the model sees: its crop of the video", expanded=bool(found)):
        cols = st.columns([2, 3])
        cols[0].image(img, width="stretch", output_format="JPEG",
                      caption=f"Video frame {expl.clip.indices[0] if expl.clip.indices else 0} "
                              f"({w}×{h}); the yellow box is what the model sees.")
        resize = (f"resized to {spec.resize[1]}×{spec.resize[0]}" if spec.resize else
                  f"short side scaled to {spec.short_side or max(spec.height, spec.width)}")
        cols[1].markdown(
            f"The model takes **{spec.num_frames} frames of {spec.width}×{spec.height}**: each "
            f"frame is {resize}, then centre-cropped. The box covers "
            f"{seen[0]:.0%} of the width and {seen[1]:.0%} of the height "
            f"({bw:.0f}×{bh:.0f} of {w}×{h} pixels). Relevance can only fall inside it.")
