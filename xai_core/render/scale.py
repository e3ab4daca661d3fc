"""Relevance numbers for display: validation, symmetric display scaling, contrast, resizing.

"Normalise" here always means *display scaling* — dividing signed relevance by a maximum
``|relevance|`` so that it fits ``[-1, 1]`` around zero — not the model-input normalisation
of :func:`xai_core.video.preprocess.normalise`. Every scale used is returned so that a
legend can state it. The other ``render`` modules turn these unit values into colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from ..errors import ParameterError

#: Display-scaling (normalisation) modes, always symmetric around zero.
NORMALISATIONS: tuple[str, ...] = ("per-frame", "per-clip", "shared")

#: What ``|relevance|`` gets full colour: the largest, or a high percentile of the
#: non-zero values (``"p99.5"``: robust to a few extreme voxels, which otherwise leave a
#: heavy-tailed map — gradients — almost invisible; larger values are drawn at full colour).
SCALE_STATISTICS: tuple[str, ...] = ("max", "p99.5", "p99", "p95")


class Normalised(NamedTuple):
    """Result of :func:`normalise` (display scaling).

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

    Sharing one display scale across methods (or full/spatial/temporal) makes their
    colours comparable; each method's relevance must then be in the same units (e.g. all
    LRP).
    """
    if not maps:
        raise ParameterError("max_abs needs at least one map")
    return float(max(np.abs(check_finite(m)).max(initial=0.0) for m in maps))


def statistic_label(statistic: str) -> str:
    """A legend's words for a :data:`SCALE_STATISTICS` entry: ``max |R|``, ``99.5th pct |R|``."""
    q = _percentile(statistic)
    return "max |R|" if q is None else f"{q:g}th pct |R|"


def _percentile(statistic: str) -> float | None:
    """``None`` for ``"max"``, the percentile for ``"pQ"`` (0 < Q ≤ 100)."""
    if statistic == "max":
        return None
    try:
        q = float(statistic[1:]) if statistic.startswith("p") else float("nan")
    except ValueError:
        q = float("nan")
    if not 0 < q <= 100:
        raise ParameterError(f"unknown display statistic {statistic!r}",
                             hint=f"Use one of: {', '.join(SCALE_STATISTICS)} (pQ: the Q-th "
                                  "percentile of the non-zero |relevance|).")
    return q


def abs_statistic(arr: np.ndarray, statistic: str = "max") -> float:
    """``max |arr|``, or the percentile of its non-zero ``|values|`` (0 for all-zero)."""
    a = np.abs(np.asarray(arr, dtype=np.float32)).ravel()
    q = _percentile(statistic)
    if q is None:
        return float(a.max(initial=0.0))
    nz = a[a > 0]
    return float(np.percentile(nz, q)) if nz.size else 0.0


def joint_scale(maps: Sequence[np.ndarray], mode: str = "per-clip", ref: float | None = None,
                statistic: str = "max") -> np.ndarray:
    """One display scale for several maps of the same clip (e.g. full, spatial and
    temporal of one method), so that their colours compare: per frame (``(T,)``) over all
    of them in ``"per-frame"`` mode, else over all frames. ``"shared"`` returns ``ref``."""
    if not maps:
        raise ParameterError("joint_scale needs at least one map")
    arrs = [check_finite(m) for m in maps]
    lead = arrs[0].shape[:-2]
    if any(a.shape[:-2] != lead for a in arrs):
        raise ParameterError(f"maps of one clip must have the same frames, got "
                             f"{[a.shape for a in arrs]}")
    # side by side along the width: frame t of every map stays frame t
    height = max(a.shape[-2] for a in arrs)
    padded = [a if a.shape[-2] == height else
              np.concatenate([a, np.zeros((*lead, height - a.shape[-2], a.shape[-1]),
                                          np.float32)], axis=-2) for a in arrs]
    return _display_scale(np.concatenate(padded, axis=-1), mode, ref, statistic)


def normalise(maps: np.ndarray, mode: str = "per-clip", ref: float | None = None) -> Normalised:
    """Display scaling: signed relevance into ``[-1, 1]``, symmetrically around zero.

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
    scale = _display_scale(arr, mode, ref)
    return Normalised(to_unit(arr, scale), scale)


def scale_of(maps: np.ndarray, mode: str = "per-clip", ref: float | None = None,
             statistic: str = "max") -> np.ndarray:
    """Only the ``scale`` :func:`normalise` would return (for legends and colouring later);
    ``statistic`` (:data:`SCALE_STATISTICS`) picks what gets full colour."""
    return _display_scale(check_finite(maps), mode, ref, statistic)


def _display_scale(arr: np.ndarray, mode: str, ref: float | None,
                   statistic: str = "max") -> np.ndarray:
    """The ``|relevance|`` given full colour in display-scaling ``mode``, per leading index."""
    lead = arr.shape[:-2]
    if mode == "per-frame":
        if statistic == "max":
            scale = np.abs(arr).max(axis=(-2, -1)) if arr.size else np.zeros(lead, np.float32)
        else:
            flat = arr.reshape(-1, *arr.shape[-2:])
            scale = np.array([abs_statistic(f, statistic) for f in flat],
                             np.float32).reshape(lead)
    elif mode == "per-clip":
        scale = np.full(lead, abs_statistic(arr, statistic), dtype=np.float32)
    elif mode == "shared":
        if ref is None or not np.isfinite(ref) or ref < 0:
            raise ParameterError(f"shared normalisation needs a finite scale ≥ 0, got {ref!r}",
                                 hint="Pass ref=max_abs(map_a, map_b, ...).")
        scale = np.full(lead, ref, dtype=np.float32)
    else:
        raise ParameterError(f"unknown normalisation {mode!r}",
                             hint=f"Use one of: {', '.join(NORMALISATIONS)}.")
    return np.asarray(scale, dtype=np.float32)


def to_unit(arr: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
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


def apply_contrast(unit: np.ndarray, gamma: float) -> np.ndarray:
    """sign(u)·|u|^gamma: zero and ±1 fixed, weak values lifted when gamma < 1."""
    if not (np.isfinite(gamma) and 0.1 <= gamma <= 3.0):
        raise ParameterError(f"contrast gamma must be in [0.1, 3], got {gamma}",
                             hint="Use 1 for a linear colour scale.")
    if gamma == 1.0:
        return unit
    return np.sign(unit) * np.abs(unit) ** np.float32(gamma)


def scale_or_clip_max(arr: np.ndarray, scale: float | np.ndarray | None) -> np.ndarray:
    """The given display scale, or the per-clip max ``|value|`` when none is given."""
    if scale is None:
        return np.asarray(np.abs(arr).max(initial=0.0), dtype=np.float32)
    return np.asarray(scale, dtype=np.float32)


def resize_maps(unit: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(..., h, w)`` maps resampled (bilinearly) to ``size`` = ``(H, W)``; as is if equal."""
    if unit.shape[-2:] == tuple(size):
        return unit
    flat = unit.reshape(-1, *unit.shape[-2:])
    resized = [cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for m in flat]
    return np.stack(resized).reshape(*unit.shape[:-2], *size)


def relevance_over_time(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of positive and of negative relevance in each frame: ``(pos (T,), neg (T,))``.

    ``neg`` is ≤ 0 and ``pos + neg`` is the frame's net relevance, in the method's units
    (the relevance-over-time view of the survey by Hiley et al. 2019).
    """
    arr = check_finite(maps)
    if arr.ndim != 3:
        raise ParameterError(f"need maps (T, H, W), got {arr.shape}")
    flat = arr.reshape(arr.shape[0], -1).astype(np.float64)
    return np.clip(flat, 0, None).sum(axis=1), np.clip(flat, None, 0).sum(axis=1)
