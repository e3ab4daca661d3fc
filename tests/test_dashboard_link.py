"""The shareable link: the view's settings in the URL (dashboard.settings, dashboard.link).

The link's form is tested without a page; the page is driven by ``streamlit.testing``
(AppTest) with ``at.query_params`` set before its first run, as a browser opening the
link does. The tests on the bundled models and sample clips are skipped, saying so, until
they exist; the others use a small C3D from a models folder.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers import APP, TIMEOUT, assert_healthy, good_clip, model_world, own_model_app, upload

from dashboard.link import LINK_PARAM, from_query_params, to_query_params
from dashboard.settings import Settings
from xai_core.decompose import DecompositionOptions

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

TINY = "tiny-small-c3d-link-test"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A models folder with a random small C3D for 8×32×32 clips, a test video, a private
    cache (also for the bundled models' explanations)."""
    root = tmp_path_factory.mktemp("dashboard-link")
    with model_world(root, TINY, checkpoint="tiny.pt"):
        good_clip(root, frames=8)
        yield root


def link_app(params: dict, timeout: int = TIMEOUT) -> AppTest:
    """The app opened with ``params`` in its URL (first run done)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


def needs_bundled() -> None:
    from dashboard.samples import sample_clips
    from xai_core.models.bundled import WEIGHTS_DIR

    if not all((WEIGHTS_DIR / f"{m}.pt").is_file() for m in ("motion", "context-biased")):
        pytest.skip("bundled weights not trained yet (make train)")
    if not {s.name for s in sample_clips()} >= {"conflict_move_left", "move_left"}:
        pytest.skip("sample clips not generated yet (make samples)")


# --------------------------------------------------------------------------- the link's form
def test_the_link_and_the_json_use_one_mapping():
    s = Settings()
    fields = set(json.loads(s.to_json())) - {"xai_dashboard_settings", "options",
                                             "method_params"}
    options = {f.name for f in dataclasses.fields(DecompositionOptions)}
    assert set(s.flat()) == fields | options  # every setting, options flat, by one name
    assert set(to_query_params(s)) <= set(s.flat()) | {LINK_PARAM}


def test_settings_survive_the_round_trip_through_a_link(env):
    s = dataclasses.replace(
        Settings(), model="context-biased", sample="conflict_move_left",
        methods=["dtd", "integrated-gradients"], full_only=["integrated-gradients"],
        target=3, shown_method="dtd", cmap="coolwarm", alpha=0.65, gamma=0.8, grey=False,
        normalisation="per-frame", show_selective=True, panel="heatmap", frame=7,
        scale_scope="panel", scale_statistic="max", compare=True, compare_model="motion",
        compare_target="own", weights="KINETICS400_V1", hf="MCG-NJU/videomae-base",
        method_params={"integrated-gradients": {"steps": 8}},
        options=DecompositionOptions(sigma=3.0, slice="mean"))
    params = to_query_params(s)
    assert params["cmap"] == "coolwarm" and params["frame"] == "7" and params["grey"] == "false"
    assert params["methods"] == "dtd,integrated-gradients"
    assert params["scale_scope"] == "panel" and params["compare_model"] == "motion"
    assert params[LINK_PARAM] == ["integrated-gradients:steps=8"]
    back, notes = from_query_params(params)
    assert notes == [] and back == s


def test_a_default_view_gives_a_short_link():
    params = to_query_params(Settings())
    assert params == {"model": "motion", "methods": "dtd,gradcam"}
    assert from_query_params({}) == (Settings(), [])


def test_uploaded_files_are_not_in_a_link():
    s = dataclasses.replace(Settings(), clip_source="upload", upload="holiday.mp4",
                            model_source="own", checkpoint="upload:net.pt",
                            classes="upload:classes.txt")
    params = to_query_params(s)
    assert params["clip_source"] == "upload" and params["model_source"] == "own"
    assert not {"upload", "checkpoint", "classes"} & set(params)
    back, notes = from_query_params({"upload": "holiday.mp4"})
    assert back.upload is None and "`upload` is not a setting" in notes[0]


@pytest.mark.parametrize(("key", "value", "says"), [
    ("cmap", "rainbow", "'rainbow' is not available here"),
    ("alpha", "2", "2.0 is out of range"),
    ("gamma", "lots", "'lots' is not float"),
    ("grey", "maybe", "'maybe' is not bool"),
    ("frame", "-1", "-1 is out of range"),
    ("frame", "99", "the clip has 16 frames"),
    ("target", "first", "'first' is not int"),
    ("model", "no-such-model", "not available here"),
    ("sample", "deleted_clip", "not available here"),
    ("methods", "gradcam,no-such-method", "'no-such-method' is not available here"),
    ("methods", ",", "no method"),
    ("sigma", "-1", "sigma"),
    ("slice", "middle", "slice"),
    ("bogus", "1", "`bogus` is not a setting"),
    ("scale_scope", "everything", "'everything' is not available here"),
    ("compare_model", "no-such-model", "not available here"),
])
def test_a_bad_or_stale_value_is_named_and_defaulted(key, value, says):
    params = {"cmap": "seismic", key: value} if key != "cmap" else {key: value}
    s, notes = from_query_params(params)
    assert len(notes) == 1 and says in notes[0], notes
    default = Settings().flat()
    if key in default:
        assert s.flat()[key] == default[key]
    if key != "cmap":
        assert s.cmap == "seismic"  # the link's other values still apply


def test_settings_that_must_fit_each_other():
    s, notes = from_query_params({"methods": "gradcam", "full_only": "dtd,gradcam",
                                           "shown_method": "dtd"})
    assert s.methods == ["gradcam"] and s.full_only == ["gradcam"] and s.shown_method is None
    assert any("dtd not among the methods" in n for n in notes)
    assert any("`shown_method=dtd`" in n for n in notes)
    s, notes = from_query_params({"methods": "integrated-gradients", LINK_PARAM: [
        "integrated-gradients:steps=0", "gradcam:layer=x", "::"]})
    assert s.method_params == {} and len(notes) == 3, notes


# --------------------------------------------------------------------------- the page
@pytest.mark.slow
def test_opening_a_link_shows_that_view(env):
    needs_bundled()
    at = link_app({"model": "context-biased", "sample": "conflict_move_left",
                   "methods": "gradcam", "cmap": "coolwarm", "gamma": "0.8",
                   "normalisation": "per-frame", "frame": "5", "scale_scope": "panel",
                   "compare": "true", "compare_model": "motion"}, timeout=1200)
    assert_healthy(at)
    state = at.session_state
    assert (state["s_model"], state["s_sample"], state["s_methods"]) == (
        "context-biased", "conflict_move_left", ["gradcam"])
    assert (state["s_cmap"], state["s_gamma"], state["s_normalisation"], state["s_frame"]) == (
        "coolwarm", 0.8, "per-frame", 5)
    assert at.sidebar.selectbox(key="s_model").value == "context-biased"
    # the display's scale and the second model travel in the link too
    assert at.sidebar.radio(key="s_scale_scope").value == "panel"
    assert at.sidebar.toggle(key="s_compare").value is True
    assert at.sidebar.selectbox(key="s_compare_model").value == "motion"
    # the verdict, above the views, from the numbers: this model follows the scene
    assert "The scene decides" in warnings(at)
    assert "wrong here (ground truth move_left)" in warnings(at)
    # the URL still (or again) holds the view, and the page offers it to copy
    assert at.query_params["model"] == "context-biased" and at.query_params["frame"] == "5"
    link = next(c.value for c in at.code if "model=context-biased" in c.value)
    assert "sample=conflict_move_left" in link and "cmap=coolwarm" in link


@pytest.mark.slow
def test_changing_a_setting_rewrites_the_link(env):
    needs_bundled()
    at = link_app({"sample": "move_left", "methods": "gradcam"}, timeout=1200)
    assert_healthy(at)
    assert "cmap" not in at.query_params  # defaults are left out
    at.sidebar.selectbox(key="s_cmap").set_value("seismic").run()
    assert_healthy(at)
    assert at.query_params["cmap"] == "seismic"
    at.sidebar.selectbox(key="s_sample").set_value("conflict_move_left").run()
    assert_healthy(at)
    assert at.query_params["sample"] == "conflict_move_left"
    at.session_state["s_frame"] = 9  # as the player's Sync or a click on the plot sets it
    at.run()
    assert at.query_params["frame"] == "9"
    # the motion model on the conflict clip: the verdict says it needs the motion
    assert any("It needs the motion" in s.value for s in at.success)
    # the link is read on a session's first run only: the user's choices win afterwards
    at.sidebar.selectbox(key="s_cmap").set_value("bwr").run()
    assert "cmap" not in at.query_params and at.session_state["s_cmap"] == "bwr"


@pytest.mark.slow
def test_a_bad_link_warns_and_opens_the_defaults(env):
    needs_bundled()
    at = link_app({"model": "retired-model", "cmap": "rainbow", "alpha": "lots",
                   "sample": "move_left", "methods": "gradcam", "frame": "99",
                   "bogus": "1"}, timeout=1200)
    assert not at.exception and not at.error
    text = warnings(at)
    assert "Part of the link could not be used" in text
    for bad in ("retired-model", "rainbow", "lots", "frame=99", "bogus"):
        assert bad in text
    assert at.session_state["s_model"] == "motion" and at.session_state["s_cmap"] == "bwr"
    assert at.session_state["s_sample"] == "move_left"  # the good values still apply
    assert at.query_params["model"] == "motion" and "bogus" not in at.query_params
    at.sidebar.radio(key="s_normalisation").set_value("per-frame").run()
    assert "Part of the link" not in warnings(at)  # said once


def test_a_link_to_a_model_from_the_models_folder(env):
    at = link_app({"model_source": "own", "arch": TINY, "checkpoint": "tiny.pt",
                   "classes": "classes.txt", "clip_source": "upload", "methods": "gradcam"})
    assert_healthy(at)
    state = at.session_state
    assert (state["s_model_source"], state["s_arch"], state["s_checkpoint"]) == (
        "own", TINY, "tiny.pt")
    assert any("Upload a video" in i.value for i in at.info)
    assert at.query_params["arch"] == TINY and at.query_params["clip_source"] == "upload"


def test_a_link_to_a_checkpoint_that_is_gone(env):
    at = link_app({"model_source": "own", "arch": TINY, "checkpoint": "deleted.pt",
                   "clip_source": "upload"})
    assert not at.exception
    assert "`checkpoint=deleted.pt`" in warnings(at)
    assert at.session_state["s_checkpoint"] == "tiny.pt"  # the folder's, as without a link


def test_an_uploaded_clip_is_not_in_the_link_and_the_page_says_so(env):
    at = own_model_app(TINY, ["gradcam"], checkpoint="tiny.pt")
    upload(at, "clip.mp4", (env / "clip.mp4").read_bytes(), mime="video/mp4")
    assert_healthy(at)
    assert any("Uploaded files cannot be part of a link" in c.value for c in at.caption)
    assert at.query_params["clip_source"] == "upload"
    assert "upload" not in at.query_params and "clip.mp4" not in str(at.query_params)
    link = next(c.value for c in at.code if "clip_source=upload" in c.value)
    assert "checkpoint=tiny.pt" in link
