"""The side-by-side movie: frame | full | spatial | temporal relevance, one row per method.

A demo export: every frame of the clip with each method's full relevance and its
discriminative split into spatial (appearance) and temporal (motion) relevance (Hiley et
al. 2019), column titles, a colour bar under every map stating its real values, and a
frame counter. Written as a browser-playable H.264 mp4 by
:func:`xai_core.video.write.write_video` (atomically). Relevance is only scaled for
colour here, never changed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ..results import Explanation
from ..video.write import write_video
from .figures import frame_panel, grid, zoom_image
from .scale import NORMALISATIONS, max_abs, scale_of
from .text import BACKGROUND, colour_bar, placeholder, titled

#: Frame rate of the movie (the clip's own is not known to an explanation).
MOVIE_FPS = 4.0

#: Column titles by map kind.
COLUMN_TITLES = {"full": "Full relevance", "spatial": "Spatial (appearance)",
                 "temporal": "Temporal (motion)", "selective": "Selective (motion voxels)"}

#: Height of the colour bars under the maps.
BAR_HEIGHT = 56

#: Narrowest tile (pixels): small model inputs are enlarged further, so that the colour
#: bar under a map stays readable.
MIN_TILE_WIDTH = 112


def display_scales(expl: Explanation, methods: Sequence[str], normalisation: str = "per-clip"
                   ) -> dict[tuple[str, str], np.ndarray]:
    """Display scale per frame of every (method, map kind), as the dashboard chooses them.

    ``"shared"`` gives every map of every listed method one scale, so their colours
    compare (meaningful when the methods share units).
    """
    if normalisation not in NORMALISATIONS:
        raise ParameterError(f"unknown colour scale {normalisation!r}",
                             hint=f"Use one of: {', '.join(NORMALISATIONS)}.")
    ref = None
    if normalisation == "shared":
        ref = max_abs(*(m for name in methods for m in expl[name].maps().values()))
    return {(name, kind): scale_of(m, normalisation, ref)
            for name in methods for kind, m in expl[name].maps().items()}


def chosen_methods(expl: Explanation, methods: Sequence[str] | None) -> list[str]:
    """``methods`` checked against the explanation (default: every computed method)."""
    names = list(expl.methods) if methods is None else list(methods)
    if not names:
        raise ParameterError("choose at least one method for the movie",
                             hint=f"Computed: {', '.join(expl.methods)}.")
    for name in names:
        expl[name]  # noqa: B018 — ParameterError naming the computed methods
    return names


@dataclass(frozen=True)
class Display:
    """How the maps are drawn: the dashboard's display choices.

    Attributes
    ----------
    cmap, normalisation, panel
        Colour map, colour scale (``per-frame``, ``per-clip``, ``shared``), ``overlay``
        on the frame or bare ``heatmap``.
    alpha, gamma, desaturate
        Opacity of the strongest relevance, contrast (1 = linear), grey frames under the
        heat (0..1).
    zoom
        Enlargement of the model's input frames (at least to :data:`MIN_TILE_WIDTH`).
    motion
        Last column: ``"temporal"`` (the discriminative split's motion part, Hiley et al.
        2019) or ``"selective"`` (selective relevance, Hiley et al. 2020).
    """

    cmap: str = "bwr"
    normalisation: str = "per-clip"
    panel: str = "overlay"
    alpha: float = 0.8
    gamma: float = 0.5
    desaturate: float = 1.0
    zoom: float = 2.0
    motion: str = "temporal"

    def __post_init__(self) -> None:
        if self.motion not in ("temporal", "selective"):
            raise ParameterError(f"the motion column shows temporal or selective relevance, "
                                 f"got {self.motion!r}")
        if self.normalisation not in NORMALISATIONS:
            raise ParameterError(f"unknown colour scale {self.normalisation!r}",
                                 hint=f"Use one of: {', '.join(NORMALISATIONS)}.")
        if not (np.isfinite(self.zoom) and 0.25 <= self.zoom <= 8):
            raise ParameterError(f"zoom must be in [0.25, 8], got {self.zoom}")

    @property
    def kinds(self) -> tuple[str, str, str]:
        """The map kinds of the three relevance columns."""
        return ("full", "spatial", self.motion)

    def scale_label(self) -> str:
        """Colour-bar caption: the colour scale, and the contrast when it is not linear."""
        text = f"scaled {self.normalisation.replace('-', ' ')}"
        return text if self.gamma == 1.0 else f"{text}, contrast gamma {self.gamma:g}"


#: The dashboard's default display choices.
DEFAULT_DISPLAY = Display()


def frame_views(expl: Explanation, t: int, methods: Sequence[str],
                scales: dict[tuple[str, str], np.ndarray], display: Display | None = None
                ) -> np.ndarray:
    """Frame ``t``: the frame, full, spatial and motion relevance of each method in a row,
    each map with a colour bar in its real values; column and row titles."""
    display = display or DEFAULT_DISPLAY
    zoom = max(display.zoom, MIN_TILE_WIDTH / max(1, expl.frames.shape[2]))
    first = zoom_image(expl.frames[t], zoom)
    h, w = first.shape[:2]
    blank = np.full((BAR_HEIGHT, w, 3), BACKGROUND, np.uint8)
    rows: list[list[np.ndarray]] = []
    row_titles: list[str] = []
    for name in methods:
        maps = expl[name].maps()
        tiles, bars = [first], [blank]
        for kind in display.kinds:
            if kind not in maps:
                tiles.append(placeholder(h, w, ["not computed:", "full relevance only"],
                                         size=max(9, round(6 * zoom))))
                bars.append(blank)
                continue
            scale = float(scales[(name, kind)][t])
            tiles.append(frame_panel(expl.frames[t], maps[kind][t], kind=display.panel,
                                     cmap=display.cmap, scale=scale, alpha=display.alpha,
                                     zoom=zoom, gamma=display.gamma,
                                     desaturate=display.desaturate))
            bars.append(colour_bar(display.cmap, scale, width=w, height=BAR_HEIGHT,
                                   label=display.scale_label(), gamma=display.gamma))
        rows += [tiles, bars]
        row_titles += [name, ""]
    titles = [f"Frame {t}"] + [COLUMN_TITLES[k] for k in display.kinds]
    return grid(rows, col_titles=titles, row_titles=row_titles, gap=4, title_size=13)


def movie_frames(expl: Explanation, methods: Sequence[str] | None = None,
                 display: Display | None = None) -> np.ndarray:
    """Every frame of the side-by-side movie, ``(T, H, W, 3)`` uint8 with even H and W.

    One row per method of ``methods`` (default: every computed method), drawn as
    ``display`` says, under a title and a frame counter.
    """
    display = display or DEFAULT_DISPLAY
    names = chosen_methods(expl, methods)
    scales = display_scales(expl, names, display.normalisation)
    n = expl.frames.shape[0]
    head = (f"{expl.model} · explaining “{expl.target_name}” · red = evidence for, "
            "blue = against")
    out = []
    for t in range(n):
        counter = f"frame {t + 1} of {n} (video frame {expl.clip.indices[t]})"
        body = frame_views(expl, t, names, scales, display)
        out.append(titled(titled(body, counter, size=13), head, size=14))
    return _even(np.stack(out))


def write_side_by_side(path: str | os.PathLike, expl: Explanation,
                       methods: Sequence[str] | None = None, display: Display | None = None,
                       *, fps: float = MOVIE_FPS) -> Path:
    """Write the side-by-side movie (:func:`movie_frames`) as an H.264 mp4; returns the path.

    The file is written beside its destination and moved into place: a failure leaves
    nothing behind.
    """
    frames = movie_frames(expl, methods, display)
    return Path(write_video(path, frames, fps))


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad (T, H, W, 3) with background to even H and W (what H.264 / yuv420p needs)."""
    _, h, w, _ = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)),
                  constant_values=BACKGROUND)
