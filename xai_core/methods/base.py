"""The one contract every attribution method follows, and the registry of methods.

A method takes a :class:`~xai_core.models.registry.LoadedModel`, a batch of normalised
clips ``x`` (B, 3, T, H, W) and one target class per clip, and returns **signed**
relevance on the clip's grid: (B, T, H, W) channel-summed, plus the raw (B, C, T, H, W)
where the method has one. Decompositions (freeze-frame, selective) only ever call this
contract, so every method gets full / spatial / temporal / selective for free.

A new method is a few lines: subclass :class:`Method`, set the class attributes, write
``_attribute`` for one chunk, and decorate with :func:`register_method`. Batching into
chunks, out-of-memory retries, the no-gradient-to-weights guard, restoring the model and
NaN/Inf detection live here, once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from ..errors import MethodError, ParameterError
from ..models.registry import LoadedModel
from ..registry import Configurable, Param, Registry

__all__ = ["METHODS", "Attribution", "Method", "Param", "get_method", "list_methods",
           "model_guard", "module_lock", "register_method"]

log = logging.getLogger(__name__)

#: progress(done, total, stage) — called by long computations.
ProgressFn = Callable[[int, int, str], None]


class Attribution(NamedTuple):
    """Output of a method for a batch: signed relevance in the method's own units."""

    relevance: torch.Tensor  # (B, T, H, W) float32, CPU
    raw: torch.Tensor | None  # (B, C, T, H, W) float32, CPU, or None


class Method(Configurable, ABC):
    """Base class of attribution methods.

    Class attributes
    ----------------
    name
        Registry key, e.g. ``"dtd"``.
    description
        One line for ``python -m xai_core methods`` and the UI.
    family
        ``"lrp"``, ``"gradient"``, ``"cam"``, ``"occlusion"`` or ``"perturbation"``.
    reference
        The paper the method follows.
    params
        Its parameters as :class:`Param` (validated on construction).
    has_raw
        Whether a per-channel (C, T, H, W) map exists.
    default_batch_size
        Clips per pass; the freeze-frame decomposition sends T clips in chunks of this.
    stops_early
        Whether :meth:`cost_passes` is a maximum the method usually stays under
        (optimisations with early stopping), so time estimates say "at most".
    """

    kind: ClassVar[str] = "method"
    description: ClassVar[str] = ""
    family: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    has_raw: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 8
    stops_early: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        #: What the user should be told about computations of this instance (e.g. that
        #: it fell back to the CPU); the engine copies these into the result.
        self.notes: list[str] = []

    # ----------------------------------------------------------------- subclass API
    def check(self, model: LoadedModel) -> None:  # noqa: B027 - optional hook, default: any model
        """Raise :class:`MethodError` when the method cannot explain this model."""

    @abstractmethod
    def _attribute(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor,
                   progress: ProgressFn | None = None) -> Attribution:
        """Explain one chunk: ``x`` (B, 3, T, H, W) on the model's device, ``target`` (B,)."""

    def cost_passes(self, clip: tuple[int, ...] | None = None) -> int:
        """Forward+backward passes through the model per explained clip (for time estimates).

        ``clip`` is the (T, H, W) of the model's input (``None``: a nominal 16×112×112),
        for methods whose count depends on it (occlusion's window positions). The UI
        multiplies this by a measured pass time before starting long work (e.g. a
        freeze-frame decomposition runs the method on T + 1 clips). Optimisation-based
        methods override it.
        """
        return 1

    # ----------------------------------------------------------------- public API
    def attribute(self, model: LoadedModel, x: torch.Tensor, target: int | torch.Tensor, *,
                  batch_size: int | None = None, progress: ProgressFn | None = None) -> Attribution:
        """Explain a batch of clips, in chunks, leaving the model exactly as it was.

        Parameters
        ----------
        model
            The loaded model.
        x
            (B, 3, T, H, W) normalised clips (any device; moved to the model's).
        target
            One class index for all clips, or a (B,) tensor.
        batch_size
            Clips per pass (default: the method's ``default_batch_size``). On CUDA
            out-of-memory the chunk is halved and retried; when even one clip does not
            fit, the model is moved to the CPU for the rest of the call and back after,
            and :attr:`notes` says so.
        """
        self.check(model)
        if x.ndim != 5 or x.shape[1] != 3:
            raise ParameterError(f"clips must be (B, 3, T, H, W), got {tuple(x.shape)}")
        b = x.shape[0]
        if isinstance(target, int):
            target = torch.full((b,), target, dtype=torch.long)
        target = torch.as_tensor(target, dtype=torch.long).reshape(-1)
        if target.numel() == 1 and b > 1:
            target = target.expand(b)
        if target.numel() != b:
            raise ParameterError(f"{target.numel()} targets for {b} clips")
        if (target < 0).any() or (target >= model.num_classes).any():
            raise ParameterError(f"target class out of range 0..{model.num_classes - 1}")
        chunk = max(1, batch_size or self.default_batch_size)
        rel, raw = [], []
        done = 0
        with model_guard(model.module), contextlib.ExitStack() as stack:
            while done < b:
                n = min(chunk, b - done)
                xs = x[done : done + n].to(model.device, torch.float32)
                ts = target[done : done + n].to(model.device)
                try:
                    out = self._attribute(model, xs, ts, progress=None if b > 1 else progress)
                except torch.OutOfMemoryError:
                    del xs, ts
                    if model.device.type == "cuda":
                        torch.cuda.empty_cache()
                    if n > 1:
                        chunk = max(1, n // 2)
                        log.info("%s: out of GPU memory with %d clips per pass; retrying with %d",
                                 self.name, n, chunk)
                        continue
                    if model.device.type == "cpu":
                        raise MethodError(f"{self.name} ran out of memory even for one clip",
                                          hint="Use a shorter clip, a smaller model or another "
                                               "method.") from None
                    model = stack.enter_context(_moved_to_cpu(model))
                    note = (f"{self.name} ran out of GPU memory even for one clip and was "
                            "computed on the CPU instead (slower).")
                    log.warning("%s", note)
                    if note not in self.notes:  # said once, however many calls fell back
                        self.notes.append(note)
                    continue
                rel.append(_checked(out.relevance, self.name, "relevance"))
                if out.raw is not None:
                    raw.append(_checked(out.raw, self.name, "raw relevance"))
                done += n
                if progress is not None and b > 1:
                    progress(done, b, self.name)
        relevance = torch.cat(rel)
        if relevance.shape != (b, *x.shape[2:]):
            raise MethodError(
                f"{self.name} returned relevance of shape {tuple(relevance.shape)}, "
                f"expected {(b, *x.shape[2:])}")
        return Attribution(relevance, torch.cat(raw) if raw else None)



def _checked(t: torch.Tensor, method: str, what: str) -> torch.Tensor:
    t = t.detach().to("cpu", torch.float32)
    if not torch.isfinite(t).all():
        # counted in the first affected clip: the count does not depend on the batching
        per_clip = (~torch.isfinite(t)).flatten(1).sum(1) if t.ndim > 1 else None
        if per_clip is None or len(per_clip) == 1:
            where = ""
            bad = int((~torch.isfinite(t)).sum())
        else:
            affected = per_clip.nonzero().flatten()
            bad = int(per_clip[affected[0]])
            where = (f" of one clip ({len(affected)} of the {len(per_clip)} clips of the pass "
                     "affected)")
        raise MethodError(f"{method} produced {bad} NaN/Inf values in its {what}{where}",
                          hint="The model or the method is numerically unstable on this clip; "
                               "try another method or check the model.")
    return t


# Methods attach hooks and rule contexts to the module and model_guard flips its flags:
# two threads computing on one module at once would see each other's hooks (wrong
# relevance) and restore each other's flags. One computation per module at a time.
_module_locks: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = (
    weakref.WeakKeyDictionary())
_module_locks_guard = threading.Lock()


def module_lock(module: nn.Module) -> threading.RLock:
    """The (re-entrant) lock that serialises computations on ``module``."""
    with _module_locks_guard:
        lock = _module_locks.get(module)
        if lock is None:
            lock = _module_locks[module] = threading.RLock()
        return lock


@contextlib.contextmanager
def _moved_to_cpu(model: LoadedModel) -> Iterator[LoadedModel]:
    """The model on the CPU for a while (its GPU ran out of memory); moved back afterwards.

    Moved rather than copied: a copy would first need GPU memory. The caller holds the
    module's lock, so no other computation sees it on the CPU.
    """
    model.module.to("cpu")
    try:
        yield dataclasses.replace(model, device=torch.device("cpu"))
    finally:
        model.module.to(model.device)


@contextlib.contextmanager
def model_guard(module: nn.Module) -> Iterator[nn.Module]:
    """Run with the model in eval mode and no gradients to its weights; restore both after.

    Gradients flow only to the input (faster, and no ``.grad`` is left on the user's
    parameters); the training flag of every submodule and ``requires_grad`` of every
    parameter are put back exactly as they were, even if the method raises. Holds
    :func:`module_lock` throughout, so concurrent callers on one module take turns.
    """
    with module_lock(module), _guarded(module):
        yield module


@contextlib.contextmanager
def _guarded(module: nn.Module) -> Iterator[nn.Module]:
    modes = {m: m.training for m in module.modules()}
    flags = {p: p.requires_grad for p in module.parameters()}
    grads = {p: p.grad for p in module.parameters()}
    try:
        module.eval()
        for p in flags:
            p.requires_grad_(False)
        yield module
    finally:
        for m, mode in modes.items():
            m.training = mode
        for p, flag in flags.items():
            p.requires_grad_(flag)
            p.grad = grads[p]


# --------------------------------------------------------------------------- registry
#: Every method by name; one module per family registers its methods on import.
METHODS: Registry[type[Method]] = Registry("method", modules=tuple(
    f"xai_core.methods.{family}" for family in ("lrp", "gradients", "cam", "occlusion",
                                                "perturbation")))

#: Class decorator: make a method available by its ``name``.
register_method = METHODS.register


def get_method(name: str, **params: Any) -> Method:
    """Instantiate a registered method with validated parameters."""
    return METHODS[name](**params)


def list_methods() -> list[type[Method]]:
    return list(METHODS.values())
