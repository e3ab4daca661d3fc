"""Clips per pass from a memory budget (xai_core.budget): sizes, the budget, and results
that do not depend on the count."""

from __future__ import annotations

import pytest
import torch
from helpers import GXI_NAME, GradientTimesInput, H, T, W, counting, random_clip, tiny_model

import xai_core as xc
from xai_core import budget
from xai_core.budget import (
    ENV_VAR,
    GRADIENT_FACTOR,
    MAX_CLIPS,
    activation_bytes,
    clips_per_pass,
    memory_budget,
    method_weight,
    parse_bytes,
)
from xai_core.decompose import DecompositionOptions, clips_per_batch, discriminative
from xai_core.engine import freeze_frame_probabilities
from xai_core.methods.base import get_method

pytestmark = pytest.mark.usefixtures("one_thread")

#: TinyC3D on one 3×8×32×32 clip: conv 4×8×32×32, ReLU, pool 4×8×16×16, conv 6×8×16×16,
#: ReLU, pool 6, flatten 6, fc 4 (float32), plus the clip itself.
TINY_ACTIVATIONS = 4 * (2 * 4 * T * H * W + 4 * T * 16 * 16 + 2 * 6 * T * 16 * 16 + 6 + 6 + 4
                        + 3 * T * H * W)


def test_sizes_parse_in_binary_units():
    assert parse_bytes("512M") == 512 * 2**20
    assert parse_bytes("2G") == parse_bytes("2GiB") == parse_bytes("2 gb") == 2 * 2**30
    assert parse_bytes("1.5k") == 1536 and parse_bytes("3e9") == 3 * 10**9
    assert parse_bytes("1048576") == 2**20
    for bad in ("", "abc", "-1", "0", "2X", "1..5G"):
        with pytest.raises(ValueError):
            parse_bytes(bad)


def test_budget_from_the_environment_or_the_free_memory(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "3G")
    assert memory_budget("cpu") == 3 * 2**30
    monkeypatch.delenv(ENV_VAR)
    free = memory_budget("cpu")
    assert 0 < free
    ram = budget._available_ram()
    assert ram is None or free == int(budget.CPU_FRACTION * ram)


def test_activation_bytes_of_a_tiny_net_by_hand_fake_and_real():
    model = tiny_model()
    model.module.train()
    hooks_before = [len(m._forward_hooks) for m in model.module.modules()]
    assert activation_bytes(model, (3, T, H, W)) == TINY_ACTIVATIONS
    real = budget._hooked_forward(model.module, torch.zeros(1, 3, T, H, W), fake=False)
    assert real == TINY_ACTIVATIONS - 4 * 3 * T * H * W  # the same sum without fakes
    assert [len(m._forward_hooks) for m in model.module.modules()] == hooks_before
    assert all(m.training for m in model.module.modules())  # left as it was
    assert activation_bytes(model, (3, 2 * T, H, W)) > TINY_ACTIVATIONS  # per shape


def test_clips_per_pass_divides_the_budget():
    model, x = tiny_model(), random_clip()
    per_clip = TINY_ACTIVATIONS * GRADIENT_FACTOR
    assert clips_per_pass(model, x, budget=int(5.5 * per_clip)) == 5
    assert clips_per_pass(model, x, budget=10) == 1  # never 0
    assert clips_per_pass(model, x, budget=2**50) == MAX_CLIPS
    assert clips_per_pass(model, x, gradients=False, budget=int(5 * per_clip)) == 15
    assert clips_per_pass(model, (3, T, H, W), weight=2.0, budget=int(4 * per_clip)) == 2
    assert method_weight(get_method("gradient")) == 1.0
    assert method_weight(get_method("extremal-perturbation")) == 4.0  # 2 clips, areas inside


def test_large_budget_one_pass_small_budget_several_same_result(monkeypatch):
    model, x, target = tiny_model(), random_clip(), 1
    opts = DecompositionOptions(reuse_identical=False)
    full = GradientTimesInput().attribute(model, x, target).relevance[0]
    results, passes = {}, {}
    for label, size in (("large", "1G"), ("small", "1")):
        monkeypatch.setenv(ENV_VAR, size)
        method, sizes = counting(GradientTimesInput())
        results[label] = discriminative(method, model, x, target, full, opts)
        passes[label] = sizes
    assert passes["large"] == [T]  # all freeze-frame clips in one pass
    assert passes["small"] == [1] * T  # one clip per pass
    for part in ("spatial", "temporal", "still"):  # equal up to the rounding of batched convs
        torch.testing.assert_close(getattr(results["small"], part),
                                   getattr(results["large"], part), rtol=1e-6, atol=1e-7)


def test_chunk_size_overrides_the_budget(monkeypatch):
    model, x = tiny_model(), random_clip()
    monkeypatch.setenv(ENV_VAR, "1G")
    method = GradientTimesInput()
    assert clips_per_batch(method, model, x, DecompositionOptions(chunk_size=3)) == 3
    assert clips_per_batch(method, model, x) == clips_per_pass(
        model, x, weight=method_weight(method))


def test_freeze_frame_predictions_under_any_budget(monkeypatch, registered):
    model, x = tiny_model(), random_clip()
    monkeypatch.setenv(ENV_VAR, "1")
    small = freeze_frame_probabilities(model, x)
    exp_small = xc.explain(model, x, GXI_NAME, cache=None)
    monkeypatch.setenv(ENV_VAR, "1G")
    torch.testing.assert_close(freeze_frame_probabilities(model, x), small,
                               rtol=1e-6, atol=1e-7)
    exp_large = xc.explain(model, x, GXI_NAME, cache=None)
    torch.testing.assert_close(torch.from_numpy(exp_large.probabilities),
                               torch.from_numpy(exp_small.probabilities), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(torch.from_numpy(exp_large[GXI_NAME].spatial),
                               torch.from_numpy(exp_small[GXI_NAME].spatial),
                               rtol=1e-6, atol=1e-7)
