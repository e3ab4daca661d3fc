"""The views a stakeholder reads (streamlit.testing AppTest, small C3D on 8×32×32 clips):

* one colour scale for the full, spatial and temporal panels of a method (per panel as an
  option), a robust display scale, and legends that say which;
* two models side by side on one clip, with one player;
* the crop the model sees, and notices when an input is out of the model's world;
* previous results stay on the page while new ones compute; a slow method waits for
  Start without blanking the others; one method's error stays in its place;
* polish: no metric deltas for non-deltas, the clip's frames in words, an all-zero
  colour bar, the explained class in full, the metrics as a method × metric table.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from helpers import assert_healthy, good_clip, model_world, own_model_app, upload, write_model_files

from xai_core import render
from xai_core.models import registry
from xai_core.progress import ProgressEvent
from xai_core.synthetic.world import WorldConfig, render_clip
from xai_core.video.write import write_video

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

TINY = "tiny-small-c3d-views-test"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Models folder (the test model, and a "retrained" copy with other weights) and
    videos: a good clip, a 16:9 one, a static one and a one-frame one."""
    root = tmp_path_factory.mktemp("dashboard-views")
    with model_world(root, TINY, checkpoint="tiny.pt"):
        write_model_files(root / "models", registry.get_spec(TINY), "retrained.pt",
                          logit_gain=6.0)
        good_clip(root, frames=8)
        frames = render_clip(2, label=3, config=WorldConfig(size=48, num_frames=8)).frames
        wide = np.stack([cv2.resize(f, (96, 54), interpolation=cv2.INTER_LINEAR) for f in frames])
        write_video(root / "wide.mp4", wide, fps=8)
        write_video(root / "static.mp4", np.repeat(frames[:1], 8, axis=0), fps=8)
        write_video(root / "one.mp4", frames[:1], fps=8)
        yield root


def app_with(env: Path, methods=("dtd", "gradcam"), video: str = "clip.mp4", **state) -> AppTest:
    at = own_model_app(TINY, methods, checkpoint="tiny.pt", **state)
    return upload(at, video, (env / video).read_bytes(), mime="video/mp4")


def player_data(at: AppTest) -> dict:
    (player,) = at.get("component_instance")
    return json.loads(player.proto.json_args)["data"]


def rows(at: AppTest, group: int = 0) -> dict[str, dict]:
    return {r["method"]: r for r in player_data(at)["groups"][group]["rows"]}


def text(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.caption, *at.markdown, *at.info, *at.warning,
                                      *at.error])


def heads(at: AppTest) -> set[str]:
    return {h.value for h in at.subheader}


# --------------------------------------------------------------------------- 2: scales
def test_full_spatial_and_temporal_share_one_scale_unless_asked(env):
    at = app_with(env)
    assert_healthy(at)
    dtd = rows(at)["dtd"]
    n = player_data(at)["n"]
    # one scale: the three colour bars of a frame are the same picture
    assert all(dtd["bars"][0][t] == dtd["bars"][1][t] == dtd["bars"][2][t] for t in range(n))
    assert "one scale per clip for the full, spatial and temporal panels" in text(at)
    at.sidebar.radio(key="s_scale_scope").set_value("panel").run()
    assert_healthy(at)
    dtd = rows(at)["dtd"]
    assert dtd["bars"][0][0] != dtd["bars"][1][0]  # each panel its own scale
    assert "each panel scaled on its own" in text(at)


def test_a_robust_display_scale_is_the_default_and_said_in_the_legend(env):
    at = app_with(env, ["gradient"])
    assert "99.5th percentile of |R|" in text(at)
    robust = player_data(at)["pool"]
    at.sidebar.selectbox(key="s_scale_statistic").set_value("max").run()
    assert_healthy(at)
    assert "full colour at the largest |R|" in text(at)
    assert player_data(at)["pool"] != robust
    expl = at.session_state["_explanation"][1]
    full = expl["gradient"].full
    assert render.scale_of(full, "per-clip", statistic="p99.5")[0] < np.abs(full).max()


def test_heat_map_of_a_near_zero_map_is_near_neutral_under_the_shared_scale(env):
    from dashboard import display
    from dashboard.settings import Settings

    at = app_with(env, ["dtd"])
    expl = at.session_state["_explanation"][1]
    r = expl["dtd"]
    weak = dataclasses.replace(r, spatial=r.full * 1e-3, temporal=r.full * (1 - 1e-3))
    expl = dataclasses.replace(expl, methods={"dtd": weak})
    settings = dataclasses.replace(Settings(), methods=["dtd"], panel="heatmap", gamma=1.0)
    neutral = np.array(render.neutral_colour(settings.cmap), float)

    def tint(scope: str) -> float:
        scales = display.scales_for(expl, settings, scope=scope, statistic="max")
        img = display.panel(expl, "dtd", "spatial", 0, settings, scales).astype(float)
        return float(np.abs(img - neutral).mean())

    assert tint("method") < 2.0  # near-neutral: evidence 1000× weaker looks weak
    assert tint("panel") > 10 * max(tint("method"), 0.5)  # stretched: looks as strong


# --------------------------------------------------------------------------- 3: two models
@pytest.fixture
def second_model(env, monkeypatch):
    """"retrained.pt" offered as the bundled second model."""
    from dashboard import second_model as second
    from dashboard import sidebar_compare
    from xai_core.models.registry import load_model

    monkeypatch.setattr(sidebar_compare, "bundled_model_names", lambda: ["retrained"])
    monkeypatch.setattr(sidebar_compare, "get_spec",
                        lambda name: SimpleNamespace(description="the test model, retrained"))
    monkeypatch.setattr(second, "load_bundled", lambda name: load_model(
        arch=TINY, checkpoint=env / "models" / "retrained.pt",
        classes=env / "models" / "classes.txt"))


def test_two_models_side_by_side_with_one_player(env, second_model):
    at = app_with(env)
    at.sidebar.toggle(key="s_compare").set_value(True).run()
    assert_healthy(at)
    data = player_data(at)
    assert len(data["groups"]) == 2 and data["groups"][1]["title"] == "retrained"
    assert [r["method"] for g in data["groups"] for r in g["rows"]] == ["dtd", "gradcam"] * 2
    first, second = (at.session_state[k] for k in ("_explanation", "_explanation_b"))
    assert first[0] != second[0]  # its own request and job
    assert second[1].weights_hash != first[1].weights_hash
    assert second[1].target_name == first[1].target_name  # the same class by default
    table = at.dataframe[0].value
    assert list(table["model"]) == [first[1].model, second[1].model]
    assert {"motion share · dtd", "motion share · gradcam"} <= set(table.columns)
    keys = {c.key for c in at.get("plotly_chart")}
    assert {"over_time_plot", "over_time_plot_b", "top5_plot", "b_top5_plot", "freeze_plot",
            "b_freeze_plot"} <= keys
    assert any(m.value == "#### Second model: retrained" for m in at.markdown)
    at.sidebar.radio(key="s_compare_target").set_value("own").run()
    assert_healthy(at)
    expl_b = at.session_state["_explanation_b"][1]
    assert expl_b.target == expl_b.predicted


# --------------------------------------------------------------------------- 4: the crop
def test_the_crop_the_model_sees_and_a_notice_for_a_16_9_video(env):
    at = app_with(env, ["gradcam"], video="wide.mp4")
    assert not at.exception
    notes = " ".join(w.value for w in at.warning)
    assert "A 16:9 video is centre-cropped to a square: the left and right sides are not seen" \
        in notes
    (box,) = [e for e in at.expander if e.label.startswith("What the model sees")]
    assert len(box.image) == 1  # the video's frame with the crop drawn on it
    assert "covers 56% of the width and 100% of the height" in " ".join(
        m.value for m in box.markdown)
    square = app_with(env, ["gradcam"])
    assert "centre-cropped" not in " ".join(w.value for w in square.warning)


def test_a_near_chance_prediction_gets_a_notice(env):
    at = app_with(env, ["gradcam"])
    p = at.session_state["_explanation"][1].probabilities
    notes = " ".join(w.value for w in at.warning)
    assert ("The model is unsure" in notes) == (p.max() < 2 / len(p))


# --------------------------------------------------------------------------- 5: computing
def test_previous_results_stay_while_the_new_ones_compute(env, monkeypatch):
    from dashboard import app, compute

    at = app_with(env, ["gradcam"])
    first = at.session_state["_explanation"][0]
    release = threading.Event()
    real = compute.explain_tolerant

    def slow(request, progress):
        progress(ProgressEvent("full", 1, 4, "gradcam", overall=0.25))
        release.wait(120)
        return real(request, progress)

    monkeypatch.setattr(compute, "explain_tolerant", slow)
    monkeypatch.setattr(app, "wait_pending", lambda shown: None)  # do not wait: look now
    try:
        at.sidebar.slider(key="s_sigma").set_value(2.5).run()
        assert_healthy(at)
        assert "Side by side" in heads(at) and player_data(at)["groups"][0]["rows"]
        assert at.session_state["_explanation"][0] == first  # still the previous one
        assert "the views below still show the previous one" in text(at)
        job = compute.job_runner().get(at.session_state["_job_key"])
        for _ in range(600):  # until the job has reported its progress
            if job.fraction > 0:
                break
            job.wait(0.1)
        at.run()  # the page again, while it still computes
        assert "Side by side" in heads(at)
        (bar,) = at.get("progress")
        assert bar.proto.value == 25  # the job's cost-weighted fraction
    finally:
        release.set()
    assert job.wait(120)
    at.run()
    assert_healthy(at)
    assert at.session_state["_explanation"][0] != first
    assert not at.get("progress")


def test_a_slow_new_method_waits_for_start_beside_the_views_of_the_others(env, monkeypatch):
    from dashboard import compute

    at = app_with(env, ["gradcam"], s_sigma=3.0)
    monkeypatch.setattr(compute, "CONFIRM_ABOVE_PASSES", 5)  # gradient: 9 passes
    at.sidebar.multiselect(key="s_methods").set_value(["gradcam", "gradient"]).run()
    assert_healthy(at)
    assert "Side by side" in heads(at)
    assert list(rows(at)) == ["gradcam"]  # the others' views, computed or cached
    assert "gradient" in at.code[0].value and "gradcam" not in at.code[0].value
    start = next(b for b in at.button if b.label.startswith("Start ("))
    start.click().run()
    assert_healthy(at)
    assert list(rows(at)) == ["gradcam", "gradient"]


def test_one_methods_error_is_shown_in_its_place(env):
    at = app_with(env, ["dtd", "gradcam"], **{"p_gradcam_layer": "no.such.layer"})
    assert not at.exception
    assert "Side by side" in heads(at)
    errors = " ".join(e.value for e in at.error)
    assert "gradcam could not be computed" in errors and "no.such.layer" in errors
    assert "Could not explain the clip" not in errors
    r = rows(at)
    assert r["dtd"]["error"] is None and len(r["dtd"]["cells"]) == 3
    assert "no.such.layer" in r["gradcam"]["error"] and not r["gradcam"]["cells"]


# --------------------------------------------------------------------------- 6: polish
def test_metrics_have_no_delta_arrows_and_the_class_is_in_full(env):
    at = app_with(env)
    assert at.metric and all(not m.proto.delta for m in at.metric)
    name = at.session_state["_explanation"][1].target_name
    assert any(f"Explaining **{name}**" in c.value for c in at.sidebar.caption)


def test_a_one_frame_video_is_said_in_words(env):
    at = app_with(env, ["gradcam"], video="one.mp4")
    assert not at.exception
    words = text(at)
    assert "video frame 0 only, repeated 8 times" in words
    assert "frames 0–0" not in words


def test_a_static_clips_temporal_colour_bar_is_not_all_zero_ticks(env):
    at = app_with(env, ["gradcam"], video="static.mp4")
    assert_healthy(at)
    r = at.session_state["_explanation"][1]["gradcam"]
    # a static clip: (almost: the video codec) no motion evidence at all
    assert np.abs(r.temporal).max() < 1e-2 * np.abs(r.full).max()
    bars = rows(at)["gradcam"]["bars"]
    assert bars[2][0] == bars[0][0]  # the temporal bar has the full map's scale
    zero = render.colour_bar("bwr", 0.0, width=224, height=80, label="a\nb")
    some = render.colour_bar("bwr", 1.0, width=224, height=80, label="a\nb")
    ink = np.array(render.text.INK)
    below = slice(22, 40)  # where the ticks and their numbers are
    assert (zero[below] == ink).all(-1).sum() < (some[below] == ink).all(-1).sum()


def test_metrics_are_a_method_by_metric_table():
    from xai_core.evaluation.scoring import ClipScores

    rows_ = [{"method": m, "variant": v, "metric": k, "quantity": q, "value": x,
              "higher_is_better": h}
             for m, v, k, q, x, h in [("dtd", "full", "motion_precision", "precision", .4, True),
                                      ("dtd", "selective", "motion_precision", "precision", .7,
                                       True),
                                      ("random", "full", "motion_precision", "precision", .1,
                                       True),
                                      ("dtd", "full", "ground_truth", "actor", .5, None),
                                      ("dtd", "full", "ground_truth", "context", .2, None)]]
    wide = ClipScores(rows_, {}, {}).to_wide()
    assert list(wide.columns) == ["method", "map", "motion_precision", "ground_truth · actor",
                                  "ground_truth · context"]
    assert list(zip(wide["method"], wide["map"], strict=True)) == [
        ("dtd", "full"), ("dtd", "selective"), ("random", "full")]
    assert wide.loc[1, "motion_precision"] == .7 and np.isnan(wide.loc[2, "ground_truth · actor"])
    assert wide.attrs["higher_is_better"]["motion_precision"] is True
