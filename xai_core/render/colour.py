"""Colour for signed relevance: zero-centred colour tables, colourised maps, heat overlays.

Scaling is symmetric around zero (see :mod:`.scale`), so zero keeps the colour map's
neutral colour and red/blue mean evidence for/against the class. Positive-only colour
maps draw negative relevance as zero.
"""

from __future__ import annotations

from functools import lru_cache

import matplotlib as mpl
import numpy as np

from ..errors import ParameterError
from .scale import apply_contrast, check_finite, resize_maps, scale_or_clip_max, to_unit

#: Colour maps centred on zero: negative → blue, zero → neutral, positive → red.
DIVERGING_CMAPS: tuple[str, ...] = ("bwr", "coolwarm", "seismic", "RdBu_r")

#: Colour maps for positive-only views (negative relevance is not drawn).
SEQUENTIAL_CMAPS: tuple[str, ...] = ("inferno", "hot", "viridis")

#: Odd number of colour-table entries so that zero falls exactly on the centre entry.
_LUT_SIZE = 257
_CENTRE = _LUT_SIZE // 2


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


def table_indices(unit: np.ndarray, diverging: bool) -> np.ndarray:
    """Entries of :func:`colour_table` for display-scaled values in ``[-1, 1]``.

    A diverging map spans ``[-1, 1]`` with zero on the centre entry; a positive-only map
    spans ``[0, 1]`` and negative values get its first entry.
    """
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
    unit = apply_contrast(to_unit(arr, scale_or_clip_max(arr, scale)), gamma)
    return colour_table(cmap)[table_indices(unit, is_diverging(cmap))]


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
    unit = to_unit(arr, scale_or_clip_max(arr, scale))
    unit = apply_contrast(resize_maps(unit, img.shape[-3:-1]), gamma)
    diverging = is_diverging(cmap)
    colour = colour_table(cmap)[table_indices(unit, diverging)].astype(np.float32)
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
