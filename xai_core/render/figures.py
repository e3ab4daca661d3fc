"""Pictures made of frames: zoom, one-frame panels, overlaid clips, grids and frame strips.

``frames`` are ``(T, H, W, 3)`` (a clip) or ``(H, W, 3)`` (one frame) ``uint8`` RGB and
``maps`` the matching ``(T, H, W)`` / ``(H, W)`` signed relevance; every function returns
a new ``uint8`` RGB image. The staggered Saliency Tubes view is in :mod:`.tubes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import ParameterError
from .colour import colourise, overlay
from .scale import check_finite, resize_maps, scale_or_clip_max, to_unit
from .text import BACKGROUND, Label, draw_texts, font


def enlarge(img: np.ndarray, zoom: float) -> np.ndarray:
    """An RGB image scaled by ``zoom`` (bilinear up, area-averaged down) for display."""
    if not np.isfinite(zoom) or zoom <= 0:
        raise ParameterError(f"zoom must be > 0, got {zoom}")
    return zoom_image(np.asarray(img), zoom)


def zoom_image(img: np.ndarray, zoom: float) -> np.ndarray:
    """:func:`enlarge` without checking ``zoom``; ``img`` itself when ``zoom`` is 1."""
    if zoom == 1:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * zoom)), max(1, round(h * zoom)))
    return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR if zoom > 1 else cv2.INTER_AREA)


def frame_panel(frame: np.ndarray, relevance: np.ndarray, *, kind: str = "overlay",
                cmap: str = "bwr", scale: float | None = None, alpha: float = 0.6,
                zoom: float = 1.0, gamma: float = 1.0, desaturate: float = 0.0) -> np.ndarray:
    """One frame's relevance for display: ``"overlay"`` on the frame or the bare ``"heatmap"``.

    ``frame`` (H, W, 3) uint8 and ``relevance`` (h, w); the result is ``zoom`` times the
    frame's size. A map on the frame's grid is blended at that resolution and the result
    enlarged; a map of another size is interpolated (bilinearly, in relevance units).
    """
    if kind not in ("overlay", "heatmap"):
        raise ParameterError(f"unknown panel kind {kind!r}", hint="Use overlay or heatmap.")
    img = np.asarray(frame)
    arr = check_finite(relevance)
    s = scale_or_clip_max(arr, scale)
    if kind == "overlay":
        if arr.shape == img.shape[:2]:
            # blend at the map's own resolution, then enlarge the picture: 1/zoom² the work
            return zoom_image(overlay(img, arr, alpha, cmap, s, gamma, desaturate), zoom)
        return overlay(zoom_image(img, zoom), arr, alpha, cmap, s, gamma, desaturate)
    size = (round(img.shape[0] * zoom), round(img.shape[1] * zoom))
    return colourise(resize_maps(to_unit(arr, s), size), cmap, 1.0, gamma)


def clip_inputs(frames: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, maps)`` as arrays, checked to be ``(T, H, W, 3)`` and ``(T, H, W)``."""
    img = np.asarray(frames)
    arr = check_finite(maps)
    if img.ndim != 4 or arr.ndim != 3 or img.shape[0] != arr.shape[0]:
        raise ParameterError(f"need frames (T, H, W, 3) and maps (T, H, W) with the same T; "
                             f"got {img.shape} and {arr.shape}")
    return img, arr


def frame_indices(n: int, indices: Sequence[int] | None, every: int) -> list[int]:
    """The frames to draw out of ``n``: ``indices`` if given, else every ``every``-th."""
    if every < 1:
        raise ParameterError(f"every must be ≥ 1, got {every}")
    idx = list(range(0, n, every)) if indices is None else [int(i) for i in indices]
    if not idx:
        raise ParameterError("no frames selected")
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise ParameterError(f"frame indices {bad} are outside 0..{n - 1}")
    return idx


def overlay_frames(frames: np.ndarray, maps: np.ndarray, *, cmap: str = "bwr",
                   scale: float | np.ndarray | None = None, alpha: float = 0.6,
                   zoom: float = 1.0, gamma: float = 1.0, desaturate: float = 0.0
                   ) -> np.ndarray:
    """Every frame with its relevance overlaid, ``(T, H·zoom, W·zoom, 3)`` uint8."""
    img, arr = clip_inputs(frames, maps)
    s = scale_or_clip_max(arr, scale)
    s = np.broadcast_to(s, (len(arr),)) if s.ndim == 0 else s
    return np.stack([zoom_image(o, zoom)
                     for o in overlay(img, arr, alpha, cmap, s, gamma, desaturate)])


def grid(images: Sequence[Sequence[np.ndarray]], *, col_titles: Sequence[str] | None = None,
         row_titles: Sequence[str] | None = None, gap: int = 4, title_size: int = 12
         ) -> np.ndarray:
    """Lay out rows of RGB images, with optional column and row titles.

    All images share one width (the columns line up); each row is as tall as its
    tallest image, shorter ones sit at its top (e.g. a row of colour bars under a row of
    frames). Used for the exported "current view" PNG and the method comparison grid.
    """
    if not images or not images[0]:
        raise ParameterError("grid needs at least one image")
    rows = [[np.asarray(im) for im in row] for row in images]
    w = rows[0][0].shape[1]
    bad = [im.shape[:2] for row in rows for im in row if im.shape[1] != w]
    if bad:
        raise ParameterError(f"grid images must share one width ({w} px); got sizes {bad}")
    heights = [max(im.shape[0] for im in row) if row else 0 for row in rows]
    ncols = max(len(r) for r in rows)
    left = 0
    if row_titles:
        left = max(int(font(title_size).getlength(t)) for t in row_titles) + 8
    top = title_size + 8 if col_titles else 0
    height = top + sum(heights) + (len(rows) - 1) * gap
    width = left + ncols * w + (ncols - 1) * gap
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    ys = [top + sum(heights[:r]) + r * gap for r in range(len(rows))]
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            x = left + c * (w + gap)
            canvas[ys[r] : ys[r] + im.shape[0], x : x + w] = im
    labels: list[Label] = []
    for c, t in enumerate((col_titles or [])[:ncols]):
        labels.append(((left + c * (w + gap) + w // 2, 4), t, title_size, "ma"))
    for r, t in enumerate((row_titles or [])[: len(rows)]):
        labels.append(((left - 6, ys[r] + heights[r] // 2), t, title_size, "rm"))
    return draw_texts(canvas, labels)


def strip(frames: np.ndarray, maps: np.ndarray, *, cmap: str = "bwr",
          scale: float | np.ndarray | None = None, alpha: float = 0.6,
          indices: Sequence[int] | None = None, every: int = 1, gap: int = 2,
          zoom: float = 1.0, label_frames: bool = True, gamma: float = 1.0,
          desaturate: float = 0.0) -> np.ndarray:
    """Frames with their relevance overlaid, in a row (left = first), as one RGB image.

    Parameters
    ----------
    frames, maps
        ``(T, H, W, 3)`` uint8 and ``(T, H, W)`` relevance.
    scale
        Display scale (float, or one per frame); default the clip's max ``|value|``.
    indices, every
        Which frames: explicit indices, else every ``every``-th frame.
    zoom
        Upscale each frame (readability of 112-pixel clips).
    label_frames
        Print the frame number under each frame.

    Returns
    -------
    np.ndarray
        ``(H·zoom [+ label band], n·W·zoom + (n−1)·gap, 3)`` uint8.
    """
    img, arr = clip_inputs(frames, maps)
    idx = frame_indices(len(img), indices, every)
    s = np.broadcast_to(scale_or_clip_max(arr, scale), (len(arr),))
    tiles = [zoom_image(overlay(img[i], arr[i], alpha, cmap, float(s[i]), gamma, desaturate),
                        zoom)
             for i in idx]
    h, w = tiles[0].shape[:2]
    band = 16 if label_frames else 0
    out = np.full((h + band, len(tiles) * w + (len(tiles) - 1) * gap, 3), BACKGROUND, np.uint8)
    labels: list[Label] = []
    for k, (i, tile) in enumerate(zip(idx, tiles, strict=True)):
        x = k * (w + gap)
        out[:h, x : x + w] = tile
        if label_frames:
            labels.append(((x + w // 2, h + 2), str(i), 11, "ma"))
    return draw_texts(out, labels)


def outline(img: np.ndarray, box: tuple[float, float, float, float],
            colour: tuple[int, int, int] = (255, 215, 0), width: int = 3) -> np.ndarray:
    """A copy of ``img`` with the rectangle ``box`` = ``(top, left, height, width)`` (pixels,
    floats allowed) drawn as a ``width``-pixel line inside its border, and the outside
    dimmed: the part of a frame a model sees (:func:`xai_core.video.preprocess.crop_box`)."""
    out = np.array(img, dtype=np.uint8, copy=True)
    if out.ndim != 3 or out.shape[-1] != 3:
        raise ParameterError(f"outline needs an (H, W, 3) image, got {out.shape}")
    h, w = out.shape[:2]
    top, left, bh, bw = box
    y0, x0 = max(0, int(round(top))), max(0, int(round(left)))
    y1, x1 = min(h, int(round(top + bh))), min(w, int(round(left + bw)))
    if y1 - y0 < 1 or x1 - x0 < 1:
        raise ParameterError(f"the box {box} is outside the {w}×{h} image")
    inside = np.zeros((h, w), bool)
    inside[y0:y1, x0:x1] = True
    out[~inside] = (out[~inside].astype(np.float32) * 0.45).astype(np.uint8)
    lw = max(1, min(width, (y1 - y0) // 2, (x1 - x0) // 2))
    c = np.array(colour, np.uint8)
    out[y0 : y0 + lw, x0:x1] = c
    out[y1 - lw : y1, x0:x1] = c
    out[y0:y1, x0 : x0 + lw] = c
    out[y0:y1, x1 - lw : x1] = c
    return out
