"""The bad-input catalogue (issue 7), faults: the cache's disk full or its folder unusable,
the GPU out of memory (see test_bad_input_video.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CHEAP, GradientTimesInput, run_cli
from video_files import FullDiskWriter

from xai_core import cache as cache_mod
from xai_core.cache import ResultCache
from xai_core.engine import explain
from xai_core.methods.base import METHODS, get_method
from xai_core.models.registry import load_model
from xai_core.synthetic.world import render_clip
from xai_core.video import load_clip

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cache_disk_full_leaves_no_file_and_memory_still_serves(tmp_path, monkeypatch, caplog):
    import diskcache.core

    cache = ResultCache(tmp_path / "cache")
    started: list[Path] = []
    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        if "x" not in mode:
            return fh
        started.append(Path(path))
        return FullDiskWriter(fh, keep=64)  # writes a little, then the disk is full

    monkeypatch.setattr(diskcache.core, "open", full_disk_open, raising=False)
    calls = []

    def compute():
        calls.append(1)
        return {"full": np.ones((2, 3, 3), np.float32)}, {"m": 1}

    key = cache.make_key({"x": "disk full"})
    with caplog.at_level("WARNING", logger="xai_core.cache"):
        arrays, _, hit = cache.get_or_compute(key, compute)
    assert not hit and started  # a value file was begun ...
    assert not any(p.exists() for p in started)  # ... and removed, not left half-written
    assert list((tmp_path / "cache").rglob("*.val")) == []
    assert any("No space left" in r.getMessage() for r in caplog.records)
    again, _, hit = cache.get_or_compute(key, compute)
    assert hit and calls == [1]  # memory still serves it
    np.testing.assert_array_equal(again["full"], arrays["full"])


def test_unusable_cache_folder_is_said_in_the_result_and_by_the_cli(tiny, world, capfd,
                                                                    tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache folder should be")  # even root cannot mkdir
    cache = ResultCache(blocker / "cache")
    assert not cache.on_disk
    exp = explain(tiny, world.clip, CHEAP, cache=cache)
    assert any("memory only" in w for w in exp.warnings)
    assert exp.summary()["warnings"] == exp.warnings
    monkeypatch.setattr(cache_mod, "_default", cache)
    code, _, err = run_cli(capfd, ["explain", world.clip, *world.own(), "--method", CHEAP,
                                   "--out", tmp_path / "out", "--no-previews"])
    assert code == 0 and "warning: The result cache folder" in err and "memory only" in err


class OOMGradient(GradientTimesInput):
    """Gradient × input that runs out of "GPU" memory: above ``max_batch`` clips, and
    whenever the model is on CUDA when ``cuda_oom`` (no GPU here: simulated)."""

    name = "test-oom-gradient"
    description = "gradient × input that runs out of memory (test)"
    family = "gradient"
    default_batch_size = 4
    max_batch = 1
    cuda_oom = False
    seen: list = []

    def _attribute(self, model, x, target, progress=None):
        type(self).seen.append((model.device.type, x.shape[0]))
        if x.shape[0] > self.max_batch or (self.cuda_oom and model.device.type == "cuda"):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return super()._attribute(model, x, target, progress)


@pytest.fixture
def oom_method(monkeypatch):
    monkeypatch.setitem(METHODS, OOMGradient.name, OOMGradient)
    monkeypatch.setattr(OOMGradient, "seen", [])
    return OOMGradient


def test_out_of_memory_halves_the_batch_and_gives_the_same_answer(tiny, oom_method):
    x = load_clip(render_clip(2, label=3).frames, tiny.input).tensor.repeat(5, 1, 1, 1, 1)
    x = x + 0.01 * torch.randn_like(x)
    method = get_method(oom_method.name)
    got = method.attribute(tiny, x, 2).relevance
    sizes = [n for _, n in oom_method.seen]
    assert sizes[:3] == [4, 2, 1] and set(sizes[3:]) == {1}  # halved until it fits
    oom_method.max_batch = 5
    try:
        reference = get_method(oom_method.name).attribute(tiny, x, 2).relevance
    finally:
        oom_method.max_batch = 1
    torch.testing.assert_close(got, reference)
    assert method.notes == []  # stayed where it was: nothing to tell


@pytest.fixture
def fake_cuda(monkeypatch):
    """Tensors and modules sent to "cuda" stay on the CPU (this machine has no GPU)."""
    real_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        args = tuple("cpu" if _is_cuda(a) else a for a in args)
        kwargs = {k: "cpu" if _is_cuda(v) else v for k, v in kwargs.items()}
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)


def _is_cuda(a) -> bool:
    return (isinstance(a, str) and a.startswith("cuda")) or (
        isinstance(a, torch.device) and a.type == "cuda")


def test_out_of_memory_for_one_clip_falls_back_to_the_cpu_and_says_so(world, oom_method,
                                                                      fake_cuda):
    reference_model = load_model(arch=world.arch, checkpoint=world.ckpt, classes=world.classes,
                                 device="cpu")
    reference = explain(reference_model, world.clip, oom_method.name, cache=None)
    module = reference_model.module
    gpu_model = dataclasses.replace(reference_model, device=torch.device("cuda"))
    moves = []
    real_move = module.to
    module.to = lambda device, *a, **k: (moves.append(str(device)), real_move(device, *a, **k))[1]
    flags = [p.requires_grad for p in module.parameters()]
    oom_method.cuda_oom = True
    try:
        exp = explain(gpu_model, world.clip, oom_method.name, cache=None)
    finally:
        oom_method.cuda_oom = False
        del module.to
    # moved to the CPU for the work and back afterwards, in each call that ran out (the
    # full explanation and the freeze frames)
    assert moves and moves == ["cpu", "cuda"] * (len(moves) // 2)
    assert gpu_model.device.type == "cuda" and flags == [p.requires_grad for p in
                                                         module.parameters()]
    assert {dev for dev, _ in oom_method.seen} == {"cpu", "cuda"}
    assert exp.warnings == [f"{oom_method.name} ran out of GPU memory even for one clip and "
                            "was computed on the CPU instead (slower)."]
    assert exp.summary()["warnings"] == exp.warnings
    for kind in ("full", "spatial", "temporal", "selective"):
        np.testing.assert_allclose(getattr(exp[oom_method.name], kind),
                                   getattr(reference[oom_method.name], kind), rtol=1e-5,
                                   atol=1e-7)
