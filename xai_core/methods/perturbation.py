"""Spatio-temporal extremal perturbation: the model as a black box (Li et al. 2021).

The method searches, for each of several target areas a, the mask of a·T·H·W voxels
whose *preservation* (everything else blurred) keeps the target score highest — or whose
*deletion* lowers it most, or both ("dual"). It only reads the model's output, so it
works for any architecture. The masks live on a coarse spatio-temporal grid smoothed by
Fong et al.'s smooth max, the area is imposed by sorting the mask against a 0/1
template with a weight λ that grows every iteration, and the masks of all areas (and of
all clips of a chunk) are optimised together in one batch.

The returned map is the sum of the per-area masks, optionally smoothed, divided by its
maximum. It is **non-negative by construction** (a mask says "keep", never "against"),
so its "temporal" part from a freeze-frame decomposition can be negative only through
the subtraction, and it is not comparable in units with gradient or LRP relevance.

References
----------
Li, Z., Wang, W., Li, Z., Huang, Y., Sato, Y. (2021). A Comprehensive Study on Visual
Explanations for Spatio-temporal Networks. arXiv:2005.00375.
Fong, R., Patrick, M., Vedaldi, A. (2019). Understanding Deep Networks via Extremal
Perturbations and Smooth Masks. ICCV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ParameterError
from ..filters import gaussian_blur
from ..models.registry import LoadedModel
from ._extremal import (
    SmoothMaskGenerator,
    apply_pyramid,
    area_loss,
    area_templates,
    auto_sigma,
    core_loss,
    ellipsoid_kernel,
    perturbation_pyramid,
    temporal_smooth,
)
from .base import Attribution, Method, Param, ProgressFn, model_guard, register_method

VARIANTS = ("preserve", "delete", "dual")
BUDGETS = ("3d", "2d-per-frame")
PERTURBATIONS = ("blur", "fade")
REWARDS = ("logit", "probability")

#: Amplitude of the seeded noise subtracted from the all-ones initial mask (Fong et al.
#: start from ones). It only breaks exact ties in the area term's sort, which would
#: otherwise favour voxels by memory order; it must stay far below the first steps'
#: reward-driven differences (~1e-4), or a random subset of the grid would win the
#: budget before the model's gradient can pick it (1e-2 did exactly that in tests).
INIT_JITTER = 1e-6

#: Relative error of the kept area under which a still mask counts as converged. Soft
#: mask edges keep the area above target for long (+16 % for 5 % of a 24-px toy clip,
#: where the edges are half the area); a mask pinned by a reward stronger than λ is off
#: by far more (+240 % in the same toy with 10× larger logits).
AREA_RTOL = 0.25


@dataclass(frozen=True)
class ExtremalResult:
    """Output of :func:`extremal_perturbation` for a batch of B clips and A areas.

    Attributes
    ----------
    masks
        (B, A, T, H, W) in [0, 1]: the mask of each area (1 = the evidence kept, in
        every variant; in "delete" it is the region whose removal hurts most).
    areas
        The A target areas (fractions of the volume, or of every frame).
    iterations
        (B,) iterations run for each clip (fewer than asked when it converged).
    converged
        (B,) whether the clip's masks stopped changing before the iteration limit.
    reward
        (B, A) the objective's reward term at the last iteration (target logit or
        probability of the kept clip; minus that of the deleted clip for "delete",
        their difference for "dual").
    kept
        (B, A) fraction of the clip (3d) or mean fraction per frame (2d-per-frame) where
        the final mask exceeds ½ — to compare with ``areas``; larger when the
        iterations ran out before λ made the constraint hard.
    history
        ``{iteration: (B, A, T, H, W) masks}`` after the iterations asked for with
        ``snapshots`` (how the masks settle; ``benchmarks/bench_perturbation.py``). A clip
        that stopped early keeps its final mask in later snapshots.
    """

    masks: torch.Tensor
    areas: tuple[float, ...]
    iterations: torch.Tensor
    converged: torch.Tensor
    reward: torch.Tensor
    kept: torch.Tensor
    history: dict[int, torch.Tensor] = field(default_factory=dict)


def extremal_perturbation(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    *,
    areas: Sequence[float] = (0.05, 0.1, 0.15, 0.5),
    variant: str = "preserve",
    budget: str = "3d",
    perturbation: str = "blur",
    levels: int = 8,
    max_blur: float = 20.0,
    step: int = 7,
    temporal_step: int = 1,
    sigma: float | None = None,
    temporal_smoothing: int = 0,
    core_weight: float = 0.0,
    core_size: tuple[int, int, int] = (5, 15, 15),
    iterations: int = 300,
    lr: float = 0.05,
    momentum: float = 0.9,
    lambda_start: float = 300.0,
    lambda_growth: float = 1.0035,
    reward: str = "logit",
    tolerance: float = 1e-3,
    patience: int = 10,
    seed: int = 0,
    progress: ProgressFn | None = None,
    snapshots: Sequence[int] = (),
) -> ExtremalResult:
    """Optimise extremal masks for clips ``x`` (B, C, T, H, W) in the model's normalised space.

    Maximises, per area a, ``reward(m) − λ·‖sort(m) − r_a‖² − w·L_core(m)`` (Li et al.
    eq. 4 and 8) with SGD (lr 0.05, momentum 0.9 with equal dampening, as Fong et al.'s
    code); λ starts at ``lambda_start`` and is multiplied by ``lambda_growth`` every
    iteration so the area constraint becomes hard. A clip stops early once every one of
    its masks keeps its area (within ``AREA_RTOL``) and no grid parameter moved by more
    than ``tolerance`` for ``patience`` consecutive iterations; each clip's result is
    independent of the others in the batch.

    The model is used as a black box: only its output for perturbed clips is read, and it
    is left in the state it was in (eval mode during the search, no gradients kept on
    its weights). Horizontal-flip jitter (Fong et al.'s images) is deliberately not used:
    mirroring a video swaps left and right motion.

    Parameters
    ----------
    model
        Any module mapping (N, C, T, H, W) clips to (N, classes) scores.
    x, target
        Clips (B, C, T, H, W), normalised as the model expects; one class or (B,) classes.
    areas
        Target areas, fractions of the T×H×W volume ("3d") or of every frame
        ("2d-per-frame"); all are optimised in the same batch.
    variant
        "preserve" (keep the mask, perturb the rest), "delete" (perturb the mask) or
        "dual" (reward = preserved score − deleted score).
    perturbation, levels, max_blur
        "blur": a pyramid of ``levels`` spatial Gaussian blurs up to σ = ``max_blur`` px;
        "fade": towards 0, the dataset mean in normalised space.
    step, temporal_step, sigma
        Grid step in pixels and frames, smooth-max radius in pixels (``None`` or ≤ 0:
        :func:`~._extremal.auto_sigma`).
    temporal_smoothing, core_weight, core_size
        Li et al.'s temporal consistency options: Gaussian smoothing over ±Δt frames
        (eq. 7), and the weight and (T, H, W) size of the ellipsoid shape loss (eq. 8).
    iterations, lr, momentum, lambda_start, lambda_growth
        The SGD schedule (defaults: Fong et al.'s except 300 iterations instead of the
        paper's ~2000, for CPUs).
    reward
        "logit" (Fong et al.'s code; λ = 300 is tuned for logits) or "probability"
        (Li et al. eq. 2; at most 1, so the area term dominates sooner).
    tolerance, patience
        Early stop, see above; ``tolerance=0`` runs every iteration.
    seed
        Seeds the tie-breaking noise of the initial mask.
    progress
        ``progress(iteration, iterations, stage)`` after every iteration.
    snapshots
        Iterations (1-based) after which to keep a copy of the masks in
        ``ExtremalResult.history`` (a study of convergence; costs one mask copy each).
    """
    _check_options(variant, budget, perturbation, reward, areas, x)
    b, _, t, h, w = x.shape
    device = x.device
    target = torch.as_tensor(target, dtype=torch.long, device=device).reshape(-1).expand(b)
    areas = tuple(float(a) for a in areas)
    n_areas = len(areas)
    sigma = auto_sigma(h, w, step) if sigma is None or sigma <= 0 else float(sigma)
    gen = SmoothMaskGenerator((t, h, w), step, sigma, temporal_step, device=device)
    _, hc, wc = gen.canvas_shape
    areas_t = torch.tensor(areas, device=device)
    if budget == "3d":
        templates = area_templates(areas_t, t * hc * wc, t * h * w)
    else:
        templates = area_templates(areas_t, hc * wc, h * w)
    kernel = None
    if core_weight > 0:
        size = tuple(min(k, s) for k, s in zip(core_size, (t, h, w), strict=True))
        kernel = ellipsoid_kernel(size, device)

    # The same seeded start for every clip, so a clip's result does not depend on its
    # position in the batch.
    g = torch.Generator().manual_seed(seed)
    start = 1.0 - INIT_JITTER * torch.rand((n_areas, *gen.grid_shape), generator=g)
    params = [start.clone().to(device).requires_grad_(True) for _ in range(b)]
    opts = [torch.optim.SGD([p], lr=lr, momentum=momentum, dampening=momentum) for p in params]
    iters = torch.zeros(b, dtype=torch.long)
    calm = torch.zeros(b, dtype=torch.long)  # consecutive still iterations with the area met
    last_reward = torch.zeros(b, n_areas)
    active = list(range(b))
    history: dict[int, torch.Tensor] = {}
    wanted = {int(i) for i in snapshots}

    def current_canvas() -> torch.Tensor:
        """(B·A, T, Hc, Wc) masks of every clip and area from the parameters as they are."""
        with torch.no_grad():
            return temporal_smooth(gen(torch.stack(params).detach().reshape(
                b * n_areas, *gen.grid_shape)), temporal_smoothing)

    with model_guard(model), torch.enable_grad():
        with torch.no_grad():
            pyramid_all = perturbation_pyramid(x.float(), perturbation, levels, max_blur)
        lam = float(lambda_start)
        pyramid, rows = pyramid_all, active
        for it in range(iterations):
            if rows != active:  # some clips converged: drop them from the batch
                rows = list(active)
                pyramid = pyramid_all[rows]
            grid = torch.stack([params[i] for i in rows])  # (b', A, Tg, gh, gw)
            nb = len(rows)
            canvas = temporal_smooth(gen(grid.reshape(nb * n_areas, *gen.grid_shape)),
                                     temporal_smoothing)
            masks5 = gen.crop(canvas).reshape(nb, n_areas, t, h, w)
            gain = _reward(model, pyramid, masks5, target[rows], variant, reward)
            penalty = lam * area_loss(canvas, templates.repeat(nb, 1), budget).reshape(nb, n_areas)
            if kernel is not None:
                shape_loss = core_loss(masks5.reshape(nb * n_areas, t, h, w), kernel)
                penalty = penalty + core_weight * shape_loss.reshape(nb, n_areas)
            for i in rows:
                opts[i].zero_grad(set_to_none=True)
            (penalty - gain).sum().backward()
            with torch.no_grad():
                before = grid.detach()  # a stacked copy: the steps below do not touch it
                for i in rows:
                    opts[i].step()
                    params[i].clamp_(0.0, 1.0)
                after = torch.stack([params[i] for i in rows])
                moved = (after - before).abs().flatten(1).max(dim=1).values.cpu()
            last_reward[rows] = gain.detach().float().cpu()
            # A mask pinned at 0/1 by a reward stronger than λ·area does not move either,
            # yet λ keeps growing and will move it: "still" only counts once the area is met.
            met = area_met(canvas.detach(), gen, areas_t.repeat(nb), budget).reshape(nb, -1).all(1)
            lam *= lambda_growth
            for j, i in enumerate(rows):
                iters[i] += 1
                calm[i] = calm[i] + 1 if (moved[j] <= tolerance and met[j]) else 0
            active = [i for i in rows if calm[i] < patience]
            if it + 1 in wanted:
                history[it + 1] = gen.crop(current_canvas()).reshape(b, n_areas, t, h, w).cpu()
            if progress is not None:
                progress(it + 1, iterations, "extremal perturbation")
            if not active:
                break

        canvas = current_canvas()
        kept = kept_fraction(canvas, gen, budget)
        if kept.ndim == 2:
            kept = kept.mean(dim=1)
    final = gen.crop(canvas).reshape(b, n_areas, t, h, w)
    for i in sorted(wanted):  # asked for beyond an early stop: the masks did not change
        if i not in history and i <= iterations:
            history[i] = final.cpu()
    return ExtremalResult(final, areas, iters, calm >= patience, last_reward,
                          kept.reshape(b, n_areas).cpu(), history)


def _reward(model: nn.Module, pyramid: torch.Tensor, masks: torch.Tensor,
            target: torch.Tensor, variant: str, reward: str) -> torch.Tensor:
    """(B, A) reward of masks (B, A, T, H, W): the target score of the clip showing the
    mask (preserve), minus that of the clip without it (delete), or their difference."""
    b, a = masks.shape[:2]
    if variant == "preserve":
        shown = masks
    elif variant == "delete":
        shown = 1.0 - masks
    else:
        shown = torch.cat([masks, 1.0 - masks], dim=1)
    out = model(apply_pyramid(pyramid, shown))
    score = out.log_softmax(1).exp() if reward == "probability" else out
    per_clip = shown.shape[1]
    score = score.gather(1, target.repeat_interleave(per_clip)[:, None]).reshape(b, per_clip)
    if variant == "preserve":
        return score
    if variant == "delete":
        return -score
    return score[:, :a] - score[:, a:]


def kept_fraction(canvas: torch.Tensor, gen: SmoothMaskGenerator, budget: str) -> torch.Tensor:
    """Voxels with mask > ½ on (N, T, Hc, Wc) canvases, as a fraction of the clip's volume
    (N,) for the ``"3d"`` budget, or of each frame (N, T) for ``"2d-per-frame"``."""
    t, h, w = gen.shape
    on = (canvas > 0.5).float()
    if budget == "3d":
        return on.sum(dim=(1, 2, 3)) / (t * h * w)
    return on.sum(dim=(2, 3)) / (h * w)


def area_met(canvas: torch.Tensor, gen: SmoothMaskGenerator, areas: torch.Tensor,
             budget: str) -> torch.Tensor:
    """(N,) whether each mask keeps its area within ``AREA_RTOL`` (every frame for 2d)."""
    kept = kept_fraction(canvas, gen, budget)
    a = areas.view(-1, *([1] * (kept.ndim - 1)))
    err = ((kept - a).abs() / a).reshape(len(areas), -1).amax(dim=1)
    return err <= AREA_RTOL


def saliency_from_masks(masks: torch.Tensor, smooth: float = 0.0) -> torch.Tensor:
    """Sum (B, A, T, H, W) masks over areas, blur each frame by σ = smooth·short side,
    divide each clip by its maximum: (B, T, H, W) in [0, 1] (Li et al.'s summed masks)."""
    total = masks.sum(dim=1)
    if smooth > 0:
        sig = smooth * min(total.shape[-2:])
        total = gaussian_blur(total.unsqueeze(1), sig, padding="replicate").squeeze(1)
    peak = total.flatten(1).max(dim=1).values.clamp(min=torch.finfo(total.dtype).tiny)
    return total / peak.view(-1, 1, 1, 1)


def _check_options(variant: str, budget: str, perturbation: str, reward: str,
                   areas: Sequence[float], x: torch.Tensor) -> None:
    for name, value, allowed in (("variant", variant, VARIANTS), ("budget", budget, BUDGETS),
                                 ("perturbation", perturbation, PERTURBATIONS),
                                 ("reward", reward, REWARDS)):
        if value not in allowed:
            raise ParameterError(f"{name} must be one of {list(allowed)}, got {value!r}")
    if not areas or not all(0.0 < float(a) < 1.0 for a in areas):
        raise ParameterError(f"areas must be fractions strictly between 0 and 1, got {list(areas)}",
                             hint="E.g. areas=(0.05, 0.1, 0.15, 0.5).")
    if x.ndim != 5:
        raise ParameterError(f"clips must be (B, C, T, H, W), got {tuple(x.shape)}")


@register_method
class ExtremalPerturbation(Method):
    """Spatio-temporal extremal perturbation (Li et al. 2021, after Fong et al. 2019).

    Black-box: any architecture. Cost: ``iterations × len(areas)`` forward+backward
    passes per clip (twice that for ``dual``), so ~100–1000× a gradient method; the
    paper ran ~2000 iterations on a GPU, the default here (300) is meant for CPUs and
    usually stops earlier when the masks converge. The map is non-negative (summed
    masks divided by their maximum).
    """

    name = "extremal-perturbation"
    description = ("Spatio-temporal extremal perturbation: masks of fixed areas that keep the "
                   "score, optimised on the model as a black box (slow: iterations × areas "
                   "passes per clip; paper used ~2000 iterations, default 300)")
    family = "perturbation"
    reference = ("Li et al. 2021, A Comprehensive Study on Visual Explanations for "
                 "Spatio-temporal Networks; Fong et al. 2019, Extremal Perturbations")
    has_raw = False
    default_batch_size = 2
    stops_early = True  # early stop when the masks no longer move
    params = {
        "areas": Param((0.05, 0.1, 0.15, 0.5), "target areas (fractions), optimised together "
                       "and summed into one map", low=0.001, high=0.999),
        "variant": Param("preserve", "preserve: keep the mask, blur the rest; delete: blur the "
                         "mask; dual: both", choices=VARIANTS),
        "budget": Param("3d", "3d: one area budget for the whole clip; 2d-per-frame: the same "
                        "area in every frame", choices=BUDGETS),
        "perturbation": Param("blur", "blur pyramid, or fade to the mean (0 in normalised "
                              "space)", choices=PERTURBATIONS),
        "levels": Param(8, "levels of the perturbation pyramid", low=2, high=64),
        "max_blur": Param(20.0, "σ (pixels) of the strongest blur", low=0.5, high=200),
        "step": Param(7, "spatial grid step of the mask (pixels)", low=1, high=64),
        "temporal_step": Param(1, "frames per temporal grid cell", low=1, high=64),
        "sigma": Param(0.0, "spatial mask smoothing σ in pixels; 0 = 11 px at 112 px scaled "
                       "with the short side, at least 11/7 of the step", low=0.0, high=200),
        "temporal_smoothing": Param(0, "Δt: Gaussian smoothing of the mask over ±Δt frames "
                                    "(Li et al. eq. 7; 0 = off)", low=0, high=16),
        "core_weight": Param(0.0, "weight of the ellipsoid 'core' shape loss (Li et al. "
                             "eq. 8; 0 = off)", low=0.0, high=1e6),
        "core_size": Param((5, 15, 15), "(T, H, W) of the ellipsoid of the core loss (voxels; "
                           "clipped to the clip)", low=1, high=512),
        "iterations": Param(300, "maximum SGD iterations (paper: ~2000)", low=1, high=10000),
        "lr": Param(0.05, "SGD learning rate", low=1e-5, high=10),
        "momentum": Param(0.9, "SGD momentum (dampening equal to it)", low=0.0, high=0.999),
        "lambda_start": Param(300.0, "initial weight λ of the area constraint", low=0.0, high=1e8),
        "lambda_growth": Param(1.0035, "factor applied to λ every iteration", low=1.0, high=2.0),
        "reward": Param("logit", "quantity kept high: the target logit (Fong et al.'s code) or "
                        "its softmax probability (Li et al. eq. 2)", choices=REWARDS),
        "tolerance": Param(1e-3, "early stop when no mask parameter moves more than this",
                           low=0.0, high=1.0),
        "patience": Param(10, "... for this many consecutive iterations", low=1, high=10000),
        "smooth": Param(0.02, "σ of the final spatial smoothing of the summed map, as a "
                        "fraction of the short side (0 = off)", low=0.0, high=1.0),
        "seed": Param(0, "seed of the initial mask's tie-breaking noise", low=0, high=2**31 - 1),
    }

    def cost_passes(self, clip: tuple[int, ...] | None = None) -> int:
        per_iter = len(self.config["areas"]) * (2 if self.config["variant"] == "dual" else 1)
        # one mask's step costs about two clip passes: the clip is blended from the blur
        # pyramid and the gradient flows on to the mask grid (benchmarks/bench_estimate.py)
        return self.config["iterations"] * per_iter * 2

    def _attribute(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor,
                   progress: ProgressFn | None = None) -> Attribution:
        cfg = dict(self.config)
        smooth = cfg.pop("smooth")
        if cfg["step"] > min(x.shape[-2:]):
            raise ParameterError(
                f"grid step {cfg['step']} px is larger than the clip ({x.shape[-2]}×{x.shape[-1]})",
                hint="Use a smaller step.")
        result = extremal_perturbation(model.module, x, target, progress=progress, **cfg)
        return Attribution(saliency_from_masks(result.masks, smooth), None)
