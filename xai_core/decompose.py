"""Split a video explanation into spatial and temporal (motion) relevance.

Two decompositions, both built only on the method contract of
:mod:`xai_core.methods.base`, so every registered method gets them for free:

* **Discriminative relevance** (Hiley et al. 2019): the spatial relevance of
  frame *t* is read from the explanation of a *freeze-frame* clip — frame *t* repeated T
  times, padded by repetition and never with black frames, which would inject false
  motion — for the same target; temporal = full − spatial.
* **Selective relevance** (Hiley et al. 2020): keep the voxels where the
  temporal Sobel derivative of the relevance exceeds ``sigma`` standard deviations —
  the paper's variant and border-aware ones, in :mod:`xai_core.selective` (re-exported
  here).

Relevance stays signed and in the method's own units unless
:class:`DecompositionOptions` asks for the paper's max-abs normalisation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .budget import clips_per_pass, method_weight
from .errors import ParameterError
from .methods.base import Method
from .models.registry import LoadedModel
from .selective import (
    DEFAULT_SELECTIVE,
    SELECTIVE_HELP,
    SELECTIVE_NOISE_FLOOR,
    SOBEL_BORDERS,
    SelectiveInputs,
    apply_selective,
    depends_on_split,
    selective_mask,
    selective_relevance,
    selective_variants,
    sobel_kernel,
    still_derivative,
    temporal_sobel,
)

__all__ = [
    "DEFAULT_OPTIONS", "DEFAULT_SELECTIVE", "NORMALISATIONS", "SELECTIVE_HELP",
    "SELECTIVE_NOISE_FLOOR", "SLICES", "SOBEL_BORDERS", "DecompositionOptions",
    "Discriminative", "SelectiveInputs", "apply_selective", "clips_per_batch", "depends_on_split",
    "discriminative", "distinct_frames", "freeze_frame_clips", "freeze_frame_selection",
    "motion_share_discriminative", "motion_share_selective", "scale_full", "selective_for",
    "selective_mask", "selective_relevance", "selective_variants", "sobel_kernel",
    "spatial_from_freeze_frames", "temporal_sobel",
]

SLICES = ("same", "first", "mean")
NORMALISATIONS = ("none", "max-abs")

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
        (Hiley et al. 2019) — slice 0 is at the zero-padded temporal border; ``"mean"`` the mean
        over all T slices (averages the border effects out).
    normalise
        Scaling before subtracting. ``"none"`` (default) keeps relevance in the method's
        units, so ``full == spatial + temporal`` and the maps of different clips and
        methods stay comparable. ``"max-abs"`` is the paper's choice: the full volume is
        divided by its max |value| and each frame's spatial map by its own max |value|
        (a map that is all zero stays zero); then temporal = full − spatial in those
        unit-less terms.
    sigma
        Selective relevance threshold n in |D| > n·std(D); 4 as in Hiley et al. (2020) (Sec. 4,
        "a threshold of four standard deviations"), which also says n should be tuned
        per task.
    sobel_border
        Temporal padding of the Sobel derivative. ``"replicate"`` (default) repeats the
        first and last relevance slices, so relevance that is constant in time has zero
        derivative at the borders too; ``"zeros"`` is the authors' ``conv3d(padding=1)``,
        which marks the first and last frames as "moving" whenever they carry relevance.
    selective
        Which selective-relevance variant (:mod:`xai_core.selective`). ``"still-gated"``
        (default) thresholds the derivative of the relevance minus that of each frame's
        freeze-frame clip, where the input changes: the network's zero padding in time
        marks nothing and a static clip has an empty mask. ``"hiley2020"`` is the
        paper's (Hiley et al. 2020), which marks the first and last frames of a static clip;
        ``"still-corrected"``, ``"temporal"`` and ``"input-gated"`` are the parts the
        default was chosen from. A method explained without the split (``--full-only``)
        has no freeze-frame clips: the variants that need them use ``"input-gated"``.
        Evidence: docs/evaluation.md (*Selective relevance without false motion*).
    chunk_size
        Clips per pass of the split and of the freeze-frame predictions (``None``: as
        many as the memory budget allows, :func:`xai_core.budget.clips_per_pass`;
        ``$XAI_MEMORY_BUDGET`` sets the budget). Does not change the result, only memory
        and speed.
    reuse_identical
        Explain each distinct frame's freeze-frame clip once (identical frames give
        identical freeze-frame clips), and reuse the full explanation when the clip is
        static (its freeze-frame clips *are* the clip). Exact; does not change results.
    """

    slice: str = "same"
    normalise: str = "none"
    sigma: float = 4.0
    sobel_border: str = "replicate"
    selective: str = DEFAULT_SELECTIVE
    chunk_size: int | None = None
    reuse_identical: bool = True

    def __post_init__(self) -> None:
        _choice("slice", self.slice, SLICES)
        _choice("normalise", self.normalise, NORMALISATIONS)
        _choice("sobel_border", self.sobel_border, SOBEL_BORDERS)
        _choice("selective", self.selective, selective_variants())
        # σ = 0 would keep every voxel with any temporal change: no selection at all
        if not isinstance(self.sigma, (int, float)) or not 0 < float(self.sigma) <= 100:
            raise ParameterError(f"sigma must be a number above 0 and at most 100, got "
                                 f"{self.sigma!r}",
                                 hint="Hiley et al. 2020 use 4; lower values select more voxels.")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int)
                                            or self.chunk_size < 1):
            raise ParameterError(f"chunk_size must be a positive integer, got {self.chunk_size!r}",
                                 hint="Use e.g. 4, or None to fit the memory budget.")

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

    Padded by repeating the frame (Hiley et al. (2019), Sec. 4.4), never with black frames.
    Returns (len(frames), 3, T, H, W); ``frames`` defaults to all T frames.
    """
    if x.ndim != 5 or x.shape[0] != 1:
        raise ParameterError(f"expected one clip (1, 3, T, H, W), got {tuple(x.shape)}")
    t = x.shape[2]
    idx = list(range(t)) if frames is None else list(frames)
    still = x[0][:, idx]  # (3, N, H, W)
    return still.movedim(1, 0).unsqueeze(2).expand(-1, -1, t, -1, -1).contiguous()


@dataclass
class Discriminative:
    """Output of :func:`discriminative`: maps (T, H, W) and the number of passes run."""

    full: torch.Tensor
    spatial: torch.Tensor
    temporal: torch.Tensor
    freeze_frame_passes: int
    #: :func:`~xai_core.selective.still_derivative` of the freeze-frame explanations, in
    #: the units of ``full`` (what the ``still-corrected`` selective variant subtracts).
    still: torch.Tensor | None = None


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
                   progress: StageProgress | None = None,
                   explained: torch.Tensor | None = None) -> Discriminative:
    """Discriminative (freeze-frame) relevance, Hiley et al. (2019).

    Parameters
    ----------
    method, model
        The method and the model that produced ``full``.
    x
        The clip (1, 3, T, H, W), normalised.
    target
        The class explained in ``full``; every freeze-frame clip is explained for the same
        class (Hiley et al. 2019), not for its own prediction.
    full
        The method's relevance of ``x`` (T, H, W).
    options
        Slice choice, normalisation, chunk size, reuse.
    progress
        Receives (done, total) as the freeze-frame clips are explained.
    explained
        The method's relevance (U, T, H, W) of the freeze-frame
        clips of the frames :func:`freeze_frame_selection` picks, when the caller already
        computed them (the engine explains them in one batch with the clip itself);
        ``None`` explains them here.

    Returns
    -------
    Discriminative
        ``full`` (normalised if asked), ``spatial`` and ``temporal`` (T, H, W) with
        ``full == spatial + temporal`` (exact with ``normalise="none"`` up to one float
        rounding of the subtraction), and how many freeze-frame clips were explained.

    Notes
    -----
    The freeze-frame clips are explained in batches of ``options.chunk_size`` clips, or
    as many as the memory budget allows (:func:`xai_core.budget.clips_per_pass`), not one
    pass each. With ``reuse_identical`` each distinct frame is explained once, and a
    static clip costs no extra pass at all (its freeze-frame clip is the clip).
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
    elif explained is not None:
        if explained.shape != (len(reps), *full.shape):
            raise ParameterError(f"{tuple(explained.shape)} freeze-frame explanations given, "
                                 f"expected {(len(reps), *full.shape)}")
        passes = len(reps)
        if progress is not None:
            progress(x.shape[2], x.shape[2])
    else:
        clips = freeze_frame_clips(x, reps)
        step = None if progress is None else (lambda done, total, _stage: progress(done, total))
        explained = method.attribute(model, clips, target,
                                     batch_size=clips_per_batch(method, model, x, options),
                                     progress=step).relevance
        passes = len(reps)
        if progress is not None and len(reps) == 1:
            progress(1, 1)
    spatial = spatial_from_freeze_frames(explained, inverse, options.slice)
    explained = explained.to(torch.float32)
    if options.normalise == "max-abs":  # the still clips in the units of the scaled full map
        explained = explained / _max_abs(full.to(torch.float32))
    still = still_derivative(explained, inverse, options.sobel_border)
    full = scale_full(full, options)
    if options.normalise == "max-abs":
        spatial = spatial / _max_abs(spatial, per_frame=True)
    temporal = full - spatial
    return Discriminative(full, spatial, temporal, passes, still)


def clips_per_batch(method: Method, model: LoadedModel, x: torch.Tensor,
                    options: DecompositionOptions = DEFAULT_OPTIONS) -> int:
    """Clips per pass of the split: ``options.chunk_size`` when given, else what the
    memory budget allows for this method (:func:`xai_core.budget.clips_per_pass`)."""
    if options.chunk_size is not None:
        return options.chunk_size
    return clips_per_pass(model, x, weight=method_weight(method))


def selective_for(options: DecompositionOptions, full: torch.Tensor, x: torch.Tensor,
                  split: Discriminative | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Selective relevance (full × mask, mask) of the variant ``options.selective``.

    Parameters
    ----------
    options
        Variant, threshold ``sigma`` and Sobel border.
    full
        The full relevance (T, H, W), as the split (or :func:`scale_full`) left it.
    x
        The clip (1, 3, T, H, W), normalised.
    split
        The freeze-frame split, or ``None`` for a method explained without it (the
        variants that need it then use their fallback, see :mod:`xai_core.selective`).
    """
    inputs = SelectiveInputs(full, x, None if split is None else split.temporal,
                             None if split is None else split.still)
    return apply_selective(options.selective, inputs, options.sigma, options.sobel_border)


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

    share = Σ relu(selective) / Σ relu(full), in [0, 1] (Hiley et al. 2020: "ratio of the sum
    of relevance"); ``nan`` when the full explanation has no positive relevance.
    """
    total = _positive_sum(full)
    return _positive_sum(selective) / total if total > 0 else float("nan")
