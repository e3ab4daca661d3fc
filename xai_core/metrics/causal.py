"""Causal metrics of Li et al. (2021), "A Comprehensive Study on Visual Explanations for
Spatio-temporal Networks", §4.1: insertion and deletion AUC, and the saliency metric.

* **Insertion**: start from a heavily blurred clip and reveal the original voxels in the
  order of the map (most relevant first); **deletion**: start from the clip and replace
  voxels, in the same order, by a baseline (grey by default, as the paper). After each
  of N steps the model's softmax probability of the target is recorded; the score is
  the area under that curve over the revealed/deleted fraction (trapezoid rule, in
  [0, 1]). Insertion: higher is better; deletion: lower is better.
* Ranking is by the **signed** value (most positive first). Ties (e.g. the zeros of a
  selective map) are broken by a seeded random order, so a flat map is a random map and
  not a raster scan. Optionally the map is first averaged over a T×g×g grid of patches
  (the paper's supplementary "patch-wise" paradigm, 16×16 patches per frame), which is
  cheaper and less adversarial than single pixels.
* Every score comes with a **random-map baseline** computed the same way on the same
  clip (seeded): the paper found random maps beat Grad-CAM on deletion (they create
  adversarial inputs), so a deletion AUC means little without it.
* **Saliency metric** ``SM = log(max(a, 0.05)) − log(p_c)`` (Dabkowski & Gal 2017 as
  adapted by Li et al.): the map is divided by its maximum and binarised at a threshold
  (0.5 and 0.75: S50, S75); ``a`` is the kept fraction of the T×H×W volume and ``p_c``
  the target probability when only the kept voxels are shown and the rest is blurred
  (the insertion start). Lower is better.

All perturbations happen in the model's normalised input space; forward passes are
batched.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ParameterError
from ..methods.base import Param, model_guard
from ..models.registry import LoadedModel
from .base import ClipEvidence, Metric, register_metric

BASELINES = ("blur", "grey", "mean")


# --------------------------------------------------------------------------- baselines
def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each frame of (B, C, T, H, W) spatially with a Gaussian of ``sigma`` pixels.

    Separable convolution with reflect padding (no dark border leaks in); frames are
    not mixed, so blurring adds no motion.
    """
    if sigma <= 0:
        return x.clone()
    radius = max(1, int(math.ceil(3 * sigma)))
    h, w = x.shape[-2:]
    radius = min(radius, h - 1, w - 1)  # reflect padding needs pad < size
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    b, c, t = x.shape[:3]
    y = x.reshape(b * c * t, 1, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return y.reshape(b, c, t, h, w)


def baseline_clip(x: torch.Tensor, model: LoadedModel, kind: str, sigma: float = 10.0
                  ) -> torch.Tensor:
    """The "nothing" a voxel is replaced by, in normalised space, same shape as ``x``.

    ``"blur"``: the frame blurred with ``sigma`` px; ``"grey"``: pixel value 127.5
    pushed through the model's normalisation (0 is not grey for every input spec);
    ``"mean"``: the clip's own per-channel mean.
    """
    if kind == "blur":
        return gaussian_blur(x, sigma)
    if kind == "grey":
        spec = model.input
        mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device)
        std = torch.tensor(spec.std, dtype=x.dtype, device=x.device)
        grey = ((127.5 * spec.scale - mean) / std).view(1, 3, 1, 1, 1)
        return grey.expand_as(x).clone()
    if kind == "mean":
        return x.mean(dim=(2, 3, 4), keepdim=True).expand_as(x).clone()
    raise ParameterError(f"unknown perturbation baseline {kind!r}",
                         hint=f"Use one of: {', '.join(BASELINES)}.")


# --------------------------------------------------------------------------- ranking
def cell_index(shape: tuple[int, int, int], grid: tuple[int, int] | None) -> np.ndarray:
    """(T, H, W) int array: the unit each voxel belongs to (a voxel, or a patch of a grid).

    With ``grid=(gh, gw)`` frame t is cut into gh×gw near-equal patches, unit ids
    ``t·gh·gw + row·gw + col``; without a grid each voxel is its own unit.
    """
    t, h, w = shape
    if grid is None:
        return np.arange(t * h * w).reshape(t, h, w)
    gh, gw = min(grid[0], h), min(grid[1], w)
    rows = (np.arange(h) * gh) // h
    cols = (np.arange(w) * gw) // w
    return (np.arange(t)[:, None, None] * gh * gw + rows[None, :, None] * gw
            + cols[None, None, :])


def rank_units(relevance: np.ndarray, cells: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rank (0 = first) of every unit: descending mean relevance, ties in seeded random order.

    Returns an array indexed by unit id.
    """
    n = int(cells.max()) + 1
    sums = np.bincount(cells.ravel(), weights=np.asarray(relevance, np.float64).ravel(),
                       minlength=n)
    counts = np.bincount(cells.ravel(), minlength=n)
    score = sums / np.maximum(counts, 1)
    tie = np.random.default_rng(seed).permutation(n)
    order = np.lexsort((tie, -score))  # last key is primary: highest score first
    ranks = np.empty(n, np.int64)
    ranks[order] = np.arange(n)
    return ranks


@torch.no_grad()
def target_probability(model: LoadedModel, clips: torch.Tensor, target: int,
                       batch_size: int = 16) -> np.ndarray:
    """Softmax probability of ``target`` for each clip of (N, 3, T, H, W), batched."""
    out = []
    with model_guard(model.module):
        for i in range(0, clips.shape[0], batch_size):
            logits = model.module(clips[i : i + batch_size].to(model.device, torch.float32))
            out.append(torch.softmax(logits.float(), dim=1)[:, target].cpu())
    return torch.cat(out).numpy().astype(np.float64)


def perturbation_curve(model: LoadedModel, x: torch.Tensor, target: int, relevance: np.ndarray,
                       start: torch.Tensor, end: torch.Tensor, *, steps: int = 32,
                       grid: tuple[int, int] | None = (16, 16), seed: int = 0,
                       batch_size: int = 16) -> np.ndarray:
    """Target probability while voxels move from ``start`` to ``end`` in the map's order.

    Step k (k = 0..steps) shows ``end`` on the first ``round(k·U/steps)`` of the U ranked
    units and ``start`` elsewhere. Insertion is ``start = blurred, end = x``; deletion
    ``start = x, end = baseline``. Returns the steps + 1 probabilities.
    """
    if steps < 1:
        raise ParameterError("steps must be at least 1")
    shape = tuple(x.shape[-3:])
    if tuple(np.shape(relevance)) != shape:
        raise ParameterError(f"map of shape {np.shape(relevance)} does not fit the clip {shape}")
    cells = cell_index(shape, grid)
    ranks = torch.from_numpy(rank_units(relevance, cells, seed)[cells])  # rank per voxel
    n_units = int(cells.max()) + 1
    shown = [round(k * n_units / steps) for k in range(steps + 1)]
    start, end = start.reshape(1, *x.shape[-4:]), end.reshape(1, *x.shape[-4:])
    probs: list[np.ndarray] = []
    for i in range(0, len(shown), batch_size):
        ks = torch.tensor(shown[i : i + batch_size]).view(-1, 1, 1, 1, 1)
        mask = (ranks.unsqueeze(0).unsqueeze(0) < ks).to(x.dtype)  # (b, 1, T, H, W)
        clips = start + mask * (end - start)
        probs.append(target_probability(model, clips, target, batch_size))
    return np.concatenate(probs)


def auc(curve: np.ndarray) -> float:
    """Trapezoid area under a curve sampled at equal steps over [0, 1]."""
    c = np.asarray(curve, np.float64)
    if c.size < 2:
        raise ParameterError("a curve needs at least two points")
    return float(np.trapezoid(c, dx=1.0 / (c.size - 1)))


def saliency_metric(model: LoadedModel, x: torch.Tensor, target: int, relevance: np.ndarray,
                    blurred: torch.Tensor, thresholds: tuple[float, ...] = (0.5, 0.75),
                    tau: float = 0.05) -> dict[float, float]:
    """SM = log(max(a, τ)) − log(p_c) per threshold (Li et al. 2021, Eq. 6).

    The map is divided by its maximum and binarised at each threshold; ``a`` is the kept
    fraction of voxels, ``p_c`` the target probability of the clip showing only the
    kept voxels over ``blurred``. NaN when the map has no positive value.
    """
    rel = torch.as_tensor(np.asarray(relevance, np.float32))
    top = float(rel.max())
    if not top > 0:
        return {t: float("nan") for t in thresholds}
    keep = torch.stack([(rel / top >= t) for t in thresholds]).unsqueeze(1).to(x.dtype)
    clips = blurred.reshape(1, *x.shape[-4:]) + keep * (x.reshape(1, *x.shape[-4:])
                                                        - blurred.reshape(1, *x.shape[-4:]))
    p = target_probability(model, clips, target)
    areas = keep.flatten(1).mean(1).numpy()
    return {t: float(math.log(max(a, tau)) - math.log(max(pc, 1e-12)))
            for t, a, pc in zip(thresholds, areas, p, strict=True)}


def random_map(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """The seeded uniform random map used as every causal metric's baseline."""
    return np.random.default_rng(seed).random(shape).astype(np.float32)


# --------------------------------------------------------------------------- metrics
def _curve_params(baseline: str) -> dict[str, Param]:
    return {
        "steps": Param(32, "number of insertion/deletion steps", low=1, high=1024),
        "grid": Param(16, "patches per frame side for ranking (0: single voxels)", low=0,
                      high=1024),
        "baseline": Param(baseline, "what voxels come from (insertion) or become (deletion)",
                          choices=BASELINES),
        "sigma": Param(10.0, "blur of the blurred clip, pixels", low=0.0),
        "batch_size": Param(16, "clips per forward pass", low=1),
    }


class _CausalCurve(Metric):
    """Insertion or deletion: one curve per map, plus the random-map curve once per clip."""

    needs = ("model",)
    mode = ""

    def _setup(self, ev: ClipEvidence):
        cfg = self.config
        kind = cfg["baseline"]
        x = ev.x.to(torch.float32).cpu()
        key = ("baseline", kind, cfg["sigma"])
        base = ev.cached(key, lambda: baseline_clip(x, ev.model, kind, cfg["sigma"]))
        start, end = (base, x) if self.mode == "insertion" else (x, base)
        return x, start, end

    def _curve(self, ev: ClipEvidence, relevance: np.ndarray) -> np.ndarray:
        x, start, end = self._setup(ev)
        g = self.config["grid"]
        return perturbation_curve(ev.model, x, ev.target, relevance, start, end,
                                  steps=self.config["steps"], grid=(g, g) if g else None,
                                  seed=ev.seed, batch_size=self.config["batch_size"])

    def score_map(self, ev: ClipEvidence, method: str, variant: str,
                  relevance: np.ndarray) -> dict[str, float]:
        curve = self._curve(ev, relevance)
        ev.curves[(self.name, method, variant)] = curve.tolist()
        return {f"{self.mode}_auc": auc(curve)}

    def baseline(self, ev: ClipEvidence) -> dict[str, float]:
        shape = tuple(ev.x.shape[-3:])
        key = (self.name, "random", tuple(sorted(self.config.items())))
        curve = ev.cached(key, lambda: self._curve(ev, random_map(shape, ev.seed + 1)))
        ev.curves[(self.name, "random", "")] = curve.tolist()
        return {f"{self.mode}_auc": auc(curve)}


@register_metric
class Insertion(_CausalCurve):
    name = "insertion"
    mode = "insertion"
    params = _curve_params("blur")
    higher_is_better = True
    variants = ("full", "selective")
    quantities = ("insertion_auc",)
    description = ("AUC of the target probability while voxels are revealed into a blurred "
                   "clip, most relevant first (beside a random map)")
    reference = "Li et al. 2021, A Comprehensive Study on Visual Explanations ..., §4.1, Table 2"


@register_metric
class Deletion(_CausalCurve):
    name = "deletion"
    mode = "deletion"
    params = _curve_params("grey")
    higher_is_better = False
    variants = ("full", "selective")
    quantities = ("deletion_auc",)
    description = ("AUC of the target probability while voxels are greyed out, most relevant "
                   "first (beside a random map, which often wins: see the reference)")
    reference = "Li et al. 2021, §4.1, Table 2"


@register_metric
class SaliencyMetric(Metric):
    name = "saliency_metric"
    higher_is_better = False
    needs = ("model",)
    variants = ("full", "selective")
    quantities = ("sm50", "sm75")
    description = "log(max(area, 0.05)) − log(p_c) of the map binarised at 0.5 and 0.75 of its max"
    reference = "Li et al. 2021, §4.1 Eq. 6 (after Dabkowski & Gal 2017)"
    params = {"sigma": Param(10.0, "blur of what is not kept, pixels", low=0.0),
              "tau": Param(0.05, "smallest area counted", low=0.0, high=1.0)}

    def _scores(self, ev: ClipEvidence, relevance: np.ndarray) -> dict[str, float]:
        x = ev.x.to(torch.float32).cpu()
        sigma = self.config["sigma"]
        blurred = ev.cached(("baseline", "blur", sigma),
                            lambda: baseline_clip(x, ev.model, "blur", sigma))
        sm = saliency_metric(ev.model, x, ev.target, relevance, blurred, (0.5, 0.75),
                             self.config["tau"])
        return {"sm50": sm[0.5], "sm75": sm[0.75]}

    def score_map(self, ev: ClipEvidence, method: str, variant: str,
                  relevance: np.ndarray) -> dict[str, float]:
        return self._scores(ev, relevance)

    def baseline(self, ev: ClipEvidence) -> dict[str, float]:
        shape = tuple(ev.x.shape[-3:])
        return ev.cached((self.name, "random", tuple(sorted(self.config.items()))),
                         lambda: self._scores(ev, random_map(shape, ev.seed + 1)))
