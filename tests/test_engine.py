"""explain(): predictions, freeze-frame predictions, decompositions, files, model untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import (
    CHEAP_PARAMS,
    GXI_NAME,
    InputTimesWeight,
    K,
    T,
    linear_model,
    random_clip,
    static_clip,
    tiny_model,
)

import xai_core as xc
from xai_core.decompose import DecompositionOptions, freeze_frame_clips
from xai_core.errors import MethodError, ParameterError
from xai_core.models.spec import InputSpec
from xai_core.results import Explanation

pytestmark = pytest.mark.usefixtures("one_thread")


def test_public_api_is_exported():
    for name in ("load_model", "load_clip", "explain", "DecompositionOptions", "get_method",
                 "list_methods", "list_models"):
        assert callable(getattr(xc, name)), name
    assert xc.__version__ == "0.1.0"


def test_explain_records_prediction_and_freeze_frame_predictions(registered):
    model, x = tiny_model(), random_clip()
    exp = xc.explain(model, x, GXI_NAME, cache=None)
    with torch.no_grad():
        probs = torch.softmax(model.module(x), 1)[0]
        ff = torch.cat([torch.softmax(model.module(c[None]), 1) for c in freeze_frame_clips(x)])
    np.testing.assert_allclose(exp.probabilities, probs.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(exp.freeze_frame_probabilities, ff.numpy(), rtol=1e-5, atol=1e-6)
    assert exp.freeze_frame_probabilities.shape == (T, K)
    assert exp.freeze_frame_top == ff.argmax(1).tolist()
    assert exp.target == exp.predicted == int(probs.argmax())
    assert [i for i, _, _ in exp.top5] == probs.argsort(descending=True).tolist()[:5]
    r = exp[GXI_NAME]
    assert r.full.shape == r.spatial.shape == r.temporal.shape == r.selective.shape == x.shape[2:]
    assert r.full.dtype == np.float32 and r.selective_mask.dtype == bool
    assert r.raw.shape == x.shape[1:]
    assert set(r.timings) == {"full", "freeze_frames", "selective"}
    assert 0 <= r.motion_share["discriminative"] <= 1 and 0 <= r.motion_share["selective"] <= 1


def test_explain_target_by_index_or_name_and_errors(registered):
    model, x = tiny_model(), random_clip()
    model.class_names = ["a", "b", "c", "d"]
    by_name = xc.explain(model, x, GXI_NAME, target="c", cache=None)
    assert (by_name.target, by_name.target_name) == (2, "c")
    assert xc.explain(model, x, GXI_NAME, target=3, cache=None).target == 3
    for bad in (dict(target=9), dict(target="zebra"), dict(methods=[]),
                dict(methods=[GXI_NAME, GXI_NAME]), dict(methods="no-such-method"),
                dict(method_params={"gradient": {}}),
                dict(method_params={GXI_NAME: {"nope": 1}})):
        kwargs = {"methods": GXI_NAME} | bad
        with pytest.raises(ParameterError):
            xc.explain(model, x, cache=None, **kwargs)
    with pytest.raises(ParameterError):
        xc.explain(model, x[0, 0], GXI_NAME, cache=None)  # not a clip
    with pytest.raises(ParameterError):
        xc.explain(model, x * float("nan"), GXI_NAME, cache=None)


def test_explain_matches_the_known_answer_of_a_linear_model(registered):
    # relevance x·W[target]; with slice "first" the spatial map of frame t is x_t·W_0
    model, x, target = linear_model(), random_clip(), 1
    exp = xc.explain(model, x, InputTimesWeight.name, target=target, cache=None,
                     options=DecompositionOptions(slice="first"))
    w = model.module.fc.weight[target].detach().view(3, T, *x.shape[3:])
    r = exp[InputTimesWeight.name]
    np.testing.assert_allclose(r.full, (x[0] * w).sum(0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.spatial, (x[0] * w[:, :1]).sum(0).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.temporal, r.full - r.spatial, rtol=1e-5, atol=1e-6)


def test_static_clip_through_explain(registered):
    model, x = tiny_model(), static_clip()
    exp = xc.explain(model, x, GXI_NAME, cache=None)
    r = exp[GXI_NAME]
    assert r.freeze_frame_passes == 0
    assert not r.temporal.any() and r.motion_share["discriminative"] == 0.0
    np.testing.assert_allclose(exp.freeze_frame_probabilities,
                               np.repeat(exp.probabilities[None], T, 0), rtol=1e-6)


def test_uint8_frames_and_clips_are_accepted(registered):
    model = tiny_model()
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, size=(20, 40, 50, 3), dtype=np.uint8)
    exp = xc.explain(model, video, GXI_NAME, cache=None)
    assert exp.frames.shape == (T, 32, 32, 3) and exp.frames.dtype == np.uint8
    clip = xc.load_clip(video, model.input, start=2, stride=2)
    exp2 = xc.explain(model, clip, GXI_NAME, cache=None)
    assert exp2.clip.indices == list(range(2, 18, 2)) and exp2.clip.stride == 2
    assert exp2.clip.content_hash == clip.content_hash
    np.testing.assert_array_equal(exp2.frames, clip.frames)
    other = xc.load_clip(video, InputSpec(num_frames=T, height=24, width=24))
    with pytest.raises(ParameterError, match="input format"):
        xc.explain(model, other, GXI_NAME, cache=None)


def test_progress_reports_every_stage(registered):
    model, x = tiny_model(), random_clip()
    calls = []
    xc.explain(model, x, [GXI_NAME, "gradient"], cache=None,
               progress=lambda e: calls.append((f"{e.method}: {e.stage}" if e.method else e.stage,
                                                e.done, e.total)))
    stages = [s for s, _, _ in calls]
    for name in (GXI_NAME, "gradient"):
        for part in ("full", "freeze frames", "selective"):
            assert f"{name}: {part}" in stages
    assert "prediction" in stages and "freeze-frame predictions" in stages
    assert all(0 <= d <= n for _, d, n in calls)
    assert (f"{GXI_NAME}: freeze frames", T, T) in calls


def _snapshot(model):
    m = model.module
    x = random_clip(7)
    x.requires_grad_(True)
    out = m(x)
    out[0, 1].backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad(set_to_none=True)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    hooks = [(len(mod._forward_hooks), len(mod._backward_hooks), len(mod._forward_pre_hooks))
             for mod in m.modules()]
    return out.detach(), x.grad.clone(), grads, state, hooks


@pytest.mark.parametrize("methods", [[GXI_NAME], ["dtd", "gradcam", "guided-backprop"]])
def test_model_is_not_modified_by_explain(registered, methods):
    model = tiny_model()
    for p in model.module.parameters():
        p.requires_grad_(True)
    before = _snapshot(model)
    modes = [m.training for m in model.module.modules()]
    try:
        xc.explain(model, random_clip(), methods, cache=None)
    except MethodError as exc:  # a method not written for this net is not what we test
        pytest.skip(str(exc))
    assert [m.training for m in model.module.modules()] == modes
    assert all(p.requires_grad and p.grad is None for p in model.module.parameters())
    after = _snapshot(model)
    torch.testing.assert_close(after[0], before[0], rtol=0, atol=0)
    torch.testing.assert_close(after[1], before[1], rtol=0, atol=0)
    for name in before[2]:
        torch.testing.assert_close(after[2][name], before[2][name], rtol=0, atol=0)
    for name in before[3]:
        assert torch.equal(after[3][name], before[3][name])
    assert after[4] == before[4]


def test_training_mode_of_a_users_model_is_restored(registered):
    model = tiny_model()
    model.module.train()
    xc.explain(model, random_clip(), GXI_NAME, cache=None)
    assert all(m.training for m in model.module.modules())


def test_npz_and_summary_round_trip(tmp_path, registered):
    model, x = tiny_model(), random_clip()
    exp = xc.explain(model, x, [GXI_NAME, "gradient"], cache=None,
                     method_params={"gradient": {}})
    exp.to_npz(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{GXI_NAME}.npz", "gradient.npz", "summary.json"])
    with np.load(tmp_path / "gradient.npz") as npz:
        for name in ("full", "spatial", "temporal", "selective"):
            assert npz[name].dtype == np.float32 and npz[name].shape == x.shape[2:]
        assert npz["frames"].dtype == np.uint8 and npz["frames"].shape == (T, 32, 32, 3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    json.dumps(summary, allow_nan=False)  # strict JSON: nan written as null
    assert summary["target"] == exp.target and len(summary["freeze_frame_top"]) == T
    assert summary["versions"]["xai_core"] == "0.1.0"
    back = Explanation.from_npz(tmp_path)
    assert back.summary() == exp.summary()
    for name in exp.methods:
        for field in ("full", "spatial", "temporal", "selective", "selective_mask", "raw"):
            np.testing.assert_array_equal(getattr(back[name], field), getattr(exp[name], field))
    np.testing.assert_array_equal(back.frames, exp.frames)


def test_unknown_method_in_results_is_a_clear_error(registered):
    exp = xc.explain(tiny_model(), random_clip(), GXI_NAME, cache=None)
    with pytest.raises(ParameterError, match="not computed"):
        exp["dtd"]


def test_device_cpu_uses_the_model_itself(registered):
    from xai_core.request import _on_device

    model = tiny_model()
    assert _on_device(model, "cpu") is model
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError):
            xc.explain(model, random_clip(), GXI_NAME, device="cuda", cache=None)


def test_registered_methods_run_through_explain(registered):
    # every method the engine offers produces consistent decompositions on the tiny net
    model, x = tiny_model(), random_clip()
    offered = [c for c in xc.list_methods()
               if c.name not in ("extremal-perturbation", InputTimesWeight.name)]
    refused = set()
    for cls in offered:  # transformer-only methods refuse a CNN up front (test_applicability)
        try:
            cls(**CHEAP_PARAMS.get(cls.name, {})).check(model)
        except MethodError:
            refused.add(cls.name)
    assert refused == {"attn-lrp"}
    names = [c.name for c in offered if c.name not in refused]
    params = {n: CHEAP_PARAMS[n] for n in names if n in CHEAP_PARAMS}
    exp = xc.explain(model, x, names, method_params=params, cache=None)
    for name in names:
        r = exp[name]
        f, s, t = (a.astype(np.float64) for a in (r.full, r.spatial, r.temporal))
        assert np.all(np.abs(s + t - f) <= np.spacing(np.abs(r.temporal))), name
        assert np.array_equal(r.selective, r.full * r.selective_mask), name
