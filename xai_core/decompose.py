"""Split a video explanation into spatial and temporal (motion) relevance.

Two decompositions, both built only on the method contract of
:mod:`xai_core.methods.base`, so every registered method gets them for free:

* **Discriminative relevance** (Hiley et al. 2019, paper 000): the spatial relevance of
  frame *t* is read from the explanation of a *freeze-frame* clip — frame *t* repeated T
  times, padded by repetition and never with black frames, which would inject false
  motion — for the same target; temporal = full − spatial.
* **Selective relevance** (Hiley et al. 2020, paper 001): keep the voxels where the
  temporal Sobel derivative of the relevance exceeds ``sigma`` standard deviations.

Relevance stays signed and in the method's own units unless
:class:`DecompositionOptions` asks for the paper's max-abs normalisation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .errors import ParameterError
from .methods.base import Method
from .models.registry import LoadedModel

SLICES = ("same", "first", "mean")
NORMALISATIONS = ("none", "max-abs")
SOBEL_BORDERS = ("replicate", "zeros")

#: A temporal derivative whose spread is below this fraction of the relevance's peak is
#: float rounding, not motion: the selective mask is then empty.
SELECTIVE_NOISE_FLOOR = 1e-6

#: progress(done, total) inside one decomposition stage.
StageProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class DecompositionOptions:
    """How the full explanation is split into spatial, temporal and selective parts.

    Parameters
    ----------
    slice
        Which part of a freeze-frame explanation is the spatial relevance of frame t:
        ``"same"`` (default) slice t — the frame sits at the same temporal position,
        and with the same border effects, as in the full explanation, so a static clip
        has exactly zero temporal relevance; ``"first"`` slice 0, as the authors' scripts
        (paper 000) — slice 0 is at the zero-padded temporal border; ``"mean"`` the mean
        over all T slices (averages the border effects out).
    normalise
        Scaling before subtracting. ``"none"`` (default) keeps relevance in the method's
        units, so ``full == spatial + temporal`` and the maps of different clips and
        methods stay comparable. ``"max-abs"`` is the paper's choice: the full volume is
        divided by its max |value| and each frame's spatial map by its own max |value|
        (a map that is all zero stays zero); then temporal = full − spatial in those
        unit-less terms.
    sigma
        Selective relevance threshold n in |D| > n·std(D); 4 as in paper 001 (Sec. 4,
        "a threshold of four standard deviations"), which also says n should be tuned
        per task.
    sobel_border
        Temporal padding of the Sobel derivative. ``"replicate"`` (default) repeats the
        first and last relevance slices, so relevance that is constant in time has zero
        derivative at the borders too; ``"zeros"`` is the authors' ``conv3d(padding=1)``,
        which marks the first and last frames as "moving" whenever they carry relevance.
    chunk_size
        Freeze-frame clips per pass (``None``: the method's ``default_batch_size``).
        Does not change the result, only memory and speed.
    reuse_identical
        Explain each distinct frame's freeze-frame clip once (identical frames give
        identical freeze-frame clips), and reuse the full explanation when the clip is
        static (its freeze-frame clips *are* the clip). Exact; does not change results.
    """

    slice: str = "same"
    normalise: str = "none"
    sigma: float = 4.0
    sobel_border: str = "replicate"
    chunk_size: int | None = None
    reuse_identical: bool = True

    def __post_init__(self) -> None:
        _choice("slice", self.slice, SLICES)
        _choice("normalise", self.normalise, NORMALISATIONS)
        _choice("sobel_border", self.sobel_border, SOBEL_BORDERS)
        # σ = 0 would keep every voxel with any temporal change: no selection at all
        if not isinstance(self.sigma, (int, float)) or not 0 < float(self.sigma) <= 100:
            raise ParameterError(f"sigma must be a number above 0 and at most 100, got "
                                 f"{self.sigma!r}",
                                 hint="Paper 001 uses 4; lower values select more voxels.")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int)
                                            or self.chunk_size < 1):
            raise ParameterError(f"chunk_size must be a positive integer, got {self.chunk_size!r}",
                                 hint="Use e.g. 4, or None for the method's default.")

    def key(self) -> dict[str, Any]:
        """The options that change results (cache key): not chunk size nor reuse."""
        d = asdict(self)
        d.pop("chunk_size")
        d.pop("reuse_identical")
        d["sigma"] = float(d["sigma"])
        return d


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParameterError(f"{name} must be one of {list(choices)}, got {value!r}")


#: The defaults (a frozen instance, safe to share).
DEFAULT_OPTIONS = DecompositionOptions()


# --------------------------------------------------------------------------- freeze frames
def distinct_frames(x: torch.Tensor) -> tuple[list[int], torch.Tensor]:
    """Group the frames of one clip (1, 3, T, H, W) by exact equality.

    Returns
    -------
    representatives
        Index of the first frame of each group, in temporal order.
    inverse
        (T,) long tensor: the group of each frame.
    """
    frames = x[0].detach().to("cpu", torch.float32).movedim(1, 0).contiguous()  # (T, 3, H, W)
    seen: dict[bytes, int] = {}
    reps: list[int] = []
    inverse = []
    for t in range(frames.shape[0]):
        digest = hashlib.sha256(frames[t].numpy().tobytes()).digest()
        if digest not in seen:
            seen[digest] = len(reps)
            reps.append(t)
        inverse.append(seen[digest])
    return reps, torch.tensor(inverse, dtype=torch.long)


def freeze_frame_clips(x: torch.Tensor, frames: list[int] | None = None) -> torch.Tensor:
    """Freeze-frame clips of one clip (1, 3, T, H, W): frame t repeated T times.

    Padded by repeating the frame (paper 000, Sec. 4.4), never with black frames.
    Returns (len(frames), 3, T, H, W); ``frames`` defaults to all T frames.
    """
    if x.ndim != 5 or x.shape[0] != 1:
        raise ParameterError(f"expected one clip (1, 3, T, H, W), got {tuple(x.shape)}")
    t = x.shape[2]
    idx = list(range(t)) if frames is None else list(frames)
    still = x[0][:, idx]  # (3, N, H, W)
    return still.movedim(1, 0).unsqueeze(2).expand(-1, -1, t, -1, -1).contiguous()


def is_static(x: torch.Tensor) -> bool:
    """True when every frame of the clip (1, 3, T, H, W) equals the first, bit for bit."""
    return bool((x == x[:, :, :1]).all())


@dataclass
class Discriminative:
    """Output of :func:`discriminative`: maps (T, H, W) and the number of passes run."""

    full: torch.Tensor
    spatial: torch.Tensor
    temporal: torch.Tensor
    freeze_frame_passes: int


def freeze_frame_selection(x: torch.Tensor, options: DecompositionOptions = DEFAULT_OPTIONS
                           ) -> tuple[list[int], torch.Tensor, bool]:
    """Which freeze-frame clips the split explains: (frames, index of each of the T frames
    into them, static). With ``reuse_identical`` each distinct frame once, and a static
    clip (one distinct frame) needs no pass: its freeze-frame clip is the clip itself."""
    if options.reuse_identical:
        reps, inverse = distinct_frames(x)
        return reps, inverse, len(reps) == 1
    t = x.shape[2]
    return list(range(t)), torch.arange(t), False


def discriminative(method: Method, model: LoadedModel, x: torch.Tensor, target: int,
                   full: torch.Tensor, options: DecompositionOptions = DEFAULT_OPTIONS,
                   progress: StageProgress | None = None) -> Discriminative:
    """Discriminative (freeze-frame) relevance, paper 000.

    Parameters
    ----------
    method, model
        The method and the model that produced ``full``.
    x
        The clip (1, 3, T, H, W), normalised.
    target
        The class explained in ``full``; every freeze-frame clip is explained for the same
        class (paper 000), not for its own prediction.
    full
        The method's relevance of ``x`` (T, H, W).
    options
        Slice choice, normalisation, chunk size, reuse.

    Returns
    -------
    Discriminative
        ``full`` (normalised if asked), ``spatial`` and ``temporal`` (T, H, W) with
        ``full == spatial + temporal`` (exact with ``normalise="none"`` up to one float
        rounding of the subtraction), and how many freeze-frame clips were explained.

    Notes
    -----
    The freeze-frame clips are explained in batches of ``options.chunk_size`` clips,
    not one pass each. With ``reuse_identical`` each distinct frame is explained once,
    and a static clip costs no extra pass at all (its freeze-frame clip is the clip).
    """
    if full.shape != x.shape[2:]:
        raise ParameterError(f"full relevance {tuple(full.shape)} does not match the clip "
                             f"{tuple(x.shape[2:])}")
    reps, inverse, static = freeze_frame_selection(x, options)
    if static:
        explained = full.unsqueeze(0)  # the freeze-frame clip is the clip itself
        passes = 0
        if progress is not None:
            progress(1, 1)
    else:
        clips = freeze_frame_clips(x, reps)
        step = None if progress is None else (lambda done, total, _stage: progress(done, total))
        explained = method.attribute(model, clips, target, batch_size=options.chunk_size,
                                     progress=step).relevance
        passes = len(reps)
        if progress is not None and len(reps) == 1:
            progress(1, 1)
    spatial = spatial_from_freeze_frames(explained, inverse, options.slice)
    full = scale_full(full, options)
    if options.normalise == "max-abs":
        spatial = spatial / _max_abs(spatial, per_frame=True)
    temporal = full - spatial
    return Discriminative(full, spatial, temporal, passes)


def spatial_from_freeze_frames(explained: torch.Tensor, inverse: torch.Tensor,
                               which: str) -> torch.Tensor:
    """Spatial relevance (T, H, W) from freeze-frame explanations (U, T, H, W).

    ``inverse[t]`` is the explanation of frame t's freeze-frame clip; ``which`` picks
    slice t (``"same"``), slice 0 (``"first"``) or the mean over slices (``"mean"``).
    """
    _choice("slice", which, SLICES)
    per_frame = explained[inverse]  # (T, T, H, W): explanation of frame t's clip
    if which == "same":
        t = torch.arange(per_frame.shape[0])
        return per_frame[t, t].clone()
    if which == "first":
        return per_frame[:, 0].clone()
    return per_frame.mean(dim=1)


def scale_full(full: torch.Tensor, options: DecompositionOptions = DEFAULT_OPTIONS
               ) -> torch.Tensor:
    """The full map as the split uses it: float32, divided by its max |value| under
    ``normalise="max-abs"`` (also applied when the split itself is skipped, so full maps
    compare either way)."""
    full = full.to(torch.float32)
    return full / _max_abs(full) if options.normalise == "max-abs" else full


def _max_abs(t: torch.Tensor, per_frame: bool = False) -> torch.Tensor:
    """max |t| of the volume (or of each frame); 1 where it is 0 so zero maps stay zero."""
    m = t.abs().amax(dim=(1, 2), keepdim=True) if per_frame else t.abs().amax()
    return torch.where(m > 0, m, torch.ones_like(m))


# --------------------------------------------------------------------------- selective
def sobel_kernel() -> torch.Tensor:
    """The 3×3×3 temporal Sobel kernel of paper 001 as a (T, H, W) tensor.

    Slice t−1 = [[1,2,1],[2,4,2],[1,2,1]], slice t = 0, slice t+1 = −(slice t−1).
    """
    smooth = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    return torch.stack([smooth, torch.zeros(3, 3), -smooth])


def temporal_sobel(relevance: torch.Tensor, border: str = "replicate") -> torch.Tensor:
    """Temporal Sobel derivative D of relevance (T, H, W) or (B, T, H, W).

    D[t] = S(R[t−1]) − S(R[t+1]), S the 3×3 [1,2,1]⊗[1,2,1] spatial smoothing with zero
    padding (space borders do not create change in time). In time the clip is padded by
    ``border``: ``"replicate"`` (R[−1] = R[0], R[T] = R[T−1]) or ``"zeros"`` (authors').

    The smoothing is computed once per slice with element-wise shifted sums, so two
    bit-identical slices smooth to bit-identical results: relevance constant in time
    has a derivative of exactly zero.
    """
    _choice("sobel_border", border, SOBEL_BORDERS)
    r = relevance.to(torch.float32)
    squeeze = r.ndim == 3
    if squeeze:
        r = r.unsqueeze(0)
    if r.ndim != 4:
        raise ParameterError(f"relevance must be (T, H, W) or (B, T, H, W), got {tuple(r.shape)}")
    p = F.pad(r, (1, 1, 1, 1))  # zero padding in H and W
    rows = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    smooth = rows[..., :-2] + 2 * rows[..., 1:-1] + rows[..., 2:]  # (B, T, H, W)
    if border == "replicate":
        before, after = smooth[:, :1], smooth[:, -1:]
    else:
        before, after = torch.zeros_like(smooth[:, :1]), torch.zeros_like(smooth[:, -1:])
    padded = torch.cat([before, smooth, after], dim=1)
    d = padded[:, :-2] - padded[:, 2:]
    return d[0] if squeeze else d


def selective_mask(relevance: torch.Tensor, sigma: float = 4.0,
                   border: str = "replicate") -> torch.Tensor:
    """Boolean mask |D| > sigma·std(D) of the temporal Sobel derivative D (paper 001).

    |D| rather than D keeps both temporal directions (appearing and vanishing
    relevance). std is the population standard deviation over the whole clip (per clip
    for a batch). When std(D) is below :data:`SELECTIVE_NOISE_FLOOR` × max |relevance|
    the relevance does not change in time and the mask is empty.

    Notes
    -----
    The mask follows changes of *relevance* in time, not of pixels. On a static clip a
    3D CNN's own zero padding in time still makes relevance differ near the first and
    last frames, so the mask can select border frames there; the discriminative split
    (temporal = 0 exactly on a static clip) does not have this artefact.
    """
    d = temporal_sobel(relevance, border)
    batched = d.ndim == 4
    d4 = d if batched else d.unsqueeze(0)
    r4 = relevance.to(torch.float32).reshape(d4.shape)
    flat = d4.flatten(1).double()
    std = flat.std(dim=1, unbiased=False)
    peak = r4.flatten(1).abs().amax(dim=1).double()
    moving = std > SELECTIVE_NOISE_FLOOR * peak
    mask = (flat.abs() > float(sigma) * std.unsqueeze(1)) & moving.unsqueeze(1)
    mask = mask.view(d4.shape)
    return mask if batched else mask[0]


def selective_relevance(relevance: torch.Tensor, sigma: float = 4.0,
                        border: str = "replicate") -> tuple[torch.Tensor, torch.Tensor]:
    """Selective relevance (paper 001): relevance × mask, and the mask.

    See :func:`selective_mask`. Works on any relevance map — full, spatial or temporal.
    """
    mask = selective_mask(relevance, sigma, border)
    return relevance.to(torch.float32) * mask, mask


# --------------------------------------------------------------------------- motion share
def _positive_sum(t: torch.Tensor) -> float:
    return float(t.double().clamp_min(0).sum())


def motion_share_discriminative(spatial: torch.Tensor, temporal: torch.Tensor) -> float:
    """Fraction of positive relevance that is temporal, by the discriminative split.

    share = Σ relu(temporal) / (Σ relu(spatial) + Σ relu(temporal)), in [0, 1]; 0 for a
    static clip. Positive parts only: negative relevance is evidence *against* the
    class and would make a "share" meaningless. ``nan`` when neither part has positive
    relevance.
    """
    pos_t = _positive_sum(temporal)
    total = _positive_sum(spatial) + pos_t
    return pos_t / total if total > 0 else float("nan")


def motion_share_selective(full: torch.Tensor, selective: torch.Tensor) -> float:
    """Fraction of the full explanation's positive relevance kept by the selective mask.

    share = Σ relu(selective) / Σ relu(full), in [0, 1] (paper 001's "ratio of the sum
    of relevance"); ``nan`` when the full explanation has no positive relevance.
    """
    total = _positive_sum(full)
    return _positive_sum(selective) / total if total > 0 else float("nan")
