"""Computing an :class:`~xai_core.request.ExplainRequest`: from a model and a clip to
decomposed explanations.

For each requested method the engine computes the full explanation, the discriminative
(freeze-frame) split when asked and the selective map (:mod:`xai_core.decompose`),
through the method contract only; the model's prediction and its predictions on every
freeze-frame clip are recorded beside them. Progress is reported as
:class:`~xai_core.progress.ProgressEvent` weighted by each stage's model passes
(:func:`xai_core.estimate.pass_counts`), and every result goes through the
content-addressed cache under the request's keys, so the CLI, the API, the evaluation and
the dashboard share computations.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from . import decompose as decomposition
from .budget import clips_per_pass
from .cache import DEFAULT_CACHE, ResultCache, code_version, resolve_cache
from .decompose import DEFAULT_OPTIONS, DecompositionOptions
from .estimate import PassCounts, pass_counts
from .methods.base import Method
from .models.registry import LoadedModel
from .predict import class_probabilities
from .progress import Progress, ProgressEvent, ignore
from .request import ExplainRequest
from .results import Explanation, MethodResult
from .version import __version__

__all__ = ["compute_method", "explain", "freeze_frame_probabilities", "run", "versions"]


def explain(model: LoadedModel, clip: Any, methods: str | Iterable[str] = ("dtd",), *,
            target: int | str | None = None,
            options: DecompositionOptions = DEFAULT_OPTIONS,
            method_params: Mapping[str, Mapping[str, Any]] | None = None,
            decompose: bool | Iterable[str] = True,
            device: str | torch.device | None = None,
            cache: ResultCache | None = DEFAULT_CACHE,
            progress: Progress | None = None) -> Explanation:
    """Explain a clip with one or more methods, decomposed into spatial and temporal parts.

    Builds an :class:`~xai_core.request.ExplainRequest` (see
    :meth:`~xai_core.request.ExplainRequest.build` for the arguments) and :func:`run`\\ s it.

    Parameters
    ----------
    model
        A :class:`~xai_core.models.registry.LoadedModel` (``load_model`` or ``wrap_module``).
        It is left exactly as it was (mode, ``requires_grad``, ``.grad``, hooks).
    clip
        A :class:`~xai_core.video.clip.Clip` (from ``load_clip``), a video path, uint8 RGB
        frames (T, H, W, 3) at any size (resized and cropped per the model's input spec),
        or a normalised tensor (1, 3, T, H, W) / (3, T, H, W).
    methods
        Registry names (``python -m xai_core methods``); one name or several.
    target
        Class index or name to explain; ``None`` explains the predicted class.
    options
        :class:`~xai_core.decompose.DecompositionOptions` (slice, normalisation, sigma ...).
    method_params
        ``{method name: {param: value}}``, validated by each method.
    decompose
        Which methods get the freeze-frame (discriminative) split into spatial and
        temporal relevance: ``True`` all, ``False`` none, or the names of some. The others
        get full and selective relevance only (``spatial``/``temporal`` are ``None``): the
        split explains one more clip per distinct frame, which for an optimisation such
        as extremal perturbation is T more optimisations
        (:func:`xai_core.estimate.estimate` says what it would cost).
    device
        ``None`` computes where the model is; another device computes on a copy of it.
    cache
        A :class:`~xai_core.cache.ResultCache`, the default shared one, or ``None`` to
        compute everything afresh.
    progress
        Receives a :class:`~xai_core.progress.ProgressEvent` as stages advance.

    Returns
    -------
    Explanation
        Prediction, freeze-frame predictions and one
        :class:`~xai_core.results.MethodResult` per method.
    """
    request = ExplainRequest.build(model, clip, methods, target=target, options=options,
                                   method_params=method_params, decompose=decompose,
                                   device=device)
    return run(request, cache=cache, progress=progress)


def run(request: ExplainRequest, *, cache: ResultCache | None = DEFAULT_CACHE,
        progress: Progress | None = None) -> Explanation:
    """Compute a request: predictions, then each method (from the cache when stored)."""
    start_time = time.perf_counter()
    cache = resolve_cache(cache)
    tracker = _Tracker(pass_counts(request), progress or ignore)
    timings: dict[str, float] = {}

    tic = time.perf_counter()
    pred_arrays, pred_hit = _predictions(request, cache, tracker)
    timings["predictions"] = time.perf_counter() - tic
    probabilities = pred_arrays["probabilities"]
    target = request.target_for(probabilities)

    results: dict[str, MethodResult] = {}
    for name in request.methods:
        tic = time.perf_counter()
        results[name] = _method_result(request, name, target, cache, tracker)
        timings[f"method:{name}"] = time.perf_counter() - tic
    timings["total"] = time.perf_counter() - start_time
    warnings = [note for method in request.methods.values() for note in method.notes]
    if cache is not None and cache.problem:
        warnings.append(cache.problem)

    model = request.model
    return Explanation(
        model=model.name, weights_hash=model.weights_hash, clip=request.clip,
        frames=request.frames, class_names=list(model.class_names), target=target,
        target_name=model.class_names[target], probabilities=probabilities,
        freeze_frame_probabilities=pred_arrays["freeze_frame_probabilities"],
        methods=results, options=request.options, timings=timings,
        versions=versions(), predictions_cache_hit=pred_hit, warnings=warnings,
    )


def versions() -> dict[str, str]:
    """Versions of the code that produced a result (written into every summary)."""
    out = {"xai_core": __version__, "cache": code_version(), "torch": torch.__version__}
    for lib in ("zennit", "captum"):
        try:
            out[lib] = __import__(lib).__version__
        except Exception:  # not installed / no version: recorded as missing
            out[lib] = "n/a"
    return out


# --------------------------------------------------------------------------- progress
class _Tracker:
    """Turns (method, stage, done, total) into events whose ``overall`` is weighted by the
    model passes each stage runs, so a bar advances with the cost, not with the stages."""

    def __init__(self, counts: PassCounts, report: Progress) -> None:
        self.report = report
        self.weights: dict[tuple[str | None, str], float] = {
            (None, "prediction"): counts.prediction * 0.2,
            (None, "freeze-frame predictions"): counts.prediction * 0.8}
        for name, (full, freeze) in counts.methods.items():
            self.weights[(name, "full")] = full
            self.weights[(name, "freeze frames")] = freeze
            self.weights[(name, "selective")] = 0.0
        self.total = sum(self.weights.values()) or 1.0
        self.finished: set[tuple[str | None, str]] = set()

    def __call__(self, stage: str, done: int, total: int, method: str | None = None) -> None:
        if stage == "cached":  # everything of this method (or the predictions) is done
            self.finished.update(k for k in self.weights if k[0] == method)
            current = 0.0
        else:
            if total > 0 and done >= total:
                self.finished.add((method, stage))
            part = self.weights.get((method, stage), 0.0)
            current = 0.0 if (method, stage) in self.finished or total <= 0 \
                else part * done / total
        overall = (sum(self.weights[k] for k in self.finished) + current) / self.total
        self.report(ProgressEvent(stage, done, total, method, overall))


# --------------------------------------------------------------------------- predictions
def freeze_frame_probabilities(model: LoadedModel, x: torch.Tensor,
                               chunk: int | None = None) -> torch.Tensor:
    """Softmax on each freeze-frame clip of x (1, 3, T, H, W): (T, K).

    Each distinct frame is run once (repeated frames give the same freeze-frame clip);
    ``chunk`` clips per pass, by default as many as the memory budget allows
    (:func:`xai_core.budget.clips_per_pass`).
    """
    return _probabilities(model, x, chunk, with_clip=False)[1]


def _probabilities(model: LoadedModel, x: torch.Tensor, chunk: int | None, with_clip: bool
                   ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Softmax of the freeze-frame clips (T, K) and, ``with_clip``, of the clip itself (K,)
    in the same batched call (no pass of one clip alone): the clip first, then one
    freeze-frame clip per distinct frame — none for a static clip, whose freeze-frame
    clip is the clip."""
    reps, inverse = decomposition.distinct_frames(x)
    reuse = with_clip and len(reps) == 1
    parts = [x] if with_clip else []
    if not reuse:
        parts.append(decomposition.freeze_frame_clips(x, reps))
    probs = class_probabilities(model, torch.cat(parts),
                                chunk or clips_per_pass(model, x, gradients=False))
    own = probs[0] if with_clip else None
    return own, (probs if reuse or not with_clip else probs[1:])[inverse]


def _predictions(request: ExplainRequest, cache: ResultCache | None,
                 tracker: _Tracker) -> tuple[dict[str, np.ndarray], bool]:
    model, x = request.model, request.x
    tracker("prediction", 0, 1)

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        t = x.shape[2]
        tracker("freeze-frame predictions", 0, t)
        probs, ff = _probabilities(model, x, request.options.chunk_size, with_clip=True)
        assert probs is not None
        tracker("prediction", 1, 1)
        tracker("freeze-frame predictions", t, t)
        return {"probabilities": probs.numpy(), "freeze_frame_probabilities": ff.numpy()}, {}

    if cache is None:
        return compute()[0], False
    arrays, _, hit = cache.get_or_compute(request.prediction_key(cache), compute)
    if hit:
        tracker("cached", 1, 1)
    return arrays, hit


# --------------------------------------------------------------------------- methods
def compute_method(method: Method, model: LoadedModel, x: torch.Tensor, target: int,
                   options: DecompositionOptions = DEFAULT_OPTIONS,
                   progress: Progress | None = None, decompose: bool = True) -> MethodResult:
    """Full, discriminative (if ``decompose``) and selective relevance of one method,
    without any cache."""
    report = progress or ignore
    name = method.name

    def step(stage: str, done: int, total: int) -> None:
        report(ProgressEvent(stage, done, total, name))

    return _compute(method, model, x, target, options, step, decompose)


def _compute(method: Method, model: LoadedModel, x: torch.Tensor, target: int,
             options: DecompositionOptions, step: Any, decompose: bool) -> MethodResult:
    """One method's maps. With the split, the clip and its freeze-frame clips are explained
    in one batched call (T + 1 clips, the clip first): a clip explained alone pays
    batch-of-one kernels and the first call's set-up again. ``timings["full"]`` is then
    that joint call and ``timings["freeze_frames"]`` the split's arithmetic."""
    name = method.name
    timings: dict[str, float] = {}

    tic = time.perf_counter()
    step("full", 0, 1)
    reps, _, static = (decomposition.freeze_frame_selection(x, options) if decompose
                       else ([], None, True))
    explained = None
    if decompose and not static:
        t = x.shape[2]

        full_done = False

        def joint(done: int, total: int, _stage: str) -> None:
            # called after each chunk; the clip is in the first: "full" ends with it, then
            # the rest advances "freeze frames" (the stages end in their usual order)
            nonlocal full_done
            if not full_done:
                full_done = True
                step("full", 1, 1)
            step("freeze frames", (done - 1) * t // (total - 1), t)

        batch = torch.cat([x, decomposition.freeze_frame_clips(x, reps)])
        attribution = method.attribute(
            model, batch, target, progress=joint,
            batch_size=decomposition.clips_per_batch(method, model, x, options))
        explained = attribution.relevance[1:]
    else:
        attribution = method.attribute(
            model, x, target, progress=lambda done, total, _s: step("full", done, total))
        step("full", 1, 1)
    full = attribution.relevance[0]
    timings["full"] = time.perf_counter() - tic

    if decompose:
        tic = time.perf_counter()
        if explained is None:
            step("freeze frames", 0, x.shape[2])
        split = decomposition.discriminative(method, model, x, target, full, options,
                                             progress=lambda d, n: step("freeze frames", d, n),
                                             explained=explained)
        timings["freeze_frames"] = time.perf_counter() - tic
        full, spatial, temporal = split.full, split.spatial, split.temporal
        passes = split.freeze_frame_passes
        shares = {"discriminative": decomposition.motion_share_discriminative(spatial, temporal)}
    else:
        full = decomposition.scale_full(full, options)
        spatial = temporal = split = None
        passes = 0
        shares = {}

    tic = time.perf_counter()
    selective, mask = decomposition.selective_for(options, full, x, split)
    timings["selective"] = time.perf_counter() - tic
    step("selective", 1, 1)

    raw = attribution.raw[0].numpy() if attribution.raw is not None else None
    return MethodResult(
        method=name, params=method.key(),
        full=full.numpy(), spatial=None if spatial is None else spatial.numpy(),
        temporal=None if temporal is None else temporal.numpy(), selective=selective.numpy(),
        selective_mask=mask.numpy(), raw=raw,
        motion_share={**shares, "selective": decomposition.motion_share_selective(full, selective)},
        timings=timings, cache_hit=False, freeze_frame_passes=passes,
    )


def _method_result(request: ExplainRequest, name: str, target: int,
                   cache: ResultCache | None, tracker: _Tracker) -> MethodResult:
    method = request.methods[name]
    decompose = request.decomposed(name)

    def step(stage: str, done: int, total: int) -> None:
        tracker(stage, done, total, name)

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        result = _compute(method, request.model, request.x, target, request.options, step,
                          decompose)
        return result.arrays(), result.meta()

    if cache is None:
        arrays, meta = compute()
        hit = False
    else:
        *servers, own = request.method_keys(cache, name, target)
        # read, not just looked up, so what is computed next is never stored under their key
        found = next((f for f in map(cache.get, servers) if f is not None), None)
        if found is not None:
            arrays, meta, hit = *found, True
        else:
            arrays, meta, hit = cache.get_or_compute(own, compute)
    result = MethodResult.from_parts(arrays, meta)
    result.cache_hit = hit
    if hit:
        tracker("cached", 1, 1, name)
    return result
