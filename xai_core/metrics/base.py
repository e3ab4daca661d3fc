"""The contract every metric follows, the per-clip evidence it reads, and the registry.

A metric is a small class (Quantus style): what it means and how to read it live in
class attributes — ``name``, ``higher_is_better``, ``needs``, ``description``,
``reference`` — and the arithmetic lives in plain functions of arrays in the family
module (:mod:`.motion`, :mod:`.causal`, :mod:`.localisation`, :mod:`.sanity`), which the
tests check against hand-computed values.

A metric reads one :class:`ClipEvidence` (the maps of every method for one clip, plus
whatever else it ``needs``: the model, the frames for optical flow, ground-truth masks,
timings) and returns :class:`Score` rows — one tidy row per (method, variant, quantity).
Subclasses implement one of three hooks, chosen by ``scope``:

* ``"map"`` — :meth:`Metric.score_map`, once per method and map variant
  (full / spatial / temporal / selective);
* ``"method"`` — :meth:`Metric.score_method`, once per method;
* ``"pair"`` — :meth:`Metric.score_pair`, once per unordered pair of methods.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from ..errors import ParameterError
from ..models.registry import LoadedModel
from ..registry import Configurable, Param, Registry
from ..results import MAP_NAMES

__all__ = ["MAP_NAMES", "METRICS", "NEEDS", "ClipEvidence", "Metric", "Param", "Score",
           "get_metric", "list_metrics", "register_metric"]


#: What a metric can need besides the maps (checked by :meth:`Metric.missing`).
NEEDS: dict[str, str] = {
    "model": "the model and the clip tensor",
    "frames": "the clip's frames (optical flow is computed from them)",
    "masks": "ground-truth actor and context masks",
    "segment": "a ground-truth temporal segment",
    "timings": "the engine's timings",
    "motion_share": "the engine's motion share",
    "pair": "at least two methods",
}


class Score(NamedTuple):
    """One tidy result row: ``value`` of ``quantity`` for a method's map variant.

    ``method`` is ``"random"`` for random-map baselines; ``variant`` is ``""`` for
    scores of a whole method (timings) and ``"a|b"`` names a pair of methods.
    """

    method: str
    variant: str
    quantity: str
    value: float


@dataclass
class ClipEvidence:
    """Everything metrics may read about one explained clip.

    Attributes
    ----------
    maps
        ``maps[method][variant]``: signed relevance (T, H, W) float32 in the method's
        own units (variants: full, spatial, temporal, selective — whichever exist).
    target
        The class the maps explain.
    model, x
        The :class:`LoadedModel` and the normalised clip (1, 3, T, H, W) — needed by
        metrics that run the model (insertion/deletion, saliency metric, sanity).
    frames
        uint8 RGB (T, H, W, 3) as the model sees them (optical flow).
    masks
        Ground truth, each (T, H, W) bool: ``"actor"`` (where the motion evidence is),
        ``"context"`` (where the static evidence is); ``"segment"`` (T,) bool frames of
        the action.
    timings
        ``timings[method][stage]`` in seconds (stages such as ``full``, ``spatial``,
        ``selective`` as the engine reports them).
    motion_share
        ``motion_share[method][kind]`` from the engine (kinds ``discriminative`` and
        ``selective``, see :mod:`xai_core.decompose`).
    method_params
        ``method_params[method]``: parameters the method ran with (sanity re-runs).
    seed
        Seeds every random choice of the metrics (random maps, tie breaks).
    """

    maps: dict[str, dict[str, np.ndarray]]
    target: int
    model: LoadedModel | None = None
    x: torch.Tensor | None = None
    frames: np.ndarray | None = None
    masks: dict[str, np.ndarray] | None = None
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    motion_share: dict[str, dict[str, float]] = field(default_factory=dict)
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    #: Results shared between metrics of one clip (optical flow, random-map curves).
    cache: dict[Any, Any] = field(default_factory=dict)
    #: Curves metrics produce besides scalar scores (insertion/deletion), for plots:
    #: ``curves[(metric, method, variant)] = list of floats``.
    curves: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    def has(self, need: str) -> bool:
        if need == "model":
            return self.model is not None and self.x is not None
        if need == "frames":
            return self.frames is not None
        if need == "masks":
            return bool(self.masks) and "actor" in self.masks and "context" in self.masks
        if need == "segment":
            return bool(self.masks) and "segment" in self.masks
        if need == "timings":
            return bool(self.timings)
        if need == "motion_share":
            return bool(self.motion_share)
        if need == "pair":
            return len(self.maps) >= 2
        raise KeyError(need)

    def cached(self, key: Any, compute):
        """``compute()`` once per clip and key (flow and random baselines are shared)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


class Metric(Configurable):
    """Base class of metrics.

    Class attributes
    ----------------
    name
        Registry key, e.g. ``"motion_precision"``.
    higher_is_better
        Score direction (``None``: descriptive, no better direction).
    needs
        Keys of :data:`NEEDS` the metric requires beyond the maps.
    scope
        ``"map"``, ``"method"`` or ``"pair"`` (which hook it implements).
    variants
        Map variants a ``"map"`` metric scores by default.
    quantities
        Names of the quantities it reports (columns of the result table).
    description, reference
        One line each, for ``--help``, the report and the dashboard.
    params
        Its parameters as :class:`~xai_core.methods.base.Param`.
    """

    kind: ClassVar[str] = "metric"
    higher_is_better: ClassVar[bool | None] = None
    needs: ClassVar[tuple[str, ...]] = ()
    scope: ClassVar[str] = "map"
    variants: ClassVar[tuple[str, ...]] = MAP_NAMES
    quantities: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    reference: ClassVar[str] = ""

    def __init__(self, variants: Sequence[str] | None = None, **params: Any) -> None:
        super().__init__(**params)
        if variants is not None:
            bad = sorted(set(variants) - set(MAP_NAMES))
            if bad:
                raise ParameterError(f"unknown map variant(s) {bad}",
                                     hint=f"Use some of: {', '.join(MAP_NAMES)}.")
            self.variants = tuple(variants)

    # ----------------------------------------------------------------- hooks
    def score_map(self, ev: ClipEvidence, method: str, variant: str,
                  relevance: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def score_method(self, ev: ClipEvidence, method: str) -> dict[str, float]:
        raise NotImplementedError

    def score_pair(self, ev: ClipEvidence, a: str, b: str, variant: str) -> dict[str, float]:
        raise NotImplementedError

    def baseline(self, ev: ClipEvidence) -> dict[str, float]:
        """Scores of a seeded random map on this clip ({} when the metric has none)."""
        return {}

    # ----------------------------------------------------------------- public API
    def missing(self, ev: ClipEvidence) -> list[str]:
        """Human-readable list of what this clip lacks for the metric (empty: can run)."""
        return [NEEDS[n] for n in self.needs if not ev.has(n)]

    def compute(self, ev: ClipEvidence) -> list[Score]:
        """All scores of this metric on one clip (nothing when something it needs is missing)."""
        if self.missing(ev):
            return []
        rows: list[Score] = []
        if self.scope == "map":
            for method, maps in ev.maps.items():
                for variant in self.variants:
                    if variant in maps:
                        rel = _as_map(maps[variant], method, variant)
                        for q, v in self.score_map(ev, method, variant, rel).items():
                            rows.append(Score(method, variant, q, float(v)))
            for q, v in self.baseline(ev).items():
                rows.append(Score("random", "", q, float(v)))
        elif self.scope == "method":
            for method in ev.maps:
                for q, v in self.score_method(ev, method).items():
                    rows.append(Score(method, "", q, float(v)))
        elif self.scope == "pair":
            for a, b in itertools.combinations(sorted(ev.maps), 2):
                for variant in self.variants:
                    if variant in ev.maps[a] and variant in ev.maps[b]:
                        for q, v in self.score_pair(ev, a, b, variant).items():
                            rows.append(Score(f"{a}|{b}", variant, q, float(v)))
        else:  # pragma: no cover - class definition error
            raise TypeError(f"{type(self).__name__}.scope must be map, method or pair")
        return rows

    def key(self) -> dict[str, Any]:
        """Everything the scores depend on besides the clip (cache and resume key)."""
        return {**super().key(), "variants": list(self.variants)}


def _as_map(rel: Any, method: str, variant: str) -> np.ndarray:
    arr = rel.detach().cpu().numpy() if isinstance(rel, torch.Tensor) else np.asarray(rel)
    arr = np.squeeze(arr.astype(np.float32, copy=False))
    if arr.ndim != 3:
        raise ParameterError(f"the {variant} map of {method} has shape {arr.shape}; metrics "
                             "need one (T, H, W) map per clip")
    return arr


# --------------------------------------------------------------------------- registry
#: Every metric by name; one module per family registers its metrics on import.
METRICS: Registry[type[Metric]] = Registry("metric", modules=tuple(
    f"xai_core.metrics.{family}" for family in ("causal", "localisation", "motion", "sanity")))

#: Class decorator: make a metric available by its ``name``.
register_metric = METRICS.register


def get_metric(name: str, variants: Sequence[str] | None = None, **params: Any) -> Metric:
    """Instantiate a registered metric with validated parameters."""
    return METRICS[name](variants=variants, **params)


def list_metrics() -> list[type[Metric]]:
    return list(METRICS.values())
