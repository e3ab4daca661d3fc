"""What every engine method promises: metadata, determinism, an untouched model, full size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_core.methods import get_method, list_methods
from xai_core.models.architectures import SmallC3D
from xai_core.models.bundled import small_c3d_spec
from xai_core.models.registry import wrap_module

#: Methods of the lrp, gradient, cam and occlusion families, with fast settings for tests.
FAST = {
    "dtd": {}, "lrp-epsilon": {}, "lrp-epsilon-gamma-box": {},
    "gradient": {}, "input-x-gradient": {}, "integrated-gradients": {"steps": 4},
    "smoothgrad": {"samples": 3}, "guided-backprop": {},
    "gradcam": {}, "saliency-tubes": {}, "guided-gradcam": {},
    "occlusion": {"window": (4, 8, 8), "stride": (4, 8, 8)},
}
FAMILIES = {"lrp", "gradient", "cam", "occlusion"}
#: Methods of those families for transformers only (they refuse CNNs: test_applicability).
TRANSFORMER_ONLY = {"attn-lrp"}


def test_every_method_is_registered_with_its_metadata():
    mine = {cls.name: cls for cls in list_methods() if cls.family in FAMILIES}
    assert set(mine) == set(FAST) | TRANSFORMER_ONLY
    for cls in mine.values():
        assert cls.description and "\n" not in cls.description
        assert cls.reference and any(ch.isdigit() for ch in cls.reference)  # cites a year
        assert all(p.help for p in cls.params.values()), cls.name


def random_small_c3d(seed: int = 0) -> SmallC3D:
    torch.manual_seed(seed)
    net = SmallC3D(num_classes=4)
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():  # non-trivial statistics, so BatchNorm merging really changes weights
        if isinstance(m, nn.BatchNorm3d):
            m.weight.data = 0.5 + torch.rand(m.num_features, generator=g)
            m.bias.data = 0.1 * torch.randn(m.num_features, generator=g)
            m.running_mean.data = 0.1 * torch.randn(m.num_features, generator=g)
            m.running_var.data = 0.5 + torch.rand(m.num_features, generator=g)
    return net


def snapshot(net: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in net.state_dict().items()},
        "training": [m.training for m in net.modules()],
        "requires_grad": [p.requires_grad for p in net.parameters()],
        "grads": [p.grad for p in net.parameters()],
        "attributes": [sorted(vars(m)) for m in net.modules()],
    }


def hooks_left(net: nn.Module) -> list[str]:
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return [f"{name}.{k}" for name, m in net.named_modules() for k in kinds if getattr(m, k)]


def param_grads(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    net.eval()
    return list(torch.autograd.grad(net(x)[:, 1].sum(), list(net.parameters())))


@pytest.mark.parametrize("name", sorted(FAST))
def test_method_is_deterministic_and_leaves_the_model_untouched(name):
    net = random_small_c3d()
    model = wrap_module(net, small_c3d_spec())
    x = torch.randn(2, 3, 8, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out_before = net(x)
    grads_before = param_grads(net, x)
    net.train()  # a user's model may be in training mode: it must come back so
    marker = torch.ones(4)
    net.fc.bias.grad = marker  # and its .grad fields must survive
    before = snapshot(net)

    method = get_method(name, **FAST[name])
    first = method.attribute(model, x, torch.tensor([1, 3]))
    second = method.attribute(model, x, torch.tensor([1, 3]))

    after = snapshot(net)
    assert after["training"] == before["training"] and all(after["training"])
    assert after["requires_grad"] == before["requires_grad"]
    assert net.fc.bias.grad is marker and all(
        a is b for a, b in zip(after["grads"], before["grads"], strict=True))
    assert after["attributes"] == before["attributes"]  # canonizers put everything back
    assert not hooks_left(net)
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key
    net.fc.bias.grad = None
    with torch.no_grad():
        assert torch.equal(net.eval()(x), out_before)
    for a, b in zip(param_grads(net, x), grads_before, strict=True):
        assert torch.equal(a, b)

    assert first.relevance.shape == (2, 8, 16, 16)
    assert (first.raw is not None) == method.has_raw
    assert torch.equal(first.relevance, second.relevance)
    if method.has_raw:
        assert first.raw.shape == (2, 3, 8, 16, 16) and torch.equal(first.raw, second.raw)
    assert first.relevance.abs().sum() > 0


#: The LRP composites cost several passes per layer: over 10 s per clip on a busy 2-core CPU.
SLOW_AT_FULL_SIZE = {"dtd", "lrp-epsilon", "lrp-epsilon-gamma-box"}


@pytest.fixture(scope="module")
def full_size_model():
    return wrap_module(random_small_c3d(seed=2), small_c3d_spec())


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_AT_FULL_SIZE else n for n in sorted(FAST)])
def test_method_runs_on_small_c3d_at_full_size(name, full_size_model):
    params = dict(FAST[name])
    if name == "occlusion":  # four windows are enough to show it runs at this size
        params = {"window": (16, 56, 56), "stride": (16, 56, 56)}
    if name in ("gradcam", "guided-gradcam"):  # a random net's CAM may be all negative: ReLU → 0
        params["relu"] = False
    x = torch.randn(1, 3, 16, 112, 112, generator=torch.Generator().manual_seed(3))
    out = get_method(name, **params).attribute(full_size_model, x, 2)
    assert out.relevance.shape == (1, 16, 112, 112)
    assert torch.isfinite(out.relevance).all() and out.relevance.abs().sum() > 0
