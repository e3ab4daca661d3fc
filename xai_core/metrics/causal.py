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
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..baselines import baseline_clip
from ..errors import ParameterError
from ..models.registry import LoadedModel
from ..predict import class_probabilities
from .base import ClipEvidence, Metric, Param, register_metric

BASELINES = ("blur", "grey", "mean")


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


def target_probability(model: LoadedModel, clips: torch.Tensor, target: int,
                       batch_size: int = 16) -> np.ndarray:
    """Softmax probability of ``target`` for each clip of (N, 3, T, H, W), batched.

    :func:`xai_core.predict.class_probabilities` with ``batch_size`` clips per forward
    pass (eval mode, no gradients), as float64.
    """
    probs = class_probabilities(model, clips, chunk=batch_size)[:, target]
    return probs.numpy().astype(np.float64)


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


class _CausalMetric(Metric):
    """Base of the causal metrics: the model scores perturbed copies of the clip.

    Holds what they share: the clip and its baseline clip (cached per clip), and the
    seeded random map that every causal score is read beside (Li et al. 2021, §4.1,
    found random maps beating Grad-CAM on deletion).
    """

    needs = ("model",)
    variants = ("full", "selective")

    def clip_and_baseline(self, ev: ClipEvidence, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The clip as float32 on the CPU, and its baseline clip of ``kind`` (cached)."""
        x = ev.x.to(torch.float32).cpu()
        sigma = self.config["sigma"]
        return x, ev.cached(("baseline", kind, sigma),
                            lambda: baseline_clip(ev.model, x, kind, sigma))

    def on_random_map(self, ev: ClipEvidence, compute: Callable[[np.ndarray], Any]) -> Any:
        """``compute`` of the clip's seeded random map, once per clip and configuration."""
        shape = tuple(ev.x.shape[-3:])
        key = (self.name, "random", tuple(sorted(self.config.items())))
        return ev.cached(key, lambda: compute(random_map(shape, ev.seed + 1)))


class _CausalCurve(_CausalMetric):
    """Insertion or deletion: one curve per map, plus the random-map curve once per clip.

    A subclass gives its name (its quantity is ``<name>_auc``) and, as a class keyword,
    its default baseline: ``class Deletion(_CausalCurve, baseline="grey")``. Insertion
    runs from the baseline to the clip, deletion from the clip to the baseline.
    """

    def __init_subclass__(cls, baseline: str = "blur", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.params = _curve_params(baseline)
        cls.quantities = (f"{cls.name}_auc",)

    def _curve(self, ev: ClipEvidence, relevance: np.ndarray) -> np.ndarray:
        x, base = self.clip_and_baseline(ev, self.config["baseline"])
        start, end = (base, x) if self.name == "insertion" else (x, base)
        g = self.config["grid"]
        return perturbation_curve(ev.model, x, ev.target, relevance, start, end,
                                  steps=self.config["steps"], grid=(g, g) if g else None,
                                  seed=ev.seed, batch_size=self.config["batch_size"])

    def _record(self, ev: ClipEvidence, method: str, variant: str,
                curve: np.ndarray) -> dict[str, float]:
        ev.curves[(self.name, method, variant)] = curve.tolist()
        return {f"{self.name}_auc": auc(curve)}

    def score_map(self, ev: ClipEvidence, method: str, variant: str,
                  relevance: np.ndarray) -> dict[str, float]:
        return self._record(ev, method, variant, self._curve(ev, relevance))

    def baseline(self, ev: ClipEvidence) -> dict[str, float]:
        curve = self.on_random_map(ev, lambda rel: self._curve(ev, rel))
        return self._record(ev, "random", "", curve)


@register_metric
class Insertion(_CausalCurve, baseline="blur"):
    """Insertion AUC: voxels revealed into a blurred clip, most relevant first.

    Higher is better. See the module docstring; Li et al. (2021), §4.1 and Table 2.
    """

    name = "insertion"
    higher_is_better = True
    description = ("AUC of the target probability while voxels are revealed into a blurred "
                   "clip, most relevant first (beside a random map)")
    reference = "Li et al. 2021, A Comprehensive Study on Visual Explanations ..., §4.1, Table 2"


@register_metric
class Deletion(_CausalCurve, baseline="grey"):
    """Deletion AUC: voxels greyed out, most relevant first.

    Lower is better, but a random map often wins (Li et al. 2021, §4.1 and Table 2):
    deleting scattered voxels makes adversarial inputs.
    """

    name = "deletion"
    higher_is_better = False
    description = ("AUC of the target probability while voxels are greyed out, most relevant "
                   "first (beside a random map, which often wins: see the reference)")
    reference = "Li et al. 2021, §4.1, Table 2"


@register_metric
class SaliencyMetric(_CausalMetric):
    """Saliency metric ``SM = log(max(a, τ)) − log(p_c)`` at thresholds 0.5 and 0.75.

    Lower is better. Dabkowski & Gal (2017), as adapted to video by Li et al. (2021),
    §4.1, Eq. 6; see :func:`saliency_metric`.
    """

    name = "saliency_metric"
    higher_is_better = False
    quantities = ("sm50", "sm75")
    description = "log(max(area, 0.05)) − log(p_c) of the map binarised at 0.5 and 0.75 of its max"
    reference = "Li et al. 2021, §4.1 Eq. 6 (after Dabkowski & Gal 2017)"
    params = {"sigma": Param(10.0, "blur of what is not kept, pixels", low=0.0),
              "tau": Param(0.05, "smallest area counted", low=0.0, high=1.0)}

    def _scores(self, ev: ClipEvidence, relevance: np.ndarray) -> dict[str, float]:
        x, blurred = self.clip_and_baseline(ev, "blur")
        sm = saliency_metric(ev.model, x, ev.target, relevance, blurred, (0.5, 0.75),
                             self.config["tau"])
        return {"sm50": sm[0.5], "sm75": sm[0.75]}

    def score_map(self, ev: ClipEvidence, method: str, variant: str,
                  relevance: np.ndarray) -> dict[str, float]:
        return self._scores(ev, relevance)

    def baseline(self, ev: ClipEvidence) -> dict[str, float]:
        return self.on_random_map(ev, lambda rel: self._scores(ev, rel))
