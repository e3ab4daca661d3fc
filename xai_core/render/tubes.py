"""The staggered *Saliency Tubes* view: a clip's overlaid frames stacked obliquely in depth.

It follows the figure of Stergiou et al. (ICIP 2019, described in the survey by Hiley et
al. 2019): frames are stacked in depth with an oblique offset so the path of relevance
through time is seen at once, without animating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from ..errors import ParameterError
from .colour import overlay
from .figures import clip_inputs, frame_indices, zoom_image
from .scale import scale_or_clip_max
from .text import BACKGROUND, INK, draw_texts


def staggered_tubes(frames: np.ndarray, maps: np.ndarray, *, cmap: str = "bwr",
                    scale: float | np.ndarray | None = None, alpha: float = 0.7,
                    indices: Sequence[int] | None = None, every: int = 1, zoom: float = 2.0,
                    squeeze: float = 0.6, shear: float = 0.3, step: float = 0.7,
                    rise: float = 0.03, opacity: float = 0.85, path: bool = True,
                    label_frames: bool = True, gamma: float = 1.0,
                    desaturate: float = 0.0) -> np.ndarray:
    """The Saliency Tubes figure: frames stacked in depth with an oblique offset.

    Each frame (with its relevance overlaid) is drawn as a parallelogram — a card seen
    from the side: narrowed to ``squeeze`` of its width, its right edge raised by
    ``shear`` of its height — and the cards are laid out along time, first at the back
    (left), last at the front (right), each ``step`` of a card's width further right and
    ``rise`` of its height lower. Cards are drawn back to front with
    ``opacity``, so relevance on the back cards still shows through. With ``path``, the
    centroid of each frame's positive relevance is joined across cards: the path of the
    evidence through time, seen at once (Stergiou et al. 2019; the survey by Hiley et al. 2019).

    Returns
    -------
    np.ndarray
        ``uint8`` RGB image; its size depends only on the frame size, the number of
        frames drawn and the geometry parameters.
    """
    img, arr = clip_inputs(frames, maps)
    idx = frame_indices(len(img), indices, every)
    for name, v, lo, hi in (("squeeze", squeeze, 0.05, 1.0), ("shear", shear, 0.0, 1.0),
                            ("step", step, 0.0, 2.0), ("rise", rise, 0.0, 1.0),
                            ("opacity", opacity, 0.0, 1.0)):
        if not lo <= v <= hi:
            raise ParameterError(f"{name} must be in [{lo}, {hi}], got {v}")
    s = np.broadcast_to(scale_or_clip_max(arr, scale), (len(arr),))
    geo = _TubeGeometry.of(len(idx), img.shape[1], img.shape[2], zoom, squeeze, shear, step, rise)
    canvas = np.full((geo.height, geo.width, 3), BACKGROUND, np.float32)
    centres: list[tuple[float, float]] = []
    for k, i in enumerate(idx):
        tile = zoom_image(overlay(img[i], arr[i], alpha, cmap, float(s[i]), gamma, desaturate),
                          zoom)
        m = geo.affine(k)
        warped = cv2.warpAffine(tile, m, (geo.width, geo.height), flags=cv2.INTER_LINEAR)
        cover = cv2.warpAffine(np.ones(tile.shape[:2], np.float32), m, (geo.width, geo.height),
                               flags=cv2.INTER_LINEAR)[..., None] * opacity
        canvas = canvas * (1.0 - cover) + warped.astype(np.float32) * cover
        corners = geo.corners(k)
        cv2.polylines(canvas, [np.rint(corners).astype(np.int32)], True, (90, 90, 90), 1,
                      cv2.LINE_AA)
        centre = _positive_centroid(arr[i])
        if centre is not None:
            y, x = centre
            pt = m @ np.array([(x + 0.5) * zoom - 0.5, (y + 0.5) * zoom - 0.5, 1.0])
            centres.append((float(pt[0]), float(pt[1])))
    out = np.rint(canvas).clip(0, 255).astype(np.uint8)
    if path and len(centres) > 1:
        pts = np.rint(np.array(centres)).astype(np.int32)
        cv2.polylines(out, [pts], False, INK, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(out, (int(p[0]), int(p[1])), 3, INK, -1, cv2.LINE_AA)
    if label_frames:
        corners = [geo.corners(k)[3] for k in range(len(idx))]  # bottom-left of each card
        out = draw_texts(out, [((int(x0) + 2, int(y0) + 3), str(i), 11, "la")
                               for (x0, y0), i in zip(corners, idx, strict=True)])
    return out


class _TubeGeometry(NamedTuple):
    """Placement of the cards of :func:`staggered_tubes` on the canvas."""

    w: int  # zoomed frame size
    h: int
    squeeze: float
    lift: float  # how much higher the far (left) edge is, in pixels
    dx: float  # offset between cards
    dy: float
    n: int
    margin: int
    label_band: int

    @classmethod
    def of(cls, n: int, h: int, w: int, zoom: float, squeeze: float, shear: float, step: float,
           rise: float) -> _TubeGeometry:
        zw, zh = max(1, round(w * zoom)), max(1, round(h * zoom))
        return cls(zw, zh, squeeze, shear * zh, step * squeeze * zw, rise * zh, n, 6, 16)

    @property
    def width(self) -> int:
        return int(np.ceil(self.squeeze * self.w + (self.n - 1) * self.dx)) + 2 * self.margin

    @property
    def height(self) -> int:
        return (int(np.ceil(self.h + self.lift + (self.n - 1) * self.dy)) + 2 * self.margin
                + self.label_band)

    def affine(self, k: int) -> np.ndarray:
        """2×3 map from card k's pixels to the canvas.

        x' = squeeze·x + ox,  y' = y + lift·(1 − x/w) + oy  (the right edge sits higher).
        """
        ox = self.margin + k * self.dx
        oy = self.margin + k * self.dy
        return np.array([[self.squeeze, 0.0, ox],
                         [-self.lift / self.w, 1.0, oy + self.lift]], dtype=np.float64)

    def corners(self, k: int) -> np.ndarray:
        """Card k's corners on the canvas: top-left, top-right, bottom-right, bottom-left."""
        src = np.array([[0, 0, 1], [self.w, 0, 1], [self.w, self.h, 1], [0, self.h, 1]], float)
        return src @ self.affine(k).T


def _positive_centroid(m: np.ndarray) -> tuple[float, float] | None:
    """(y, x) centre of mass of the positive relevance of one frame, or None if there is none."""
    pos = np.clip(m, 0.0, None)
    total = float(pos.sum())
    if total <= 0:
        return None
    ys, xs = np.indices(pos.shape)
    return float((ys * pos).sum() / total), float((xs * pos).sum() / total)
