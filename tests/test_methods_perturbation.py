"""Spatio-temporal extremal perturbation: building blocks against slow references, and the
whole optimisation on a toy model whose score depends only on a known box."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from xai_core.errors import ParameterError
from xai_core.methods import get_method
from xai_core.methods._extremal import (
    SMOOTH_MAX_COLDNESS,
    SmoothMaskGenerator,
    apply_pyramid,
    area_loss,
    area_templates,
    core_loss,
    ellipsoid_kernel,
    perturbation_pyramid,
    smooth_max_kernel,
    temporal_smooth,
)
from xai_core.methods.base import Attribution, Method
from xai_core.methods.perturbation import AREA_RTOL, ExtremalPerturbation, extremal_perturbation
from xai_core.models.registry import wrap_module
from xai_core.models.spec import InputSpec, ModelSpec

T, H, W = 8, 24, 24
#: The toy model reads only this box: frames 2-4, a 9×9 square aligned to a step-3 grid.
BOX = (slice(2, 5), slice(6, 15), slice(9, 18))
#: Fast settings: step 3 on 24 px, few iterations; fade is the perturbation whose effect
#: on a box mean is linear in the mask, so the optimum is the box itself.
FAST = dict(step=3, perturbation="fade", iterations=150, tolerance=2e-3, patience=5)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny tensors: with 2 threads on a busy machine OpenMP hand-offs cost 50x the work.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class BoxReader(nn.Module):
    """Logit 0 = mean of the clip inside BOX (all channels), logit 1 = its negative."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x[:, :, BOX[0], BOX[1], BOX[2]].mean(dim=(2, 3, 4)))


def box_mask() -> torch.Tensor:
    m = torch.zeros(T, H, W, dtype=torch.bool)
    m[BOX] = True
    return m


def toy_clip(seed: int = 0, batch: int = 1) -> torch.Tensor:
    """Noise, the bright square in EVERY frame (only frames 2-4 matter) and a distractor."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(batch, 3, T, H, W, generator=g)
    x[:, :, :, BOX[1], BOX[2]] += 2.0
    x[:, :, :, 1:6, 1:6] += 2.0
    return x


def toy_model():
    spec = ModelSpec(name="box-reader", build=lambda n: BoxReader(),
                     input=InputSpec(num_frames=T, height=H, width=W), description="toy",
                     cam_layer="head", classifier="head")
    return wrap_module(BoxReader(), spec, ["box", "not-box"], device="cpu")


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def top_voxels(score: torch.Tensor, k: int) -> torch.Tensor:
    out = torch.zeros(score.numel(), dtype=torch.bool)
    out[score.flatten().topk(k).indices] = True
    return out.view_as(score)


# --------------------------------------------------------------------------- building blocks
def slow_smooth_max(params: torch.Tensor, step: int, sigma: float, shape,
                    truncate: bool = True) -> torch.Tensor:
    """Per pixel: smooth max over the grid points within the radius, zeros outside; with
    ``truncate``, only over the offsets that come within 1.5σ of some pixel of a cell."""
    t, h, w = shape
    gen = SmoothMaskGenerator(shape, step, sigma)
    m, r = gen.margin, gen.radius
    _, gh, gw = gen.grid_shape
    c = (step - 1) / 2

    near = {(oy, ox) for oy in range(-r, r + 1) for ox in range(-r, r + 1)
            if min(math.hypot(a - oy * step - c, b - ox * step - c)
                   for a in range(step) for b in range(step)) <= 1.5 * sigma}
    out = torch.zeros(params.shape[0], t, h + 2 * m, w + 2 * m, dtype=torch.float64)
    grid = params.tolist()
    for n in range(params.shape[0]):
        for f in range(t):
            for yy in range(-m, h + m):
                for xx in range(-m, w + m):
                    cy, cx = math.floor(yy / step), math.floor(xx / step)
                    vals = []
                    for j in range(cy - r, cy + r + 1):
                        for i in range(cx - r, cx + r + 1):
                            if truncate and (j - cy, i - cx) not in near:
                                continue
                            p = grid[n][f][j][i] if 0 <= j < gh and 0 <= i < gw else 0.0
                            d = math.hypot(yy - (j * step + (step - 1) / 2),
                                           xx - (i * step + (step - 1) / 2))
                            vals.append(p * math.exp(-2 * max(d / sigma - 0.5, 0.0) ** 2))
                    e = [math.exp(SMOOTH_MAX_COLDNESS * v) for v in vals]
                    num = sum(v * ei for v, ei in zip(vals, e, strict=True))
                    out[n, f, yy + m, xx + m] = num / sum(e)
    return out.clamp(0, 1)


def test_smooth_max_generator_matches_slow_reference():
    shape, step, sigma = (2, 5, 8), 3, 4.5
    gen = SmoothMaskGenerator(shape, step, sigma)
    params = torch.rand(1, *gen.grid_shape, generator=torch.Generator().manual_seed(1))
    fast = gen(params)
    assert fast.shape == (1, 2, 5 + 2 * gen.margin, 8 + 2 * gen.margin)
    torch.testing.assert_close(fast.double(), slow_smooth_max(params, step, sigma, shape),
                               atol=1e-5, rtol=1e-5)
    # dropping the far grid points (weight < e⁻²) changes the mask by less than e⁻²
    full = slow_smooth_max(params, step, sigma, shape, truncate=False)
    assert (fast.double() - full).abs().max() < math.exp(-2)


def test_smooth_max_gradient_matches_autograd_of_the_formula():
    gen = SmoothMaskGenerator((2, 8, 7), step=3, sigma=4.0)
    params = torch.rand(2, *gen.grid_shape, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(4), requires_grad=True)
    gen._tiles = gen._tiles.double()
    assert torch.autograd.gradcheck(gen, (params,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_generator_plateaus_and_temporal_cells():
    gen = SmoothMaskGenerator((6, 21, 21), step=7, sigma=11, temporal_step=2)
    assert gen.grid_shape == (3, 3, 3)
    ones = gen.crop(gen(torch.ones(1, *gen.grid_shape)))
    # a near-flat plateau: the smooth max sits a little below the max where many
    # neighbours are almost as large (softmax weight e^(−20·gap))
    assert ones.min() > 0.95
    assert gen(torch.zeros(1, *gen.grid_shape)).abs().max() == 0
    p = torch.zeros(1, *gen.grid_shape)
    p[0, 1, 1, 1] = 1.0  # one grid point in the second temporal cell = frames 2 and 3
    m = gen.crop(gen(p))[0]
    assert m[2, 10, 10] > 0.95 and m[3, 10, 10] > 0.95
    assert m[[0, 1, 4, 5]].abs().max() == 0
    assert smooth_max_kernel(torch.tensor([0.0, 0.5, 1.0])).tolist() == pytest.approx(
        [1.0, 1.0, math.exp(-0.5)])


def test_apply_pyramid_matches_hat_interpolation():
    g = torch.Generator().manual_seed(2)
    pyr = torch.randn(2, 5, 3, 2, 4, 4, generator=g)  # B=2 clips, L=5 levels
    masks = torch.rand(2, 3, 2, 4, 4, generator=g)  # M=3 masks per clip
    masks[0, 0] = 1.0
    masks[1, 2] = 0.0
    out = apply_pyramid(pyr, masks).view(2, 3, 3, 2, 4, 4)
    # obviously correct: weight of level l is the hat max(0, 1 − |m·(L−1) − l|)
    lv = torch.arange(5).view(1, 1, 5, 1, 1, 1, 1).float()
    hat = (1 - (masks.unsqueeze(2).unsqueeze(3) * 4 - lv).abs()).clamp(min=0)
    ref = (hat * pyr.unsqueeze(1)).sum(dim=2)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(out[0, 0], pyr[0, 4])  # mask 1 = the clip itself
    torch.testing.assert_close(out[1, 2], pyr[1, 0])  # mask 0 = most perturbed


def test_pyramid_ends_and_fade_is_mean():
    x = torch.randn(1, 3, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    blur = perturbation_pyramid(x, "blur", levels=4, max_blur=20)
    torch.testing.assert_close(blur[:, -1], x)
    # σ = 20 on 16 px: every frame nearly flat; a constant clip stays exactly constant
    assert blur[:, 0].std(dim=(3, 4)).max() < 0.25 * x.std(dim=(3, 4)).min()
    const = torch.full((1, 3, 2, 16, 16), 0.4)
    torch.testing.assert_close(perturbation_pyramid(const, "blur", 4, 20),
                               const[:, None].expand(1, 4, 3, 2, 16, 16))
    fade = perturbation_pyramid(x, "fade", levels=3)
    assert fade[:, 0].abs().max() == 0  # 0 = the dataset mean in normalised space
    torch.testing.assert_close(fade[:, 1], 0.5 * x)


def test_area_template_and_loss():
    tpl = area_templates(torch.tensor([0.1, 0.5]), n=40, kept_of=20)
    assert tpl.sum(dim=1).tolist() == [2, 10] and (tpl[:, -2:] == 1).all()
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    masks = tpl[:, perm].view(2, 1, 5, 8)  # any arrangement of the right values: zero loss
    assert area_loss(masks, tpl, "3d").abs().max() == 0
    assert (area_loss(torch.ones(2, 1, 5, 8), tpl, "3d") > 0).all()
    frame_tpl = area_templates(torch.tensor([0.25]), n=8, kept_of=8)
    per_frame = frame_tpl.repeat(3, 1).view(1, 3, 2, 4)  # two ones in every frame
    assert area_loss(per_frame, frame_tpl, "2d-per-frame").item() == 0
    lopsided = torch.zeros(1, 3, 2, 4)
    lopsided[0, 0].view(-1)[:6] = 1.0  # six ones, all in frame 0: right volume, wrong frames
    assert area_loss(lopsided, area_templates(torch.tensor([0.25]), 24, 24), "3d").item() == 0
    assert area_loss(lopsided, frame_tpl, "2d-per-frame").item() > 0


def test_temporal_smoothing_follows_eq7():
    x = torch.rand(1, 5, 2, 2)
    assert torch.equal(temporal_smooth(x, 0), x)  # Δt = 0 is the paper's plain method
    const = torch.full((1, 6, 2, 2), 0.7)
    torch.testing.assert_close(temporal_smooth(const, 2), const)  # borders renormalised
    impulse = torch.zeros(1, 9, 1, 1)
    impulse[0, 4] = 1.0
    out = temporal_smooth(impulse, 2)[0, :, 0, 0]
    k = torch.exp(-torch.arange(-2, 3).float() ** 2 / (0.6 * 2))
    torch.testing.assert_close(out[2:7], k / k.sum())
    assert out[:2].abs().max() == 0 and out[7:].abs().max() == 0


def test_ellipsoid_kernel_and_core_loss():
    k = ellipsoid_kernel((21, 21, 21))
    assert torch.equal(k, k.flip(0)) and torch.equal(k, k.flip(1))
    assert torch.equal(k, k.transpose(0, 2))
    assert k.mean().item() == pytest.approx(math.pi / 6, rel=0.05)  # inscribed ellipsoid
    small = ellipsoid_kernel((3, 5, 5))
    full = torch.ones(2, 4, 8, 8)
    assert core_loss(full, small).abs().max() == 0
    blob = torch.zeros(1, 4, 8, 8)
    blob[0, 1:4, 2:7, 2:7] = 1.0
    scattered = torch.zeros(1, 4, 8, 8)
    scattered.view(-1)[:: 4][: int(blob.sum())] = 1.0  # same volume, no compact core
    assert core_loss(blob, small).item() == 0
    assert core_loss(scattered, small).item() > 0.3


# --------------------------------------------------------------------------- the optimisation
@pytest.fixture(scope="module")
def preserve_run():
    torch.set_num_threads(1)
    model = BoxReader().eval()
    return extremal_perturbation(model, toy_clip(), 0, areas=(0.05,), **FAST)


def test_preserve_mask_finds_the_box(preserve_run):
    mask = preserve_run.masks[0, 0]
    box = box_mask()
    assert iou(top_voxels(mask, int(box.sum())), box) > 0.6  # chance level is ~0.03
    assert mask[2:5].sum() / mask.sum() > 0.95  # only the frames the model reads
    # the kept clip scores close to the clean clip's logit (≈ 6)
    assert preserve_run.reward[0, 0] > 0.8 * BoxReader()(toy_clip())[0, 0].item()


def test_early_stop_triggers_and_can_be_disabled(preserve_run):
    assert preserve_run.converged.tolist() == [True]
    assert 0 < preserve_run.iterations.item() < FAST["iterations"]
    capped = extremal_perturbation(BoxReader().eval(), toy_clip(), 0, areas=(0.05,),
                                   **{**FAST, "tolerance": 0.0, "iterations": 6})
    assert capped.iterations.tolist() == [6] and capped.converged.tolist() == [False]


def test_snapshots_record_the_masks_as_they_settle():
    kw = {**FAST, "areas": (0.05,)}
    stopped = extremal_perturbation(BoxReader().eval(), toy_clip(), 0, **kw,
                                    snapshots=(1, 10, kw["iterations"]))
    n = stopped.iterations.item()
    assert n < kw["iterations"]  # it stopped early ...
    assert sorted(stopped.history) == [1, 10, kw["iterations"]]
    # ... so a snapshot after the stop is the final mask, and the first one is not
    assert torch.equal(stopped.history[kw["iterations"]], stopped.masks.cpu())
    assert not torch.equal(stopped.history[1], stopped.masks.cpu())
    capped = extremal_perturbation(BoxReader().eval(), toy_clip(), 0,
                                   **{**kw, "tolerance": 0.0, "iterations": 6}, snapshots=(3, 6))
    assert torch.equal(capped.history[6], capped.masks.cpu())
    again = extremal_perturbation(BoxReader().eval(), toy_clip(), 0,
                                  **{**kw, "tolerance": 0.0, "iterations": 3})
    assert torch.equal(capped.history[3], again.masks.cpu())  # the run up to iteration 3


def test_area_constraint_holds_for_the_volume_and_per_frame(preserve_run):
    assert preserve_run.kept[0, 0].item() == pytest.approx(0.05, rel=AREA_RTOL)
    model = BoxReader().eval()
    # areas larger than the box's 14 % of a frame: the reward does not fight the budget
    per_frame = extremal_perturbation(model, toy_clip(), 0, areas=(0.2, 0.4),
                                      budget="2d-per-frame", **{**FAST, "iterations": 100})
    for j, a in enumerate((0.2, 0.4)):
        frames = (per_frame.masks[0, j] > 0.5).float().mean(dim=(1, 2))
        assert frames.tolist() == pytest.approx([a] * T, rel=AREA_RTOL), a
        assert per_frame.masks[0, j][box_mask()].mean() > 0.9  # the box is inside the kept area


def test_delete_variant_finds_the_box_too():
    res = extremal_perturbation(BoxReader().eval(), toy_clip(), 0, areas=(0.05,),
                                variant="delete", **FAST)
    box = box_mask()
    assert iou(top_voxels(res.masks[0, 0], int(box.sum())), box) > 0.5
    assert res.reward[0, 0] < 0  # reward = − logit of the clip with the mask deleted


def test_deterministic_with_a_seed():
    kw = {**FAST, "iterations": 12, "tolerance": 0.0, "seed": 3}
    a = extremal_perturbation(BoxReader().eval(), toy_clip(), 0, areas=(0.1,), **kw)
    b = extremal_perturbation(BoxReader().eval(), toy_clip(), 0, areas=(0.1,), **kw)
    assert torch.equal(a.masks, b.masks)


# --------------------------------------------------------------------------- the engine contract
def method(**kw) -> ExtremalPerturbation:
    return get_method("extremal-perturbation", **{**FAST, "areas": (0.05, 0.15),
                                                   "iterations": 40, **kw})


def test_a_clip_does_not_depend_on_the_rest_of_its_batch(preserve_run):
    # the second clip converges at another iteration and leaves the batch early
    x = torch.cat([toy_clip(), 0.5 * toy_clip(seed=6)])
    both = extremal_perturbation(BoxReader().eval(), x, 0, areas=(0.05,), **FAST)
    assert both.iterations[0] != both.iterations[1]
    assert both.iterations[0] == preserve_run.iterations[0]
    torch.testing.assert_close(both.masks[:1], preserve_run.masks, atol=1e-5, rtol=1e-4)


def test_through_the_base_contract_with_several_clips_in_chunks():
    loaded = toy_model()
    x = toy_clip(seed=5, batch=3)
    m = method(iterations=10)
    out = m.attribute(loaded, x, 0, batch_size=2)
    assert isinstance(out, Attribution) and out.raw is None
    rel = out.relevance
    assert rel.shape == (3, T, H, W) and rel.min() >= 0
    assert rel.flatten(1).max(dim=1).values.tolist() == pytest.approx([1.0] * 3)
    one_chunk = m.attribute(loaded, x, 0, batch_size=3).relevance
    torch.testing.assert_close(rel, one_chunk, atol=1e-5, rtol=1e-4)


def test_progress_is_reported_per_iteration():
    calls = []
    method(iterations=5, tolerance=0.0).attribute(toy_model(), toy_clip(), 0,
                                                  progress=lambda d, n, s: calls.append((d, n)))
    assert calls == [(i, 5) for i in range(1, 6)]


def test_model_is_left_untouched():
    loaded = toy_model()
    net = loaded.module
    net.train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    method(iterations=5).attribute(loaded, toy_clip(), 0)
    assert net.training and net.head.training
    assert all(p.requires_grad and p.grad is None for p in net.parameters())
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_cost_estimate_counts_model_passes():
    # 2 areas × 2 clip passes per mask step
    assert method(iterations=40).cost_passes() == 40 * 2 * 2
    assert method(iterations=40, variant="dual").cost_passes() == 40 * 2 * 2 * 2

    class OnePass(Method):
        name = "one-pass"

        def _attribute(self, model, x, target, progress=None):
            raise NotImplementedError

    assert OnePass().cost_passes() == 1


def test_options_of_the_paper_run_and_change_the_masks():
    kw = {**FAST, "iterations": 20, "tolerance": 0.0}
    model = BoxReader().eval()
    plain = extremal_perturbation(model, toy_clip(), 0, areas=(0.1,), **kw)
    smooth = extremal_perturbation(model, toy_clip(), 0, areas=(0.1,), temporal_smoothing=1, **kw)
    core = extremal_perturbation(model, toy_clip(), 0, areas=(0.1,), core_weight=50.0,
                                 core_size=(3, 9, 9), **kw)
    for res in (smooth, core):
        assert torch.isfinite(res.masks).all() and not torch.equal(res.masks, plain.masks)
    # neighbouring frames are closer once smoothed over ±1 frame
    def jump(r):
        return (r.masks[0, 0, 1:] - r.masks[0, 0, :-1]).abs().mean()
    assert jump(smooth) < jump(plain)


def test_bad_input_gets_parameter_errors():
    with pytest.raises(ParameterError):
        get_method("extremal-perturbation", areas=(0.0, 0.5))
    with pytest.raises(ParameterError):
        get_method("extremal-perturbation", variant="keep")
    with pytest.raises(ParameterError, match="step"):
        method(step=40).attribute(toy_model(), toy_clip(), 0)
    with pytest.raises(ParameterError, match="areas"):
        extremal_perturbation(BoxReader(), toy_clip(), 0, areas=())
