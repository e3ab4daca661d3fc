"""Does a clip look like the model's world? Notices for predictions that deserve doubt.

An explanation is only as meaningful as the prediction it explains. Two things make a
prediction doubtful without any ground truth, and both are checked here (the dashboard
only shows the notices):

* **The model is unsure.** Its top class is close to chance: probability below
  :data:`CHANCE_FACTOR` / K (K classes). A clip outside the training distribution often
  gives a flat softmax.
* **The model does not see the video as it is.** Preprocessing (:func:`~xai_core.video.
  preprocess.crop_box`) cuts the sides of a wider video (a 16:9 video centre-cropped to a
  square loses 44 % of its width), squashes it (a fixed resize to another aspect), or
  scales it far from the model's input size (:data:`SCALE_FACTOR`: a 4K video shrunk 19×
  loses detail; a tiny video blown up is blurred).

Thresholds (documented, tunable by the caller):

====================== ======= ==========================================================
:data:`CHANCE_FACTOR`  2       top probability < 2/K (25 % for 8 classes, 0.5 % for 400)
:data:`SEEN_FRACTION`  0.9     notice when less than 90 % of the width or height is seen
:data:`SQUASH_LIMIT`   0.1     notice when a fixed resize changes the aspect by > 10 %
:data:`SCALE_FACTOR`   4       notice when the frame is shrunk > 4× or enlarged > 4×
====================== ======= ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .errors import ParameterError
from .models.spec import InputSpec
from .video.preprocess import crop_box, crop_geometry

__all__ = ["CHANCE_FACTOR", "SCALE_FACTOR", "SEEN_FRACTION", "SQUASH_LIMIT", "InputNotice",
           "aspect_name", "input_notices", "near_chance", "seen_fractions", "view_notices"]

#: The top class is "near chance" below this many times 1/K.
CHANCE_FACTOR = 2.0
#: Fraction of the source width (or height) below which the crop is worth a notice.
SEEN_FRACTION = 0.9
#: Relative change of aspect by a fixed resize above which the squash is worth a notice.
SQUASH_LIMIT = 0.1
#: Resize factor (either way) above which the scale is worth a notice.
SCALE_FACTOR = 4.0

#: Aspect ratios with a common name (width:height).
_COMMON_ASPECTS = ((16, 9), (4, 3), (1, 1), (3, 2), (21, 9), (9, 16), (3, 4), (2, 3), (5, 4))


@dataclass(frozen=True)
class InputNotice:
    """One reason to doubt a prediction: a short key and a sentence for the user."""

    kind: str  # near-chance | cropped | squashed | downscaled | upscaled
    message: str


def aspect_name(height: float, width: float) -> str:
    """``16:9``, ``4:3``, ``1:1`` … when within 2 % of a common ratio, else ``1.85:1``."""
    ratio = width / height
    for w, h in _COMMON_ASPECTS:
        if abs(ratio / (w / h) - 1) < 0.02:
            return f"{w}:{h}"
    frac = Fraction(ratio).limit_denominator(4)
    if abs(float(frac) / ratio - 1) < 0.005:
        return f"{frac.numerator}:{frac.denominator}"
    return f"{ratio:.2f}:1"


def seen_fractions(frame_hw: tuple[int, int], spec: InputSpec) -> tuple[float, float]:
    """``(width, height)`` fractions of a source frame of ``frame_hw`` the model sees."""
    h, w = (int(v) for v in frame_hw)
    _, _, bh, bw = crop_box((h, w), spec)
    return bw / w, bh / h


def near_chance(probabilities: np.ndarray, factor: float = CHANCE_FACTOR) -> InputNotice | None:
    """A notice when the top probability is below ``factor`` / K."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    if p.size < 2 or not np.all(np.isfinite(p)):
        raise ParameterError(f"need the probabilities of at least two classes, got {p.size}")
    k = p.size
    top = float(p.max())
    if top >= factor / k:
        return None
    return InputNotice(
        "near-chance",
        f"The model is unsure: its top class gets {top:.0%}, close to chance "
        f"(1/{k} = {1 / k:.1%}; the notice shows below {factor:g}/{k} = {factor / k:.1%}). "
        "The clip may be unlike anything it was trained on: read the explanation with care.")


def view_notices(frame_hw: tuple[int, int], spec: InputSpec) -> list[InputNotice]:
    """Notices about how preprocessing changes a frame of ``frame_hw`` = ``(H, W)`` pixels:
    sides cut by the centre crop, a squash by a fixed resize, a large change of scale."""
    h, w = (int(v) for v in frame_hw)
    if h < 1 or w < 1:
        raise ParameterError(f"a frame must be at least 1×1 pixels, got {w}×{h}")
    notices = []
    seen_w, seen_h = seen_fractions((h, w), spec)
    crop_shape = "a square" if spec.height == spec.width else \
        f"{aspect_name(spec.height, spec.width)} ({spec.width}×{spec.height})"
    if min(seen_w, seen_h) < SEEN_FRACTION:
        cut = "the left and right sides" if seen_w < seen_h else "the top and bottom"
        share = 1 - min(seen_w, seen_h)
        notices.append(InputNotice(
            "cropped",
            f"A {aspect_name(h, w)} video is centre-cropped to {crop_shape}: {cut} are not "
            f"seen ({share:.0%} of the {'width' if seen_w < seen_h else 'height'}). "
            "Evidence there cannot count; keep the action in the middle of the frame."))
    (rh, rw), _ = crop_geometry((h, w), spec)
    squash = (rw / rh) / (w / h)
    if spec.resize is not None and abs(squash - 1) > SQUASH_LIMIT:
        notices.append(InputNotice(
            "squashed",
            f"A {aspect_name(h, w)} video is resized to {rw}×{rh} ({aspect_name(rh, rw)}) "
            f"before the crop: shapes are {'stretched' if squash > 1 else 'squeezed'} "
            f"sideways by {abs(squash - 1):.0%}."))
    factor = rh / h  # the same vertically and horizontally unless squashed
    if factor < 1 / SCALE_FACTOR:
        notices.append(InputNotice(
            "downscaled",
            f"The {w}×{h} video is shrunk {1 / factor:.0f}× to the model's input: fine "
            "details (small objects, thin limbs) are lost before the model sees them."))
    elif factor > SCALE_FACTOR:
        notices.append(InputNotice(
            "upscaled",
            f"The {w}×{h} video is enlarged {factor:.0f}× to the model's input: it is much "
            "blurrier than what the model was trained on."))
    return notices


def input_notices(probabilities: np.ndarray, frame_hw: tuple[int, int] | None,
                  spec: InputSpec) -> list[InputNotice]:
    """Every notice for one prediction: near chance, and how the frame was changed
    (``frame_hw`` of the source video; ``None`` when unknown, e.g. in-memory frames)."""
    notices = [n for n in [near_chance(probabilities)] if n is not None]
    if frame_hw is not None:
        notices += view_notices(frame_hw, spec)
    return notices
