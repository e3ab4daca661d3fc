"""Discriminative (freeze-frame) and selective relevance: known answers and references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import (
    CHEAP_PARAMS,
    GradientTimesInput,
    H,
    InputTimesWeight,
    T,
    W,
    linear_model,
    random_clip,
    static_clip,
    tiny_model,
)

from xai_core.decompose import (
    DecompositionOptions,
    discriminative,
    distinct_frames,
    freeze_frame_clips,
    motion_share_discriminative,
    motion_share_selective,
    selective_mask,
    selective_relevance,
    sobel_kernel,
    temporal_sobel,
)
from xai_core.errors import MethodError, ParameterError
from xai_core.methods.base import METHODS, Method, get_method, list_methods
from xai_core.models.registry import LoadedModel

pytestmark = pytest.mark.usefixtures("one_thread")


def full_of(method: Method, model: LoadedModel, x: torch.Tensor, target: int) -> torch.Tensor:
    return method.attribute(model, x, target).relevance[0]


# --------------------------------------------------------------------------- freeze frames
def test_freeze_frame_clips_repeat_each_frame_never_pad_with_black():
    x = random_clip()
    clips = freeze_frame_clips(x)
    assert clips.shape == (T, 3, T, H, W)
    for t in range(T):
        for s in range(T):
            assert torch.equal(clips[t, :, s], x[0, :, t])


def test_distinct_frames_groups_exact_repeats_in_order():
    x = random_clip()
    x[:, :, 3] = x[:, :, 1]
    x[:, :, 7] = x[:, :, 1]
    reps, inverse = distinct_frames(x)
    assert reps == [0, 1, 2, 4, 5, 6]
    assert inverse.tolist() == [0, 1, 2, 1, 3, 4, 5, 1]


def test_linear_model_known_answers_for_each_slice_choice():
    # For a linear model the freeze-frame explanation of frame t is x_t · W[target],
    # so every slice choice has a closed form.
    model, method, x, target = linear_model(), InputTimesWeight(), random_clip(), 2
    full = full_of(method, model, x, target)
    w = model.module.fc.weight[target].detach().view(3, T, H, W)
    xs = x[0]
    expected = {
        "same": (xs * w).sum(0),
        "first": (xs * w[:, :1]).sum(0),
        "mean": torch.stack([(xs[:, t : t + 1] * w).sum(0).mean(0) for t in range(T)]),
    }
    for which, spatial in expected.items():
        d = discriminative(method, model, x, target, full, DecompositionOptions(slice=which))
        torch.testing.assert_close(d.spatial, spatial, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(d.temporal, full - spatial, rtol=1e-5, atol=1e-6)
    # a linear model cannot see motion: with slice "same" nothing is temporal
    d = discriminative(method, model, x, target, full, DecompositionOptions(slice="same"))
    assert torch.equal(d.temporal, torch.zeros_like(full))


@pytest.mark.parametrize("name", ["test-gradient-x-input", "dtd", "gradcam", "guided-backprop"])
def test_batched_freeze_frames_equal_one_at_a_time_loop(registered, name):
    model, x, target = tiny_model(), random_clip(), 1
    method = get_method(name)
    full = full_of(method, model, x, target)
    opts = DecompositionOptions(chunk_size=3, reuse_identical=False)
    batched = discriminative(method, model, x, target, full, opts)
    assert batched.freeze_frame_passes == T
    # slow, obviously correct reference: one freeze-frame clip at a time
    spatial = torch.zeros(T, H, W)
    for t in range(T):
        still = x[:, :, t : t + 1].repeat(1, 1, T, 1, 1)
        spatial[t] = full_of(method, model, still, target)[t]
    torch.testing.assert_close(batched.spatial, spatial, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched.temporal, full - spatial, rtol=1e-5, atol=1e-6)


def test_repeated_frames_are_explained_once_with_the_same_result(registered):
    model, method, target = tiny_model(), GradientTimesInput(), 0
    x = random_clip()
    x[:, :, 4:] = x[:, :, 3:4]  # frames 3..7 identical: 4 distinct frames
    full = full_of(method, model, x, target)
    reused = discriminative(method, model, x, target, full, DecompositionOptions())
    every = discriminative(method, model, x, target, full,
                           DecompositionOptions(reuse_identical=False))
    assert reused.freeze_frame_passes == 4 and every.freeze_frame_passes == T
    torch.testing.assert_close(reused.spatial, every.spatial, rtol=1e-5, atol=1e-6)


def test_full_is_spatial_plus_temporal_up_to_one_rounding(registered):
    model, method, x = tiny_model(), GradientTimesInput(), random_clip(3)
    full = full_of(method, model, x, 1)
    d = discriminative(method, model, x, 1, full, DecompositionOptions(normalise="none"))
    assert torch.equal(d.full, full)  # units preserved
    f, s, t = (a.double().numpy() for a in (d.full, d.spatial, d.temporal))
    assert np.all(np.abs(s + t - f) <= np.spacing(np.abs(t).astype(np.float32)))
    assert np.abs(t).max() > 1e-3 * np.abs(f).max()  # a moving clip does have temporal part


def test_max_abs_normalisation_is_the_papers(registered):
    model, method, x = tiny_model(), GradientTimesInput(), random_clip(4)
    full = full_of(method, model, x, 2)
    plain = discriminative(method, model, x, 2, full, DecompositionOptions(slice="first"))
    d = discriminative(method, model, x, 2, full,
                       DecompositionOptions(slice="first", normalise="max-abs"))
    torch.testing.assert_close(d.full, full / full.abs().max())
    per_frame = plain.spatial.abs().amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(d.spatial, plain.spatial / per_frame)
    torch.testing.assert_close(d.temporal, d.full - d.spatial)


def test_options_are_validated():
    for bad in ({"slice": "last"}, {"normalise": "l2"}, {"sigma": -1}, {"chunk_size": 0},
                {"sobel_border": "wrap"}):
        with pytest.raises(ParameterError):
            DecompositionOptions(**bad)
    assert "chunk_size" not in DecompositionOptions().key()


# --------------------------------------------------------------------------- static clip
#: Methods whose map of a clip depends on the other clips in its batch (known defect).
#: Methods whose map of a clip depends on the rest of its batch (none since smoothgrad
#: draws the same noise for every clip).
BATCH_DEPENDENT: dict[str, str] = {}


#: Methods that take many seconds even on the tiny net (an optimisation per clip).
SLOW_METHODS = {"extremal-perturbation"}


def cheap_method(name: str) -> Method:
    return METHODS[name](**CHEAP_PARAMS.get(name, {}))


def _registered_names() -> list[str]:
    return sorted(cls.name for cls in list_methods())


def _usable(name: str, model: LoadedModel) -> Method:
    method = cheap_method(name)
    try:
        method.check(model)
    except MethodError as exc:
        pytest.skip(f"{name} does not apply to the tiny net: {exc}")
    return method


def _static_params():
    for name in _registered_names() + [GradientTimesInput.name]:
        marks = []
        if name in BATCH_DEPENDENT:
            marks.append(pytest.mark.xfail(reason=BATCH_DEPENDENT[name], strict=False))
        if name in SLOW_METHODS:
            marks.append(pytest.mark.slow)
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_static_params()))
def test_static_clip_has_no_temporal_relevance(registered, name):
    model, x = tiny_model(), static_clip()
    method = _usable(name, model)
    full = full_of(method, model, x, 1)
    # every freeze-frame clip *is* the clip: nothing is temporal, exactly
    d = discriminative(method, model, x, 1, full)
    assert d.freeze_frame_passes == 0
    assert torch.equal(d.temporal, torch.zeros_like(full))
    share = motion_share_discriminative(d.spatial, d.temporal)
    assert share == 0.0 or np.isnan(share)
    # the same when the freeze-frame clips are explained afresh, in batches
    fresh = discriminative(method, model, x, 1, full,
                           DecompositionOptions(reuse_identical=False, chunk_size=4))
    assert fresh.freeze_frame_passes == T
    scale = float(full.abs().max()) or 1.0
    assert float(fresh.temporal.abs().max()) <= 1e-5 * scale


@pytest.mark.parametrize("name", _registered_names() + [GradientTimesInput.name])
def test_static_clip_selective_mask_is_empty_when_relevance_is_constant_in_time(registered,
                                                                                 name):
    # A 3D CNN's own zero padding in time makes relevance differ near the first and last
    # frames even on a static clip, so the Sobel mask is only guaranteed empty where the
    # relevance is constant in time: a net with temporal kernel 1 (frame-wise features).
    model, x = tiny_model(temporal_kernel=1), static_clip()
    method = _usable(name, model)
    full = full_of(method, model, x, 1)
    if not torch.allclose(full, full[:1].expand_as(full), rtol=0, atol=0):
        pytest.skip(f"{name}'s map of a static clip varies in time even on a frame-wise net")
    _, mask = selective_relevance(full, 4.0, "replicate")
    assert not mask.any()
    if full.abs().max() > 0:  # the authors' zero padding calls the borders "motion"
        assert selective_mask(full, 0.5, "zeros")[[0, -1]].any()


# --------------------------------------------------------------------------- selective
def sobel_reference(r: np.ndarray, border: str) -> np.ndarray:
    """27-tap temporal Sobel by explicit loops (slow, obviously correct)."""
    k = sobel_kernel().numpy()
    t_, h_, w_ = r.shape
    out = np.zeros_like(r, dtype=np.float64)

    def value(t, h, w):
        if not (0 <= h < h_ and 0 <= w < w_):
            return 0.0
        if t < 0 or t >= t_:
            if border == "zeros":
                return 0.0
            t = min(max(t, 0), t_ - 1)
        return float(r[t, h, w])

    for t in range(t_):
        for h in range(h_):
            for w in range(w_):
                out[t, h, w] = sum(k[a, b, c] * value(t + a - 1, h + b - 1, w + c - 1)
                                   for a in range(3) for b in range(3) for c in range(3))
    return out


@pytest.mark.parametrize("border", ["replicate", "zeros"])
def test_sobel_equals_explicit_loop_reference(border):
    r = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32)
    d = temporal_sobel(torch.from_numpy(r), border).numpy()
    np.testing.assert_allclose(d, sobel_reference(r, border), rtol=1e-5, atol=1e-5)
    mask = selective_mask(torch.from_numpy(r), 1.5, border).numpy()
    ref = sobel_reference(r, border)
    np.testing.assert_array_equal(mask, np.abs(ref) > 1.5 * ref.std())


def test_sobel_kernel_is_the_papers():
    k = sobel_kernel()
    torch.testing.assert_close(k[0], torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]))
    assert torch.equal(k[1], torch.zeros(3, 3)) and torch.equal(k[2], -k[0])


def test_batched_sobel_uses_each_clips_own_std():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 8, 8, generator=g), 100 * torch.randn(6, 8, 8, generator=g)
    both = selective_mask(torch.stack([a, b]), 2.0)
    assert torch.equal(both[0], selective_mask(a, 2.0))
    assert torch.equal(both[1], selective_mask(b, 2.0))


def test_selective_keeps_moving_relevance_and_drops_static_relevance():
    r = torch.zeros(T, H, W)
    r[:, 4:8, 4:8] = 1.0  # static blob: relevant, but never changes
    for t in range(T):  # blob moving right by 3 px per frame
        r[t, 20:24, 2 + 3 * t : 6 + 3 * t] = 1.0
    selective, mask = selective_relevance(r, sigma=1.0)
    assert not mask[:, 4:8, 4:8].any()
    assert mask[:, 20:24].any()
    assert torch.equal(selective, r * mask)
    share = motion_share_selective(r, selective)
    assert 0 < share < 1


def test_motion_share_formulas():
    spatial = torch.tensor([[[2.0, -1.0]]])
    temporal = torch.tensor([[[1.0, -5.0]]])
    assert motion_share_discriminative(spatial, temporal) == pytest.approx(1 / 3)
    assert np.isnan(motion_share_discriminative(-spatial.abs(), -temporal.abs()))
    full = torch.tensor([[[3.0, 1.0, -2.0]]])
    sel = torch.tensor([[[3.0, 0.0, -2.0]]])
    assert motion_share_selective(full, sel) == pytest.approx(0.75)
