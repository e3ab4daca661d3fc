"""``explain``: one call from a model and a clip to decomposed explanations.

For each requested method the engine computes the full explanation, the discriminative
(freeze-frame) split and the selective map (:mod:`xai_core.decompose`), through the
method contract only; the model's prediction and its predictions on every freeze-frame
clip are recorded beside them. Every stage is timed and reported to a progress
callback, and every result goes through the content-addressed cache
(:mod:`xai_core.cache`), so the CLI, the API and the dashboard share computations.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .cache import ResultCache, code_version, default_cache
from .decompose import (
    DEFAULT_OPTIONS,
    DecompositionOptions,
    discriminative,
    distinct_frames,
    freeze_frame_clips,
    motion_share_discriminative,
    motion_share_selective,
    scale_full,
    selective_relevance,
)
from .device import resolve_device
from .errors import ParameterError
from .methods.base import Method, get_method, model_guard
from .models.registry import LoadedModel
from .results import ClipInfo, Explanation, MethodResult

#: progress(stage, done, total): ``stage`` names what runs ("prediction",
#: "freeze-frame predictions", "<method>: full", "<method>: freeze frames",
#: "<method>: selective"); ``done``/``total`` count its steps.
Progress = Callable[[str, int, int], None]

#: Default of ``explain(cache=...)``: the process-wide :func:`~xai_core.cache.default_cache`.
DEFAULT_CACHE: Any = object()

#: Freeze-frame clips per forward pass when predicting (no gradients: cheap in memory).
PREDICTION_CHUNK = 8


def explain(model: LoadedModel, clip: Any, methods: str | Iterable[str] = ("dtd",), *,
            target: int | str | None = None,
            options: DecompositionOptions = DEFAULT_OPTIONS,
            method_params: Mapping[str, Mapping[str, Any]] | None = None,
            decompose: bool | Iterable[str] = True,
            device: str | torch.device | None = None,
            cache: ResultCache | None = DEFAULT_CACHE,
            progress: Progress | None = None) -> Explanation:
    """Explain a clip with one or more methods, decomposed into spatial and temporal parts.

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
        (:func:`xai_core.estimate.estimate_cost` says what it would cost).
    device
        ``None`` computes where the model is; another device computes on a copy of it.
    cache
        A :class:`~xai_core.cache.ResultCache`, the default shared one, or ``None`` to
        compute everything afresh.
    progress
        ``progress(stage, done, total)`` called as stages advance.

    Returns
    -------
    Explanation
        Prediction, freeze-frame predictions and one
        :class:`~xai_core.results.MethodResult` per method.
    """
    start_time = time.perf_counter()
    names = [methods] if isinstance(methods, str) else list(methods)
    if not names:
        raise ParameterError("no method given", hint="Pass at least one method, e.g. 'dtd'.")
    if len(set(names)) != len(names):
        raise ParameterError(f"a method is listed twice: {names}", hint="List each method once.")
    params = dict(method_params or {})
    stray = sorted(set(params) - set(names))
    if stray:
        raise ParameterError(f"parameters given for method(s) {stray} that are not computed",
                             hint=f"Computed methods: {', '.join(names)}.")
    instances = {n: get_method(n, **dict(params.get(n, {}))) for n in names}
    for method in instances.values():
        method.check(model)
    split = decomposed_methods(names, decompose)
    model = _on_device(model, device)
    if cache is DEFAULT_CACHE:
        cache = default_cache()
    report = progress or (lambda stage, done, total: None)

    chosen = None if target is None else model.class_index(target)  # fail before computing
    x, frames, info = prepare_clip(model, clip)
    clip_hash = tensor_hash(x)
    timings: dict[str, float] = {}

    tic = time.perf_counter()
    report("prediction", 0, 1)
    pred_arrays, pred_hit = _predictions(model, x, clip_hash, options, cache, report)
    timings["predictions"] = time.perf_counter() - tic
    probabilities = pred_arrays["probabilities"]
    target_index = int(np.argmax(probabilities)) if chosen is None else chosen

    results: dict[str, MethodResult] = {}
    for name, method in instances.items():
        tic = time.perf_counter()
        results[name] = _method_result(method, model, x, target_index, options, clip_hash,
                                       cache, report, name in split)
        timings[f"method:{name}"] = time.perf_counter() - tic
    timings["total"] = time.perf_counter() - start_time
    warnings = [note for method in instances.values() for note in getattr(method, "notes", [])]
    if cache is not None and getattr(cache, "problem", None):
        warnings.append(cache.problem)

    return Explanation(
        model=model.name, weights_hash=model.weights_hash, clip=info, frames=frames,
        class_names=list(model.class_names), target=target_index,
        target_name=model.class_names[target_index], probabilities=probabilities,
        freeze_frame_probabilities=pred_arrays["freeze_frame_probabilities"],
        methods=results, options=options, timings=timings,
        versions=versions(), predictions_cache_hit=pred_hit, warnings=warnings,
    )


def decomposed_methods(names: list[str], decompose: bool | Iterable[str]) -> set[str]:
    """The methods of ``names`` that get the freeze-frame split (``explain(decompose=)``)."""
    if isinstance(decompose, bool):
        return set(names) if decompose else set()
    chosen = {decompose} if isinstance(decompose, str) else set(decompose)
    stray = sorted(chosen - set(names))
    if stray:
        raise ParameterError(f"decomposition asked for method(s) {stray} that are not computed",
                             hint=f"Computed methods: {', '.join(names)}.")
    return chosen


# --------------------------------------------------------------------------- inputs
def prepare_clip(model: LoadedModel, clip: Any) -> tuple[torch.Tensor, np.ndarray, ClipInfo]:
    """Turn any accepted clip form into (tensor (1, 3, T, H, W) CPU, frames, ClipInfo)."""
    from .video.preprocess import denormalise

    if isinstance(clip, (str, Path)):
        clip = _load_clip(clip, model)
    if hasattr(clip, "tensor") and hasattr(clip, "frames"):  # a video.clip.Clip
        x = torch.as_tensor(clip.tensor).detach().to("cpu", torch.float32)
        frames = np.asarray(clip.frames, dtype=np.uint8)
        spec = getattr(clip, "input_spec", None)
        if spec is not None and spec != model.input:
            raise ParameterError("the clip was prepared for another model's input format",
                                 hint="Load the clip with this model's input spec "
                                      "(load_clip(path, model.input)).")
        x = _as_batch(x)
        info = ClipInfo(
            source=str(getattr(clip, "source", "") or "clip"),
            start=int(getattr(clip, "start", 0) or 0),
            stride=int(getattr(clip, "stride", 1) or 1),
            indices=[int(i) for i in getattr(clip, "indices", range(x.shape[2]))],
            padded=bool(getattr(clip, "padded", False)),
            content_hash=str(getattr(clip, "content_hash", "") or tensor_hash(x)),
        )
        return x, frames, info
    if isinstance(clip, torch.Tensor):
        x = _as_batch(clip.detach().to("cpu", torch.float32))
        frames = denormalise(x[0], model.input)
        return x, frames, _array_info(x, "tensor")
    if isinstance(clip, np.ndarray):
        from .video.clip import load_clip

        return prepare_clip(model, load_clip(clip, model.input))
    raise ParameterError(f"cannot explain a {type(clip).__name__}",
                         hint="Pass a video path, a Clip from load_clip, uint8 frames (T, H, W, 3) "
                              "or a normalised tensor (1, 3, T, H, W).")


def _load_clip(path: str | Path, model: LoadedModel) -> Any:
    from .video.clip import load_clip  # reads with decord/OpenCV: imported on use

    return load_clip(path, model.input)


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 4:
        x = x.unsqueeze(0)
    if x.ndim != 5 or x.shape[:2] != (1, 3):
        raise ParameterError(f"a clip tensor must be (1, 3, T, H, W), got {tuple(x.shape)}",
                             hint="Explain one clip per call.")
    if x.shape[2] < 1:
        raise ParameterError("the clip has no frames", hint="Give at least one frame.")
    if not torch.isfinite(x).all():
        raise ParameterError("the clip tensor contains NaN or Inf values",
                             hint="Check the preprocessing of the frames.")
    return x.contiguous()


def _array_info(x: torch.Tensor, source: str) -> ClipInfo:
    t = x.shape[2]
    return ClipInfo(source=source, start=0, stride=1, indices=list(range(t)), padded=False,
                    content_hash=tensor_hash(x))


def tensor_hash(x: torch.Tensor) -> str:
    """sha256 of a tensor's shape, dtype and values: the clip part of every cache key."""
    t = x.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{tuple(t.shape)}{t.dtype}".encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()


def _on_device(model: LoadedModel, device: str | torch.device | None) -> LoadedModel:
    """The model itself when it is on ``device``; else a copy there (the user's stays put)."""
    if device is None:
        return model
    dev = resolve_device(device)
    if dev == model.device or (dev.type == model.device.type == "cuda"
                               and dev.index in (None, model.device.index)):
        return model
    module = copy.deepcopy(model.module).to(dev)
    return LoadedModel(module, model.spec, list(model.class_names), model.weights_hash,
                       model.name, dev)


def versions() -> dict[str, str]:
    """Versions of the code that produced a result (written into every summary)."""
    out = {"xai_core": __version__, "cache": code_version(), "torch": torch.__version__}
    for lib in ("zennit", "captum"):
        try:
            out[lib] = __import__(lib).__version__
        except Exception:  # not installed / no version: recorded as missing
            out[lib] = "n/a"
    return out


# --------------------------------------------------------------------------- predictions
def predict_probabilities(model: LoadedModel, clips: torch.Tensor,
                          chunk: int = PREDICTION_CHUNK) -> torch.Tensor:
    """Softmax of the model on clips (N, 3, T, H, W), in no-grad batches; (N, K) CPU."""
    out = []
    with model_guard(model.module), torch.no_grad():
        for i in range(0, clips.shape[0], chunk):
            logits = model.module(clips[i : i + chunk].to(model.device, torch.float32))
            out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out)


def freeze_frame_probabilities(model: LoadedModel, x: torch.Tensor,
                               chunk: int = PREDICTION_CHUNK) -> torch.Tensor:
    """Softmax on each freeze-frame clip of x (1, 3, T, H, W): (T, K).

    Each distinct frame is run once (repeated frames give the same freeze-frame clip).
    """
    reps, inverse = distinct_frames(x)
    probs = predict_probabilities(model, freeze_frame_clips(x, reps), chunk)
    return probs[inverse]


def predictions_cache_key(cache: ResultCache, model: LoadedModel, clip_hash: str) -> str:
    """The cache key of a clip's prediction and freeze-frame predictions."""
    return cache.make_key({"kind": "predictions", "clip": clip_hash,
                           "weights": model.weights_hash})


def _predictions(model: LoadedModel, x: torch.Tensor, clip_hash: str,
                 options: DecompositionOptions, cache: ResultCache | None,
                 report: Progress) -> tuple[dict[str, np.ndarray], bool]:
    def compute() -> tuple[dict[str, np.ndarray], dict]:
        probs = predict_probabilities(model, x)[0]
        report("prediction", 1, 1)
        t = x.shape[2]
        report("freeze-frame predictions", 0, t)
        ff = freeze_frame_probabilities(model, x, options.chunk_size or PREDICTION_CHUNK)
        report("freeze-frame predictions", t, t)
        return {"probabilities": probs.numpy(), "freeze_frame_probabilities": ff.numpy()}, {}

    if cache is None:
        return compute()[0], False
    key = predictions_cache_key(cache, model, clip_hash)
    arrays, _, hit = cache.get_or_compute(key, compute)
    if hit:
        report("prediction", 1, 1)
    return arrays, hit


# --------------------------------------------------------------------------- methods
def method_cache_key(cache: ResultCache, method: Method, model: LoadedModel, clip_hash: str,
                     target: int, options: DecompositionOptions, decompose: bool = True) -> str:
    """The cache key of one method's explanation (decomposed, or full and selective only)."""
    parts = {"kind": "method", "clip": clip_hash, "weights": model.weights_hash,
             "method": method.key(), "target": int(target), "options": options.key()}
    if not decompose:
        parts["decomposed"] = False  # absent for decomposed results: their keys are unchanged
    return cache.make_key(parts)


def compute_method(method: Method, model: LoadedModel, x: torch.Tensor, target: int,
                   options: DecompositionOptions = DEFAULT_OPTIONS,
                   progress: Progress | None = None, decompose: bool = True) -> MethodResult:
    """Full, discriminative (if ``decompose``) and selective relevance of one method,
    without any cache."""
    report = progress or (lambda stage, done, total: None)
    name = method.name
    timings: dict[str, float] = {}

    tic = time.perf_counter()
    report(f"{name}: full", 0, 1)

    def inner(done: int, total: int, _stage: str) -> None:
        report(f"{name}: full", done, total)

    attribution = method.attribute(model, x, target, progress=inner)
    full = attribution.relevance[0]
    report(f"{name}: full", 1, 1)
    timings["full"] = time.perf_counter() - tic

    if decompose:
        tic = time.perf_counter()
        report(f"{name}: freeze frames", 0, x.shape[2])
        split = discriminative(method, model, x, target, full, options,
                               progress=lambda d, n: report(f"{name}: freeze frames", d, n))
        timings["freeze_frames"] = time.perf_counter() - tic
        full, spatial, temporal = split.full, split.spatial, split.temporal
        passes = split.freeze_frame_passes
        shares = {"discriminative": motion_share_discriminative(spatial, temporal)}
    else:
        full = scale_full(full, options)
        spatial = temporal = None
        passes = 0
        shares = {}

    tic = time.perf_counter()
    selective, mask = selective_relevance(full, options.sigma, options.sobel_border)
    timings["selective"] = time.perf_counter() - tic
    report(f"{name}: selective", 1, 1)

    raw = attribution.raw[0].numpy() if attribution.raw is not None else None
    return MethodResult(
        method=name, params=method.key(),
        full=full.numpy(), spatial=None if spatial is None else spatial.numpy(),
        temporal=None if temporal is None else temporal.numpy(), selective=selective.numpy(),
        selective_mask=mask.numpy(), raw=raw,
        motion_share={**shares, "selective": motion_share_selective(full, selective)},
        timings=timings, cache_hit=False, freeze_frame_passes=passes,
    )


def _method_result(method: Method, model: LoadedModel, x: torch.Tensor, target: int,
                   options: DecompositionOptions, clip_hash: str, cache: ResultCache | None,
                   report: Progress, decompose: bool = True) -> MethodResult:
    if cache is None:
        return compute_method(method, model, x, target, options, report, decompose)

    def compute() -> tuple[dict[str, np.ndarray], dict]:
        result = compute_method(method, model, x, target, options, report, decompose)
        return result.arrays(), result.meta()

    found = None
    if not decompose:
        # a decomposed result already stored has everything asked for (and more); read,
        # not just looked up, so what is computed next is never stored under its key
        found = cache.get(method_cache_key(cache, method, model, clip_hash, target, options))
    if found is not None:
        arrays, meta, hit = *found, True
    else:
        key = method_cache_key(cache, method, model, clip_hash, target, options, decompose)
        arrays, meta, hit = cache.get_or_compute(key, compute)
    result = MethodResult.from_parts(arrays, meta)
    result.cache_hit = hit
    if hit:
        report(f"{method.name}: cached", 1, 1)
    return result
