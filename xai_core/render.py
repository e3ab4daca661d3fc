"""Display of signed relevance: zero-centred colour maps, overlays, strips, saliency tubes, mp4.

Relevance stays signed and in its own units everywhere in ``xai_core``; this module is the
only place where it is *scaled for display*, and every scale it uses is returned so that a
legend can state it. All functions are pure: numpy in, ``uint8`` RGB out.

Conventions
-----------
* Scaling is always symmetric around zero (divide by a maximum ``|relevance|``), so zero
  keeps the colour map's neutral colour and red/blue mean evidence for/against the class.
* ``maps`` are ``(T, H, W)`` (a clip) or ``(H, W)`` (one frame); ``frames`` are
  ``(T, H, W, 3)`` or ``(H, W, 3)`` ``uint8`` RGB.
* A ``scale`` is the ``|relevance|`` that gets full colour: a float, or one value per
  frame (shape ``(T,)``) as returned by :func:`normalise` in ``"per-frame"`` mode.
* ``gamma`` (contrast) bends the colour scale: colour position = sign(R)·(|R|/scale)^gamma.
  1 is linear; below 1 makes weak relevance visible (relevance maps are heavy-tailed).
  Zero and ±scale stay where they are, and :func:`colour_bar` labels its ticks with the
  real values, so the legend stays true.

The staggered view follows the *Saliency Tubes* figure (Stergiou et al., ICIP 2019, described
in Hiley et al.'s survey, paper 002): frames are stacked in depth with an oblique offset so
the path of relevance through time is seen at once, without animating.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import cv2
import matplotlib as mpl
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import ParameterError

#: Normalisation modes (display choice, always symmetric around zero).
NORMALISATIONS: tuple[str, ...] = ("per-frame", "per-clip", "shared")

#: Colour maps centred on zero: negative → blue, zero → neutral, positive → red.
DIVERGING_CMAPS: tuple[str, ...] = ("bwr", "coolwarm", "seismic", "RdBu_r")

#: Colour maps for positive-only views (negative relevance is not drawn).
SEQUENTIAL_CMAPS: tuple[str, ...] = ("inferno", "hot", "viridis")

#: Odd number of colour-table entries so that zero falls exactly on the centre entry.
_LUT_SIZE = 257
_CENTRE = _LUT_SIZE // 2

_BACKGROUND = 255
_INK = (40, 40, 40)


class Normalised(NamedTuple):
    """Result of :func:`normalise`.

    Attributes
    ----------
    values
        The maps divided by their scale, clipped to ``[-1, 1]``, same shape as the input.
    scale
        The ``|relevance|`` that maps to ±1, shape ``maps.shape[:-2]`` (``(T,)`` for a clip):
        per frame it differs, per clip / shared it is the same value repeated. 0 for an
        all-zero map (whose values stay 0).
    """

    values: np.ndarray
    scale: np.ndarray


# --------------------------------------------------------------------------- scaling
def check_finite(maps: np.ndarray, what: str = "relevance") -> np.ndarray:
    """Return ``maps`` as float32, or raise :class:`ParameterError` if it has NaN/Inf."""
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim < 2:
        raise ParameterError(f"{what} must be a (H, W) or (T, H, W) map, got shape {arr.shape}",
                             hint="Pass relevance on the clip's grid.")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ParameterError(f"{what} contains {int(bad.sum())} NaN/Inf values and cannot be drawn",
                             hint="The method or model is numerically unstable on this clip; "
                                  "try another method.")
    return arr


def max_abs(*maps: np.ndarray) -> float:
    """Largest ``|value|`` over several maps: the scale for ``"shared"`` normalisation.

    Sharing one scale across methods (or full/spatial/temporal) makes their colours
    comparable; each method's relevance must then be in the same units (e.g. all LRP).
    """
    if not maps:
        raise ParameterError("max_abs needs at least one map")
    return float(max(np.abs(check_finite(m)).max(initial=0.0) for m in maps))


def normalise(maps: np.ndarray, mode: str = "per-clip", ref: float | None = None) -> Normalised:
    """Scale signed relevance into ``[-1, 1]`` symmetrically around zero.

    Parameters
    ----------
    maps
        ``(T, H, W)`` or ``(H, W)`` signed relevance.
    mode
        ``"per-frame"``: each frame divided by its own max ``|value|`` (shows where, within
        a frame, relevance lies; hides how frames compare). ``"per-clip"``: one scale for
        the whole clip (frames comparable). ``"shared"``: the given ``ref`` (e.g.
        :func:`max_abs` over several methods), so maps of different methods compare.
    ref
        The scale for ``"shared"`` (values beyond it are clipped). Ignored otherwise.

    Returns
    -------
    Normalised
        ``(values, scale)``; ``scale`` is what a legend should state.
    """
    arr = check_finite(maps)
    scale = _scale(arr, mode, ref)
    return Normalised(_to_unit(arr, scale), scale)


def scale_of(maps: np.ndarray, mode: str = "per-clip", ref: float | None = None) -> np.ndarray:
    """Only the ``scale`` :func:`normalise` would return (for legends and colouring later)."""
    return _scale(check_finite(maps), mode, ref)


def _scale(arr: np.ndarray, mode: str, ref: float | None) -> np.ndarray:
    lead = arr.shape[:-2]
    if mode == "per-frame":
        scale = np.abs(arr).max(axis=(-2, -1)) if arr.size else np.zeros(lead, np.float32)
    elif mode == "per-clip":
        scale = np.full(lead, np.abs(arr).max(initial=0.0), dtype=np.float32)
    elif mode == "shared":
        if ref is None or not np.isfinite(ref) or ref < 0:
            raise ParameterError(f"shared normalisation needs a finite scale ≥ 0, got {ref!r}",
                                 hint="Pass ref=max_abs(map_a, map_b, ...).")
        scale = np.full(lead, ref, dtype=np.float32)
    else:
        raise ParameterError(f"unknown normalisation {mode!r}",
                             hint=f"Use one of: {', '.join(NORMALISATIONS)}.")
    return np.asarray(scale, dtype=np.float32)


def _to_unit(arr: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """``arr / scale`` clipped to [-1, 1]; a zero scale gives zeros (all-zero map)."""
    s = np.asarray(scale, dtype=np.float32)
    if s.ndim and s.shape != arr.shape[: s.ndim]:
        raise ParameterError(f"scale of shape {s.shape} does not fit maps of shape {arr.shape}",
                             hint="Give one scale, or one per frame.")
    if np.any(~np.isfinite(s)) or np.any(s < 0):
        raise ParameterError("the display scale must be finite and ≥ 0")
    s = s.reshape(s.shape + (1,) * (arr.ndim - s.ndim))
    out = np.zeros(arr.shape, dtype=np.float32)
    np.divide(arr, s, out=out, where=np.broadcast_to(s > 0, arr.shape))
    return np.clip(out, -1.0, 1.0, out=out)


def _contrast(unit: np.ndarray, gamma: float) -> np.ndarray:
    """sign(u)·|u|^gamma: zero and ±1 fixed, weak values lifted when gamma < 1."""
    if not (np.isfinite(gamma) and 0.1 <= gamma <= 3.0):
        raise ParameterError(f"contrast gamma must be in [0.1, 3], got {gamma}",
                             hint="Use 1 for a linear colour scale.")
    if gamma == 1.0:
        return unit
    return np.sign(unit) * np.abs(unit) ** np.float32(gamma)


def _resolve_scale(arr: np.ndarray, scale: float | np.ndarray | None) -> np.ndarray:
    """The given scale, or the per-clip max |value| when none is given."""
    if scale is None:
        return np.asarray(np.abs(arr).max(initial=0.0), dtype=np.float32)
    return np.asarray(scale, dtype=np.float32)


# --------------------------------------------------------------------------- colour
def is_diverging(cmap: str) -> bool:
    """Whether ``cmap`` is one of the zero-centred maps (else a positive-only one)."""
    _check_cmap(cmap)
    return cmap in DIVERGING_CMAPS


def _check_cmap(cmap: str) -> None:
    if cmap not in DIVERGING_CMAPS + SEQUENTIAL_CMAPS:
        raise ParameterError(f"unknown colour map {cmap!r}",
                             hint=f"Use a diverging map ({', '.join(DIVERGING_CMAPS)}) or a "
                                  f"positive-only one ({', '.join(SEQUENTIAL_CMAPS)}).")


@lru_cache(maxsize=16)
def colour_table(cmap: str) -> np.ndarray:
    """(257, 3) uint8 colours; entry 128 is the colour of zero for a diverging map."""
    _check_cmap(cmap)
    table = mpl.colormaps[cmap].resampled(_LUT_SIZE)(np.linspace(0.0, 1.0, _LUT_SIZE))[:, :3]
    table = np.rint(table * 255).astype(np.uint8)
    table.setflags(write=False)
    return table


def neutral_colour(cmap: str) -> tuple[int, int, int]:
    """The colour zero relevance gets (the centre of a diverging map, the start of others)."""
    table = colour_table(cmap)
    return tuple(int(c) for c in table[_CENTRE if is_diverging(cmap) else 0])


def _indices(unit: np.ndarray, diverging: bool) -> np.ndarray:
    if diverging:
        return np.rint((unit + 1.0) * _CENTRE).astype(np.intp)
    return np.rint(np.clip(unit, 0.0, 1.0) * (_LUT_SIZE - 1)).astype(np.intp)


def colourise(maps: np.ndarray, cmap: str = "bwr", scale: float | np.ndarray | None = None,
              gamma: float = 1.0) -> np.ndarray:
    """Colour signed relevance: ``(..., H, W)`` → ``(..., H, W, 3)`` uint8.

    ``scale`` (float or one per frame) is the ``|relevance|`` given full colour; by default
    the maps' own max ``|value|``. Zero gets :func:`neutral_colour`. With a positive-only
    map, negative relevance is drawn as zero.
    """
    arr = check_finite(maps)
    unit = _contrast(_to_unit(arr, _resolve_scale(arr, scale)), gamma)
    return colour_table(cmap)[_indices(unit, is_diverging(cmap))]


def overlay(frames: np.ndarray, maps: np.ndarray, alpha: float = 0.6, cmap: str = "bwr",
            scale: float | np.ndarray | None = None, gamma: float = 1.0,
            desaturate: float = 0.0) -> np.ndarray:
    """Relevance as heat on top of the frames, opaque where ``|relevance|`` is large.

    The blend weight of each pixel is ``alpha · (|relevance| / scale)^gamma`` (positive
    part only for positive-only maps), so zero relevance leaves the frame untouched and a
    heat map never hides the picture where it says nothing.

    Parameters
    ----------
    frames
        ``(T, H, W, 3)`` or ``(H, W, 3)`` uint8 RGB.
    maps
        Relevance with the same leading shape; resized (bilinear) when its ``(H, W)``
        differs from the frames' (e.g. frames shown larger than the model's input).
    alpha
        Opacity of the strongest relevance, in ``[0, 1]``.
    desaturate
        How much colour to take out of the frames under the heat (0 keeps them, 1 makes
        them grey): red and blue relevance stand out from a grey picture, not from a
        colourful one.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"overlay opacity must be in [0, 1], got {alpha}")
    img = np.asarray(frames)
    if img.dtype != np.uint8 or img.shape[-1] != 3:
        raise ParameterError(f"frames must be uint8 (..., H, W, 3), got {img.dtype} {img.shape}")
    arr = check_finite(maps)
    if arr.shape[:-2] != img.shape[:-3]:
        raise ParameterError(f"{arr.shape[:-2] or 1} maps for {img.shape[:-3] or 1} frames",
                             hint="Give one relevance map per frame.")
    unit = _to_unit(arr, _resolve_scale(arr, scale))
    unit = _contrast(_resize_maps(unit, img.shape[-3:-1]), gamma)
    diverging = is_diverging(cmap)
    colour = colour_table(cmap)[_indices(unit, diverging)].astype(np.float32)
    weight = alpha * (np.abs(unit) if diverging else np.clip(unit, 0.0, 1.0))
    weight = weight[..., None]
    base = img.astype(np.float32)
    if desaturate:
        if not 0.0 <= desaturate <= 1.0:
            raise ParameterError(f"desaturate must be in [0, 1], got {desaturate}")
        grey = base @ np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma
        base = base * (1.0 - desaturate) + grey[..., None] * desaturate
    out = base * (1.0 - weight) + colour * weight
    return np.rint(out).astype(np.uint8)


def _resize_maps(unit: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if unit.shape[-2:] == tuple(size):
        return unit
    flat = unit.reshape(-1, *unit.shape[-2:])
    resized = [cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for m in flat]
    return np.stack(resized).reshape(*unit.shape[:-2], *size)


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
    s = _resolve_scale(arr, scale)
    if kind == "overlay":
        if arr.shape == img.shape[:2]:
            # blend at the map's own resolution, then enlarge the picture: 1/zoom² the work
            return _zoom(overlay(img, arr, alpha, cmap, s, gamma, desaturate), zoom)
        return overlay(_zoom(img, zoom), arr, alpha, cmap, s, gamma, desaturate)
    size = (round(img.shape[0] * zoom), round(img.shape[1] * zoom))
    return colourise(_resize_maps(_to_unit(arr, s), size), cmap, 1.0, gamma)


def relevance_over_time(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of positive and of negative relevance in each frame: ``(pos (T,), neg (T,))``.

    ``neg`` is ≤ 0 and ``pos + neg`` is the frame's net relevance, in the method's units
    (the relevance-over-time view of the survey, paper 002).
    """
    arr = check_finite(maps)
    if arr.ndim != 3:
        raise ParameterError(f"need maps (T, H, W), got {arr.shape}")
    flat = arr.reshape(arr.shape[0], -1).astype(np.float64)
    return np.clip(flat, 0, None).sum(axis=1), np.clip(flat, None, 0).sum(axis=1)


# --------------------------------------------------------------------------- text, legend
@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


#: One text to draw: (x, y), text, font size, PIL anchor.
Label = tuple[tuple[int, int], str, int, str]


@lru_cache(maxsize=1024)
def _glyphs(text: str, size: int, anchor: str) -> tuple[np.ndarray, int, int]:
    """Coverage (0..1) of ``text`` rendered once, and its offset from the anchor point.

    Legends repeat the same few strings on every frame; rasterising each once makes
    drawing them a small array blend.
    """
    font = _font(size)
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    w, h = max(1, right - left), max(1, bottom - top)
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).text((-left, -top), text, fill=255, font=font, anchor=anchor)
    mask = np.asarray(canvas, dtype=np.float32)[..., None] / 255.0
    mask.setflags(write=False)
    return mask, left, top


def _draw_texts(img: np.ndarray, labels: Sequence[Label]) -> np.ndarray:
    """A copy of ``img`` with the ``labels`` drawn in ink (clipped at the borders)."""
    out = np.array(img, dtype=np.uint8, copy=True)
    ink = np.array(_INK, np.float32)
    for (x, y), text, size, anchor in labels:
        if not text:
            continue
        mask, dx, dy = _glyphs(text, size, anchor)
        x0, y0 = x + dx, y + dy
        x1, y1 = x0 + mask.shape[1], y0 + mask.shape[0]
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x1, out.shape[1]), min(y1, out.shape[0])
        if cx0 >= cx1 or cy0 >= cy1:
            continue
        m = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        region = out[cy0:cy1, cx0:cx1].astype(np.float32)
        out[cy0:cy1, cx0:cx1] = np.rint(region * (1.0 - m) + ink * m).astype(np.uint8)
    return out


def format_value(v: float) -> str:
    """Compact signed number for legends (``0``, ``0.25``, ``-1.3e-04``)."""
    return "0" if v == 0 else f"{v:.2g}"


def colour_bar(cmap: str = "bwr", scale: float = 1.0, *, width: int = 320, height: int = 64,
               label: str = "relevance", gamma: float = 1.0) -> np.ndarray:
    # a legend is drawn again on every frame with the same numbers: keep recent ones
    return _colour_bar(cmap, float(scale), int(width), int(height), str(label),
                       float(gamma)).copy()


@lru_cache(maxsize=64)
def _colour_bar(cmap: str, scale: float, width: int, height: int, label: str,
                gamma: float) -> np.ndarray:
    """A horizontal colour bar with tick labels in real relevance units.

    Diverging maps run from ``-scale`` (left) through 0 to ``+scale``; positive-only maps
    from 0 to ``+scale``. ``label`` is printed under the ticks (say the normalisation
    there). With ``gamma`` ≠ 1 the ticks keep their places and show the real values
    there (e.g. the half-way tick reads ``scale · 0.5^(1/gamma)``). Returns
    ``(height, width, 3)`` uint8.
    """
    if not np.isfinite(scale) or scale < 0:
        raise ParameterError(f"colour-bar scale must be finite and ≥ 0, got {scale}")
    if width < 40 or height < 30:
        raise ParameterError("the colour bar needs at least 40×30 pixels")
    diverging = is_diverging(cmap)
    text_size = max(9, min(14, height // 5))
    # room for half of the widest tick label at each end
    pad = int(_font(text_size).getlength(format_value(-scale))) // 2 + 4
    bar_h = max(8, height // 4)
    img = np.full((height, width, 3), _BACKGROUND, np.uint8)
    pos = np.linspace(-1.0 if diverging else 0.0, 1.0, width - 2 * pad)
    row = colour_table(cmap)[_indices(pos, diverging)]
    img[2 : 2 + bar_h, pad : width - pad] = row[None]
    img[2 + bar_h, pad : width - pad] = _INK  # baseline for the ticks
    _contrast(np.zeros(1, np.float32), gamma)  # validates gamma
    ticks = (-1.0, -0.5, 0.0, 0.5, 1.0) if diverging else (0.0, 0.5, 1.0)
    labels: list[Label] = []
    for t in ticks:
        x = pad + int(round((t - pos[0]) / (pos[-1] - pos[0]) * (width - 2 * pad - 1)))
        img[2 + bar_h : 6 + bar_h, x] = _INK
        value = np.sign(t) * abs(t) ** (1.0 / gamma) * scale  # inverse of _contrast
        labels.append(((x, 8 + bar_h), format_value(value), text_size, "ma"))
    if label:
        labels.append(((width // 2, height - 2), label, text_size, "md"))
    img = _draw_texts(img, labels)
    img.setflags(write=False)
    return img


def titled(img: np.ndarray, title: str, size: int = 12) -> np.ndarray:
    """``img`` with a white band and ``title`` above it."""
    band = np.full((size + 8, img.shape[1], 3), _BACKGROUND, np.uint8)
    band = _draw_texts(band, [((img.shape[1] // 2, 4), title, size, "ma")])
    return np.concatenate([band, img], axis=0)


def placeholder(height: int, width: int, lines: Sequence[str], size: int = 12) -> np.ndarray:
    """A light grey tile with centred lines of text: a map that was not computed."""
    img = np.full((height, width, 3), 236, np.uint8)
    step = size + 6
    top = height // 2 - (len(lines) * step) // 2
    return _draw_texts(img, [((width // 2, top + i * step), line, size, "ma")
                             for i, line in enumerate(lines)])


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
        left = max(int(_font(title_size).getlength(t)) for t in row_titles) + 8
    top = title_size + 8 if col_titles else 0
    height = top + sum(heights) + (len(rows) - 1) * gap
    width = left + ncols * w + (ncols - 1) * gap
    canvas = np.full((height, width, 3), _BACKGROUND, np.uint8)
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
    return _draw_texts(canvas, labels)


# --------------------------------------------------------------------------- clip figures
def _frame_indices(n: int, indices: Sequence[int] | None, every: int) -> list[int]:
    if every < 1:
        raise ParameterError(f"every must be ≥ 1, got {every}")
    idx = list(range(0, n, every)) if indices is None else [int(i) for i in indices]
    if not idx:
        raise ParameterError("no frames selected")
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise ParameterError(f"frame indices {bad} are outside 0..{n - 1}")
    return idx


def _clip_inputs(frames: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(frames)
    arr = check_finite(maps)
    if img.ndim != 4 or arr.ndim != 3 or img.shape[0] != arr.shape[0]:
        raise ParameterError(f"need frames (T, H, W, 3) and maps (T, H, W) with the same T; "
                             f"got {img.shape} and {arr.shape}")
    return img, arr


def enlarge(img: np.ndarray, zoom: float) -> np.ndarray:
    """An RGB image scaled by ``zoom`` (bilinear up, area-averaged down) for display."""
    if not np.isfinite(zoom) or zoom <= 0:
        raise ParameterError(f"zoom must be > 0, got {zoom}")
    return _zoom(np.asarray(img), zoom)


def _zoom(img: np.ndarray, zoom: float) -> np.ndarray:
    if zoom == 1:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * zoom)), max(1, round(h * zoom)))
    return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR if zoom > 1 else cv2.INTER_AREA)


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
    img, arr = _clip_inputs(frames, maps)
    idx = _frame_indices(len(img), indices, every)
    s = np.broadcast_to(_resolve_scale(arr, scale), (len(arr),))
    tiles = [_zoom(overlay(img[i], arr[i], alpha, cmap, float(s[i]), gamma, desaturate), zoom)
             for i in idx]
    h, w = tiles[0].shape[:2]
    band = 16 if label_frames else 0
    out = np.full((h + band, len(tiles) * w + (len(tiles) - 1) * gap, 3), _BACKGROUND, np.uint8)
    labels: list[Label] = []
    for k, (i, tile) in enumerate(zip(idx, tiles, strict=True)):
        x = k * (w + gap)
        out[:h, x : x + w] = tile
        if label_frames:
            labels.append(((x + w // 2, h + 2), str(i), 11, "ma"))
    return _draw_texts(out, labels)


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
    evidence through time, seen at once (Stergiou et al. 2019; survey, paper 002).

    Returns
    -------
    np.ndarray
        ``uint8`` RGB image; its size depends only on the frame size, the number of
        frames drawn and the geometry parameters.
    """
    img, arr = _clip_inputs(frames, maps)
    idx = _frame_indices(len(img), indices, every)
    for name, v, lo, hi in (("squeeze", squeeze, 0.05, 1.0), ("shear", shear, 0.0, 1.0),
                            ("step", step, 0.0, 2.0), ("rise", rise, 0.0, 1.0),
                            ("opacity", opacity, 0.0, 1.0)):
        if not lo <= v <= hi:
            raise ParameterError(f"{name} must be in [{lo}, {hi}], got {v}")
    s = np.broadcast_to(_resolve_scale(arr, scale), (len(arr),))
    geo = _TubeGeometry.of(len(idx), img.shape[1], img.shape[2], zoom, squeeze, shear, step, rise)
    canvas = np.full((geo.height, geo.width, 3), _BACKGROUND, np.float32)
    centres: list[tuple[float, float]] = []
    for k, i in enumerate(idx):
        tile = _zoom(overlay(img[i], arr[i], alpha, cmap, float(s[i]), gamma, desaturate), zoom)
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
        cv2.polylines(out, [pts], False, _INK, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(out, (int(p[0]), int(p[1])), 3, _INK, -1, cv2.LINE_AA)
    if label_frames:
        corners = [geo.corners(k)[3] for k in range(len(idx))]  # bottom-left of each card
        out = _draw_texts(out, [((int(x0) + 2, int(y0) + 3), str(i), 11, "la")
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


# --------------------------------------------------------------------------- files
def to_png(img: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image (downloads, exports)."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ParameterError(f"a PNG needs a uint8 (H, W, 3) image, got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def to_jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 image: ~10× faster to encode than PNG for big pictures."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ParameterError(f"a JPEG needs a uint8 (H, W, 3) image, got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def save_png(path: str | Path, img: np.ndarray) -> Path:
    """Write ``img`` as a PNG file and return its path."""
    path = Path(path)
    path.write_bytes(to_png(img))
    return path


def overlay_frames(frames: np.ndarray, maps: np.ndarray, *, cmap: str = "bwr",
                   scale: float | np.ndarray | None = None, alpha: float = 0.6,
                   zoom: float = 1.0, gamma: float = 1.0, desaturate: float = 0.0
                   ) -> np.ndarray:
    """Every frame with its relevance overlaid, ``(T, H·zoom, W·zoom, 3)`` uint8."""
    img, arr = _clip_inputs(frames, maps)
    s = _resolve_scale(arr, scale)
    s = np.broadcast_to(s, (len(arr),)) if s.ndim == 0 else s
    return np.stack([_zoom(o, zoom) for o in overlay(img, arr, alpha, cmap, s, gamma, desaturate)])


def overlay_video(path: str | Path, frames: np.ndarray, maps: np.ndarray, fps: float = 8.0, *,
                  cmap: str = "bwr", scale: float | np.ndarray | None = None, alpha: float = 0.6,
                  zoom: float = 2.0, gamma: float = 1.0, desaturate: float = 0.0) -> Path:
    """Write the overlaid clip as a browser-playable H.264 mp4 (yuv420p) and return its path."""
    from .video.write import write_video  # PyAV libx264 writer, owned by the video module

    if not np.isfinite(fps) or fps <= 0:
        raise ParameterError(f"fps must be > 0, got {fps}")
    video = overlay_frames(frames, maps, cmap=cmap, scale=scale, alpha=alpha, zoom=zoom,
                           gamma=gamma, desaturate=desaturate)
    return Path(write_video(path, video, fps))
