"""Display helpers shared by the views: which map, what scale, what the legend says.

Numbers are never changed here: maps come from the :class:`~xai_core.results.Explanation`
and are scaled for colour by :mod:`xai_core.render`; this module only decides *which*
scale (the normalisation chosen in the sidebar) and how to word it.
"""

from __future__ import annotations

import json

import numpy as np

from xai_core import render
from xai_core.results import Explanation

from .state import Settings

#: Map kinds of a decomposed explanation, in display order.
KINDS: tuple[str, ...] = ("full", "spatial", "temporal", "selective")

TITLES = {
    "frame": "Frame",
    "full": "Full relevance",
    "spatial": "Spatial (appearance)",
    "temporal": "Temporal (motion)",
    "selective": "Selective (motion voxels)",
}

NORMALISATION_LABELS = {
    "per-frame": "per frame",
    "per-clip": "per clip",
    "shared": "shared across methods",
}

#: Zoom of the 112-pixel model input for display.
ZOOM = 2.0

Scales = dict[tuple[str, str], np.ndarray]


def token(expl: Explanation) -> str:
    """A stable identity of an explanation, for memos of pictures drawn from it.

    (``id()`` is not: a new explanation may reuse a collected one's id.)
    """
    parts = [expl.model, expl.weights_hash, expl.clip.content_hash, expl.clip.source,
             str(expl.target), json.dumps(expl.options.key(), sort_keys=True)]
    parts += [json.dumps([n, r.params], sort_keys=True, default=str)
              for n, r in expl.methods.items()]
    return "|".join(parts)


#: Why a spatial or temporal map is missing, and where to change it.
NOT_SPLIT = ("Not computed: full relevance only for this method (the spatial / temporal "
             "split is off in Decomposition options, it costs one explanation per frame).")


def maps_of(expl: Explanation, method: str) -> dict[str, np.ndarray]:
    """The (T, H, W) maps of one method that exist (no spatial / temporal if not split)."""
    return expl[method].maps()


def has_map(expl: Explanation, method: str, kind: str) -> bool:
    return kind in maps_of(expl, method)


def scales_for(expl: Explanation, settings: Settings) -> Scales:
    """Display scale, one per frame, of every (method, kind) under the chosen normalisation.

    ``"shared"`` takes one scale for every map of every method, so colours compare
    across methods (meaningful when the methods share units, e.g. LRP variants).
    """
    mode = settings.normalisation
    ref = None
    if mode == "shared":
        ref = render.max_abs(*(m for name in expl.methods for m in maps_of(expl, name).values()))
    out: Scales = {}
    for name in expl.methods:
        for kind, maps in maps_of(expl, name).items():
            out[(name, kind)] = render.scale_of(maps, mode, ref)
    return out


def units(expl: Explanation, method: str) -> str:
    """What one unit of relevance is, in words, for legends."""
    if expl.options.normalise == "max-abs":
        return "unit-less (max-abs normalised before the split)"
    return f"{method} relevance units"


def shown_kind(settings: Settings) -> str:
    """The motion panel shows the selective map when the toggle is on."""
    return "selective" if settings.selective else "temporal"


def panel(expl: Explanation, method: str, kind: str, t: int, settings: Settings,
          scales: Scales, zoom: float = ZOOM) -> np.ndarray:
    """Frame ``t``'s ``kind`` relevance of ``method`` as an image (overlay or heat map);
    a grey "not computed" tile of the same size when the map does not exist."""
    if not has_map(expl, method, kind):
        h, w = expl.frames.shape[1:3]
        return render.placeholder(round(h * zoom), round(w * zoom),
                                  ["not computed:", "full relevance only", "for this method"],
                                  size=max(9, round(6 * zoom)))
    return render.frame_panel(expl.frames[t], maps_of(expl, method)[kind][t], kind=settings.panel,
                              cmap=settings.cmap, scale=float(scales[(method, kind)][t]),
                              alpha=settings.alpha, zoom=zoom, gamma=settings.gamma,
                              desaturate=desaturation(settings))


def desaturation(settings: Settings) -> float:
    """Grey frames under the heat (the default) make red and blue stand out."""
    return 1.0 if settings.grey else 0.0


def frame_image(expl: Explanation, t: int) -> np.ndarray:
    return render.enlarge(expl.frames[t], ZOOM)


def colour_bar(expl: Explanation, method: str, kind: str, t: int, settings: Settings,
               scales: Scales, width: int = 224) -> np.ndarray:
    if (method, kind) not in scales:
        return np.full((56, width, 3), 255, np.uint8)
    return render.colour_bar(settings.cmap, float(scales[(method, kind)][t]), width=width,
                             height=56, label=scale_label(settings), gamma=settings.gamma)


def scale_label(settings: Settings) -> str:
    """Colour-bar caption: the normalisation, and the contrast when it is not linear."""
    text = f"scaled {NORMALISATION_LABELS[settings.normalisation]}"
    # the colour bar is drawn with a basic font: write "gamma", not the Greek letter
    return text if settings.gamma == 1.0 else f"{text}, contrast gamma {settings.gamma:g}"


def percent(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.0f}%"
