"""Gradient methods against autograd by hand, completeness, and guided backprop by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xai_core.errors import MethodError
from xai_core.methods import get_method
from xai_core.models.registry import wrap_module
from xai_core.models.spec import InputSpec, ModelSpec

SPEC_INPUT = InputSpec(num_frames=4, height=8, width=8, mean=(0.45, 0.40, 0.35),
                       std=(0.225, 0.20, 0.25))


def spec() -> ModelSpec:
    return ModelSpec(name="tiny", build=lambda n: nn.Identity(), input=SPEC_INPUT,
                     description="test net", cam_layer="")


class TwoLayer(nn.Module):
    """conv → ReLU → conv → ReLU → global mean → linear, with biases."""

    def __init__(self, shared_relu: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv3d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv3d(4, 5, 3, padding=1)
        self.relu2 = self.relu1 if shared_relu else nn.ReLU()
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.head(a.mean((2, 3, 4)))


def clips(b: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 3, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


TARGET = torch.tensor([2, 0])


def grad_by_hand(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(x).gather(1, target.view(-1, 1)).sum(), x)
    return g


def test_gradient_is_the_signed_autograd_gradient():
    net, x = TwoLayer(), clips()
    out = get_method("gradient").attribute(wrap_module(net, spec()), x, TARGET)
    want = grad_by_hand(net, x, TARGET)
    torch.testing.assert_close(out.raw, want)
    torch.testing.assert_close(out.relevance, want.sum(1))
    assert (out.raw < 0).any()  # signed, not |gradient|


def test_input_x_gradient():
    net, x = TwoLayer(), clips()
    out = get_method("input-x-gradient").attribute(wrap_module(net, spec()), x, TARGET)
    torch.testing.assert_close(out.raw, x * grad_by_hand(net, x, TARGET))


@pytest.mark.parametrize("baseline", ["mean", "black"])
def test_integrated_gradients_completeness(baseline):
    net, x = TwoLayer(), clips()
    model = wrap_module(net, spec())
    method = get_method("integrated-gradients", steps=64, baseline=baseline)
    out = method.attribute(model, x, TARGET)
    ref = torch.zeros_like(x) if baseline == "mean" else SPEC_INPUT.pixel_bounds()[0].expand_as(x)
    with torch.no_grad():
        gap = (net(x) - net(ref)).gather(1, TARGET.view(-1, 1))[:, 0]
    torch.testing.assert_close(out.relevance.sum((1, 2, 3)), gap, rtol=2e-2, atol=2e-3)
    assert gap.abs().min() > 1e-2  # the identity is not trivially 0 = 0


def test_smoothgrad_without_noise_is_the_gradient_and_is_reproducible():
    net, x = TwoLayer(), clips()
    model = wrap_module(net, spec())
    plain = get_method("smoothgrad", noise=0.0, samples=3).attribute(model, x, TARGET)
    torch.testing.assert_close(plain.raw, grad_by_hand(net, x, TARGET))
    a = get_method("smoothgrad", samples=4, seed=1).attribute(model, x, TARGET).raw
    b = get_method("smoothgrad", samples=4, seed=1).attribute(model, x, TARGET).raw
    c = get_method("smoothgrad", samples=4, seed=2).attribute(model, x, TARGET).raw
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.allclose(a, plain.raw)  # the noise does act on a non-linear net


def test_smoothgrad_matches_a_loop_over_noisy_copies_and_ignores_the_batch():
    net = TwoLayer()
    model = wrap_module(net, spec())
    x = clips(b=3, seed=4)
    target = torch.tensor([2, 0, 1])
    noise, samples, seed = 0.1, 5, 7
    lo, hi = SPEC_INPUT.pixel_bounds()
    sigma = noise * float(hi.max() - lo.min())
    # the reference: draw the seed's noise sample by sample, average plain gradients
    gen = torch.Generator().manual_seed(seed)
    draws = [torch.randn(x.shape[1:], generator=gen) * sigma for _ in range(samples)]
    ref = torch.stack([sum(grad_by_hand(net, x[i:i + 1] + n, target[i:i + 1])[0]
                           for n in draws) / samples for i in range(3)])
    method = get_method("smoothgrad", noise=noise, samples=samples, seed=seed)
    batched = method.attribute(model, x, target).raw
    torch.testing.assert_close(batched, ref, rtol=1e-5, atol=1e-6)
    alone = method.attribute(model, x[1:2], target[1:2]).raw  # a clip alone: the same map
    torch.testing.assert_close(alone[0], batched[1], rtol=1e-5, atol=1e-6)
    chunked = method.attribute(model, x, target, batch_size=2).raw
    torch.testing.assert_close(chunked, batched, rtol=1e-5, atol=1e-6)


def test_smoothgrad_on_a_linear_model_is_its_weight():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 8 * 8, 2))
    out = get_method("smoothgrad", samples=5).attribute(wrap_module(lin, spec()), clips(), 1)
    weight = lin[1].weight[1].detach().view(1, 3, 4, 8, 8)
    torch.testing.assert_close(out.raw, weight.expand_as(out.raw))


def guided_by_hand(net: TwoLayer, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Guided backprop written out: at each ReLU keep positive gradients where it was active."""
    z1 = net.conv1(x)
    a1 = torch.relu(z1)
    z2 = net.conv2(a1)
    a2 = torch.relu(z2)
    n = a2[0, 0].numel()
    g = net.head.weight[target][:, :, None, None, None].expand_as(a2) / n  # d logit / d a2
    g = g.clamp(min=0) * (z2 > 0)
    g = F.conv_transpose3d(g, net.conv2.weight, padding=1)
    g = g.clamp(min=0) * (z1 > 0)
    return F.conv_transpose3d(g, net.conv1.weight, padding=1).detach()


@pytest.mark.parametrize("shared_relu", [False, True])
def test_guided_backprop_matches_hand_written(shared_relu):
    net, x = TwoLayer(shared_relu=shared_relu), clips()
    out = get_method("guided-backprop").attribute(wrap_module(net, spec()), x, TARGET)
    want = guided_by_hand(net, x, TARGET)
    torch.testing.assert_close(out.raw, want, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(want, grad_by_hand(net, x, TARGET), atol=1e-6)


def test_guided_backprop_refuses_functional_relu():
    class Functional(TwoLayer):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = F.relu(self.conv2(self.relu1(self.conv1(x))))
            return self.head(a.mean((2, 3, 4)))

    with pytest.raises(MethodError, match="nn.ReLU"):
        get_method("guided-backprop").attribute(wrap_module(Functional(), spec()), clips(), 0)
