"""How many clips go into one model pass: a count derived from a memory budget.

The batched passes of the engine — the freeze-frame explanations of the discriminative
split (Hiley et al. 2019, :func:`xai_core.decompose.clips_per_batch`) and the predictions
of the clip and its freeze-frame clips — ask :func:`clips_per_pass` instead of using a
fixed count, so a GPU with room explains all T freeze-frame clips in one pass and a small
machine still stays within its memory.

The estimate is deliberately simple:

* **per clip**: the bytes of every layer's output in one forward pass of one clip
  (:func:`activation_bytes`, measured with forward hooks on fake tensors, so nothing is
  computed), times :data:`GRADIENT_FACTOR` when gradients flow (what a backward keeps and
  adds), times the method's own weight (:func:`method_weight`);
* **budget** (:func:`memory_budget`): ``$XAI_MEMORY_BUDGET`` when set, else
  :data:`CUDA_FRACTION` of the GPU's free memory (``torch.cuda.mem_get_info`` plus what
  PyTorch's allocator holds unused), else :data:`CPU_FRACTION` of the available RAM
  (``psutil`` when installed, else ``/proc/meminfo``).

The count never changes a result, only memory and speed (every method explains each clip
of a batch independently); an out-of-memory error on CUDA still halves the chunk
(:meth:`xai_core.methods.base.Method.attribute`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .methods.base import model_guard

if TYPE_CHECKING:
    from .models.registry import LoadedModel

__all__ = ["CPU_FRACTION", "CUDA_FRACTION", "ENV_VAR", "GRADIENT_FACTOR", "MAX_CLIPS",
           "activation_bytes", "clips_per_pass", "memory_budget", "method_weight",
           "parse_bytes"]

log = logging.getLogger(__name__)

#: Environment variable that fixes the budget in bytes (``"512M"``, ``"2G"``, ``"3e9"``).
ENV_VAR = "XAI_MEMORY_BUDGET"
#: Share of the free GPU memory a batch may use (the rest: the model, fragmentation).
CUDA_FRACTION = 0.8
#: Share of the available RAM a batch may use on the CPU (a shared machine keeps half).
CPU_FRACTION = 0.5
#: Budget when the free memory cannot be read (no ``psutil`` nor ``/proc/meminfo``, no
#: CUDA driver).
FALLBACK_BUDGET = 2 * 2**30
#: Peak memory of a forward+backward pass ÷ the activation bytes of its forward.
#: Measured on the bundled small C3D (16×112×112, 70.6 MiB of layer outputs per clip;
#: peak RSS growth per clip at batch 4–8): DTD (zennit) 136–140 MiB (1.9×), gradient
#: 59–67 MiB (0.9×); 3 leaves room for methods that keep more (guided backprop's and
#: LRP's modified copies, allocator slack).
GRADIENT_FACTOR = 3.0
#: Never more clips than this in one pass (the count of a huge budget is not a plan).
MAX_CLIPS = 256
#: ``default_batch_size`` of a method that explains one clip with one backward pass
#: (:class:`xai_core.methods.base.Method`); a method that asks for fewer batches copies of
#: the clip inside (areas, occluded copies) and weighs this many times more per clip.
PLAIN_BATCH = 8

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_measured: weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]] = weakref.WeakKeyDictionary()
_measured_lock = threading.Lock()


def parse_bytes(text: str) -> int:
    """Bytes of ``"512M"``, ``"2G"``, ``"1.5GiB"``, ``"3e9"`` or ``"1048576"`` (binary units).

    Raises
    ------
    ValueError
        When ``text`` is not a positive size.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*",
                     str(text))
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 512M or 2G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def memory_budget(device: torch.device | str = "cpu") -> int:
    """Bytes one batch of passes may use on ``device``.

    ``$XAI_MEMORY_BUDGET`` when set; on CUDA :data:`CUDA_FRACTION` of the free memory
    (the driver's free memory plus what PyTorch's caching allocator reserved and does not
    use); on the CPU :data:`CPU_FRACTION` of the available RAM.
    """
    fixed = os.environ.get(ENV_VAR, "").strip()
    if fixed:
        return parse_bytes(fixed)
    device = torch.device(device)
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        except (RuntimeError, AssertionError) as exc:  # no driver, a lost device ...
            log.info("cannot read free GPU memory (%s); assuming %d bytes", exc,
                     FALLBACK_BUDGET)
            return FALLBACK_BUDGET
        return int(CUDA_FRACTION * (free + max(0, cached)))
    available = _available_ram()
    return FALLBACK_BUDGET if available is None else int(CPU_FRACTION * available)


def _available_ram() -> int | None:
    try:
        import psutil  # optional
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    return None


def activation_bytes(model: LoadedModel, clip_shape: tuple[int, ...]) -> int:
    """Bytes of every layer's output in a forward pass of ONE clip of ``clip_shape``
    (3, T, H, W), as float32 on the device of the model's weights.

    Summed by forward hooks on the leaf modules (each output's numel × element size),
    during a pass on fake tensors (``torch._subclasses.FakeTensorMode``: shapes only,
    nothing computed); a model that fake tensors cannot run is measured on a real
    no-grad pass instead. Memoised per module, shape and device.
    """
    module = model.module
    weight = next(module.parameters(), None)  # where the module really computes
    device = model.device if weight is None else weight.device
    key = (tuple(int(s) for s in clip_shape), str(device))
    with _measured_lock:
        known = _measured.get(module, {}).get(key)
    if known is not None:
        return known
    x = torch.zeros((1, *key[0]), device=device)
    total = _hooked_forward(module, x, fake=True)
    if total is None:
        total = _hooked_forward(module, x, fake=False) or 0
    total += x.numel() * x.element_size()  # the clip itself (and its gradient)
    with _measured_lock:
        _measured.setdefault(module, {})[key] = total
    return total


def _hooked_forward(module: nn.Module, x: torch.Tensor, fake: bool) -> int | None:
    total = 0

    def count(_m: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            outs: Any = (output,)
        elif isinstance(output, dict):  # e.g. a Hugging Face ModelOutput
            outs = output.values()
        else:
            outs = output if isinstance(output, (tuple, list)) else ()
        for t in outs:
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    handles = [m.register_forward_hook(count) for m in module.modules()
               if next(m.children(), None) is None]
    try:
        with model_guard(module), torch.no_grad():
            if fake:
                from torch._subclasses.fake_tensor import FakeTensorMode

                with FakeTensorMode(allow_non_fake_inputs=True) as mode:
                    module(mode.from_tensor(x))
            else:
                module(x)
    except Exception as exc:  # e.g. an op without a fake-tensor kernel: measure for real
        if not fake:
            raise
        log.info("activation size by fake tensors failed (%s); measuring a real pass", exc)
        return None
    finally:
        for h in handles:
            h.remove()
    return total


def method_weight(method: Any) -> float:
    """Memory of explaining one clip with ``method``, in forward+backward passes of it.

    1 for a method that explains a clip with one (modified) backward pass; a method whose
    ``default_batch_size`` is below :data:`PLAIN_BATCH` batches copies of the clip inside
    (extremal perturbation's areas, occlusion's occluded copies) and weighs
    ``PLAIN_BATCH / default_batch_size``.
    """
    own = int(getattr(method, "default_batch_size", PLAIN_BATCH) or PLAIN_BATCH)
    return max(1.0, PLAIN_BATCH / max(1, own))


def clips_per_pass(model: LoadedModel, x: torch.Tensor | tuple[int, ...], *,
                   gradients: bool = True, weight: float = 1.0,
                   budget: int | None = None) -> int:
    """How many clips fit in one pass under the memory budget (at least 1).

    Parameters
    ----------
    model
        The model the passes run through (its device picks the budget).
    x
        A clip or batch (…, 3, T, H, W), or the shape of one clip (3, T, H, W).
    gradients
        Whether the pass computes input gradients (×:data:`GRADIENT_FACTOR`) or is a
        forward only (predictions).
    weight
        The method's memory per clip in passes (:func:`method_weight`).
    budget
        Bytes; ``None`` asks :func:`memory_budget` of the model's device.

    Returns
    -------
    int
        ``budget // (activation bytes × factor × weight)``, between 1 and :data:`MAX_CLIPS`.
    """
    shape = tuple(x.shape[-4:]) if isinstance(x, torch.Tensor) else tuple(x)[-4:]
    per_clip = activation_bytes(model, shape) * (GRADIENT_FACTOR if gradients else 1.0) * weight
    available = memory_budget(model.device) if budget is None else int(budget)
    return int(min(MAX_CLIPS, max(1, math.floor(available / max(per_clip, 1.0)))))
