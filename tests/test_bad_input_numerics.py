"""The bad-input catalogue (issue 7), numerics: all-zero relevance is explained, rendered
and exported; NaN relevance is a method error, cached nowhere (see test_bad_input_video.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from helpers import (
    assert_nothing_written,
    assert_views,
    errors,
    methods_registered,
    own_app,
    run_cli,
    stub_method,
    upload,
)

from xai_core import render
from xai_core.cache import ResultCache
from xai_core.engine import explain
from xai_core.errors import MethodError
from xai_core.methods.base import Attribution

pytest.importorskip("streamlit.testing.v1")

pytestmark = pytest.mark.usefixtures("one_thread")


@stub_method("test-all-zero", "all-zero relevance (test)", has_raw=False)
def ZeroRelevance(model, x, target):
    """Relevance exactly zero everywhere (e.g. a dead model or a blank clip)."""
    return Attribution(torch.zeros(x.shape[0], *x.shape[2:]), None)


@stub_method("test-nan", "NaN/Inf relevance (test)", has_raw=False)
def NaNRelevance(model, x, target):
    """A numerically broken method: NaN in one voxel, Inf in another."""
    rel = torch.ones(x.shape[0], *x.shape[2:])
    rel[:, 0, 0, 0], rel[:, -1, -1, -1] = float("nan"), float("inf")
    return Attribution(rel, None)


@pytest.fixture
def odd_methods():
    with methods_registered(ZeroRelevance, NaNRelevance) as added:
        yield added


def test_all_zero_relevance_is_explained_rendered_and_exported(tiny, world, odd_methods,
                                                               capfd, tmp_path):
    exp = explain(tiny, world.clip, ZeroRelevance.name, cache=None)
    result = exp[ZeroRelevance.name]
    for kind in ("full", "spatial", "temporal", "selective"):
        assert not getattr(result, kind).any()
    # no motion share of nothing: undefined, stored as null, never a division by zero
    assert all(np.isnan(v) for v in result.motion_share.values())
    json.dumps(exp.summary(), allow_nan=False)
    with np.errstate(all="raise"):
        values, scale = render.normalise(result.full, "per-frame")
        overlay = render.overlay(exp.frames, result.full, alpha=1.0)
        colours = render.colourise(result.temporal, "bwr")
    assert not values.any() and not np.any(scale)
    np.testing.assert_array_equal(overlay, exp.frames)  # nothing drawn over the frames
    assert (colours == np.array(render.neutral_colour("bwr"), np.uint8)).all()
    # the CLI writes its previews of an all-zero map
    out = tmp_path / "zero"
    code, _, err = run_cli(capfd, ["explain", world.clip, *world.own(), "--method",
                                   ZeroRelevance.name, "--out", out, "--no-cache"])
    assert code == 0, err
    assert {p.name for p in out.iterdir()} >= {"summary.json", f"{ZeroRelevance.name}.png",
                                                f"{ZeroRelevance.name}.mp4"}
    assert json.loads((out / "summary.json").read_text())["methods"][ZeroRelevance.name][
        "motion_share"] == {"discriminative": None, "selective": None}


def test_nan_relevance_is_a_method_error_and_nothing_is_cached(tiny, world, odd_methods,
                                                               capfd, tmp_path):
    cache = ResultCache(tmp_path / "cache")
    with pytest.raises(MethodError, match=r"test-nan produced 2 NaN/Inf values") as info:
        explain(tiny, world.clip, NaNRelevance.name, cache=cache)
    assert info.value.hint and "another method" in info.value.hint
    assert cache.stats["computed"] == 1  # the prediction; the broken maps were not stored
    assert len(list((tmp_path / "cache").rglob("*.val"))) == 1
    # the CLI: one error line (progress bars are erased with \r on a terminal)
    out = tmp_path / "out"
    code, stdout, err = run_cli(capfd, ["explain", world.clip, *world.own(), "--method",
                                        NaNRelevance.name, "--out", out])
    lines = [ln for ln in re.split(r"[\r\n]+", err) if ln.strip() and "%|" not in ln]
    assert code == 2 and stdout == "" and "Traceback" not in err
    assert lines == [lines[-1]] and lines[-1].startswith("error (method): test-nan produced")
    assert_nothing_written(out)


def test_ui_nan_relevance_shows_an_error_and_another_method_works(world, odd_methods):
    at = own_app(NaNRelevance.name)
    upload(at, "clip.mp4", world.clip.read_bytes())
    assert not at.exception
    text = errors(at)
    assert "Could not explain the clip" in text and "NaN/Inf" in text, text
    assert not at.image  # nothing rendered from broken numbers
    at.sidebar.multiselect(key="s_methods").set_value([ZeroRelevance.name]).run()
    assert_views(at)  # an all-zero map renders too
    share = next(m.value for m in at.metric if m.label.startswith("Motion share"))
    assert share == "n/a"


