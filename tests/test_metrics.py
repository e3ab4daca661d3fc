"""Metrics against hand-computed values on tiny arrays and toy models with known answers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from xai_core.baselines import baseline_clip
from xai_core.errors import ParameterError
from xai_core.filters import gaussian_blur
from xai_core.methods.base import Attribution, Method
from xai_core.metrics import ClipEvidence, get_metric, list_metrics
from xai_core.metrics.causal import (
    auc,
    cell_index,
    perturbation_curve,
    rank_units,
    saliency_metric,
    target_probability,
)
from xai_core.metrics.localisation import (
    ground_truth_shares,
    pointing_game_spatial,
    pointing_game_temporal,
)
from xai_core.metrics.motion import (
    agreement,
    flow_magnitude,
    motion_precision,
    motion_precision_top,
    selectivity,
    summarise_motion_share,
)
from xai_core.metrics.sanity import cascading_randomisation, learnable_layers, spearman
from xai_core.models.registry import wrap_module
from xai_core.models.spec import InputSpec, ModelSpec

T, H, W = 4, 8, 8


# --------------------------------------------------------------------------- toy models
class RegionModel(nn.Module):
    """logit0 = gain · mean of x over a known region (all channels), logit1 = 0.

    P(class 0) rises with what is visible in the region and nothing else matters, so
    the ideal ranking (region first) is known.
    """

    def __init__(self, region: torch.Tensor, gain: float = 8.0) -> None:
        super().__init__()
        self.register_buffer("region", region.float())
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.region
        s = (x * r).sum(dim=(1, 2, 3, 4)) / (3 * r.sum())
        return torch.stack([self.gain * s, torch.zeros_like(s)], dim=1)


def _spec(mean: float = 0.5) -> ModelSpec:
    # grey (127.5) maps to exactly 0 with mean 0.5, std 1, scale 1/255
    inp = InputSpec(num_frames=T, height=H, width=W, mean=(mean,) * 3, std=(1.0,) * 3)
    return ModelSpec(name="toy", build=lambda n: nn.Identity(), input=inp,
                     description="toy", cam_layer="")


def _region() -> torch.Tensor:
    region = torch.zeros(T, H, W)
    region[1:3, 2:5, 3:6] = 1  # 2·3·3 = 18 voxels of 256
    return region


def _toy():
    region = _region()
    model = wrap_module(RegionModel(region), _spec(), ["a", "b"], device="cpu")
    # the clip is bright (1) in the region, mid-grey (0) elsewhere, with texture
    g = torch.Generator().manual_seed(0)
    x = 0.2 * torch.randn(1, 3, T, H, W, generator=g) + region
    return model, x, region


# --------------------------------------------------------------------------- motion
def test_motion_precision_by_hand():
    rel = np.array([[[1.0, -2.0], [0.5, 0.0]]])  # positive at (0,0) and (1,0)
    flow = np.array([[[0.9, 3.0], [0.1, 2.0]]])  # moving (>0.5) at (0,0), (0,1), (1,1)
    assert motion_precision(rel, flow, 0.5) == pytest.approx(1 / 2)
    assert motion_precision(rel, flow, 0.05) == pytest.approx(2 / 2)
    assert motion_precision(rel, flow, 5.0) == 0.0
    assert math.isnan(motion_precision(-np.abs(rel), flow))
    # min_relevance: only R > 0.6 · max counts → the single voxel (0,0)
    assert motion_precision(rel, flow, 0.5, min_relevance=0.6) == 1.0


def _smooth_texture(rng, size: int, sigma: float) -> np.ndarray:
    tex = cv2.GaussianBlur((rng.random((size, size)) * 255).astype(np.float32), (0, 0), sigma)
    return cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def test_motion_precision_top_uses_a_fixed_area_budget():
    rel = np.arange(10, dtype=float).reshape(1, 2, 5) - 1.0  # -1, 0, 1 .. 8: 8 positive
    flow = np.zeros((1, 2, 5))
    flow[0, 1, 4] = flow[0, 1, 3] = flow[0, 0, 1] = 1.0  # values 8, 7 and 0 move
    # top 20 % = the 2 largest values (8 and 7): both move
    assert motion_precision_top(rel, flow, top=0.2) == 1.0
    # top 40 % = 8, 7, 6, 5: half move; the paper's R > 0 counts all 8 positive voxels
    assert motion_precision_top(rel, flow, top=0.4) == 0.5
    assert motion_precision(rel, flow) == pytest.approx(2 / 8)
    # a sparse map with fewer positive voxels than the budget uses only those
    sparse = np.zeros((1, 2, 5))
    sparse[0, 0, 1] = 1.0
    assert motion_precision_top(sparse, flow, top=0.5) == 1.0
    assert math.isnan(motion_precision_top(-np.ones((1, 2, 5)), flow))


def test_flow_magnitude_finds_a_moving_square_and_gives_every_frame_flow():
    rng = np.random.default_rng(0)
    bg = _smooth_texture(rng, 64, 1.5)
    patch = _smooth_texture(rng, 16, 1.0)
    frames = []
    for t in range(5):  # a 16×16 textured square moving 2 px/frame to the right
        f = bg.copy()
        f[24:40, 10 + 2 * t : 26 + 2 * t] = patch
        frames.append(np.repeat(f[..., None], 3, axis=2))
    frames = np.stack(frames)
    for algo in ("dis-medium", "farneback"):
        mag = flow_magnitude(frames[..., ::-1], algo)  # a non-contiguous view must work
        assert mag.shape == (5, 64, 64)
        for t in range(5):  # first and last frames included
            inside = mag[t, 28:36, 14 + 2 * t : 22 + 2 * t]
            assert np.median(inside) == pytest.approx(2.0, abs=0.5)
            assert np.median(mag[t, :, 48:]) < 0.1  # static background
    with pytest.raises(ParameterError):
        flow_magnitude(frames, "tvl1")


def test_selectivity_by_hand():
    base = np.array([[[2.0, 1.0], [1.0, -4.0]]])  # area 3, mass 4
    sel = base * np.array([[[1, 0], [0, 1]]])  # keeps 2.0 and −4.0
    out = selectivity(sel, base)
    assert out["area_ratio"] == pytest.approx(1 / 3)
    assert out["mass_ratio"] == pytest.approx(2 / 4)
    assert math.isnan(selectivity(sel, -np.abs(base))["area_ratio"])


def test_agreement_by_hand():
    a = np.array([[[1.0, 1.0, 0.0, -1.0]]])
    b = np.array([[[1.0, 0.0, 1.0, 1.0]]])
    out = agreement(a, b)  # A = {0,1}, B = {0,2,3}: ∩ 1, ∪ 4
    assert out["iou"] == pytest.approx(1 / 4)
    assert out["dice"] == pytest.approx(2 * 1 / 5)
    assert agreement(a, a)["iou"] == 1.0
    # top fraction 0.25 → one voxel each: a's first maximum (index 0), b's (index 0)
    assert agreement(np.array([[[3.0, 2, 1, 0]]]), np.array([[[9.0, 0, 0, 1]]]), top=0.25)[
        "iou"] == 1.0
    assert agreement(np.array([[[3.0, 2, 1, 0]]]), np.array([[[0.0, 9, 0, 1]]]), top=0.25)[
        "iou"] == 0.0


def test_motion_share_summary():
    s = summarise_motion_share([0.2, 0.4, float("nan"), 0.6])
    assert s["n"] == 3
    assert s["mean"] == pytest.approx(0.4)
    assert s["std"] == pytest.approx(0.2)
    assert s["spatial_bias"] == pytest.approx(0.6)


# --------------------------------------------------------------------------- causal
def test_auc_trapezoid_by_hand():
    assert auc([0.0, 1.0]) == pytest.approx(0.5)
    assert auc([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert auc([0.0, 1.0, 0.0]) == pytest.approx(0.5)
    assert auc([0.0, 0.5, 1.0, 1.0, 1.0]) == pytest.approx((0.25 + 0.75 + 1 + 1) / 4)


def test_rank_units_descending_with_seeded_ties():
    rel = np.array([[[0.0, 5.0, 0.0, 1.0, 0.0, 0.0]]])
    cells = cell_index(rel.shape, None)
    r = rank_units(rel, cells, seed=3)
    assert r[1] == 0 and r[3] == 1  # 5 then 1, then the zeros
    assert sorted(r) == list(range(6))
    assert list(rank_units(rel, cells, seed=3)) == list(r)  # deterministic
    flat = np.zeros((1, 1, 64))
    orders = {tuple(rank_units(flat, cell_index(flat.shape, None), seed=s)) for s in range(3)}
    assert len(orders) == 3  # ties really are shuffled, not raster order
    assert tuple(range(64)) not in orders


def test_cell_index_grid():
    cells = cell_index((2, 4, 6), (2, 3))
    assert cells.max() == 2 * 2 * 3 - 1
    assert (cells[0, :2, :2] == 0).all() and (cells[0, 2:, 4:] == 5).all()
    assert (cells[1] == cells[0] + 6).all()
    # the grid is clipped to the frame size
    assert cell_index((1, 2, 2), (16, 16)).max() == 3


def _slow_curve(model, x, target, rel, start, end, steps, seed):
    """Obviously-correct reference: pixel order by sorting, one clip at a time."""
    flat = rel.ravel()
    tie = np.random.default_rng(seed).permutation(flat.size)
    order = sorted(range(flat.size), key=lambda i: (-flat[i], tie[i]))
    probs = []
    for k in range(steps + 1):
        n = round(k * flat.size / steps)
        mask = np.zeros(flat.size, np.float32)
        mask[order[:n]] = 1
        m = torch.from_numpy(mask.reshape(rel.shape))
        clip = start + m * (end - start)
        probs.append(float(target_probability(model, clip, target)[0]))
    return np.array(probs)


def test_perturbation_curve_matches_slow_reference():
    model, x, region = _toy()
    rel = np.random.default_rng(1).normal(size=(T, H, W)).astype(np.float32)
    rel[0, 0, :4] = 0.0  # a few ties
    start = gaussian_blur(x, 2.0)
    fast = perturbation_curve(model, x, 0, rel, start, x, steps=8, grid=None, seed=5,
                              batch_size=3)
    slow = _slow_curve(model, x, 0, rel, start, x, 8, seed=5)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)
    # endpoints: all start, then all end
    assert fast[0] == pytest.approx(target_probability(model, start, 0)[0], abs=1e-6)
    assert fast[-1] == pytest.approx(target_probability(model, x, 0)[0], abs=1e-6)


def test_insertion_and_deletion_rank_ideal_over_random_over_reversed():
    model, x, region = _toy()
    ideal = region.numpy() + 0.01 * np.random.default_rng(2).random((T, H, W))
    reverse = -ideal
    ev = ClipEvidence(maps={"ideal": {"full": ideal}, "reversed": {"full": reverse}},
                      target=0, model=model, x=x, seed=0)
    ins = {(r.method, r.quantity): r.value for r in get_metric("insertion", steps=16, grid=0,
                                                               sigma=2.0).compute(ev)}
    dele = {(r.method, r.quantity): r.value for r in get_metric("deletion", steps=16,
                                                                grid=0).compute(ev)}
    assert ins[("ideal", "insertion_auc")] > ins[("random", "insertion_auc")] > \
        ins[("reversed", "insertion_auc")]
    assert dele[("ideal", "deletion_auc")] < dele[("random", "deletion_auc")] < \
        dele[("reversed", "deletion_auc")]
    assert ("ideal", "full", "insertion") not in ev.curves  # keyed (metric, method, variant)
    assert len(ev.curves[("insertion", "ideal", "full")]) == 17
    # the random baseline is computed once per clip and configuration
    assert sum(1 for k in ev.cache if k[0] == "insertion") == 1


def test_grey_baseline_is_pixel_127_5_through_the_spec():
    model = wrap_module(RegionModel(_region()), _spec(mean=0.2), ["a", "b"], device="cpu")
    x = torch.zeros(1, 3, T, H, W)
    grey = baseline_clip(model, x, "grey")
    assert torch.allclose(grey, torch.full_like(x, 127.5 / 255 - 0.2))
    with pytest.raises(ParameterError):
        baseline_clip(model, x, "white")


def test_gaussian_blur_keeps_constants_and_does_not_mix_frames():
    x = torch.full((1, 3, 2, 9, 9), 0.7)
    assert torch.allclose(gaussian_blur(x, 3.0), x, atol=1e-6)
    x = torch.zeros(1, 1, 2, 9, 9)
    x[0, 0, 0, 4, 4] = 1.0
    y = gaussian_blur(x, 1.0)
    assert y[0, 0, 1].abs().max() == 0  # nothing leaks into the other frame
    assert y[0, 0, 0].sum() == pytest.approx(1.0, abs=1e-5)  # mass kept (reflect padding)
    assert y[0, 0, 0, 4, 4] < 0.5


def test_saliency_metric_by_hand():
    model, x, region = _toy()
    rel = np.zeros((T, H, W), np.float32)
    rel[region.numpy() > 0] = 1.0  # keeps the region at both thresholds
    rel[0, 0, 0] = 0.6  # kept at 0.5, not at 0.75
    blurred = gaussian_blur(x, 2.0)
    sm = saliency_metric(model, x, 0, rel, blurred)
    keep50 = torch.from_numpy(rel >= 0.5).float()
    keep75 = torch.from_numpy(rel >= 0.75).float()
    p50 = target_probability(model, blurred + keep50 * (x - blurred), 0)[0]
    p75 = target_probability(model, blurred + keep75 * (x - blurred), 0)[0]
    a50, a75 = 19 / 256, 18 / 256
    assert sm[0.5] == pytest.approx(math.log(max(a50, 0.05)) - math.log(p50), rel=1e-5)
    assert sm[0.75] == pytest.approx(math.log(max(a75, 0.05)) - math.log(p75), rel=1e-5)
    # tiny areas are floored at τ = 0.05
    one = np.zeros((T, H, W), np.float32)
    one[1, 3, 4] = 1.0
    p = target_probability(model, blurred + torch.from_numpy(one) * (x - blurred), 0)[0]
    assert saliency_metric(model, x, 0, one, blurred)[0.5] == pytest.approx(
        math.log(0.05) - math.log(p), rel=1e-5)
    assert math.isnan(saliency_metric(model, x, 0, -np.abs(rel), blurred)[0.5])


def test_saliency_metric_prefers_the_region_over_random():
    model, x, region = _toy()
    ev = ClipEvidence(maps={"ideal": {"full": region.numpy()}}, target=0, model=model, x=x)
    rows = {(r.method, r.quantity): r.value for r in get_metric("saliency_metric").compute(ev)}
    assert rows[("ideal", "sm50")] < rows[("random", "sm50")]


# --------------------------------------------------------------------------- localisation
def test_pointing_game_spatial_hits_and_misses():
    mask = np.zeros((4, 32, 32), bool)
    mask[:, 10:14, 10:14] = True
    mask[3] = False  # no ground truth on frame 3: skipped
    rel = np.zeros((4, 32, 32))
    rel[0, 12, 12] = 1.0  # inside: hit
    rel[1, 12, 20] = 1.0  # 7 px right of the mask's edge (col 13): hit at tolerance 7
    rel[2, 12, 21] = 1.0  # 8 px: miss
    out = pointing_game_spatial(rel, mask, tolerance=7)
    assert (out["hits"], out["frames"]) == (2, 3)
    assert out["hit_rate"] == pytest.approx(2 / 3)
    assert pointing_game_spatial(rel, mask, tolerance=0)["hits"] == 1
    flat = np.zeros_like(rel)  # no maximum to point with: all misses
    assert pointing_game_spatial(flat, mask)["hits"] == 0
    with pytest.raises(ParameterError):
        pointing_game_spatial(rel[:, :8], mask)


def test_pointing_game_temporal():
    rel = np.zeros((6, 4, 4))
    rel[4, 1, 1] = 3.0
    rel[1] = 0.5  # more total mass in frame 1, but a lower maximum
    seg = np.array([0, 0, 0, 1, 1, 0], bool)
    assert pointing_game_temporal(rel, seg, "max") == 1.0
    assert pointing_game_temporal(rel, seg, "sum") == 0.0
    assert math.isnan(pointing_game_temporal(np.zeros((6, 4, 4)), seg))


def test_ground_truth_shares_by_hand():
    rel = np.array([[[4.0, 1.0, -3.0, 0.0], [2.0, 1.0, 0.0, 0.0]]])  # positive mass 8
    actor = np.zeros((1, 2, 4), bool)
    actor[0, 0, :2] = True  # 2 of 8 pixels; mass 5
    context = np.zeros((1, 2, 4), bool)
    context[0, 1, 0] = context[0, 0, 2] = True  # mass 2 (the −3 does not count)
    out = ground_truth_shares(rel, actor, context)
    assert out["actor_share"] == pytest.approx(5 / 8)
    assert out["actor_lift"] == pytest.approx((5 / 8) / (2 / 8))
    assert out["context_share"] == pytest.approx(2 / 8)
    assert out["context_lift"] == pytest.approx(1.0)
    uniform = ground_truth_shares(np.ones((1, 2, 4)), actor, context)
    assert uniform["actor_lift"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- sanity
class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv3d(4, 4, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x))))).flatten(1))


class GradTimesInput(Method):
    name = "test-grad-x-input"

    def _attribute(self, model, x, target, progress=None):
        x = x.detach().requires_grad_(True)
        out = model.module(x)
        out.gather(1, target.view(-1, 1)).sum().backward()
        raw = (x.grad * x).detach()
        return Attribution(raw.sum(1), raw)


class InputOnly(Method):
    """Ignores the model entirely: the failure the sanity check exists to catch."""

    name = "test-input-only"

    def _attribute(self, model, x, target, progress=None):
        return Attribution(x.detach().abs().sum(1), None)


def _tiny():
    torch.manual_seed(0)
    net = TinyNet()
    spec = ModelSpec(name="tiny", build=lambda n: TinyNet(), input=InputSpec(4, 8, 8),
                     description="tiny", cam_layer="conv2", classifier="fc")
    model = wrap_module(net, spec, device="cpu")
    x = torch.randn(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    return model, x


def test_sanity_randomisation_decorrelates_a_model_dependent_map():
    model, x = _tiny()
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    assert learnable_layers(model.module) == ["conv1", "conv2", "fc"]
    curve = cascading_randomisation(model, GradTimesInput(), x, 0, seed=0)
    assert [name for name, _ in curve] == ["fc", "conv2", "conv1"]
    assert curve[-1][1] < 0.5  # everything random: the map no longer matches
    # the user's model is untouched
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.module.training
    # an explanation that ignores the model fails the check: correlation stays 1
    blind = cascading_randomisation(model, InputOnly(), x, 0)
    assert all(rho == pytest.approx(1.0) for _, rho in blind)


def test_spearman_by_hand():
    assert spearman(np.array([1, 2, 3]), np.array([10, 20, 30])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([-3, 1, 2]), np.array([3, 1, 2]), absolute=True) == pytest.approx(1)
    assert math.isnan(spearman(np.ones(4), np.arange(4)))


# --------------------------------------------------------------------------- registry
def test_registry_metadata_and_errors():
    names = {m.name for m in list_metrics()}
    assert {"motion_precision", "selectivity", "agreement", "overhead", "insertion", "deletion",
            "saliency_metric", "pointing_game", "temporal_pointing_game", "ground_truth",
            "sanity", "motion_share"} <= names
    for m in list_metrics():
        assert m.description and m.reference and m.quantities
        assert m.higher_is_better in (True, False, None)
    assert get_metric("deletion").higher_is_better is False
    with pytest.raises(ParameterError, match="unknown metric"):
        get_metric("accuracy")
    with pytest.raises(ParameterError, match="no parameter"):
        get_metric("insertion", stepz=3)
    with pytest.raises(ParameterError):
        get_metric("insertion", baseline="black")
    with pytest.raises(ParameterError, match="variant"):
        get_metric("insertion", variants=["fancy"])


def test_metrics_skip_when_evidence_is_missing_and_score_pairs_and_methods():
    a = np.zeros((2, 4, 4), np.float32)
    a[0, 0, 0] = 1
    ev = ClipEvidence(maps={"m1": {"full": a, "selective": a * 0},
                            "m2": {"full": a.copy()}}, target=0,
                      timings={"m1": {"full": 0.5, "selective": 0.001}})
    assert get_metric("insertion").compute(ev) == []  # no model
    assert get_metric("pointing_game").compute(ev) == []  # no masks
    rows = get_metric("agreement").compute(ev)
    assert [(r.method, r.variant, r.quantity, r.value) for r in rows] == [
        ("m1|m2", "full", "iou", 1.0), ("m1|m2", "full", "dice", 1.0),
        ("m1|m2", "full", "iou_top", 1.0), ("m1|m2", "full", "dice_top", 1.0)]
    assert [r.quantity for r in get_metric("agreement", top=0).compute(ev)] == ["iou", "dice"]
    rows = get_metric("overhead").compute(ev)
    assert {(r.method, r.quantity): r.value for r in rows} == {
        ("m1", "time_full_ms"): 500.0, ("m1", "time_selective_ms"): 1.0}
    rows = get_metric("selectivity").compute(ev)
    assert [(r.method, r.quantity) for r in rows] == [("m1", "area_ratio"), ("m1", "mass_ratio")]
    assert rows[0].value == 0.0
