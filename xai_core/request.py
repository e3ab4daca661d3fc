"""One explanation request, built and validated once, and the cache keys derived from it.

Everything that computes, estimates, caches or shows an explanation works from an
:class:`ExplainRequest`: :func:`xai_core.engine.run` computes it,
:func:`xai_core.estimate.estimate` prices it, the CLI and the evaluation build it from
their arguments, and the dashboard builds it from the sidebar. Its
:meth:`~ExplainRequest.key` is the identity of the whole request (the dashboard's job and
session key), and the per-result cache keys are derived here and nowhere else.

A request holds the model (on the device it computes on), the clip as the normalised
tensor the model sees with its one identity (:func:`xai_core.hashing.tensor_hash`),
validated method instances, the target (an index, or ``None`` for the predicted class),
the decomposition options and the methods that get the freeze-frame split.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cache import ResultCache
from .decompose import DEFAULT_OPTIONS, DecompositionOptions
from .device import resolve_device
from .errors import ParameterError
from .hashing import json_hash, tensor_hash
from .methods.base import Method, get_method
from .models.registry import LoadedModel
from .results import ClipInfo, Explanation
from .selective import depends_on_split
from .video.clip import Clip, load_clip
from .video.preprocess import denormalise

__all__ = ["ExplainRequest", "metrics_key", "model_identity", "prepare_clip"]


def model_identity(model: LoadedModel) -> dict[str, str]:
    """What identifies a model in every key: its weights and its class names."""
    return {"weights": model.weights_hash, "classes": json_hash(list(model.class_names))}


@dataclass(frozen=True, eq=False)
class ExplainRequest:
    """A validated explanation request (build it with :meth:`build`).

    Attributes
    ----------
    model
        The model, on the device the request computes on.
    x
        The clip (1, 3, T, H, W), normalised, on the CPU.
    frames
        The clip's uint8 RGB frames (T, H, W, 3) as the model sees them.
    clip
        Where the clip came from; ``clip.content_hash`` is its one identity.
    methods
        Method instances by name, in the order asked for, parameters validated.
    target
        Class index to explain, or ``None`` for the predicted class.
    options
        How full relevance is split (:class:`~xai_core.decompose.DecompositionOptions`).
    split
        Names of the methods that get the freeze-frame split (spatial and temporal).
    """

    model: LoadedModel
    x: torch.Tensor
    frames: np.ndarray
    clip: ClipInfo
    methods: dict[str, Method]
    target: int | None = None
    options: DecompositionOptions = DEFAULT_OPTIONS
    split: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def build(cls, model: LoadedModel, clip: Any, methods: str | Iterable[str] = ("dtd",), *,
              target: int | str | None = None,
              options: DecompositionOptions = DEFAULT_OPTIONS,
              method_params: Mapping[str, Mapping[str, Any]] | None = None,
              decompose: bool | Iterable[str] = True,
              device: str | torch.device | None = None) -> ExplainRequest:
        """Validate everything before anything is computed.

        Parameters
        ----------
        model
            A :class:`~xai_core.models.registry.LoadedModel`.
        clip
            A :class:`~xai_core.video.clip.Clip`, a video path, uint8 RGB frames
            (T, H, W, 3) at any size, or a normalised tensor (1, 3, T, H, W) / (3, T, H, W).
        methods
            Registry names; one or several, each once.
        target
            Class index or name; ``None`` explains the predicted class.
        options
            Decomposition options.
        method_params
            ``{method: {param: value}}``, validated by each method.
        decompose
            Which methods get the freeze-frame split: ``True`` all, ``False`` none, or
            names.
        device
            ``None`` computes where the model is; another device computes on a copy.
        """
        names = [methods] if isinstance(methods, str) else list(methods)
        if not names:
            raise ParameterError("no method given.", hint="Pass at least one method, e.g. 'dtd'.")
        if len(set(names)) != len(names):
            raise ParameterError(f"a method is listed twice: {names}.",
                                 hint="List each method once.")
        params = dict(method_params or {})
        stray = sorted(set(params) - set(names))
        if stray:
            raise ParameterError(f"parameters given for method(s) {stray} that are not computed.",
                                 hint=f"Computed methods: {', '.join(names)}.")
        instances = {n: get_method(n, **dict(params.get(n, {}))) for n in names}
        for method in instances.values():
            method.check(model)
        split = _split(names, decompose)
        model = _on_device(model, device)
        chosen = None if target is None else model.class_index(target)
        x, frames, info = prepare_clip(model, clip)
        return cls(model, x, frames, info, instances, chosen, options, frozenset(split))

    # ------------------------------------------------------------------ reading
    @property
    def names(self) -> list[str]:
        return list(self.methods)

    @property
    def clip_hash(self) -> str:
        return self.clip.content_hash

    def decomposed(self, name: str) -> bool:
        return name in self.split

    def params(self) -> dict[str, dict[str, Any]]:
        """``{method: validated parameters}``."""
        return {n: dict(m.config) for n, m in self.methods.items()}

    def target_for(self, probabilities: np.ndarray | torch.Tensor) -> int:
        """The class explained, given the clip's class probabilities."""
        if self.target is not None:
            return self.target
        return int(np.argmax(np.asarray(probabilities)))

    def replace(self, **changes: Any) -> ExplainRequest:
        """A copy with some fields changed (e.g. ``split=frozenset()``)."""
        values = {f: getattr(self, f) for f in ("model", "x", "frames", "clip", "methods",
                                                "target", "options", "split")}
        values.update(changes)
        return ExplainRequest(**values)

    # ------------------------------------------------------------------ keys
    def key(self) -> str:
        """Identity of the whole request: the same key means the same explanation."""
        return json_hash({
            "model": model_identity(self.model), "name": self.model.name,
            "clip": self.clip_hash, "source": self.clip.to_dict(),
            "methods": [m.key() for m in self.methods.values()],
            "target": self.target, "options": self.options.key(),
            "split": sorted(self.split)})

    def prediction_key(self, cache: ResultCache) -> str:
        """Cache key of the clip's prediction and freeze-frame predictions."""
        return cache.make_key({"kind": "predictions", "clip": self.clip_hash,
                               **model_identity(self.model)})

    def method_keys(self, cache: ResultCache, name: str, target: int) -> list[str]:
        """Keys whose stored result serves method ``name``, its own key last.

        A result computed with the split has everything a full-only request needs (unless
        the selective variant uses the split), so for a full-only method the decomposed key
        comes first; what is computed is stored under the last key only.
        """
        parts = {"kind": "method", "clip": self.clip_hash, **model_identity(self.model),
                 "method": self.methods[name].key(), "target": int(target),
                 "options": self.options.key()}
        decomposed = cache.make_key(parts)
        if self.decomposed(name):
            return [decomposed]
        own = cache.make_key({**parts, "decomposed": False})
        if depends_on_split(self.options.selective):
            # the split's selective map is not the one a full-only request computes
            return [own]
        return [decomposed, own]


def metrics_key(cache: ResultCache, explanation: Explanation, metric_keys: list[dict],
                seed: int, masks: Mapping[str, str]) -> str:
    """Cache key of metric scores of an explanation (its clip, model, target, options and
    method parameters), the metrics' own keys, the seed and the masks' hashes."""
    return cache.make_key({"kind": "metrics", "clip": explanation.clip.content_hash,
                           "weights": explanation.weights_hash,
                           "classes": json_hash(list(explanation.class_names)),
                           "target": int(explanation.target),
                           "options": explanation.options.key(),
                           "methods": {n: r.params for n, r in explanation.methods.items()},
                           "metrics": metric_keys, "seed": seed, "masks": dict(masks)})


def _split(names: list[str], decompose: bool | Iterable[str]) -> set[str]:
    if isinstance(decompose, bool):
        return set(names) if decompose else set()
    chosen = {decompose} if isinstance(decompose, str) else set(decompose)
    stray = sorted(chosen - set(names))
    if stray:
        raise ParameterError(f"decomposition asked for method(s) {stray} that are not computed.",
                             hint=f"Computed methods: {', '.join(names)}.")
    return chosen


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


# --------------------------------------------------------------------------- clips in
def prepare_clip(model: LoadedModel, clip: Any) -> tuple[torch.Tensor, np.ndarray, ClipInfo]:
    """Turn any accepted clip form into (tensor (1, 3, T, H, W) CPU, frames, ClipInfo)."""
    if isinstance(clip, (str, Path, np.ndarray)):
        clip = load_clip(clip, model.input)
    if isinstance(clip, Clip):
        if clip.input_spec != model.input:
            raise ParameterError("the clip was prepared for another model's input format.",
                                 hint="Load the clip with this model's input spec "
                                      "(load_clip(path, model.input)).")
        x = _as_batch(torch.as_tensor(clip.tensor).detach().to("cpu", torch.float32))
        info = ClipInfo(source=str(clip.source or "clip"), start=int(clip.start),
                        stride=int(clip.stride), indices=[int(i) for i in clip.indices],
                        padded=bool(clip.padded), content_hash=tensor_hash(x))
        return x, np.asarray(clip.frames, dtype=np.uint8), info
    if isinstance(clip, torch.Tensor):
        x = _as_batch(clip.detach().to("cpu", torch.float32))
        t = x.shape[2]
        info = ClipInfo(source="tensor", start=0, stride=1, indices=list(range(t)),
                        padded=False, content_hash=tensor_hash(x))
        return x, denormalise(x[0], model.input), info
    raise ParameterError(f"cannot explain a {type(clip).__name__}.",
                         hint="Pass a video path, a Clip from load_clip, uint8 frames (T, H, W, 3) "
                              "or a normalised tensor (1, 3, T, H, W).")


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 4:
        x = x.unsqueeze(0)
    if x.ndim != 5 or x.shape[:2] != (1, 3):
        raise ParameterError(f"a clip tensor must be (1, 3, T, H, W), got {tuple(x.shape)}.",
                             hint="Explain one clip per call.")
    if x.shape[2] < 1:
        raise ParameterError("the clip has no frames.", hint="Give at least one frame.")
    if not torch.isfinite(x).all():
        raise ParameterError("the clip tensor contains NaN or Inf values.",
                             hint="Check the preprocessing of the frames.")
    return x.contiguous()
