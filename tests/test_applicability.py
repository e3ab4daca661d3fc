"""Every method on every family of networks: it works, or it refuses up front with its reason.

The outcomes are stated once in :mod:`xai_core.applicability` (the README's table and
``python -m xai_core methods --applicability``); here every method runs on a tiny model
of every family and each cell is checked against what really happens. C3D and S3D only
take full-size clips (16×112×112, 16×224×224) and run in the slow set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import run_cli
from tiny_transformers import HF_FAMILIES, bias_free, hf, mvit, offline_hf_folder, swin3d

from xai_core.applicability import COLUMNS, cell, markdown_table
from xai_core.engine import explain
from xai_core.errors import MethodError
from xai_core.methods.base import get_method, list_methods, model_guard
from xai_core.methods.gradients import guided_backprop
from xai_core.models.bundled import small_c3d_spec
from xai_core.models.registry import LoadedModel, get_spec, wrap_module
from xai_core.models.spec import InputSpec


@pytest.fixture(autouse=True)
def _threads(request):
    """Tiny nets on one thread; full-size C3D and S3D (slow set) on all of them."""
    if request.node.get_closest_marker("slow") is None:
        request.getfixturevalue("one_thread")

README = Path(__file__).resolve().parents[1] / "README.md"
METHODS = sorted(c.name for c in list_methods())
FAMILIES = [c.key for c in COLUMNS]
SLOW = {"c3d": (16, 112, 112), "s3d": (16, 224, 224)}
#: cheap settings: the question is whether a method runs on a network, not its quality
FAST = {"integrated-gradients": {"steps": 2}, "smoothgrad": {"samples": 2},
        "extremal-perturbation": {"iterations": 2, "areas": (0.1,)},
        # signed maps: a random net's ReLU'd Grad-CAM may be all zero, which proves nothing
        "gradcam": {"relu": False}, "guided-gradcam": {"relu": False}}


def _cnn(arch: str, clip: tuple[int, int, int]) -> LoadedModel:
    spec = small_c3d_spec() if arch == "small-c3d" else get_spec(arch)
    t, h, w = clip
    spec = dataclasses.replace(spec, input=dataclasses.replace(
        spec.input, num_frames=t, height=h, width=w, resize=None, short_side=None))
    torch.manual_seed(0)
    return wrap_module(spec.build(3).eval(), spec, ["a", "b", "c"], name=arch, device="cpu")


@pytest.fixture(scope="module")
def hf_root(tmp_path_factory) -> Iterator[Path]:
    yield from offline_hf_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def models(hf_root) -> dict[str, LoadedModel]:
    """One tiny model per family, built on first use."""
    makers = {
        "small-c3d": lambda: _cnn("small-c3d", (4, 32, 32)),
        "video-resnet": lambda: _cnn("r3d_18", (4, 32, 32)),
        "c3d": lambda: _cnn("c3d", SLOW["c3d"]),
        "s3d": lambda: _cnn("s3d", SLOW["s3d"]),
        "swin3d": swin3d, "mvit": mvit,
        **{f: (lambda f=f: hf(hf_root, f)) for f in HF_FAMILIES},
    }

    class Lazy(dict):
        def __missing__(self, key: str) -> LoadedModel:
            self[key] = makers[key]()
            return self[key]

    return Lazy()


def _clip(model: LoadedModel, b: int = 2) -> torch.Tensor:
    inp = model.input
    return torch.randn(b, 3, inp.num_frames, inp.height, inp.width,
                       generator=torch.Generator().manual_seed(1))


def _state(module: torch.nn.Module) -> tuple:
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                for m in module.modules())
    return (hooks, [m.training for m in module.modules()],
            [p.requires_grad for p in module.parameters()])


def _cases() -> list:
    return [pytest.param(f, m, marks=pytest.mark.slow) if f in SLOW else (f, m)
            for f in FAMILIES for m in METHODS]


@pytest.mark.parametrize("family, method", _cases())
def test_method_works_or_refuses_with_its_reason(models, family, method):
    model = models[family]
    kind, reason = cell(method, family)
    params = dict(FAST.get(method, {}))
    if method == "occlusion":  # 2 × 2 windows over a clip of any size
        t, h, w = model.input.num_frames, model.input.height, model.input.width
        params = {"window": (t, h // 2, w // 2), "stride": (t, h // 2, w // 2)}
    m = get_method(method, **params)
    before = _state(model.module)
    if kind == "refused":
        keyword = reason.split("[")[1].rstrip("]")
        with pytest.raises(MethodError, match=keyword.replace("+", r"\+")):
            m.check(model)  # up front, before any computation
        with pytest.raises(MethodError, match=keyword.replace("+", r"\+")):
            m.attribute(model, _clip(model, 1), 1)
    else:
        m.check(model)
        x = _clip(model)
        out = m.attribute(model, x, 1)
        assert out.relevance.shape == (2, *x.shape[2:])
        assert torch.isfinite(out.relevance).all() and out.relevance.abs().sum() > 0
    assert _state(model.module) == before  # hooks removed, modes and flags restored


@pytest.mark.parametrize("family", [c.key for c in COLUMNS if c.transformer])
def test_guided_backprop_refusal_is_true(models, family):
    """On GELU networks guided backprop has no ReLU to guide: it would be the plain
    gradient, so the method refuses them up front."""
    model = models[family]
    x = _clip(model, 1)
    with pytest.raises(MethodError, match="ReLU networks"):
        get_method("guided-backprop").attribute(model, x, 0)
    with model_guard(model.module):  # the computation the refusal prevents
        guided = guided_backprop(model, x.clone(), torch.zeros(1, dtype=torch.long),
                                 "guided-backprop")
    plain = get_method("gradient").attribute(model, x, 0).relevance
    assert torch.allclose(guided.detach().sum(1).float(), plain, atol=1e-6)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in SLOW])
def test_freeze_frame_decomposition_on_every_family(models, family):
    model = models[family]
    exp = explain(model, _clip(model, 1), ["gradient"], cache=None)
    r = exp.methods["gradient"]
    assert r.full.shape == (model.input.num_frames, model.input.height, model.input.width)
    assert r.spatial.shape == r.full.shape
    assert torch.allclose(torch.as_tensor(r.spatial + r.temporal), torch.as_tensor(r.full),
                          atol=1e-5)
    assert exp.freeze_frame_probabilities.shape == (model.input.num_frames, model.num_classes)


@pytest.mark.parametrize("family", ["swin3d", "mvit", *HF_FAMILIES])
def test_attnlrp_conserves_relevance_on_bias_free_tiny_models(hf_root, family):
    """Σ R = target logit within 1 % (Achtibat et al. 2024's conservation), once nothing but
    the clip can absorb relevance (biases, position embeddings, class tokens zeroed)."""
    model = bias_free({"swin3d": swin3d, "mvit": mvit}.get(
        family, lambda: hf(hf_root, family))())
    x = _clip(model)
    with torch.no_grad():
        logits = model.module(x)[:, 2]
    relevance = get_method("attn-lrp").attribute(model, x, 2).relevance.sum(dim=(1, 2, 3))
    assert torch.allclose(relevance, logits, rtol=0.01, atol=1e-7), (relevance, logits)


def test_mvit_token_layout_matches_the_patch_convolution(models):
    """MViT's tokens on the grid are the patch convolution's output (class token dropped)."""
    model = mvit()
    net = model.module
    x = _clip(model, 1)
    with torch.no_grad():
        for p in net.pos_encoding.parameters():
            p.zero_()
        seen = {}
        handle = net.pos_encoding.register_forward_hook(lambda m, i, o: seen.__setitem__("o", o))
        net(x)
        handle.remove()
        entry = dataclasses.replace(model.spec.token_grid, stride=net.conv_proj.stride)
        grid = entry.to_map(seen["o"], tuple(x.shape[2:]))  # before any pooling: 2×4×4
        assert torch.allclose(grid, net.conv_proj(x), atol=1e-5)
        # a block's (tokens, (T', H', W')) output: the grid it gives is used
        tokens = seen["o"]
        assert model.spec.token_grid.to_map((tokens, (2, 8, 8)), (9, 9, 9)).shape == (
            1, 8, 2, 8, 8)


@pytest.mark.parametrize("relu", [True, False])
def test_token_gradcam_equals_hand_written_on_timesformer(models, relu):
    """Grad-CAM on TimeSformer's (h, w, t)-ordered tokens, written out token by token: weights
    = mean gradient over the patch tokens, map = Σ weight · token, placed at (t, h, w)."""
    model = models["timesformer"]
    x = _clip(model, 1).requires_grad_()
    layer = model.module.get_submodule(model.spec.cam_layer)
    seen = {}
    handle = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("o", o))
    try:
        logits = model.module(x)
    finally:
        handle.remove()
    tokens = seen["o"][0] if isinstance(seen["o"], tuple) else seen["o"]
    (grad,) = torch.autograd.grad(logits[0, 1], tokens)
    tokens, grad = tokens[0, 1:].detach(), grad[0, 1:]  # drop the class token
    weights = grad.mean(dim=0)
    t_, h_, w_ = 4, 4, 4  # 4 frames, 32 px / 8 px patches
    expected = torch.zeros(t_, h_, w_)
    for n in range(tokens.shape[0]):
        h, w, t = n // (w_ * t_), (n // t_) % w_, n % t_
        expected[t, h, w] = (weights * tokens[n]).sum()
    if relu:
        expected = expected.clamp(min=0)
    cam = get_method("gradcam", relu=relu).coarse_map(model, x, torch.tensor([1]))
    assert torch.allclose(cam[0].detach(), expected, atol=1e-6)


def test_zennit_lrp_refusal_points_to_attnlrp(models):
    with pytest.raises(MethodError, match="attn-lrp"):
        get_method("dtd").check(models["swin3d"])


def test_readme_shows_the_table():
    methods = [c.name for c in sorted(list_methods(), key=lambda c: (c.family, c.name))]
    assert markdown_table(methods) in README.read_text(encoding="utf-8")


def test_cli_prints_the_table(capsys):
    code, out, _ = run_cli(capsys, ["methods", "--applicability"])
    lines = out.splitlines()
    assert code == 0 and all(c.title in lines[0] for c in COLUMNS)
    rows = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert set(METHODS) <= set(rows)
    assert rows["attn-lrp"].split()[1:] == ["✗"] * 4 + ["✓"] * 5
    code, out, _ = run_cli(capsys, ["methods", "--json"])
    import json
    applies = {r["name"]: r["applies_to"] for r in json.loads(out)}
    assert applies["gradcam"]["vivit"] == "works"
    assert applies["saliency-tubes"]["mvit"].startswith("refused: class-token head")


def test_unknown_family_input_spec_defaults():
    # sanity of the tiny helpers: CNN clips at 4×32×32 keep the spec's normalisation
    spec = _cnn("r3d_18", (4, 32, 32)).input
    assert isinstance(spec, InputSpec) and spec.mean == get_spec("r3d_18").input.mean
