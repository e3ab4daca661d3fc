"""LRP methods: conservation, known answers against slow hand-written rules, canonizers."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import mc3_18, r2plus1d_18, r3d_18

from xai_core.errors import MethodError, ParameterError
from xai_core.methods import get_method
from xai_core.methods import lrp as lrp_module
from xai_core.methods.canonizers import batchnorm_canonizer, trace_network
from xai_core.models.architectures import SmallC3D
from xai_core.models.registry import wrap_module
from xai_core.models.spec import InputSpec, ModelSpec

# channels with different statistics, so per-channel bounds differ
SPEC_INPUT = InputSpec(num_frames=4, height=8, width=8, mean=(0.45, 0.40, 0.35),
                       std=(0.225, 0.20, 0.25))


def spec(cam_layer: str = "", classifier: str | None = None) -> ModelSpec:
    return ModelSpec(name="tiny", build=lambda n: nn.Identity(), input=SPEC_INPUT,
                     description="test net", cam_layer=cam_layer, classifier=classifier)


def clip(*shape: int, seed: int = 0) -> torch.Tensor:
    """A clip inside the box of SPEC_INPUT (a real normalised video never leaves it)."""
    g = torch.Generator().manual_seed(seed)
    low, high = SPEC_INPUT.pixel_bounds()
    u = torch.rand(*shape, generator=g)
    return low + u * (high - low)


def bias_free_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool3d((1, 2, 2)),
        nn.Conv3d(4, 6, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool3d(1),
        nn.Flatten(), nn.Linear(6, 5, bias=False))


def target_logits(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x).gather(1, target.view(-1, 1))[:, 0]


@pytest.mark.parametrize("params", [{}, {"alpha": 2.0, "beta": 1.0}])
def test_dtd_conserves_relevance_on_bias_free_net(params):
    net = bias_free_net()
    model = wrap_module(net, spec())
    x, target = clip(3, 3, 4, 8, 8), torch.tensor([0, 2, 4])
    rel = get_method("dtd", **params).attribute(model, x, target).relevance
    torch.testing.assert_close(rel.sum((1, 2, 3)), target_logits(net, x, target),
                               rtol=1e-4, atol=1e-6)


def test_epsilon_gamma_box_conserves_on_bias_free_net():
    net = bias_free_net()
    model = wrap_module(net, spec())
    x, target = clip(2, 3, 4, 8, 8), torch.tensor([1, 3])
    rel = get_method("lrp-epsilon-gamma-box").attribute(model, x, target).relevance
    torch.testing.assert_close(rel.sum((1, 2, 3)), target_logits(net, x, target),
                               rtol=1e-4, atol=1e-6)


def test_lrp_epsilon_with_tiny_epsilon_is_input_times_gradient():
    # LRP-0 on a ReLU / max-pool / avg-pool net equals gradient × input (Ancona et al. 2018)
    net = bias_free_net()
    model = wrap_module(net, spec())
    x, target = clip(2, 3, 4, 8, 8, seed=1), torch.tensor([1, 3])
    raw = get_method("lrp-epsilon", epsilon=1e-9).attribute(model, x, target).raw
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(xg).gather(1, target.view(-1, 1)).sum(), xg)
    torch.testing.assert_close(raw, x * grad, rtol=1e-3, atol=1e-6)
    # and a large epsilon absorbs relevance: it is a real parameter, not ignored
    big = get_method("lrp-epsilon", epsilon=10.0).attribute(model, x, target).relevance
    assert big.abs().sum() < 0.5 * raw.sum(1).abs().sum()


# ----------------------------------------------------------------- slow reference rules
def conv_relevance_ref(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       r_out: torch.Tensor, rule: str, alpha: float = 1.0, beta: float = 0.0,
                       low: torch.Tensor | None = None, high: torch.Tensor | None = None,
                       padding: int = 1) -> torch.Tensor:
    """Relevance at a stride-1 Conv3d's input, one output neuron at a time (explicit loops).

    rule "zbox": R_i = Σ_j (a_i w_ij − l_i w⁺_ij − h_i w⁻_ij) / Σ_i (…) · R_j
    rule "alphabeta": R_i = Σ_j (α z⁺_ij / (Σ_i z⁺_ij + b⁺_j) − β z⁻_ij / (Σ_i z⁻_ij + b⁻_j)) R_j
    """
    a = a.double()[0]
    w, r_out = weight.double(), r_out.double()[0]
    b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.double()
    pad = (padding,) * 6
    ap = F.pad(a, pad)
    if rule == "zbox":
        lp = F.pad(low.double()[0].expand_as(a), pad)
        hp = F.pad(high.double()[0].expand_as(a), pad)
    r_in = torch.zeros_like(ap)
    kt, kh, kw = w.shape[2:]
    k_out, t_out, h_out, w_out = r_out.shape
    for k, t, h, x in itertools.product(range(k_out), range(t_out), range(h_out), range(w_out)):
        sl = (slice(None), slice(t, t + kt), slice(h, h + kh), slice(x, x + kw))
        patch, wk = ap[sl], w[k]
        if rule == "zbox":
            z = patch * wk - lp[sl] * wk.clamp(min=0) - hp[sl] * wk.clamp(max=0)
            contrib = z / z.sum() * r_out[k, t, h, x]
        else:
            zp = patch.clamp(min=0) * wk.clamp(min=0) + patch.clamp(max=0) * wk.clamp(max=0)
            zn = patch.clamp(min=0) * wk.clamp(max=0) + patch.clamp(max=0) * wk.clamp(min=0)
            pos = zp / (zp.sum() + b[k].clamp(min=0))
            neg = zn / (zn.sum() + b[k].clamp(max=0)) if beta else torch.zeros_like(zn)
            contrib = (alpha * pos - beta * neg) * r_out[k, t, h, x]
        r_in[sl] += contrib
    p = padding
    return r_in[:, p:-p, p:-p, p:-p][None]


def linear_zplus_ref(a: torch.Tensor, weight: torch.Tensor, r_out: torch.Tensor) -> torch.Tensor:
    """z⁺ for a bias-free linear layer with non-negative inputs (einsum)."""
    z = torch.einsum("bi,oi->boi", a.double(), weight.double().clamp(min=0))
    return torch.einsum("boi,bo->bi", z / z.sum(-1, keepdim=True), r_out.double())


def test_dtd_first_layer_is_zbeta_with_spec_bounds():
    torch.manual_seed(1)
    conv = nn.Conv3d(3, 2, 3, padding=1, bias=True)
    head = nn.Linear(2 * 2 * 4 * 4, 3, bias=False)
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), head)
    model = wrap_module(net, spec())
    x, target = clip(1, 3, 2, 4, 4, seed=3), torch.tensor([2])
    got = get_method("dtd").attribute(model, x, target).raw.double()

    act = torch.relu(conv(x)).detach()
    logit = target_logits(net, x, target)
    r_head = torch.zeros(1, 3, dtype=torch.float64)
    r_head[0, 2] = logit[0]
    r_act = linear_zplus_ref(act.flatten(1), head.weight.detach(), r_head).view_as(act)
    low, high = SPEC_INPUT.pixel_bounds()
    want = conv_relevance_ref(x, conv.weight.detach(), None, r_act, "zbox", low=low, high=high)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    # the bounds are per channel: other bounds give another answer (the test can tell)
    wrong = conv_relevance_ref(x, conv.weight.detach(), None, r_act, "zbox",
                               low=low.flip(1), high=high.flip(1))
    assert not torch.allclose(got, wrong, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (2.0, 1.0)])
def test_dtd_hidden_layers_follow_alpha_beta(alpha, beta):
    torch.manual_seed(2)
    conv1 = nn.Conv3d(3, 3, 3, padding=1, bias=True)
    conv2 = nn.Conv3d(3, 2, 3, padding=1, bias=True)
    head = nn.Linear(2 * 2 * 3 * 3, 4, bias=False)
    net = nn.Sequential(conv1, nn.ReLU(), conv2, nn.ReLU(), nn.Flatten(), head)
    model = wrap_module(net, spec())
    x, target = clip(1, 3, 2, 3, 3, seed=4), torch.tensor([1])
    got = get_method("dtd", alpha=alpha, beta=beta).attribute(model, x, target).raw.double()

    a1 = torch.relu(conv1(x)).detach()
    a2 = torch.relu(conv2(a1)).detach()
    r_head = torch.zeros(1, 4, dtype=torch.float64)
    r_head[0, 1] = target_logits(net, x, target)[0]
    w = head.weight.detach().double()
    if beta:  # αβ on the linear layer too (inputs ≥ 0 after the ReLU)
        zp = torch.einsum("bi,oi->boi", a2.flatten(1).double(), w.clamp(min=0))
        zn = torch.einsum("bi,oi->boi", a2.flatten(1).double(), w.clamp(max=0))
        ratio = alpha * zp / zp.sum(-1, keepdim=True) - beta * zn / zn.sum(-1, keepdim=True)
        r_a2 = torch.einsum("boi,bo->bi", ratio, r_head).view_as(a2)
    else:
        r_a2 = linear_zplus_ref(a2.flatten(1), head.weight.detach(), r_head).view_as(a2)
    r_a1 = conv_relevance_ref(a1, conv2.weight.detach(), conv2.bias.detach(), r_a2, "alphabeta",
                              alpha=alpha, beta=beta)
    low, high = SPEC_INPUT.pixel_bounds()
    want = conv_relevance_ref(x, conv1.weight.detach(), None, r_a1, "zbox", low=low, high=high)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


# ----------------------------------------------------------------- BatchNorm and structure
def randomise_batchnorm(net: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm3d):
            n = m.num_features
            m.weight.data = 0.5 + torch.rand(n, generator=g)
            m.bias.data = 0.1 * torch.randn(n, generator=g)
            m.running_mean.data = 0.1 * torch.randn(n, generator=g)
            m.running_var.data = 0.5 + torch.rand(n, generator=g)


def fused_copy(net: SmallC3D) -> nn.Module:
    """The same network with every BatchNorm folded into its conv by hand."""
    layers = []
    mods = list(net.features)
    i = 0
    while i < len(mods):
        m = mods[i]
        bn = mods[i + 1] if i + 1 < len(mods) else None
        if isinstance(m, nn.Conv3d) and isinstance(bn, nn.BatchNorm3d):
            scale = bn.weight / (bn.running_var + bn.eps).sqrt()
            conv = nn.Conv3d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding)
            conv.weight.data = m.weight.data * scale.view(-1, 1, 1, 1, 1)
            conv.bias.data = bn.bias.data - bn.running_mean * scale
            layers.append(conv)
            i += 2
        else:
            layers.append(copy.deepcopy(m))
            i += 1
    return nn.Sequential(*layers, nn.AdaptiveAvgPool3d(1), nn.Flatten(), copy.deepcopy(net.fc))


def test_dtd_merges_batchnorm_like_a_hand_fused_network():
    torch.manual_seed(3)
    net = SmallC3D(num_classes=4).eval()
    randomise_batchnorm(net)
    fused = fused_copy(net).eval()
    x, target = clip(2, 3, 8, 16, 16, seed=5), torch.tensor([0, 3])
    torch.testing.assert_close(fused(x), net(x), rtol=1e-4, atol=1e-5)
    got = get_method("dtd").attribute(wrap_module(net, spec()), x, target).raw
    want = get_method("dtd").attribute(wrap_module(fused, spec()), x, target).raw
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-6)


def test_dtd_conserves_on_small_c3d_with_adaptive_avg_pool():
    # fresh BatchNorm statistics merge into zero biases; zero the head bias too
    torch.manual_seed(4)
    net = SmallC3D(num_classes=4)
    nn.init.zeros_(net.fc.bias)
    model = wrap_module(net, spec())
    x, target = clip(2, 3, 8, 16, 16, seed=6), torch.tensor([1, 2])
    rel = get_method("dtd").attribute(model, x, target).relevance
    torch.testing.assert_close(rel.sum((1, 2, 3)), target_logits(net, x, target),
                               rtol=1e-4, atol=1e-6)


class BatchNormFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm3d(3)
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.conv(self.bn(x))).mean((2, 3, 4)))


class ReusedConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 3, 3, padding=1)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(torch.relu(self.conv(x)))).mean((2, 3, 4)))


class ScalesInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.conv(2 * x)).mean((2, 3, 4)))


def test_unmergeable_batchnorm_and_reused_layers_fail_clearly():
    x = clip(1, 3, 4, 8, 8)
    with pytest.raises(MethodError, match="BatchNorm"):
        get_method("dtd").attribute(wrap_module(BatchNormFirst(), spec()), x, 0)
    with pytest.raises(MethodError, match="more than once"):
        get_method("dtd").attribute(wrap_module(ReusedConv(), spec()), x, 0)


def test_box_rules_need_the_clip_at_the_first_layer():
    model = wrap_module(ScalesInput(), spec())
    x = clip(1, 3, 4, 8, 8)
    with pytest.raises(MethodError, match="first layer"):
        get_method("dtd").attribute(model, x, 0)
    # the ε rule has no bounds to respect, so it explains this model
    assert get_method("lrp-epsilon").attribute(model, x, 0).relevance.abs().sum() > 0


def test_dtd_rejects_alpha_beta_that_do_not_conserve():
    with pytest.raises(ParameterError, match="alpha − beta = 1"):
        get_method("dtd", alpha=2.0, beta=0.5)


def test_trace_finds_first_layer_in_execution_order():
    class Backwards(nn.Module):  # registered head first, run last
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(4, 2)
            self.conv = nn.Conv3d(3, 4, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm3d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3, 4)))

    trace = trace_network(Backwards(), clip(1, 3, 4, 8, 8))
    assert trace.first_layer == "conv" and trace.first_takes_input
    assert trace.batchnorm_merges == [("conv", "bn")] and not trace.unmerged_batchnorms


# ----------------------------------------------------------------- video ResNets
RESNET_INPUT = InputSpec(num_frames=4, height=32, width=32, mean=(0.43, 0.39, 0.38),
                         std=(0.23, 0.22, 0.22))


def resnet_model(ctor) -> tuple[nn.Module, object]:
    torch.manual_seed(5)
    net = ctor(weights=None, num_classes=3)
    s = ModelSpec(name=ctor.__name__, build=lambda n: ctor(num_classes=n), input=RESNET_INPUT,
                  description="", cam_layer="layer4", classifier="fc")
    return net, wrap_module(net, s)


def resnet_clip() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    low, high = RESNET_INPUT.pixel_bounds()
    return low + torch.rand(1, 3, 4, 32, 32, generator=g) * (high - low)


def test_r3d_18_conserves_with_the_video_block_canonizer(monkeypatch):
    net, model = resnet_model(r3d_18)
    x, target = resnet_clip(), torch.tensor([1])
    logit = target_logits(net, x, target)
    rel = get_method("dtd").attribute(model, x, target).relevance.sum()
    torch.testing.assert_close(rel, logit[0], rtol=1e-4, atol=1e-6)
    assert all("forward" not in vars(m) and not hasattr(m, "canonizer_sum") for m in net.modules())

    # regression guard: without the block canonizer the residual sums double relevance 8 times
    monkeypatch.setattr(lrp_module, "video_canonizers",
                        lambda module, trace: [batchnorm_canonizer(trace)])
    doubled = get_method("dtd").attribute(model, x, target).relevance.sum()
    assert abs(float(doubled / logit[0]) - 256.0) < 0.5


@pytest.mark.slow  # ~5 s each on a free core; large weights, not large inputs
@pytest.mark.parametrize("ctor", [mc3_18, r2plus1d_18])
def test_other_video_resnets_conserve(ctor):
    net, model = resnet_model(ctor)
    x, target = resnet_clip(), torch.tensor([2])
    rel = get_method("dtd").attribute(model, x, target).relevance.sum()
    torch.testing.assert_close(rel, target_logits(net, x, target)[0], rtol=1e-4, atol=1e-6)
