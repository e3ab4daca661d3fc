"""Selective relevance (Hiley et al. 2020) and border-aware variants of it.

Hiley et al. (2020) keep the voxels where the temporal Sobel derivative of the relevance
exceeds n standard deviations ("selective relevance"), meaning relevance that appears
because something changed in the neighbouring frames. A 3D CNN pads its time axis with zeros, so
relevance also changes near the first and last frames of a clip in which *nothing*
moves: on a static clip (one frame repeated) the paper's mask selects voxels in the
first and last frames although the discriminative temporal relevance (Hiley et al. 2019)
is exactly zero. The variants registered here differ only in *which* change is
thresholded; every one applies its mask to the full relevance (signed, in the
method's units), as the paper does, so the maps of all variants compare:

``hiley2020``
    The paper's: |D(R)| > n·std, D the temporal Sobel derivative of the relevance R.
``still-corrected``
    The derivative minus what the freeze-frame (still) clip of the same frame shows at
    the same place: D(R)[t] − D(E_t)[t], E_t the explanation of frame t repeated
    (the freeze-frame clip of Hiley et al. 2019). A still clip has no motion, so any
    change of its relevance in time is the border artefact alone; a static clip gives
    exactly zero.
    Needs the freeze-frame split.
``temporal``
    The derivative of the discriminative temporal relevance (full − spatial, Hiley et
    al. 2019): D(R − S). Exactly empty on a static clip with the split's slice ``"same"``.
    Needs the freeze-frame split.
``input-gated``
    The paper's mask, restricted to where the input itself changes: the temporal Sobel
    derivative of the clip above ``INPUT_CHANGE_FACTOR`` × its median (the sensor noise
    of a mostly still scene), dilated by ``INPUT_CHANGE_RADIUS`` pixels. A static clip
    has no input change at all. Needs only the clip, so it also serves methods explained
    without the split.
``still-gated`` (the default)
    ``still-corrected`` restricted to where the input changes (both of the above): the
    border artefact is removed by the model's own still clips, relevance that changes on
    things that do not move by the input gate. Needs the split; without it, ``input-gated``.

:func:`apply_selective` picks a variant by name; a variant whose inputs are missing
(no freeze-frame split for a ``--full-only`` method) falls back to its registered
``fallback``. Which variant is the default, and why, is in ``docs/evaluation.md``
(*Selective relevance without false motion*).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import ParameterError

__all__ = [
    "CANCELLATION_FLOOR",
    "DEFAULT_SELECTIVE",
    "INPUT_CHANGE_FACTOR",
    "INPUT_CHANGE_RADIUS",
    "SELECTIVE_HELP",
    "SELECTIVE_NOISE_FLOOR",
    "SELECTIVE_VARIANTS",
    "SOBEL_BORDERS",
    "SelectiveInputs",
    "SelectiveVariant",
    "apply_selective",
    "depends_on_split",
    "input_change_mask",
    "register_selective",
    "resolve_selective",
    "selective_mask",
    "selective_relevance",
    "selective_variants",
    "sobel_kernel",
    "still_derivative",
    "temporal_sobel",
    "threshold_mask",
]

SOBEL_BORDERS = ("replicate", "zeros")

#: A temporal derivative whose spread is below this fraction of the relevance's peak is
#: float rounding, not motion: the selective mask is then empty.
SELECTIVE_NOISE_FLOOR = 1e-6

#: A corrected derivative (``still-corrected``, ``temporal``) whose spread is below this
#: fraction of the uncorrected derivative's is the float rounding of a complete
#: cancellation — the relevance changes in time only as the still clips' does (measured:
#: ≤ 3e-6 when the freeze-frame clips of a static clip are explained afresh in batches) —
#: and its mask is empty.
CANCELLATION_FLOOR = 1e-4

#: ``input-gated``: a voxel's input changes when its temporal Sobel derivative exceeds
#: this many times the clip's median derivative (the noise level of a mostly still scene).
INPUT_CHANGE_FACTOR = 3.0

#: ``input-gated``: the input-change mask is widened by this many pixels in each frame,
#: so relevance on an object whose inside does not change (a uniform patch) is kept.
INPUT_CHANGE_RADIUS = 4

#: The default variant (the evidence is in docs/evaluation.md).
DEFAULT_SELECTIVE = "still-gated"

#: One help text for every place the variant is chosen (CLI ``--selective``, dashboard).
SELECTIVE_HELP = (
    "Which selective relevance: the voxels whose relevance changes sharply between frames "
    "(Hiley et al. 2020). still-gated (default): the change beyond what each frame's "
    "freeze-frame clip already shows, kept only where the video itself changes — the "
    "network's zero padding in time is not called motion and a static clip selects "
    "nothing. hiley2020: the paper's; it also marks the first and last frames of a "
    "static clip. still-corrected: still-gated without the input check. temporal: the "
    "change of the temporal (motion) relevance. input-gated: the paper's, only where the "
    "video changes — what methods explained without the spatial/temporal split get for "
    "still-gated, still-corrected and temporal. Evidence: docs/evaluation.md.")


# --------------------------------------------------------------------------- derivative
def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParameterError(f"{name} must be one of {list(choices)}, got {value!r}")


def sobel_kernel() -> torch.Tensor:
    """The 3×3×3 temporal Sobel kernel of Hiley et al. (2020) as a (T, H, W) tensor.

    Slice t−1 = [[1,2,1],[2,4,2],[1,2,1]], slice t = 0, slice t+1 = −(slice t−1).
    """
    smooth = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    return torch.stack([smooth, torch.zeros(3, 3), -smooth])


def _smooth(r: torch.Tensor) -> torch.Tensor:
    """[1,2,1]⊗[1,2,1] smoothing of each slice of (..., H, W), zero padded in space.

    Element-wise shifted sums, so bit-identical slices smooth to bit-identical results.
    """
    p = F.pad(r, (1, 1, 1, 1))
    rows = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    return rows[..., :-2] + 2 * rows[..., 1:-1] + rows[..., 2:]


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
    smooth = _smooth(r)  # (B, T, H, W)
    if border == "replicate":
        before, after = smooth[:, :1], smooth[:, -1:]
    else:
        before, after = torch.zeros_like(smooth[:, :1]), torch.zeros_like(smooth[:, -1:])
    padded = torch.cat([before, smooth, after], dim=1)
    d = padded[:, :-2] - padded[:, 2:]
    return d[0] if squeeze else d


def still_derivative(explained: torch.Tensor, inverse: torch.Tensor,
                     border: str = "replicate") -> torch.Tensor:
    """D(E_t)[t]: the temporal Sobel derivative of frame t's freeze-frame explanation at t.

    Parameters
    ----------
    explained
        Freeze-frame explanations (U, T, H, W), in the units of the full relevance.
    inverse
        (T,) index of frame t's freeze-frame clip into ``explained``.
    border
        Temporal padding, as :func:`temporal_sobel`.

    Returns
    -------
    torch.Tensor
        (T, H, W). Computed slice by slice exactly as :func:`temporal_sobel` computes it,
        so for a static clip (``explained`` = the full relevance, all ``inverse`` 0) it
        equals ``temporal_sobel(full)`` bit for bit.
    """
    _choice("sobel_border", border, SOBEL_BORDERS)
    e = explained.to(torch.float32)
    t = e.shape[1]
    idx = torch.arange(t)
    u = inverse.to(torch.long)
    smooth_prev = _smooth(e[u, (idx - 1).clamp_min(0)])  # (T, H, W)
    smooth_next = _smooth(e[u, (idx + 1).clamp_max(t - 1)])
    if border == "zeros":
        smooth_prev[0] = 0
        smooth_next[-1] = 0
    return smooth_prev - smooth_next


def threshold_mask(d: torch.Tensor, sigma: float, peak: torch.Tensor | float) -> torch.Tensor:
    """|d| > sigma·std(d) over the clip (population std), empty when std(d) is below
    :data:`SELECTIVE_NOISE_FLOOR` × ``peak`` (float rounding, not change).

    ``d`` is (T, H, W) or (B, T, H, W) (std per clip); ``peak`` a scalar or (B,).
    """
    batched = d.ndim == 4
    d4 = d if batched else d.unsqueeze(0)
    flat = d4.flatten(1).double()
    std = flat.std(dim=1, unbiased=False)
    peak_t = torch.as_tensor(peak, dtype=torch.float64).reshape(-1).expand(d4.shape[0])
    moving = std > SELECTIVE_NOISE_FLOOR * peak_t
    mask = (flat.abs() > float(sigma) * std.unsqueeze(1)) & moving.unsqueeze(1)
    mask = mask.view(d4.shape)
    return mask if batched else mask[0]


def selective_mask(relevance: torch.Tensor, sigma: float = 4.0,
                   border: str = "replicate") -> torch.Tensor:
    """Boolean mask |D| > sigma·std(D) of the temporal Sobel derivative D (Hiley et al. 2020).

    |D| rather than D keeps both temporal directions (appearing and vanishing
    relevance). std is the population standard deviation over the whole clip (per clip
    for a batch). When std(D) is below :data:`SELECTIVE_NOISE_FLOOR` × max |relevance|
    the relevance does not change in time and the mask is empty.

    Notes
    -----
    The mask follows changes of *relevance* in time, not of pixels. On a static clip a
    3D CNN's own zero padding in time still makes relevance differ near the first and
    last frames, so this mask can select border frames there; the variants of
    :func:`apply_selective` other than ``"hiley2020"`` do not have this artefact.
    """
    d = temporal_sobel(relevance, border)
    r4 = relevance.to(torch.float32).reshape(-1, *d.shape[-3:])
    return threshold_mask(d, sigma, r4.flatten(1).abs().amax(dim=1))


def selective_relevance(relevance: torch.Tensor, sigma: float = 4.0,
                        border: str = "replicate") -> tuple[torch.Tensor, torch.Tensor]:
    """Selective relevance (Hiley et al. 2020): relevance × mask, and the mask.

    See :func:`selective_mask`. Works on any relevance map — full, spatial or temporal.
    """
    mask = selective_mask(relevance, sigma, border)
    return relevance.to(torch.float32) * mask, mask


def input_change_mask(x: torch.Tensor, factor: float = INPUT_CHANGE_FACTOR,
                      radius: int = INPUT_CHANGE_RADIUS) -> torch.Tensor:
    """Where the clip itself changes in time: (T, H, W) bool.

    The temporal Sobel derivative of each colour channel (replicated borders, so a
    constant clip has exactly zero derivative everywhere, its first and last frames
    included), its Euclidean norm over channels, thresholded at ``factor`` × the clip's
    median norm, then dilated by ``radius`` pixels in each frame. On a mostly still scene
    the median is the sensor noise; a static clip has no change at all.

    Parameters
    ----------
    x
        The clip (1, 3, T, H, W) or (3, T, H, W), normalised as the model sees it.
    factor, radius
        Threshold over the median, and spatial dilation in pixels.
    """
    clip = x[0] if x.ndim == 5 else x
    d = temporal_sobel(clip.detach().to("cpu", torch.float32), "replicate")  # (3, T, H, W)
    norm = d.square().sum(0).sqrt()
    changed = norm > factor * norm.median()
    if radius > 0:
        k = 2 * radius + 1
        changed = F.max_pool2d(changed.float().unsqueeze(1), k, stride=1,
                               padding=radius).squeeze(1) > 0
    return changed


# --------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class SelectiveInputs:
    """What a selective variant may read; the engine fills what it has.

    Attributes
    ----------
    full
        The relevance (T, H, W) the mask is applied to (as the split left it).
    x
        The clip (1, 3, T, H, W), normalised.
    temporal
        Discriminative temporal relevance (T, H, W); ``None`` without the split.
    still
        :func:`still_derivative` of the freeze-frame explanations; ``None`` without the
        split.
    """

    full: torch.Tensor
    x: torch.Tensor | None = None
    temporal: torch.Tensor | None = None
    still: torch.Tensor | None = None


#: A variant: (inputs, sigma, Sobel border) → bool mask (T, H, W).
MaskFunction = Callable[[SelectiveInputs, float, str], torch.Tensor]


@dataclass(frozen=True)
class SelectiveVariant:
    """A registered selective-relevance variant (see :func:`register_selective`)."""

    name: str
    mask: MaskFunction
    needs: tuple[str, ...]
    summary: str
    fallback: str | None = None

    def available(self, inputs: SelectiveInputs) -> bool:
        return all(getattr(inputs, n) is not None for n in self.needs)


SELECTIVE_VARIANTS: dict[str, SelectiveVariant] = {}


def register_selective(name: str, *, summary: str, needs: tuple[str, ...] = (),
                       fallback: str | None = None) -> Callable[[MaskFunction], MaskFunction]:
    """Register a mask function as a selective variant under ``name``.

    ``needs`` names the :class:`SelectiveInputs` fields beyond ``full`` it reads;
    ``fallback`` is used when one of them is missing (``None``: it is then an error).
    """

    def wrap(fn: MaskFunction) -> MaskFunction:
        if name in SELECTIVE_VARIANTS:
            raise ValueError(f"selective variant {name!r} is already registered")
        SELECTIVE_VARIANTS[name] = SelectiveVariant(name, fn, tuple(needs), summary, fallback)
        return fn

    return wrap


def selective_variants() -> tuple[str, ...]:
    """Registered variant names, in registration order."""
    return tuple(SELECTIVE_VARIANTS)


def depends_on_split(name: str) -> bool:
    """True when variant ``name`` gives another map without the freeze-frame split (it
    then falls back), so a result computed with the split must not serve a request
    without it."""
    return resolve_selective(name, SelectiveInputs(torch.zeros(1, 1, 1),
                                                   x=torch.zeros(1, 3, 1, 1, 1))).name != name


def resolve_selective(name: str, inputs: SelectiveInputs) -> SelectiveVariant:
    """The variant that runs for ``name`` on these inputs (following fallbacks)."""
    if name not in SELECTIVE_VARIANTS:
        raise ParameterError(f"selective must be one of {list(SELECTIVE_VARIANTS)}, got {name!r}",
                             hint=f"The paper's is 'hiley2020'; the default '{DEFAULT_SELECTIVE}'.")
    variant = SELECTIVE_VARIANTS[name]
    seen = {name}
    while not variant.available(inputs):
        if variant.fallback is None or variant.fallback in seen:
            missing = [n for n in variant.needs if getattr(inputs, n) is None]
            raise ParameterError(f"selective variant {variant.name!r} needs {missing}",
                                 hint="Compute the freeze-frame split, or choose 'hiley2020'.")
        seen.add(variant.fallback)
        variant = SELECTIVE_VARIANTS[variant.fallback]
    return variant


def apply_selective(name: str, inputs: SelectiveInputs, sigma: float = 4.0,
                    border: str = "replicate") -> tuple[torch.Tensor, torch.Tensor]:
    """Selective relevance of variant ``name``: (full × mask, mask), both (T, H, W).

    Parameters
    ----------
    name
        A registered variant (:func:`selective_variants`).
    inputs
        The full relevance and whatever else the engine has.
    sigma, border
        Threshold in standard deviations and temporal padding of the Sobel derivative.
    """
    variant = resolve_selective(name, inputs)
    mask = variant.mask(inputs, float(sigma), border)
    return inputs.full.to(torch.float32) * mask, mask


def _peak(inputs: SelectiveInputs) -> torch.Tensor:
    return inputs.full.to(torch.float32).abs().amax()


def _corrected_mask(corrected: torch.Tensor, inputs: SelectiveInputs, sigma: float,
                    border: str) -> torch.Tensor:
    """Threshold a corrected derivative; empty when it is the rounding of a complete
    cancellation of the full relevance's derivative (:data:`CANCELLATION_FLOOR`)."""
    spread = corrected.double().std(unbiased=False)
    if spread <= CANCELLATION_FLOOR * temporal_sobel(inputs.full, border).double().std(
            unbiased=False):
        return torch.zeros(corrected.shape, dtype=torch.bool)
    return threshold_mask(corrected, sigma, _peak(inputs))


@register_selective("hiley2020", summary="Hiley et al. 2020: |Sobel_t(full)| > n·std")
def _hiley2020(inputs: SelectiveInputs, sigma: float, border: str) -> torch.Tensor:
    return selective_mask(inputs.full, sigma, border)


@register_selective("still-corrected", needs=("still",), fallback="input-gated",
                    summary="Sobel_t(full) minus that of each frame's freeze-frame clip")
def _still_corrected(inputs: SelectiveInputs, sigma: float, border: str) -> torch.Tensor:
    assert inputs.still is not None
    d = temporal_sobel(inputs.full, border) - inputs.still
    return _corrected_mask(d, inputs, sigma, border)


@register_selective("temporal", needs=("temporal",), fallback="input-gated",
                    summary="Sobel_t of the discriminative temporal relevance")
def _temporal(inputs: SelectiveInputs, sigma: float, border: str) -> torch.Tensor:
    assert inputs.temporal is not None
    return _corrected_mask(temporal_sobel(inputs.temporal, border), inputs, sigma, border)


@register_selective("input-gated", needs=("x",),
                    summary="the paper's mask where the input changes")
def _input_gated(inputs: SelectiveInputs, sigma: float, border: str) -> torch.Tensor:
    assert inputs.x is not None
    return selective_mask(inputs.full, sigma, border) & input_change_mask(inputs.x)


@register_selective("still-gated", needs=("still", "x"), fallback="input-gated",
                    summary="still-corrected, where the input changes")
def _still_gated(inputs: SelectiveInputs, sigma: float, border: str) -> torch.Tensor:
    assert inputs.x is not None
    return _still_corrected(inputs, sigma, border) & input_change_mask(inputs.x)
