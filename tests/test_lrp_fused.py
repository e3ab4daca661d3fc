"""Fused LRP (xai_core.methods.lrp_fused) held against zennit's own rules, the reference.

Every registered CNN, every LRP preset: the fused relevance equals zennit's to 1e-5
(relative, in norm) and conserves the same total. Then the parts that make it fast are
tested where they could go wrong: signed inputs (no skipped terms), layers it hands back
to zennit, in-place changes after a layer, the reduced convolution of the box bounds,
the meta-device trace, the number of convolutions run, and a model left as it was.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from xai_core.errors import ParameterError
from xai_core.methods import get_method, lrp_fused, lrp_rules
from xai_core.methods.canonizers import _trace, trace_network
from xai_core.methods.lrp import target_seed
from xai_core.models.registry import MODELS, LoadedModel, load_model, wrap_module
from xai_core.models.spec import InputSpec, ModelSpec
from xai_core.video.clip import load_clip

pytestmark = pytest.mark.usefixtures("one_thread")

VIDEO = Path(__file__).resolve().parents[1] / "sample_videos" / "agree_move_up.mp4"
PRESETS = [("dtd", {}), ("dtd", {"alpha": 2.0, "beta": 1.0}), ("lrp-epsilon", {}),
           ("lrp-epsilon-gamma-box", {})]
PRESET_IDS = ["dtd", "dtd-beta1", "lrp-epsilon", "lrp-epsilon-gamma-box"]
#: registered CNNs and the clip (T, H, W) each is tested on; C3D and S3D only run at full size
CNNS = sorted(name for name, spec in MODELS.items() if not spec.is_transformer)
FULL_SIZE_ONLY = {"c3d", "s3d"}


def relative_error(fast: torch.Tensor, ref: torch.Tensor) -> float:
    return float((fast.double() - ref.double()).norm() / ref.double().norm())


def methods(name: str, params: dict) -> tuple:
    fused, ref = get_method(name, **params), get_method(name, **params)
    ref.impl = "zennit"
    assert fused.impl == "fused"
    return fused, ref


def assert_equal_to_zennit(model: LoadedModel, x: torch.Tensor, target: torch.Tensor,
                           name: str, params: dict, tol: float = 1e-5) -> None:
    fused, ref = methods(name, params)
    got = fused.attribute(model, x, target).raw
    want = ref.attribute(model, x, target).raw
    assert want.abs().sum() > 0
    assert relative_error(got, want) <= tol, (name, params, relative_error(got, want))
    sums_got, sums_want = got.double().sum((1, 2, 3, 4)), want.double().sum((1, 2, 3, 4))
    scale = want.double().abs().sum((1, 2, 3, 4))
    assert ((sums_got - sums_want).abs() <= tol * scale).all()  # conservation unchanged


def registered_cnn(name: str) -> tuple[LoadedModel, torch.Tensor]:
    """The registered CNN ``name`` (bundled weights, or random ones), with a real clip."""
    if MODELS[name].weights:
        model = load_model(name, device="cpu")
    else:
        spec = MODELS[name]
        torch.manual_seed(0)
        model = wrap_module(spec.build(5).eval(), spec, device="cpu")
    spec = model.input
    if name not in FULL_SIZE_ONLY:  # small clips: the nets pool adaptively
        spec = dataclasses.replace(spec, num_frames=8, height=32, width=32, resize=(32, 40),
                                   short_side=None)
        model = dataclasses.replace(model, spec=dataclasses.replace(model.spec, input=spec))
    return model, load_clip(VIDEO, spec).tensor


@pytest.mark.parametrize("preset", range(len(PRESETS)), ids=PRESET_IDS)
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in FULL_SIZE_ONLY else n for n in CNNS])
def test_fused_equals_zennit_on_every_registered_cnn(name, preset):
    model, x = registered_cnn(name)
    assert_equal_to_zennit(model, x, torch.tensor([1]), *PRESETS[preset])


@pytest.mark.slow  # the bundled model on a full 16×112×112 clip, two clips in one batch
@pytest.mark.parametrize("preset", range(len(PRESETS)), ids=PRESET_IDS)
def test_fused_equals_zennit_on_the_bundled_model_at_full_size(preset):
    model = load_model("motion", device="cpu")
    x = torch.cat([load_clip(VIDEO, model).tensor,
                   load_clip(VIDEO.with_name("conflict_grow.mp4"), model).tensor])
    assert_equal_to_zennit(model, x, torch.tensor([0, 3]), *PRESETS[preset])


# ----------------------------------------------------------------- layers and inputs
SPEC = ModelSpec(name="tiny", build=lambda n: nn.Identity(), description="test net", cam_layer="",
                 input=InputSpec(num_frames=4, height=8, width=8, mean=(0.45, 0.40, 0.35),
                                 std=(0.225, 0.20, 0.25)))


def clip(b: int = 2, seed: int = 0) -> torch.Tensor:
    low, high = SPEC.input.pixel_bounds()
    return low + torch.rand(b, 3, 4, 8, 8, generator=torch.Generator().manual_seed(seed)) * (
        high - low)


class SignedHidden(nn.Module):
    """Hidden layers whose inputs are signed (no ReLU between convs, a leaky head):
    the fused rules must keep zennit's terms of the negative inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 5, 3, padding=1)
        self.conv2 = nn.Conv3d(5, 6, (1, 3, 3), padding=(0, 2, 2), dilation=(1, 2, 2))
        self.conv3 = nn.Conv3d(6, 6, 3, stride=2, padding=1, groups=2)
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv3(self.conv2(self.conv1(x)))
        return self.head(nn.functional.leaky_relu(h.mean((2, 3, 4)), 0.3))


class OddLayers(nn.Module):
    """Layers outside the direct path: a replicate-padded first conv (zβ as zennit),
    'same' padding (transposed conv by autograd), a transposed conv (zennit's own hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 4, 3, padding=1, padding_mode="replicate")
        self.conv2 = nn.Conv3d(4, 4, 3, padding="same")
        self.up = nn.ConvTranspose3d(4, 4, 2, stride=2)
        self.conv3 = nn.Conv1d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.up(torch.relu(self.conv2(torch.relu(self.conv1(x))))))
        h = torch.relu(self.conv3(h.flatten(2)))
        return self.head(h.mean(2))


class InPlaceAfterConv(nn.Module):
    """An in-place op on a conv's output: the output the rule saw has changed since."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv3d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))).mul_(0.5))
        return self.head(h.mean((2, 3, 4)))


@pytest.mark.parametrize("preset", range(len(PRESETS)), ids=PRESET_IDS)
@pytest.mark.parametrize("net", [SignedHidden, OddLayers, InPlaceAfterConv])
def test_fused_equals_zennit_on_signed_inputs_and_odd_layers(net, preset):
    torch.manual_seed(1)
    assert_equal_to_zennit(wrap_module(net(), SPEC), clip(), torch.tensor([0, 2]),
                           *PRESETS[preset])


def test_layers_the_fused_rules_do_not_cover_go_to_zennit():
    class OwnForward(nn.Conv3d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(2 * x)

    assert lrp_rules.supported(nn.Conv3d(3, 3, 1)) and lrp_rules.supported(nn.Linear(3, 3))
    assert not lrp_rules.supported(nn.ConvTranspose3d(3, 3, 1))
    assert not lrp_rules.supported(OwnForward(3, 3, 1))


@pytest.mark.parametrize("kind", ["zplus", "alphabeta", "epsilon", "gamma", "zbox"])
@pytest.mark.parametrize("layer", ["conv1d", "conv2d-strided", "linear"])
@pytest.mark.parametrize("signed", [False, True])
def test_each_rule_on_one_layer_equals_zennit(kind, layer, signed):
    """One layer, one rule: the fused hook against zennit's, on several layer types."""
    g = torch.Generator().manual_seed(4)
    if layer == "conv1d":
        module, shape = nn.Conv1d(4, 5, 3, padding=1), (2, 4, 9)
    elif layer == "conv2d-strided":
        module, shape = nn.Conv2d(4, 5, 3, stride=2, padding=1, dilation=1), (2, 4, 9, 7)
    else:
        module, shape = nn.Linear(4, 5), (2, 4)
    if kind == "zbox" and layer == "linear":
        pytest.skip("zennit's box bounds are per channel of a clip")
    torch.manual_seed(5)
    x = torch.randn(*shape, generator=g)
    x = x if signed else x.abs()
    low = torch.full((1, 4) + (1,) * (len(shape) - 2), -3.0)
    rule = lrp_rules.Rule(kind, alpha=2.0, beta=1.0, epsilon=0.01 if kind == "epsilon" else 1e-6,
                          low=low, high=-low)
    with torch.no_grad():
        r_out = torch.randn(module(x).shape, generator=g)  # relevance arriving at the output
    out = {}
    for impl, hook in (("fused", lrp_fused.FusedHook(rule)), ("zennit", rule.zennit())):
        handles = hook.register(module)
        xi = x.clone().requires_grad_(True)
        (out[impl],) = torch.autograd.grad(module(xi), xi, r_out)
        handles.remove()
    assert out["fused"].abs().sum() > 0
    assert relative_error(out["fused"], out["zennit"]) <= 1e-6


@pytest.mark.parametrize("n,k,stride,pad,dil", [
    (16, 3, 1, 1, 1), (112, 7, 2, 3, 1), (9, 3, 2, 0, 2), (5, 4, 3, 2, 1), (2, 3, 1, 1, 1),
    (13, 1, 2, 0, 1)])
def test_box_bounds_on_few_voxels_equal_the_full_convolution(n, k, stride, pad, dil):
    conv = nn.Conv3d(3, 4, (k, 3, k), stride=(stride, 1, stride), padding=(pad, 1, pad),
                     dilation=(dil, 1, dil))
    x = torch.zeros(1, 3, n, 6, n + 1)
    value = torch.tensor([-2.0, 0.5, 3.0]).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        full = conv(value.expand_as(x))
        small, index = lrp_rules._constant_forward(conv, value, x, conv.weight, conv.bias)
        grids = torch.meshgrid(*(torch.tensor(i) for i in index), indexing="ij")
        torch.testing.assert_close(small[(slice(None), slice(None), *grids)], full,
                                   rtol=1e-6, atol=1e-6)
    m, _ = lrp_rules._reduced_axis(n, k, stride, pad, dil)
    assert m <= n


# ----------------------------------------------------------------- cost and side effects
def count_convolutions(method, model: LoadedModel, x: torch.Tensor) -> dict[str, int]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        method.attribute(model, x, 0)
    names = [e.name for e in prof.events()]
    return {op: names.count(op) for op in ("aten::convolution", "aten::convolution_backward")}


def test_fused_dtd_runs_one_modified_forward_and_one_transposed_conv_per_layer():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1),
                        nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3))
    model, x = wrap_module(net, SPEC), clip(1)
    fused, ref = methods("dtd", {})
    fused.attribute(model, x, 0)  # the structure trace (meta device convs), kept from now
    # forward: 3 convs; z⁺: 2 hidden convs; zβ: the two bounds on a few voxels; backward:
    # one transposed conv per hidden layer, two for zβ; the layers' own gradient: none
    assert count_convolutions(fused, model, x) == {
        "aten::convolution": 3 + 2 + 2, "aten::convolution_backward": 2 + 2}
    # zennit: each conv's own gradient, then per modifier a forward and its gradient
    assert count_convolutions(ref, model, x) == {
        "aten::convolution": 3 + 2 * 2 + 3,
        "aten::convolution_backward": 3 + 2 * 2 + 3}
    epsilon = count_convolutions(get_method("lrp-epsilon"), model, x)
    assert epsilon == {"aten::convolution": 3, "aten::convolution_backward": 3}


def snapshot(net: nn.Module) -> dict:
    return {"state": {k: v.clone() for k, v in net.state_dict().items()},
            "params": [id(p) for p in net.parameters()],
            "requires_grad": [p.requires_grad for p in net.parameters()],
            "training": [m.training for m in net.modules()],
            "attributes": [sorted(vars(m)) for m in net.modules()]}


def hooks_left(net: nn.Module) -> list[str]:
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return [f"{name}.{k}" for name, m in net.named_modules() for k in kinds if getattr(m, k)]


@pytest.mark.parametrize("name", ["dtd", "lrp-epsilon", "lrp-epsilon-gamma-box"])
def test_fused_lrp_leaves_the_model_as_it_was_and_computes_no_weight_gradient(name):
    # r3d_18: BatchNorm merges and the residual-block canonizer (a patched forward)
    model, x = registered_cnn("r3d_18")
    net = model.module
    params = list(net.parameters())
    for i, p in enumerate(params):
        p.requires_grad_(i % 3 != 0)  # a mix, as a half-frozen fine-tuned model has
    computed = []
    handles = [p.register_hook(lambda g, i=i: computed.append(i))
               for i, p in enumerate(params) if p.requires_grad]
    before = snapshot(net)
    method = get_method(name)
    # _attribute, not attribute: the method itself, without the engine's model guard
    first = method._attribute(model, x, torch.tensor([2])).raw
    for h in handles:
        h.remove()
    after = snapshot(net)
    assert not computed, "a gradient was computed for a parameter"
    assert all(p.grad is None for p in params)
    assert after["requires_grad"] == before["requires_grad"]
    assert after["params"] == before["params"] and after["attributes"] == before["attributes"]
    assert after["training"] == before["training"]
    assert not hooks_left(net)
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key
    assert torch.equal(method._attribute(model, x, torch.tensor([2])).raw, first)


def test_inactive_composite_gives_the_plain_gradient_like_zennit():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 4 * 8 * 8, 3))
    model, x = wrap_module(net, SPEC), clip(1)
    grads = {}
    for impl in ("fused", "zennit"):
        method = get_method("dtd")
        method.impl = impl
        composite = method.composite(model, x)
        xi = x.clone().requires_grad_(True)
        with composite.context(net) as hooked, composite.inactive():
            y = hooked(xi)
            (grads[impl],) = torch.autograd.grad(y, xi, target_seed(y, torch.tensor([1])))
    xi = x.clone().requires_grad_(True)
    logit = net(xi)[0, 1]
    (plain,) = torch.autograd.grad(logit, xi)
    plain = plain * logit.detach()  # the seed is one-hot × logit
    torch.testing.assert_close(grads["fused"], plain)
    torch.testing.assert_close(grads["zennit"], plain)


@pytest.mark.parametrize("preset", range(len(PRESETS)), ids=PRESET_IDS)
def test_time_estimate_counts_fewer_passes_for_the_fused_rules(preset):
    fused, ref = methods(*PRESETS[preset])
    assert 1 <= fused.cost_passes() < ref.cost_passes()


def test_implementation_is_checked_and_not_part_of_the_cache_key():
    method = get_method("dtd")
    key = method.key()
    method.impl = "zennit"
    assert method.key() == key  # equal results: one cache entry
    method.impl = "fast"
    with pytest.raises(ParameterError, match="LRP implementation"):
        method.attribute(wrap_module(SignedHidden(), SPEC), clip(1), 0)


# ----------------------------------------------------------------- the meta-device trace
@pytest.mark.parametrize("name", [n for n in CNNS if n not in FULL_SIZE_ONLY])
def test_meta_trace_equals_the_trace_on_the_clip(name):
    model, x = registered_cnn(name)
    real = _trace(model.module, x[:1], lambda: model.module(x[:1]), compare_values=True)
    assert trace_network(model.module, x) == real


def test_trace_falls_back_to_the_clip_when_values_decide():
    class ReadsValues(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(3, 3, 3, padding=1)
            self.head = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            scale = 2.0 if float(x.mean()) > 100 else 1.0  # needs values: not on meta
            return self.head(torch.relu(self.conv(scale * x)).mean((2, 3, 4)))

    class CopiesInput(ReadsValues):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.relu(self.conv(x.clone())).mean((2, 3, 4)))

    x = clip(1)
    reads = trace_network(ReadsValues(), x)
    assert reads.first_layer == "conv" and reads.first_takes_input  # 1.0 · x equals x
    copies = trace_network(CopiesInput(), x)
    assert copies.first_layer == "conv" and copies.first_takes_input


def test_trace_is_kept_per_module_until_its_structure_changes():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    first = trace_network(net, clip(1))
    assert first.batchnorm_merges == [("0", "1")]
    first.batchnorm_merges.clear()  # a caller's change does not reach the kept trace
    assert trace_network(net, clip(1, seed=1)).batchnorm_merges == [("0", "1")]
    net[1] = nn.Identity()  # another module: traced again
    assert trace_network(net, clip(1)).batchnorm_merges == []
    net[1] = nn.BatchNorm3d(4)
    net[0] = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU())  # BN now after a ReLU
    assert trace_network(net, clip(1)).unmerged_batchnorms == ["1"]

