"""The bad-input catalogue (issue 7), parameters: a typed ParameterError in the API, one
line at the CLI, a refused settings file in the dashboard (see test_bad_input_video.py)."""

from __future__ import annotations

import json
import re

import pytest
from helpers import (
    CHEAP,
    WORLD_ARCH,
    assert_nothing_written,
    assert_one_line_error,
    assert_views,
    errors,
    own_app,
    run_cli,
    upload,
)

from dashboard import settings
from xai_core.decompose import DecompositionOptions
from xai_core.engine import explain
from xai_core.errors import ParameterError
from xai_core.methods.base import get_method
from xai_core.video import load_clip

pytest.importorskip("streamlit.testing.v1")

pytestmark = pytest.mark.usefixtures("one_thread")


#: (label, call on (tiny model, clip path), message regex) — typed ParameterError in the API.
API_PARAMETERS = [
    ("start beyond the video", lambda m, v: load_clip(v, m.input, start=99),
     r"start frame 99 is outside the video \(frames 0\.\.11\)"),
    ("negative start", lambda m, v: load_clip(v, m.input, start=-1), r"outside the video"),
    ("stride 0", lambda m, v: load_clip(v, m.input, stride=0),
     r"frame stride must be at least 1, got 0"),
    ("σ = 0", lambda m, v: DecompositionOptions(sigma=0), r"sigma must be a number above 0"),
    ("σ < 0", lambda m, v: DecompositionOptions(sigma=-1.0), r"sigma must be a number above 0"),
    ("σ NaN", lambda m, v: DecompositionOptions(sigma=float("nan")), r"sigma must be"),
    ("target class out of range", lambda m, v: explain(m, v, CHEAP, target=99, cache=None),
     r"target class 99 is out of range .*"),
    ("negative target class", lambda m, v: explain(m, v, CHEAP, target=-1, cache=None),
     r"target class -1 is out of range"),
    ("unknown target class name", lambda m, v: explain(m, v, CHEAP, target="nope", cache=None),
     r"unknown class 'nope'"),
    ("unknown method", lambda m, v: explain(m, v, "nope", cache=None),
     r"unknown method 'nope'"),
    ("method parameter out of range", lambda m, v: get_method("integrated-gradients", steps=0),
     r"parameter 'steps' must be ≥"),
    ("unknown method parameter", lambda m, v: get_method("gradient", colour="red"),
     r"method 'gradient' has no parameter\(s\) \['colour'\]"),
    ("freeze-frame chunk 0", lambda m, v: DecompositionOptions(chunk_size=0),
     r"chunk_size must be a positive integer"),
]


@pytest.mark.parametrize("label,call,says", API_PARAMETERS, ids=[r[0] for r in API_PARAMETERS])
def test_api_refuses_bad_parameters_with_a_parameter_error(tiny, world, label, call, says):
    with pytest.raises(ParameterError) as info:
        call(tiny, world.clip)
    assert re.search(says, str(info.value)), str(info.value)
    assert isinstance(info.value, ValueError)  # also a ValueError, for generic callers


CLI_PARAMETERS = [
    ("start beyond the video", ["--start", "99"], r"outside the video"),
    ("stride 0", ["--stride", "0"], r"stride must be at least 1"),
    ("σ = 0", ["--sigma", "0"], r"sigma must be a number above 0"),
    ("σ < 0", ["--sigma", "-2"], r"sigma must be a number above 0"),
    ("target class out of range", ["--target", "99"], r"target class 99 is out of range"),
    ("unknown target class name", ["--target", "nope"], r"unknown class 'nope'"),
    ("unknown method", ["--method", "nope"], r"unknown method 'nope'.*Known methods"),
    ("method parameter out of range", ["--method", "integrated-gradients", "--param",
                                       "integrated-gradients:steps=0"], r"'steps' must be ≥"),
    ("malformed --param", ["--method", CHEAP, "--param", "steps"], r"is not METHOD:KEY=VALUE"),
    ("freeze-frame chunk 0", ["--chunk-size", "0"], r"chunk_size must be a positive integer"),
]


@pytest.mark.parametrize("label,args,says", CLI_PARAMETERS, ids=[r[0] for r in CLI_PARAMETERS])
def test_cli_refuses_bad_parameters_in_one_line(world, label, args, says, capfd, tmp_path):
    out = tmp_path / "out"
    before = world.cache_entries()
    argv = ["explain", world.clip, *world.own(), "--out", out, "--no-previews"]
    if "--method" not in args:
        argv += ["--method", CHEAP]
    code, stdout, err = run_cli(capfd, argv + args)
    assert_one_line_error(code, stdout, err, "parameter", says)
    assert_nothing_written(out)
    assert world.cache_entries() == before


#: A settings file (Load settings) can hold what no widget allows; each is refused whole.
UI_SETTINGS = [
    ("σ < 0", {"sigma": -1.0}, r"setting 'options': sigma must be a number above 0.*got -1\.0"),
    ("opacity 5", {"alpha": 5.0}, r"setting 'alpha' must be 0\.0\.\.1\.0"),
    ("γ 0", {"gamma": 0.0}, r"setting 'gamma' must be 0\.2\.\.1\.0"),
    ("stride 0", {"stride": 0}, r"setting 'stride' must be at least 1"),
    ("negative start", {"start": -3}, r"setting 'start' must be at least 0"),
    ("negative target", {"target": -1}, r"setting 'target' must be at least 0"),
    ("unknown colour map", {"cmap": "rainbow"}, r"setting 'cmap' must be one of \['bwr'"),
    ("unknown architecture", {"arch": "nope"}, r"setting 'arch' must be one of"),
    ("unknown slice", {"slice": "middle"}, r"setting 'options': slice must be one of"),
    ("not settings at all", None, r"does not hold dashboard settings"),
]


def test_ui_parameters_widgets_bound_them_and_bad_settings_files_are_refused(world):
    """Sliders, number inputs and select boxes cannot produce out-of-range values; the
    settings file and stale session values are the ways in, and must not stop the page."""
    at = own_app()
    upload(at, "clip.mp4", world.clip.read_bytes())
    assert_views(at)
    # the widgets' own bounds are the ones a settings file is checked against
    assert (at.sidebar.slider(key="s_sigma").min, at.sidebar.slider(key="s_sigma").max) == \
        settings.SIGMA_SLIDER
    assert (at.sidebar.slider(key="s_gamma").min, at.sidebar.slider(key="s_gamma").max) == \
        settings.WIDGET_RANGES["gamma"]
    assert at.sidebar.number_input(key="s_stride").min == settings.WIDGET_RANGES["stride"][0]
    good = json.loads(settings.Settings(model_source="own", arch=WORLD_ARCH, checkpoint="net.pt",
                                     classes="classes.txt", clip_source="upload",
                                     methods=[CHEAP]).to_json())  # this page's settings
    for label, change, says in UI_SETTINGS:
        body = {"cmap": "bwr"} if change is None else {**good, **change}
        at.sidebar.file_uploader(key="settings_upload").set_value(
            ("settings.json", json.dumps(body).encode(), "application/json"))
        at.run()
        assert not at.exception, (label, [e.value for e in at.exception])
        assert re.search(says, errors(at)), (label, errors(at))
        assert "Side by side" in {h.value for h in at.subheader}, label  # still working
    # a target beyond this model's classes (settings of a bigger model) explains the prediction
    at.sidebar.file_uploader(key="settings_upload").set_value(
        ("settings.json", json.dumps({**good, "target": 99}).encode(), "application/json"))
    at.run()
    assert_views(at)
    assert next(m.value for m in at.metric if m.label == "Explaining the class") == \
        next(m.value for m in at.metric if m.label == "Model predicts")


