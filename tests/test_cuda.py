"""On a CUDA GPU: methods give the CPU's results, stay on the device, batch the split.

Skipped without CUDA (``pytest -m cuda``; ``benchmarks/gpu.sh`` runs them on a GPU
machine). TF32 is switched off while they run, so CPU and GPU compute in float32 alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import torch
from helpers import CHEAP_PARAMS, counting
from torch.utils._python_dispatch import TorchDispatchMode

from xai_core.budget import memory_budget
from xai_core.decompose import DecompositionOptions, discriminative
from xai_core.engine import explain
from xai_core.methods.base import get_method, model_guard
from xai_core.models.registry import LoadedModel, load_model
from xai_core.predict import class_probabilities
from xai_core.video.clip import load_clip

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CLIP = os.path.join(os.path.dirname(__file__), "..", "sample_videos", "move_right.mp4")
#: Methods whose every pass is on the device (the optimisations check convergence on
#: the host by design, and occlusion's CPU reference is slow).
ON_DEVICE = ["gradient", "input-x-gradient", "guided-backprop", "gradcam", "saliency-tubes",
             "guided-gradcam", "dtd", "lrp-epsilon", "lrp-epsilon-gamma-box",
             "integrated-gradients", "smoothgrad"]
aten = torch.ops.aten


class DeviceCopies(TorchDispatchMode):
    """Records every copy of a CUDA tensor to the CPU (its element count) and every
    host read of a CUDA scalar (``.item()``, ``bool(t)``, a sync each)."""

    def __init__(self) -> None:
        super().__init__()
        self.to_cpu: list[int] = []
        self.scalar_reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is aten._local_scalar_dense.default and args[0].is_cuda:
            self.scalar_reads += 1
        elif func is aten._to_copy.default and args[0].is_cuda and not out.is_cuda:
            self.to_cpu.append(args[0].numel())
        elif func is aten.copy_.default and args[1].is_cuda and not args[0].is_cuda:
            self.to_cpu.append(args[1].numel())
        return out


@pytest.fixture(autouse=True)
def float32_everywhere() -> Iterator[None]:
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(scope="module")
def models() -> dict[str, LoadedModel]:
    return {"cpu": load_model("motion", device="cpu"), "cuda": load_model("motion", device="cuda")}


@pytest.fixture(scope="module")
def clip(models) -> torch.Tensor:
    return torch.as_tensor(load_clip(CLIP, models["cpu"].input).tensor)


def _close(gpu: torch.Tensor, cpu: torch.Tensor, what: str) -> None:
    scale = float(cpu.abs().max()) or 1.0
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4 * scale, msg=what)


@pytest.mark.parametrize("name", ON_DEVICE)
def test_method_on_cuda_equals_cpu_and_never_copies_to_the_host(models, clip, name):
    method = get_method(name, **CHEAP_PARAMS.get(name, {}))
    target = int(class_probabilities(models["cpu"], clip)[0].argmax())
    cpu = method.attribute(models["cpu"], clip, target)
    gpu = models["cuda"]
    x, t = clip.to(gpu.device), torch.tensor([target], device=gpu.device)
    with model_guard(gpu.module), DeviceCopies() as seen:  # before the one copy back
        out = method._attribute(gpu, x, t)
    assert out.relevance.is_cuda, f"{name} returned relevance on the CPU"
    assert seen.to_cpu == [], f"{name} copied tensors of {seen.to_cpu} elements to the CPU"
    _report(name, seen.scalar_reads)
    _close(method.attribute(gpu, clip, target).relevance, cpu.relevance, name)


def test_freeze_frame_split_is_one_batch_with_one_copy_back(models, clip):
    method, gpu = get_method("dtd"), models["cuda"]
    target = int(class_probabilities(gpu, clip)[0].argmax())
    full = method.attribute(gpu, clip, target).relevance[0]
    method, sizes = counting(method)
    t = clip.shape[2]
    with DeviceCopies() as seen:
        split = discriminative(method, gpu, clip, target, full,
                               DecompositionOptions(reuse_identical=False))
    assert sizes == [t]  # all T freeze-frame clips in one pass
    assert len(seen.to_cpu) <= 2  # relevance (and raw) once, not per clip
    reference = discriminative(get_method("dtd"), models["cpu"], clip, target,
                               full.cpu(), DecompositionOptions(reuse_identical=False))
    _close(split.spatial, reference.spatial, "spatial")


def test_explain_on_cuda_equals_cpu(models, clip):
    on = {dev: explain(m, clip, ["dtd", "gradient"], cache=None) for dev, m in models.items()}
    assert on["cuda"].target == on["cpu"].target
    for name in ("dtd", "gradient"):
        for part in ("full", "spatial", "temporal"):
            _close(torch.from_numpy(getattr(on["cuda"][name], part)),
                   torch.from_numpy(getattr(on["cpu"][name], part)), f"{name} {part}")


def test_budget_is_the_free_gpu_memory():
    free, total = torch.cuda.mem_get_info()
    assert 0 < memory_budget("cuda") <= total


def _report(name: str, scalar_reads: int) -> None:
    """Host reads of GPU scalars per method, for gpu.sh's record (``$XAI_CUDA_REPORT``)."""
    path = os.environ.get("XAI_CUDA_REPORT")
    if not path:
        return
    data = json.loads(open(path).read()) if os.path.exists(path) else {}
    data[name] = {"scalar_reads_per_clip": scalar_reads}
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
