"""Model-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

A map that explains the *model* must change when the model's learned weights are
destroyed. Cascading randomisation re-initialises the learnable layers one by one
from the output towards the input and, after each, measures the Spearman rank
correlation between the method's map on the damaged model and on the trained one. A
method that passes falls towards 0; one that stays high is explaining the input (an
edge detector), not the model.

The layers randomised are the convolutions and linear layers (they carry the learned
function; normalisation layers keep their statistics, which only rescale). Each is
re-drawn with its own ``reset_parameters`` (PyTorch's default initialisation), seeded.
The work happens on a deep copy: the user's model is never touched.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from ..errors import MethodError, ParameterError
from ..methods.base import Method, Param, ProgressFn, get_method
from ..models.registry import LoadedModel
from .base import ClipEvidence, Metric, register_metric

_LEARNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def learnable_layers(module: nn.Module) -> list[str]:
    """Names of the conv and linear layers, in definition (≈ forward) order."""
    return [name for name, m in module.named_modules() if isinstance(m, _LEARNABLE)]


def spearman(a: np.ndarray, b: np.ndarray, absolute: bool = False) -> float:
    """Spearman rank correlation of two maps (NaN when either is constant)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if absolute:
        a, b = np.abs(a), np.abs(b)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def randomised_copy(model: LoadedModel, layers: list[str], seed: int = 0) -> LoadedModel:
    """A copy of ``model`` whose ``layers`` are re-initialised (the original is untouched)."""
    module = copy.deepcopy(model.module)
    devices = [model.device] if model.device.type == "cuda" else []
    for i, name in enumerate(layers):
        layer = module.get_submodule(name)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed + i)
            layer.reset_parameters()
    module.eval()
    tag = f"randomised[{','.join(layers)}]@{seed}"
    return dataclasses.replace(model, module=module, weights_hash=f"{model.weights_hash}:{tag}",
                               name=f"{model.name} ({len(layers)} layers randomised)")


def cascading_randomisation(model: LoadedModel, method: str | Method, x: torch.Tensor,
                            target: int, *,
                            method_params: dict[str, Any] | None = None, seed: int = 0,
                            absolute: bool = False, progress: ProgressFn | None = None
                            ) -> list[tuple[str, float]]:
    """Spearman correlation of the method's map after randomising layers top-down.

    Returns ``[(layer, rho), ...]``: ``rho`` after randomising that layer and every
    layer above it (the first entry: only the output layer; the last: all of them).
    ``method`` is a registered name (with ``method_params``) or a method instance.
    """
    if x.ndim != 5 or x.shape[0] != 1:
        raise ParameterError("the sanity check takes one clip (1, 3, T, H, W), "
                             f"got {tuple(x.shape)}")
    explainer = method if isinstance(method, Method) else get_method(method,
                                                                     **(method_params or {}))
    name = explainer.name
    reference = explainer.attribute(model, x, target).relevance[0].numpy()
    layers = learnable_layers(model.module)[::-1]
    if not layers:
        raise MethodError("the model has no conv or linear layer to randomise")
    out = []
    for k in range(1, len(layers) + 1):
        damaged = randomised_copy(model, layers[:k], seed)
        rel = explainer.attribute(damaged, x, target).relevance[0].numpy()
        out.append((layers[k - 1], spearman(reference, rel, absolute)))
        if progress is not None:
            progress(k, len(layers), f"sanity {name}")
    return out


@register_metric
class ModelRandomisation(Metric):
    name = "sanity"
    higher_is_better = False  # the map should decorrelate from the trained model's
    needs = ("model",)
    scope = "method"
    quantities = ("spearman_top", "spearman_all", "spearman_mean")
    description = ("Spearman correlation of the map with the map after randomising the model's "
                   "layers top-down (should fall towards 0)")
    reference = "Adebayo et al. 2018, Sanity Checks for Saliency Maps (cascading randomisation)"
    params = {"absolute": Param(False, "correlate |map| instead of the signed map")}

    def score_method(self, ev: ClipEvidence, method: str) -> dict[str, float]:
        curve = cascading_randomisation(ev.model, method, ev.x, ev.target,
                                        method_params=ev.method_params.get(method),
                                        seed=ev.seed, absolute=self.config["absolute"])
        rhos = np.array([r for _, r in curve], np.float64)
        return {"spearman_top": rhos[0], "spearman_all": rhos[-1],
                "spearman_mean": float(np.nanmean(rhos)) if np.isfinite(rhos).any() else np.nan}
