"""Full relevance without the split (``explain(decompose=)``) and cost estimates before starting."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from helpers import GXI_NAME, T, random_clip, static_clip, tiny_model

import xai_core as xc
from xai_core.cache import ResultCache
from xai_core.decompose import DecompositionOptions, distinct_frames, selective_relevance
from xai_core.errors import ParameterError
from xai_core.estimate import estimate_cost, format_duration, pass_seconds
from xai_core.methods.base import get_method
from xai_core.results import Explanation

pytestmark = pytest.mark.usefixtures("one_thread")


def repeated_frames_clip(distinct: int = 3) -> torch.Tensor:
    """A clip of T frames with only ``distinct`` different ones (frames held, as in video)."""
    x = random_clip()
    hold = torch.arange(T) * distinct // T
    return x[:, :, hold].contiguous()


# --------------------------------------------------------------------------- decompose=
def test_full_only_gives_the_same_full_and_selective_maps_without_the_split(registered):
    """The same maps up to float rounding, not bitwise: with the split the clip is explained
    in one batch with its freeze-frame clips (T + 1 clips) and full-only alone, and a
    batch of another shape takes other kernels and summation orders (≈ 1e-11 here).
    Bitwise equality across batch shapes is not an invariant of any method; the
    tolerance is a few float32 roundings of the map's largest value."""
    model, x = tiny_model(), random_clip()
    opts = DecompositionOptions(selective="hiley2020")  # a variant that needs no split
    split = xc.explain(model, x, GXI_NAME, options=opts, cache=None)[GXI_NAME]
    only = xc.explain(model, x, GXI_NAME, options=opts, decompose=False, cache=None)[GXI_NAME]
    assert split.decomposed and not only.decomposed
    assert split.selective_mask.any()  # a real comparison, not two empty maps
    assert only.spatial is None and only.temporal is None
    scale = float(np.abs(split.full).max())
    close = {"rtol": 1e-5, "atol": 1e-6 * scale}
    np.testing.assert_allclose(only.full, split.full, **close)
    np.testing.assert_allclose(only.selective, split.selective, **close)
    np.testing.assert_array_equal(only.selective_mask, split.selective_mask)
    assert only.freeze_frame_passes == 0 and "freeze_frames" not in only.timings
    assert set(only.motion_share) == {"selective"}
    assert only.motion_share["selective"] == pytest.approx(split.motion_share["selective"])
    assert set(only.arrays()) == {"full", "selective", "selective_mask", "raw"}


def test_full_only_with_max_abs_scales_full_as_the_split_does(registered):
    model, x = tiny_model(), random_clip()
    opts = DecompositionOptions(normalise="max-abs", selective="hiley2020")  # the paper's map
    split = xc.explain(model, x, GXI_NAME, options=opts, cache=None)[GXI_NAME]
    only = xc.explain(model, x, GXI_NAME, options=opts, decompose=[], cache=None)[GXI_NAME]
    # float rounding only (the split explains the clip in a batch of T + 1, see above)
    np.testing.assert_allclose(only.full, split.full, rtol=1e-5, atol=1e-6)
    assert np.abs(only.full).max() == pytest.approx(1.0)
    sel, _ = selective_relevance(torch.from_numpy(only.full), opts.sigma, opts.sobel_border)
    np.testing.assert_array_equal(only.selective, sel.numpy())


def test_decompose_by_name_and_unknown_names(registered):
    model, x = tiny_model(), random_clip()
    exp = xc.explain(model, x, [GXI_NAME, "gradient"], decompose=["gradient"], cache=None)
    assert exp["gradient"].decomposed and not exp[GXI_NAME].decomposed
    with pytest.raises(ParameterError, match="not computed"):
        xc.explain(model, x, GXI_NAME, decompose=["gradcam"], cache=None)


def test_a_split_result_in_the_cache_serves_a_full_only_request_not_the_reverse(registered,
                                                                                tmp_path):
    model, x = tiny_model(), random_clip()
    cache = ResultCache(tmp_path / "c")
    only = xc.explain(model, x, GXI_NAME, decompose=False, cache=cache)
    assert not only.cache_hits[GXI_NAME]
    split = xc.explain(model, x, GXI_NAME, cache=cache)  # needs the split: computed
    assert not split.cache_hits[GXI_NAME] and split[GXI_NAME].decomposed
    again = xc.explain(model, x, GXI_NAME, decompose=False, cache=cache)
    assert again.cache_hits[GXI_NAME]
    np.testing.assert_array_equal(again[GXI_NAME].full, only[GXI_NAME].full)


def test_a_full_only_result_round_trips_through_npz(registered, tmp_path):
    model, x = tiny_model(), random_clip()
    exp = xc.explain(model, x, GXI_NAME, decompose=False, cache=None)
    back = Explanation.from_npz(exp.to_npz(tmp_path / "out"))
    r = back[GXI_NAME]
    assert r.spatial is None and r.temporal is None and not r.decomposed
    np.testing.assert_array_equal(r.full, exp[GXI_NAME].full)
    assert back.summary()["methods"][GXI_NAME]["freeze_frame_passes"] == 0


# --------------------------------------------------------------------------- estimates
@pytest.mark.parametrize("method", ["gradient", "dtd", "integrated-gradients",
                                    "extremal-perturbation"])
def test_passes_are_the_methods_cost_times_the_clips_explained(method):
    model, x = tiny_model(), repeated_frames_clip(distinct=3)
    per_clip = get_method(method).cost_passes()
    cost = estimate_cost(model, x, method, cache=None)
    assert cost.clips_per_method == 1 + 3 == 1 + len(distinct_frames(x)[0])
    m = cost.methods[0]
    assert m.passes == per_clip * 4 and not m.cached and m.decomposed
    assert m.seconds == pytest.approx(m.passes * cost.pass_seconds)
    assert m.at_most == (method == "extremal-perturbation")  # stops early: an upper bound
    only = estimate_cost(model, x, method, decompose=False, cache=None).methods[0]
    assert only.passes == per_clip and not only.decomposed
    counted = estimate_cost(model, x, method, cache=None, measure=False)
    assert counted.methods[0].passes == m.passes and counted.seconds == 0


def test_static_clips_and_no_reuse_change_the_count_as_the_decomposition_does():
    model = tiny_model()
    assert estimate_cost(model, static_clip(), "gradient", cache=None).clips_per_method == 1
    no_reuse = DecompositionOptions(reuse_identical=False)
    cost = estimate_cost(model, repeated_frames_clip(), "gradient", options=no_reuse, cache=None)
    assert cost.clips_per_method == 1 + T


def test_cached_results_cost_nothing(registered, tmp_path):
    model, x = tiny_model(), random_clip()
    cache = ResultCache(tmp_path / "c")
    before = estimate_cost(model, x, [GXI_NAME, "gradient"], cache=cache)
    assert not any(m.cached for m in before.methods)
    assert before.prediction_seconds > 0  # the clip and its freeze frames, forward only
    assert before.seconds == pytest.approx(before.prediction_seconds
                                           + sum(m.seconds for m in before.methods))
    xc.explain(model, x, GXI_NAME, cache=cache)
    after = estimate_cost(model, x, [GXI_NAME, "gradient"], cache=cache)
    cached = {m.method: m for m in after.methods}
    assert cached[GXI_NAME].cached and cached[GXI_NAME].seconds == 0
    assert not cached["gradient"].cached and cached["gradient"].seconds > 0
    assert after.prediction_seconds == 0  # stored with the first explanation
    assert "cached" in after.describe().splitlines()[0]
    # a full-only request is served by the split result too, when its selective map does
    # not need the split; the default's (still-gated) does: it is computed afresh
    only = estimate_cost(model, x, GXI_NAME, decompose=False, cache=cache)
    assert not only.methods[0].cached
    paper = DecompositionOptions(selective="hiley2020")
    xc.explain(model, x, GXI_NAME, options=paper, cache=cache)
    only = estimate_cost(model, x, GXI_NAME, options=paper, decompose=False, cache=cache)
    assert only.methods[0].cached and only.seconds == 0


def test_the_pass_is_timed_once_and_leaves_the_model_as_it_was():
    model, x = tiny_model(seed=3), random_clip()
    model.module.train()
    calls = []
    handle = model.module.register_forward_hook(lambda *a: calls.append(1))
    try:
        first = pass_seconds(model, x)
        runs = len(calls)
        assert runs >= 2 and first > 0  # a warm-up pass, then timed ones
        assert pass_seconds(model, x) == first and len(calls) == runs  # remembered
    finally:
        handle.remove()
    assert model.module.training  # restored
    assert all(p.grad is None and p.requires_grad for p in model.module.parameters())
    with pytest.raises(ParameterError):
        pass_seconds(model, x[0])


def test_occlusion_counts_the_windows_of_the_clip_it_will_explain():
    """Occlusion's passes are its window positions on the request's clip, not on a nominal
    one: a 224-pixel model input has ~7× the positions of a 112-pixel one."""
    from xai_core.methods.occlusion import window_positions

    occlusion = get_method("occlusion", window=(4, 8, 8), stride=(2, 4, 4))
    model, x = tiny_model(), random_clip()
    only = estimate_cost(model, x, "occlusion", decompose=False, cache=None, method_params={
        "occlusion": {"window": (4, 8, 8), "stride": (2, 4, 4)}}).methods[0]
    positions = window_positions(tuple(x.shape[2:]), (4, 8, 8), (2, 4, 4))
    assert only.passes == max(1, positions * 2 // 3)
    small, large = occlusion.cost_passes((16, 112, 112)), occlusion.cost_passes((16, 224, 224))
    assert occlusion.cost_passes() == small and large > 3 * small


def test_a_slow_model_is_timed_on_one_clip_once(monkeypatch):
    """A compute-bound model (a video transformer on a CPU) is timed by its first pass of
    one clip: timing batches would cost longer than a gradient explanation."""
    estimate_mod = sys.modules[pass_seconds.__module__]  # (xai_core.estimate is a function)
    model, x = tiny_model(seed=4), random_clip()
    batches = []
    handle = model.module.register_forward_hook(lambda m, i, o: batches.append(len(i[0])))
    monkeypatch.setattr(estimate_mod, "SLOW_PASS", 0.0)  # every pass counts as slow
    try:
        assert pass_seconds(model, x) > 0
    finally:
        handle.remove()
    assert batches == [1]


def test_estimate_validates_like_explain(registered):
    model, x = tiny_model(), random_clip()
    with pytest.raises(ParameterError):
        estimate_cost(model, x, "no-such-method", cache=None)
    with pytest.raises(ParameterError):
        estimate_cost(model, x, "gradient", method_params={"gradient": {"nope": 1}}, cache=None)
    with pytest.raises(ParameterError):
        estimate_cost(model, x, "gradient", decompose=["dtd"], cache=None)


@pytest.mark.parametrize(("seconds", "text"), [(0.2, "1 s"), (42, "42 s"), (89, "89 s"),
                                               (600, "10 min"), (3 * 3600, "3.0 h")])
def test_durations_read_naturally(seconds, text):
    assert format_duration(seconds) == text
