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

from .settings import (
    DEFAULT_SCOPE,
    DEFAULT_STATISTIC,
    SCALE_SCOPES,
    STATISTIC_LABELS,
    Settings,
)

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
             str(expl.target), json.dumps(expl.options.key(), sort_keys=True),
             json.dumps(list(expl.class_names))]  # names uploaded after the weights
    parts += [json.dumps([n, r.params], sort_keys=True, default=str)
              for n, r in expl.methods.items()]
    return "|".join(parts)


#: Why a spatial or temporal map is missing, and where to change it.
NOT_SPLIT = ("Not computed: full relevance only for this method (the spatial / temporal "
             "split is off in Decomposition options, it costs one explanation per frame).")


def shown_method(expl: Explanation, settings: Settings) -> str:
    """The method the frame views feature: the sidebar's choice when the explanation has
    it (a method still computing or waiting for Start is not shown yet), else the first."""
    chosen = settings.shown_method
    return chosen if chosen in expl.methods else next(iter(expl.methods))


def maps_of(expl: Explanation, method: str) -> dict[str, np.ndarray]:
    """The (T, H, W) maps of one method that exist (no spatial / temporal if not split)."""
    return expl[method].maps()


def has_map(expl: Explanation, method: str, kind: str) -> bool:
    return kind in maps_of(expl, method)


def scale_options(settings: Settings) -> tuple[str, str]:
    """``(scope, statistic)`` of the colour scale (unknown values: the defaults)."""
    scope = settings.scale_scope if settings.scale_scope in SCALE_SCOPES else DEFAULT_SCOPE
    statistic = (settings.scale_statistic if settings.scale_statistic in STATISTIC_LABELS
                 else DEFAULT_STATISTIC)
    return scope, statistic


def scales_for(expl: Explanation, settings: Settings, scope: str | None = None,
               statistic: str | None = None) -> Scales:
    """Display scale, one per frame, of every (method, kind) under the chosen normalisation.

    ``scope`` ``"method"`` gives full, spatial, temporal and selective of a method ONE
    scale (per frame or per clip), so the panels compare by eye; ``"panel"`` each its own.
    ``"shared"`` normalisation takes one scale for every map of every method, so colours
    compare across methods (meaningful when the methods share units, e.g. LRP variants).
    ``statistic`` is what gets full colour (:data:`STATISTIC_LABELS`). Defaults:
    :func:`scale_options`.
    """
    default_scope, default_statistic = scale_options(settings)
    scope, statistic = scope or default_scope, statistic or default_statistic
    mode = settings.normalisation
    ref = None
    if mode == "shared":
        ref = render.abs_statistic(np.concatenate(
            [m.ravel() for name in expl.methods for m in maps_of(expl, name).values()]),
            statistic)
    out: Scales = {}
    for name in expl.methods:
        maps = maps_of(expl, name)
        if scope == "method":
            joint = render.joint_scale(list(maps.values()), mode, ref, statistic)
            out.update({(name, kind): joint for kind in maps})
            continue
        for kind, m in maps.items():
            out[(name, kind)] = render.scale_of(m, mode, ref, statistic)
    return out


def units(expl: Explanation, method: str) -> str:
    """What one unit of relevance is, in words, for legends."""
    if expl.options.normalise == "max-abs":
        return "unit-less (max-abs normalised before the split)"
    return f"{method} relevance units"


def shown_kind(settings: Settings) -> str:
    """The motion panel shows the selective map when the toggle is on."""
    return "selective" if settings.show_selective else "temporal"


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


#: Height of a colour bar with its two-line legend (:func:`scale_legend`).
BAR_HEIGHT = 80


def colour_bar(expl: Explanation, method: str, kind: str, t: int, settings: Settings,
               scales: Scales, width: int = 224) -> np.ndarray:
    if (method, kind) not in scales:
        return np.full((BAR_HEIGHT, width, 3), 255, np.uint8)
    return render.colour_bar(settings.cmap, float(scales[(method, kind)][t]), width=width,
                             height=BAR_HEIGHT, label=scale_legend(settings),
                             gamma=settings.gamma)


def scale_label(settings: Settings) -> str:
    """One-line colour-bar caption: the normalisation, whether the panels of a method share
    the scale, and the contrast when it is not linear."""
    scope, _ = scale_options(settings)
    text = NORMALISATION_LABELS[settings.normalisation]
    if settings.normalisation != "shared":
        text += ", same in all panels" if scope == "method" else ", own per panel"
    # the colour bar is drawn with a basic font: write "gamma", not the Greek letter
    return text if settings.gamma == 1.0 else f"{text}, gamma {settings.gamma:g}"


def scale_legend(settings: Settings) -> str:
    """Two-line colour-bar legend: which scale (per clip / frame / shared; one for all
    panels of the method or one per panel), and what gets full colour."""
    scope, statistic = scale_options(settings)
    first = NORMALISATION_LABELS[settings.normalisation]
    if settings.normalisation != "shared":
        first += " · " + ("same scale, all panels" if scope == "method" else "this panel only")
    second = f"full colour at {render.statistic_label(statistic)}"
    if settings.gamma != 1.0:
        second += f", gamma {settings.gamma:g}"
    return f"{first}\n{second}"


def scale_sentence(settings: Settings) -> str:
    """The colour scale in words, for captions under the views."""
    scope, statistic = scale_options(settings)
    if settings.normalisation == "shared":
        where = "one scale for every panel of every method"
    elif scope == "method":
        where = (f"one scale {NORMALISATION_LABELS[settings.normalisation]} for the full, "
                 "spatial and temporal panels of a method, so they compare by eye")
    else:
        where = (f"each panel scaled on its own, {NORMALISATION_LABELS[settings.normalisation]} "
                 "(a weak map looks as strong as a strong one)")
    return (f"Colours: {where}; full colour at the {STATISTIC_LABELS[statistic]}"
            + ("; larger values are drawn at full colour." if statistic != "max" else "."))


def percent(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.0f}%"


def probability(p: float) -> str:
    """A class probability in words: ``93%``, ``0.3%``, ``<0.1%`` — never a false ``0%``."""
    p = float(p)
    if p >= 0.01:
        return f"{p:.0%}"
    return f"{p:.1%}" if p >= 0.001 else "<0.1%"
