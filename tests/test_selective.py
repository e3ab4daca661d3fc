"""Selective-relevance variants (xai_core.selective): references, static clips, options.

The paper's variant (Hiley et al. 2020, "hiley2020") keeps its output exactly; the
border-aware variants give an exactly empty mask on a static clip for every gradient,
LRP and CAM method, on a tiny 3D CNN and on the bundled ``motion`` model.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import CHEAP_PARAMS, H, T, W, random_clip, static_clip, tiny_model

import xai_core as xc
from xai_core.decompose import DecompositionOptions, discriminative, selective_for
from xai_core.errors import ParameterError
from xai_core.methods.base import METHODS, MethodError, list_methods
from xai_core.selective import (
    DEFAULT_SELECTIVE,
    SelectiveInputs,
    depends_on_split,
    input_change_mask,
    resolve_selective,
    selective_relevance,
    selective_variants,
    still_derivative,
    temporal_sobel,
)

pytestmark = pytest.mark.usefixtures("one_thread")

#: The methods the issue names: every gradient, LRP and CAM method.
FAMILIES = ("gradient", "lrp", "cam")
BORDER_AWARE = [v for v in selective_variants() if v != "hiley2020"]


def _methods() -> list[str]:
    return sorted(c.name for c in list_methods() if c.family in FAMILIES)


def _method(name: str, model, params=CHEAP_PARAMS):
    method = METHODS[name](**params.get(name, {}))
    try:
        method.check(model)
    except MethodError as exc:
        pytest.skip(f"{name} does not apply: {exc}")
    return method


def moving_clip(seed: int = 2) -> torch.Tensor:
    """A still background with a bright square moving right by 2 px per frame."""
    x = static_clip(seed).clone()
    for t in range(T):
        x[0, :, t, 10:16, 4 + 2 * t : 10 + 2 * t] = 2.5
    return x


def _split(method, model, x, target=1, **opts):
    options = DecompositionOptions(**opts)
    full = method.attribute(model, x, target).relevance[0]
    return options, discriminative(method, model, x, target, full, options)


# --------------------------------------------------------------------------- references
def sobel_slow(r: torch.Tensor, border: str) -> torch.Tensor:
    """Temporal Sobel by conv3d with the paper's kernel (an independent implementation)."""
    k = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]])
    kernel = torch.stack([k, torch.zeros(3, 3), -k])[None, None]
    r = r[None, None].double()
    if border == "replicate":
        r = torch.cat([r[:, :, :1], r, r[:, :, -1:]], dim=2)
    else:
        r = torch.nn.functional.pad(r, (0, 0, 0, 0, 1, 1))
    return torch.nn.functional.conv3d(r, kernel.double(), padding=(0, 1, 1))[0, 0]


@pytest.mark.parametrize("border", ["replicate", "zeros"])
def test_still_derivative_equals_per_frame_loop(border):
    g = torch.Generator().manual_seed(0)
    explained = torch.randn(3, 5, 6, 7, generator=g)
    inverse = torch.tensor([0, 2, 1, 1, 0])
    fast = still_derivative(explained, inverse, border)
    for t in range(5):  # slow: the whole derivative of frame t's still clip, read at t
        torch.testing.assert_close(fast[t].double(), sobel_slow(explained[inverse[t]], border)[t],
                                   rtol=1e-5, atol=1e-5)


def test_still_derivative_of_a_static_clip_is_the_sobel_bit_for_bit():
    full = torch.randn(T, H, W, generator=torch.Generator().manual_seed(3))
    for border in ("replicate", "zeros"):
        still = still_derivative(full[None], torch.zeros(T, dtype=torch.long), border)
        assert torch.equal(still, temporal_sobel(full, border))


def input_change_slow(x: torch.Tensor, factor: float, radius: int) -> np.ndarray:
    """Input-change mask by loops: per-channel conv3d Sobel, norm, median, square dilation."""
    d = torch.stack([sobel_slow(x[0, c], "replicate") for c in range(3)]).numpy()
    norm = np.sqrt((d**2).sum(0))
    changed = norm > factor * np.median(norm)
    out = np.zeros_like(changed)
    t_, h_, w_ = changed.shape
    for t, y, x_ in zip(*np.nonzero(changed), strict=True):
        out[t, max(0, y - radius) : min(h_, y + radius + 1),
            max(0, x_ - radius) : min(w_, x_ + radius + 1)] = True
    return out


def test_input_change_mask_equals_slow_reference():
    x = random_clip(5) * 0.05  # sensor noise ...
    x[:, :, :, 10:16, 3 : 3 + T] += torch.linspace(0, 3, T).view(1, 1, T, 1, 1)  # ... and a change
    # the median of a float32 and a float64 norm can differ by rounding at the threshold:
    # compare away from it
    for factor, radius in ((3.0, 0), (3.0, 2), (5.0, 4)):
        fast = input_change_mask(x, factor, radius).numpy()
        np.testing.assert_array_equal(fast, input_change_slow(x, factor, radius))
    assert not input_change_mask(static_clip(), 3.0, 4).any()


# --------------------------------------------------------------------------- variants
def test_registry_and_options():
    assert selective_variants()[:5] == ("hiley2020", "still-corrected", "temporal",
                                        "input-gated", "still-gated")
    assert DEFAULT_SELECTIVE in selective_variants() and DEFAULT_SELECTIVE != "hiley2020"
    assert DecompositionOptions().selective == DEFAULT_SELECTIVE
    with pytest.raises(ParameterError):
        DecompositionOptions(selective="sobel")
    keys = {v: DecompositionOptions(selective=v).key() for v in selective_variants()}
    assert all(k["selective"] == v for v, k in keys.items())
    assert len({tuple(sorted(k.items())) for k in keys.values()}) == len(keys)  # cache key


def test_fallback_without_the_split_is_input_gated():
    inputs = SelectiveInputs(torch.randn(T, H, W), x=random_clip())
    assert resolve_selective("still-corrected", inputs).name == "input-gated"
    assert resolve_selective("temporal", inputs).name == "input-gated"
    assert resolve_selective("still-gated", inputs).name == "input-gated"
    # so a result computed with the split must not serve a request without it
    assert {v for v in selective_variants() if depends_on_split(v)} == {
        "still-corrected", "temporal", "still-gated"}
    assert resolve_selective("hiley2020", SelectiveInputs(inputs.full)).name == "hiley2020"
    with pytest.raises(ParameterError):
        resolve_selective("still-corrected", SelectiveInputs(inputs.full))  # no clip either
    with pytest.raises(ParameterError):
        resolve_selective("nope", inputs)


@pytest.mark.parametrize("border", ["replicate", "zeros"])
def test_hiley2020_is_the_papers_output_exactly(registered, border):
    model, x = tiny_model(), random_clip(2)
    method = _method("test-gradient-x-input", model)
    options, split = _split(method, model, x, sobel_border=border, selective="hiley2020")
    sel, mask = selective_for(options, split.full, x, split)
    ref_sel, ref_mask = selective_relevance(split.full, options.sigma, border)
    assert torch.equal(mask, ref_mask) and torch.equal(sel, ref_sel)


def test_variants_by_their_definitions_on_a_moving_clip(registered):
    model, x = tiny_model(), moving_clip()
    method = _method("test-gradient-x-input", model)
    options, split = _split(method, model, x, sigma=1.5)
    full = split.full
    explained = torch.stack([method.attribute(model, x[:, :, t : t + 1].repeat(1, 1, T, 1, 1),
                                              1).relevance[0] for t in range(T)])
    still = torch.stack([sobel_slow(explained[t], "replicate")[t] for t in range(T)])

    def kept(d: torch.Tensor) -> torch.Tensor:
        return d.abs() > 1.5 * d.std(unbiased=False)

    expected = {"still-corrected": kept(sobel_slow(full, "replicate") - still),
                "temporal": kept(sobel_slow(split.temporal, "replicate")),
                "hiley2020": kept(sobel_slow(full, "replicate"))}
    gate = torch.from_numpy(input_change_slow(x, 3.0, 4))
    expected["input-gated"] = expected["hiley2020"] & gate
    expected["still-gated"] = expected["still-corrected"] & gate
    for name, ref in expected.items():
        sel, mask = selective_for(dataclasses.replace(options, selective=name), full, x, split)
        assert mask.any(), name
        # float32 against float64: allow the voxels sitting on the threshold to differ
        assert (mask != ref).float().mean() < 1e-3, name
        assert torch.equal(sel, full * mask), name


def test_still_corrected_is_the_paper_where_the_net_has_no_temporal_border():
    # a frame-wise net (temporal kernel 1): a still clip's relevance is constant in time,
    # so the correction is zero and the variant is the paper's mask
    model, x = tiny_model(temporal_kernel=1), random_clip(4)
    method = _method("gradient", model)
    options, split = _split(method, model, x, selective="still-corrected")
    assert torch.equal(split.still, torch.zeros_like(split.still))
    paper = selective_for(dataclasses.replace(options, selective="hiley2020"), split.full, x,
                          split)[1]
    assert paper.any() and torch.equal(selective_for(options, split.full, x, split)[1], paper)


# --------------------------------------------------------------------------- static clips
@pytest.mark.parametrize("name", _methods())
def test_static_clip_mask_is_empty_for_border_aware_variants(name):
    model, x = tiny_model(), static_clip()
    method = _method(name, model)
    for opts in ({}, {"normalise": "max-abs"}, {"sobel_border": "zeros"}, {"slice": "first"},
                 {"reuse_identical": False, "chunk_size": 3}):
        options, split = _split(method, model, x, **opts)
        for variant in BORDER_AWARE:  # fresh freeze-frame passes: cancel to rounding
            if variant == "temporal" and ("normalise" in opts or "slice" in opts):
                continue  # temporal = 0 on a static clip needs slice "same", units kept
            sel, mask = selective_for(dataclasses.replace(options, selective=variant),
                                      split.full, x, split)
            assert not mask.any() and not sel.any(), (variant, opts)
        for variant in BORDER_AWARE:  # full-only: no split, the input decides
            assert not selective_for(dataclasses.replace(options, selective=variant),
                                     split.full, x, None)[1].any(), (variant, opts)


def test_static_clip_the_papers_variant_marks_the_borders():
    # what the border-aware variants fix: the tiny net's zero padding in time
    model, x = tiny_model(), static_clip()
    method = _method("gradient", model)
    options, split = _split(method, model, x, selective="hiley2020")
    mask = selective_for(options, split.full, x, split)[1]
    assert mask.any()  # 8 frames: every frame is within the 2-conv net's reach of an end


def _applicable(model) -> list[str]:
    names = []
    for name in _methods():
        try:
            METHODS[name](**CHEAP_PARAMS.get(name, {})).check(model)
        except MethodError:
            continue
        names.append(name)
    return names


def test_static_clip_through_explain_every_method_and_full_only():
    model, x = tiny_model(), static_clip()
    names = _applicable(model)
    params = {n: CHEAP_PARAMS[n] for n in names if n in CHEAP_PARAMS}
    for decompose in (True, False):
        exp = xc.explain(model, x, names, method_params=params, decompose=decompose,
                         cache=None)
        assert set(exp.methods) == set(names)
        for name, r in exp.methods.items():
            assert not r.selective_mask.any() and not r.selective.any(), (name, decompose)


@pytest.fixture(scope="module")
def motion_model():
    try:
        return xc.load_model("motion", device="cpu")
    except Exception as exc:  # the bundled weights are committed; say so if they are not
        pytest.fail(f"the bundled motion model does not load: {exc}")


def test_static_clip_on_the_bundled_motion_model(motion_model):
    """The issue's case: the default's mask is empty for every gradient/LRP/CAM method."""
    from xai_core.synthetic.world import render_clip

    frames = np.repeat(render_clip(9200).frames[:1], 16, 0)
    names = _applicable(motion_model)
    params = {n: CHEAP_PARAMS[n] for n in names if n in CHEAP_PARAMS}
    exp = xc.explain(motion_model, frames, names, method_params=params, cache=None)
    for name, r in exp.methods.items():
        assert r.freeze_frame_passes == 0
        assert not r.selective_mask.any(), name
    # the paper's variant on the same explanation: the false motion of the issue
    dtd = exp["dtd"]
    paper = selective_relevance(torch.from_numpy(dtd.full))[1].numpy()
    assert paper.any() and paper[[0, -1]].any()
