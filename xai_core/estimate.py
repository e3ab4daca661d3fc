"""How long an explanation will take, before it starts.

Optimisation and sampling methods (extremal perturbation, occlusion, integrated
gradients) cost hundreds of model passes per clip, and a freeze-frame decomposition runs
the method once more per distinct frame. The estimate multiplies three numbers that are
all known before computing anything:

- the **measured** time per clip of a forward+backward pass of this clip through this
  model on this device (timed on a batch of four, once per model, device, clip shape
  and thread count);
- the method's :meth:`~xai_core.methods.base.Method.cost_passes` (passes per clip);
- the number of clips explained: the clip itself plus one freeze-frame clip per distinct
  frame (:func:`~xai_core.decompose.distinct_frames`), or none when the clip is static
  or the method is explained without the split (``decompose``);

plus the forward-only predictions on the clip and its freeze-frame clips. The pass counts
of the methods were calibrated against measured times (``benchmarks/RESULTS.md``: within
about ±35 % on the project's CPU).

Results already in the cache cost nothing and are reported as such. Methods that stop
early (extremal perturbation) are estimated at their maximum iterations and flagged
``at_most``. ``benchmarks/bench_estimate.py`` records how close the estimate comes.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from .cache import DEFAULT_CACHE, ResultCache, resolve_cache
from .decompose import (
    DEFAULT_OPTIONS,
    DecompositionOptions,
    distinct_frames,
    freeze_frame_selection,
)
from .errors import ParameterError
from .methods.base import model_guard
from .models.registry import LoadedModel
from .predict import class_probabilities
from .request import ExplainRequest

#: A batched forward-only pass (predictions) costs about this share of a forward+backward
#: one on a CPU (measured, benchmarks/bench_estimate.py).
FORWARD_SHARE = 2 / 3

#: Clips per timed pass (see :func:`pass_seconds`): methods batch 4 areas, 8 freeze-frame
#: clips or 8 noisy copies; one clip alone costs 2–4× more per clip on a CPU.
TIMED_BATCH = 4
#: A forward+backward pass of one clip this long (seconds) is timed once, not in batches.
SLOW_PASS = 1.0

_pass_times: dict[tuple, float] = {}
_pass_lock = threading.Lock()


@dataclass(frozen=True)
class MethodCost:
    """Cost of one method's explanation of one clip (with the split or full only)."""

    method: str
    #: forward+backward passes of one clip through the model, freeze frames included
    passes: int
    #: estimated seconds (0 when cached)
    seconds: float
    #: the result is in the cache: nothing to compute
    cached: bool
    #: the method may stop early, so ``seconds`` is an upper bound
    at_most: bool
    #: with the freeze-frame split (spatial / temporal), or full and selective only
    decomposed: bool = True


@dataclass(frozen=True)
class CostEstimate:
    """Estimated cost of :func:`xai_core.engine.explain` for one clip and several methods."""

    methods: tuple[MethodCost, ...]
    #: measured seconds per clip of a forward+backward pass (batch of four)
    pass_seconds: float
    #: clips a decomposed method explains: the clip plus its distinct freeze-frame clips
    clips_per_method: int
    #: estimated seconds of the prediction and freeze-frame predictions (0 when cached)
    prediction_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.prediction_seconds + sum(m.seconds for m in self.methods)

    @property
    def at_most(self) -> bool:
        return any(m.at_most and not m.cached for m in self.methods)

    @property
    def passes(self) -> int:
        """Model passes still to run (cached methods cost none)."""
        return sum(m.passes for m in self.methods if not m.cached)

    def total(self) -> str:
        """The whole estimate in words: ``about 40 s``, ``at most 25 min``."""
        return f"{'at most' if self.at_most else 'about'} {format_duration(self.seconds)}"

    def describe(self) -> str:
        """One line per method, e.g. ``dtd: ≈ 12 s (6 passes × 17 clips)``."""
        lines = []
        for m in self.methods:
            if m.cached:
                lines.append(f"{m.method}: cached")
            else:
                bound = "at most " if m.at_most else "≈ "
                what = "" if m.decomposed else ", full relevance only"
                lines.append(f"{m.method}: {bound}{format_duration(m.seconds)} "
                             f"({m.passes:,} model passes{what})")
        if self.prediction_seconds > 0:
            lines.append(f"predictions: ≈ {format_duration(self.prediction_seconds)} "
                         f"({self.clips_per_method} clips, forward only)")
        return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``2.5 h`` — the precision an estimate deserves."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def pass_seconds(model: LoadedModel, x: torch.Tensor, repeats: int = 2) -> float:
    """Measured seconds per clip of a forward+backward pass of ``x`` (1, 3, T, H, W).

    One clip is run first (it also pays for allocation and kernel selection). When that
    takes :data:`SLOW_PASS` seconds or more, the model is compute-bound — batching saves
    little per clip — and that time is the answer: timing batches of a video transformer
    would cost longer than the gradient explanation it announces. Otherwise the pass is
    timed ``repeats`` times on a batch of :data:`TIMED_BATCH` copies, because methods run
    their passes in batches (freeze-frame clips, masks of several areas, noisy copies),
    which costs less per clip than one clip alone. Once per weights, device, clip shape
    and thread count, remembered for the process. The model is left as it was
    (:func:`~xai_core.methods.base.model_guard`).
    """
    if x.ndim != 5 or x.shape[0] != 1:
        raise ParameterError(f"expected one clip (1, 3, T, H, W), got {tuple(x.shape)}")
    key = (model.weights_hash, model.name, str(model.device), tuple(x.shape),
           torch.get_num_threads())
    with _pass_lock:
        if key in _pass_times:
            return _pass_times[key]
    with model_guard(model.module):
        seconds = _timed_pass(model, x, 1)
        if seconds < SLOW_PASS:  # the first batch pays for its own allocation: not counted
            times = [_timed_pass(model, x, TIMED_BATCH) for _ in range(repeats + 1)]
            seconds = statistics.median(times[1:])
    with _pass_lock:
        _pass_times[key] = seconds
    return seconds


def _timed_pass(model: LoadedModel, x: torch.Tensor, batch: int) -> float:
    """Seconds per clip of one forward+backward pass of ``batch`` copies of ``x``."""
    clips = x.to(model.device, torch.float32).repeat(batch, 1, 1, 1, 1).requires_grad_(True)
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    tic = time.perf_counter()
    model.module(clips).max(dim=1).values.sum().backward()
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    return (time.perf_counter() - tic) / batch


class PassCounts(NamedTuple):
    """Model passes of a request, computed or not (also weights the engine's progress)."""

    #: forward-only passes of the predictions, in forward+backward equivalents
    prediction: float
    #: ``methods[name] = (passes of the full explanation, passes of the split)``
    methods: dict[str, tuple[int, int]]
    #: clips a decomposed method explains: the clip plus its distinct freeze-frame clips
    clips: int


def pass_counts(request: ExplainRequest) -> PassCounts:
    """How many model passes each part of ``request`` runs (nothing is cached here)."""
    explained, _, static = freeze_frame_selection(request.x, request.options)  # as the split
    freeze_clips = 0 if static else len(explained)
    methods = {}
    for name, method in request.methods.items():
        cost = method.cost_passes(tuple(request.x.shape[2:]))
        methods[name] = (cost, cost * freeze_clips if request.decomposed(name) else 0)
    # the clip and each distinct frame's freeze-frame clip, forward only
    predicted_clips = 1 + len(distinct_frames(request.x)[0])
    return PassCounts(predicted_clips * FORWARD_SHARE, methods, 1 + freeze_clips)


def estimate(request: ExplainRequest, *, cache: ResultCache | None = DEFAULT_CACHE,
             measure: bool = True) -> CostEstimate:
    """Estimate what computing ``request`` (:func:`xai_core.engine.run`) will cost.

    Parameters
    ----------
    request
        The request, as :func:`xai_core.engine.run` will compute it.
    cache
        Where to look for results already computed (those cost nothing); ``None`` ignores
        the cache.
    measure
        Time a pass (seconds); ``False`` counts passes only (no model pass beyond the
        prediction that finds the target), and every ``seconds`` is 0.

    Returns
    -------
    CostEstimate
        Per method: model passes, estimated seconds, whether cached, whether an upper bound.
    """
    cache = resolve_cache(cache)
    counts = pass_counts(request)
    model, x = request.model, request.x
    target = None
    if cache is not None:
        target = (request.target if request.target is not None
                  else int(class_probabilities(model, x)[0].argmax()))

    per_pass: float | None = None
    costs = []
    for name, method in request.methods.items():
        full, freeze = counts.methods[name]
        cached = cache is not None and any(
            cache.contains(k) for k in request.method_keys(cache, name, target))
        if measure and not cached and per_pass is None:
            per_pass = pass_seconds(model, x)
        passes = full + freeze
        seconds = 0.0 if cached else passes * (per_pass or 0.0)
        costs.append(MethodCost(name, passes, seconds, cached,
                                at_most=type(method).stops_early,
                                decomposed=request.decomposed(name)))
    predicted = cache is not None and cache.contains(request.prediction_key(cache))
    if measure and not predicted and per_pass is None:
        per_pass = pass_seconds(model, x)
    prediction = 0.0 if predicted else counts.prediction * (per_pass or 0.0)
    return CostEstimate(tuple(costs), per_pass or 0.0, counts.clips, prediction)


def estimate_cost(model: LoadedModel, clip: Any, methods: str | Iterable[str], *,
                  target: int | str | None = None,
                  options: DecompositionOptions = DEFAULT_OPTIONS,
                  method_params: Mapping[str, Mapping[str, Any]] | None = None,
                  decompose: bool | Iterable[str] = True,
                  cache: ResultCache | None = DEFAULT_CACHE,
                  measure: bool = True) -> CostEstimate:
    """Estimate what :func:`xai_core.engine.explain` with the same arguments will cost.

    Builds the same :class:`~xai_core.request.ExplainRequest` as ``explain`` (parameters
    are validated the same way) and calls :func:`estimate`.
    """
    request = ExplainRequest.build(model, clip, methods, target=target, options=options,
                                   method_params=method_params, decompose=decompose)
    return estimate(request, cache=cache, measure=measure)
