"""Text on pictures: the font, cached glyphs, labels, colour-bar legends, titles, placeholders.

Legends repeat the same few strings and numbers on every frame, so glyphs and colour bars
are rasterised once and cached. :data:`INK` and :data:`BACKGROUND` are the colours every
``render`` picture draws text and empty space in.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import ParameterError
from .colour import colour_table, is_diverging, table_indices
from .scale import apply_contrast

#: Grey level of empty space (canvas, title bands) in every picture.
BACKGROUND = 255

#: RGB colour of text, ticks and lines.
INK = (40, 40, 40)

#: One text to draw: (x, y), text, font size, PIL anchor.
Label = tuple[tuple[int, int], str, int, str]


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont:
    """PIL's default font at ``size`` pixels (cached)."""
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=1024)
def _glyphs(text: str, size: int, anchor: str) -> tuple[np.ndarray, int, int]:
    """Coverage (0..1) of ``text`` rendered once, and its offset from the anchor point.

    Legends repeat the same few strings on every frame; rasterising each once makes
    drawing them a small array blend.
    """
    f = font(size)
    left, top, right, bottom = f.getbbox(text, anchor=anchor)
    w, h = max(1, right - left), max(1, bottom - top)
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).text((-left, -top), text, fill=255, font=f, anchor=anchor)
    mask = np.asarray(canvas, dtype=np.float32)[..., None] / 255.0
    mask.setflags(write=False)
    return mask, left, top


def draw_texts(img: np.ndarray, labels: Sequence[Label]) -> np.ndarray:
    """A copy of ``img`` with the ``labels`` drawn in ink (clipped at the borders)."""
    out = np.array(img, dtype=np.uint8, copy=True)
    ink = np.array(INK, np.float32)
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
    """A horizontal colour bar with tick labels in real relevance units.

    Diverging maps run from ``-scale`` (left) through 0 to ``+scale``; positive-only maps
    from 0 to ``+scale``. ``label`` is printed under the ticks (say the normalisation
    there). With ``gamma`` ≠ 1 the ticks keep their places and show the real values
    there (e.g. the half-way tick reads ``scale · 0.5^(1/gamma)``). Returns
    ``(height, width, 3)`` uint8. A ``label`` with a newline is printed on two lines (give
    the bar more height). A zero ``scale`` (an all-zero map) has no ticks: the bar is the
    neutral colour and says that the map is all zero, instead of ticks that all read 0.
    """
    # a legend is drawn again on every frame with the same numbers: keep recent ones
    return _cached_colour_bar(cmap, float(scale), int(width), int(height), str(label),
                              float(gamma)).copy()


@lru_cache(maxsize=64)
def _cached_colour_bar(cmap: str, scale: float, width: int, height: int, label: str,
                       gamma: float) -> np.ndarray:
    """:func:`colour_bar`, drawn once per argument set (read-only: callers get a copy)."""
    if not np.isfinite(scale) or scale < 0:
        raise ParameterError(f"colour-bar scale must be finite and ≥ 0, got {scale}")
    if width < 40 or height < 30:
        raise ParameterError("the colour bar needs at least 40×30 pixels")
    diverging = is_diverging(cmap)
    lines = label.count("\n") + 1 if label else 0
    if lines <= 1:
        text_size = max(9, min(14, height // 5))
        bar_h = max(8, height // 4)
    else:  # ticks and every line of the legend under a thinner bar
        text_size = max(9, min(12, height // (3 + 2 * lines)))
        bar_h = max(8, min(height // 4, height - 10 - (lines + 1) * (text_size + 3)))
    # room for half of the widest tick label at each end
    pad = int(font(text_size).getlength(format_value(-scale))) // 2 + 4
    img = np.full((height, width, 3), BACKGROUND, np.uint8)
    pos = np.linspace(-1.0 if diverging else 0.0, 1.0, width - 2 * pad)
    row = colour_table(cmap)[table_indices(pos, diverging)]
    img[2 : 2 + bar_h, pad : width - pad] = row[None]
    img[2 + bar_h, pad : width - pad] = INK  # baseline for the ticks
    apply_contrast(np.zeros(1, np.float32), gamma)  # validates gamma
    ticks = (-1.0, -0.5, 0.0, 0.5, 1.0) if diverging else (0.0, 0.5, 1.0)
    labels: list[Label] = []
    if scale == 0:  # nothing to scale: say so rather than five ticks reading "0"
        img[2 : 2 + bar_h, pad : width - pad] = colour_table(cmap)[
            table_indices(np.zeros(1), diverging)][0]
        ticks = ()
        labels.append(((width // 2, 8 + bar_h), "all zero: no relevance", text_size, "ma"))
    texts = [format_value(np.sign(t) * abs(t) ** (1.0 / gamma) * scale)  # inverse contrast
             for t in ticks]
    xs = [pad + int(round((t - pos[0]) / (pos[-1] - pos[0]) * (width - 2 * pad - 1)))
          for t in ticks]
    widths = [font(text_size).getlength(t) for t in texts]
    # numbers that would run into their neighbours are left out (the tick mark stays)
    crowded = any((widths[i] + widths[i + 1]) / 2 + 4 > xs[i + 1] - xs[i]
                  for i in range(len(xs) - 1))
    for i, (x, text) in enumerate(zip(xs, texts, strict=True)):
        img[2 + bar_h : 6 + bar_h, x] = INK
        if crowded and ticks[i] not in (-1.0, 0.0, 1.0):
            continue
        labels.append(((x, 8 + bar_h), text, text_size, "ma"))
    for i, line in enumerate(reversed(label.split("\n") if label else [])):
        labels.append(((width // 2, height - 2 - i * (text_size + 2)), line, text_size, "md"))
    img = draw_texts(img, labels)
    img.setflags(write=False)
    return img


def titled(img: np.ndarray, title: str, size: int = 12) -> np.ndarray:
    """``img`` with a white band and ``title`` above it."""
    band = np.full((size + 8, img.shape[1], 3), BACKGROUND, np.uint8)
    band = draw_texts(band, [((img.shape[1] // 2, 4), title, size, "ma")])
    return np.concatenate([band, img], axis=0)


def placeholder(height: int, width: int, lines: Sequence[str], size: int = 12) -> np.ndarray:
    """A light grey tile with centred lines of text: a map that was not computed."""
    img = np.full((height, width, 3), 236, np.uint8)
    step = size + 6
    top = height // 2 - (len(lines) * step) // 2
    return draw_texts(img, [((width // 2, top + i * step), line, size, "ma")
                            for i, line in enumerate(lines)])
