"""Display of signed relevance: zero-centred colour maps, overlays, strips, saliency tubes, mp4.

Relevance stays signed and in its own units everywhere in ``xai_core``; this package is the
only place where it is *scaled for display*, and every scale it uses is returned so that a
legend can state it. All functions are pure (numpy in, ``uint8`` RGB out), except the
writers of :mod:`.encode`.

Modules
-------
* :mod:`.scale` — validation, display scaling ("normalisation"), contrast, resizing maps.
* :mod:`.colour` — colour tables, colourised maps, heat overlays.
* :mod:`.text` — font, labels, colour-bar legends, titles, placeholders.
* :mod:`.figures` — zoom, one-frame panels, overlaid clips, grids, frame strips, the
  model's crop outlined on a source frame.
* :mod:`.tubes` — the staggered Saliency Tubes view.
* :mod:`.encode` — PNG / JPEG bytes, PNG files, the overlaid clip as mp4.

Conventions
-----------
* Display scaling is always symmetric around zero (divide by a maximum ``|relevance|``),
  so zero keeps the colour map's neutral colour and red/blue mean evidence for/against
  the class. "Normalise" here means this display scaling, not the model-input
  normalisation of :mod:`xai_core.video.preprocess`.
* ``maps`` are ``(T, H, W)`` (a clip) or ``(H, W)`` (one frame); ``frames`` are
  ``(T, H, W, 3)`` or ``(H, W, 3)`` ``uint8`` RGB.
* A ``scale`` is the ``|relevance|`` that gets full colour: a float, or one value per
  frame (shape ``(T,)``) as returned by :func:`normalise` in ``"per-frame"`` mode.
* ``gamma`` (contrast) bends the colour scale: colour position = sign(R)·(|R|/scale)^gamma.
  1 is linear; below 1 makes weak relevance visible (relevance maps are heavy-tailed).
  Zero and ±scale stay where they are, and :func:`colour_bar` labels its ticks with the
  real values, so the legend stays true.
"""

from __future__ import annotations

from .colour import (
    DIVERGING_CMAPS,
    SEQUENTIAL_CMAPS,
    colour_table,
    colourise,
    is_diverging,
    neutral_colour,
    overlay,
)
from .encode import overlay_video, save_png, to_jpeg, to_png
from .figures import enlarge, frame_panel, grid, outline, overlay_frames, strip
from .scale import (
    NORMALISATIONS,
    SCALE_STATISTICS,
    Normalised,
    abs_statistic,
    check_finite,
    joint_scale,
    max_abs,
    normalise,
    relevance_over_time,
    scale_of,
    statistic_label,
)
from .text import Label, colour_bar, format_value, placeholder, titled
from .tubes import staggered_tubes

__all__ = [
    "DIVERGING_CMAPS",
    "NORMALISATIONS",
    "SCALE_STATISTICS",
    "SEQUENTIAL_CMAPS",
    "Label",
    "Normalised",
    "abs_statistic",
    "check_finite",
    "colour_bar",
    "colour_table",
    "colourise",
    "enlarge",
    "format_value",
    "frame_panel",
    "grid",
    "is_diverging",
    "joint_scale",
    "max_abs",
    "neutral_colour",
    "normalise",
    "outline",
    "overlay",
    "overlay_frames",
    "overlay_video",
    "placeholder",
    "relevance_over_time",
    "save_png",
    "scale_of",
    "staggered_tubes",
    "statistic_label",
    "strip",
    "titled",
    "to_jpeg",
    "to_png",
]
