"""Scoring one explained clip with metrics (the dashboard's metrics panel, and every run).

:func:`evaluate_clip` scores one :class:`~xai_core.results.Explanation` with the metrics
of :mod:`xai_core.metrics`; the result is cached in the engine's result cache.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..cache import DEFAULT_CACHE, resolve_cache
from ..errors import ParameterError
from ..hashing import array_hash
from ..metrics import ClipEvidence, Metric, get_metric
from ..models.registry import LoadedModel
from ..progress import Progress, ProgressEvent
from ..registry import parse_spec
from ..request import metrics_key, prepare_clip
from ..results import Explanation

__all__ = ["DEFAULT_METRICS", "ClipScores", "evaluate_clip", "evidence", "resolve_metrics"]

#: Metrics of a run unless asked otherwise (the sanity check re-runs every method once per
#: layer: ask for it with ``--metrics sanity``).
DEFAULT_METRICS: tuple[str, ...] = (
    "motion_precision", "selectivity", "agreement", "overhead", "motion_share",
    "insertion", "deletion", "saliency_metric", "pointing_game", "temporal_pointing_game",
    "ground_truth",
)

#: Columns of :meth:`ClipScores.to_frame`.
SCORE_COLUMNS = ["method", "variant", "metric", "quantity", "value", "higher_is_better"]


@dataclass
class ClipScores:
    """The metrics of one explained clip.

    Attributes
    ----------
    rows
        Dicts with ``method``, ``variant``, ``metric``, ``quantity``, ``value``,
        ``higher_is_better``.
    curves
        Insertion/deletion curves keyed ``"metric|method|variant"``.
    skipped
        Metric → what it lacked.
    cache_hit
        Whether the scores came from the result cache.
    """

    rows: list[dict[str, Any]]
    curves: dict[str, list[float]]
    skipped: dict[str, str]
    cache_hit: bool = False

    def to_frame(self) -> pd.DataFrame:
        """The rows as a table with the columns of :data:`SCORE_COLUMNS`."""
        return pd.DataFrame(self.rows, columns=SCORE_COLUMNS)

    def to_wide(self) -> pd.DataFrame:
        """The same values as a method × metric summary: one row per method and map
        variant (``method``, ``map``), one column per metric (``metric · quantity`` when a
        metric reports several quantities), in the order they were computed.

        ``attrs["higher_is_better"]`` maps each metric column to ``True`` / ``False`` /
        ``None`` (descriptive). Empty (no columns) when there are no scores.
        """
        table = self.to_frame()
        if table.empty:
            return pd.DataFrame()
        several = table.groupby("metric", sort=False)["quantity"].nunique() > 1
        table["column"] = [f"{m} · {q}" if several[m] else m
                           for m, q in zip(table["metric"], table["quantity"], strict=True)]
        columns = list(dict.fromkeys(table["column"]))
        rows = list(dict.fromkeys(zip(table["method"], table["variant"], strict=True)))
        wide = (table.drop_duplicates(["method", "variant", "column"])
                .set_index(["method", "variant", "column"])["value"].unstack("column"))
        wide = wide.reindex(index=pd.MultiIndex.from_tuples(rows, names=["method", "variant"]),
                            columns=columns).reset_index()
        wide = wide.rename(columns={"variant": "map"})
        wide.columns.name = None
        wide.attrs["higher_is_better"] = dict(zip(table["column"], table["higher_is_better"],
                                                  strict=True))
        return wide


def resolve_metrics(metrics: Iterable[str | Metric] | None) -> list[Metric]:
    """Metric instances from names, ``"name:key=value,..."`` specs or instances.

    Parameters
    ----------
    metrics
        Names, specs (``variants=full+selective`` picks map variants) or instances;
        ``None`` for :data:`DEFAULT_METRICS`.

    Returns
    -------
    list of Metric
        One instance per metric, in the order given.
    """
    out = []
    for m in DEFAULT_METRICS if metrics is None else metrics:
        if isinstance(m, Metric):
            out.append(m)
            continue
        name, params = parse_spec(m)
        variants = params.pop("variants", None)
        out.append(get_metric(name, variants=variants.split("+") if variants else None,
                              **params))
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ParameterError(f"a metric is listed twice: {names}", hint="List each metric once.")
    return out


def evidence(model: LoadedModel, explanation: Explanation, x, masks=None, seed: int = 0
             ) -> ClipEvidence:
    """The :class:`ClipEvidence` metrics read, from an explanation and its clip tensor.

    Parameters
    ----------
    model
        The model that was explained.
    explanation
        Its explanation of the clip.
    x
        The normalised clip tensor (1, 3, T, H, W).
    masks
        Ground truth on the clip's (T, H, W) grid, or ``None``.
    seed
        Seeds the random-map baselines and tie breaks.

    Returns
    -------
    ClipEvidence
        Maps, timings, motion shares and method parameters of every method.
    """
    maps = {name: r.maps() for name, r in explanation.methods.items()}
    return ClipEvidence(
        maps=maps, target=explanation.target, model=model, x=x,
        frames=explanation.frames, masks=masks,
        timings={n: dict(r.timings) for n, r in explanation.methods.items()},
        motion_share={n: dict(r.motion_share) for n, r in explanation.methods.items()},
        method_params={n: {k: v for k, v in r.params.items() if k != "method"}
                       for n, r in explanation.methods.items()},
        seed=seed)


def evaluate_clip(model: LoadedModel, clip: Any, explanation: Explanation,
                  metrics: Iterable[str | Metric] | None = None,
                  masks: dict[str, np.ndarray] | None = None,
                  progress: Progress | None = None, *,
                  seed: int = 0, cache: Any = DEFAULT_CACHE) -> ClipScores:
    """Score one explanation with metrics (the dashboard's metrics panel).

    Parameters
    ----------
    model
        The model that was explained.
    clip
        The explained clip: a :class:`~xai_core.video.clip.Clip`, a normalised tensor
        (1, 3, T, H, W) or anything :func:`xai_core.engine.prepare_clip` accepts.
    explanation
        What :func:`xai_core.explain` returned for this clip.
    metrics
        Names, ``"name:key=value"`` specs or :class:`Metric` instances; default
        :data:`DEFAULT_METRICS`. Metrics whose needs are missing (no masks ...) are
        listed in ``skipped`` instead of failing.
    masks
        Ground truth on the clip's grid (T, H, W): ``actor``, ``context``, ``segment``.
    progress
        Receives a :class:`~xai_core.progress.ProgressEvent` (stage ``"metrics"``) per
        metric.
    seed
        Seeds the random-map baselines and tie breaks.
    cache
        The engine's :class:`~xai_core.cache.ResultCache` (default: the shared one), or
        ``None``.

    Returns
    -------
    ClipScores
        The rows, curves and skipped metrics; ``cache_hit`` when read from the cache.
    """
    chosen = resolve_metrics(metrics)
    x, _, _ = prepare_clip(model, clip)
    if tuple(x.shape[2:]) != tuple(explanation.frames.shape[:3]):
        raise ParameterError(f"the clip {tuple(x.shape[2:])} is not the explained one "
                             f"{tuple(explanation.frames.shape[:3])}",
                             hint="Pass the clip the explanation was computed for.")
    masks = _check_masks(masks, tuple(x.shape[2:]))

    def compute() -> tuple[dict, dict]:
        scores = _score(model, explanation, x, masks, chosen, seed, progress)
        return {}, {"rows": scores.rows, "curves": scores.curves, "skipped": scores.skipped}

    cache = resolve_cache(cache)
    if cache is None:
        _, meta = compute()
        return ClipScores(meta["rows"], meta["curves"], meta["skipped"])
    key = metrics_key(cache, explanation, [m.key() for m in chosen], seed,
                      {k: array_hash(v) for k, v in sorted((masks or {}).items())})
    _, meta, hit = cache.get_or_compute(key, compute)
    return ClipScores(meta["rows"], meta["curves"], meta["skipped"], cache_hit=hit)


def _check_masks(masks: dict[str, np.ndarray] | None, shape: tuple[int, int, int]
                 ) -> dict[str, np.ndarray] | None:
    """The masks as bool arrays, each checked against the clip's (T, H, W) grid."""
    if not masks:
        return None
    out = {}
    for key, m in masks.items():
        m = np.asarray(m, bool)
        want = shape[:1] if key == "segment" else shape
        if m.shape != want:
            raise ParameterError(f"mask {key!r} has shape {m.shape}, the clip is {want}",
                                 hint="Give masks on the model's (T, H, W) grid "
                                      "(see xai_core.evaluation.clip_masks).")
        out[key] = m
    return out


def _score(model: LoadedModel, explanation: Explanation, x, masks, metrics: list[Metric],
           seed: int, progress: Progress | None) -> ClipScores:
    """Run every metric whose needs are met; the others are listed as skipped."""
    ev = evidence(model, explanation, x, masks, seed)
    rows, skipped = [], {}
    for i, metric in enumerate(metrics):
        if progress is not None:
            progress(ProgressEvent("metrics", i, len(metrics)))
        lacking = metric.missing(ev)
        if lacking:
            skipped[metric.name] = "needs " + ", ".join(lacking)
            continue
        for s in metric.compute(ev):
            rows.append({"method": s.method, "variant": s.variant, "metric": metric.name,
                         "quantity": s.quantity, "value": _finite_or_nan(s.value),
                         "higher_is_better": metric.higher_is_better})
    if progress is not None:
        progress(ProgressEvent("metrics", len(metrics), len(metrics)))
    curves = {f"{m}|{meth}|{v}": c for (m, meth, v), c in ev.curves.items()}
    return ClipScores(rows, curves, skipped)


def _finite_or_nan(v: float | None) -> float:
    return float(v) if v is not None and math.isfinite(v) else float("nan")
