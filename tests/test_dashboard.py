"""The dashboard driven without a browser (streamlit.testing AppTest).

Most tests use a small model registered here (the small C3D on 8×32×32 clips, random
weights) loaded through the "own checkpoint" path, and an uploaded synthetic clip, so
they run in seconds. The default-load test needs the bundled ``motion`` weights and the
sample clips and is skipped, saying so, until they exist.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    APP,
    TIMEOUT,
    assert_healthy,
    dashboard_env,
    own_model_app,
    upload,
)

from dashboard.jobs import JobRunner
from dashboard.settings import Settings
from xai_core.decompose import DecompositionOptions
from xai_core.errors import ParameterError
from xai_core.synthetic.world import CLASSES

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

TINY = "tiny-small-c3d-test"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A models folder with a random small C3D for 8×32×32 clips, and test videos."""
    yield from dashboard_env(tmp_path_factory, "dashboard", TINY, bad_video=True)


def app_with(env: Path, methods=("dtd", "gradcam"), **state) -> AppTest:
    """The app on the test model with these methods (and widget values), the test clip
    uploaded, computed."""
    at = own_model_app(TINY, methods, **state)
    upload_clip(at, env / "clip.mp4")
    return at


def upload_clip(at: AppTest, path: Path) -> None:
    upload(at, path.name, path.read_bytes(), mime="video/mp4")


def image_urls(at: AppTest) -> list[str]:
    return [url for img in at.image for url in img.value]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def player_data(at: AppTest) -> dict:
    """What the frame player got: every frame's pictures (``pool``) and rows of indices."""
    import json

    (player,) = at.get("component_instance")
    return json.loads(player.proto.json_args)["data"]


def sync_player(at: AppTest, frame: int) -> AppTest:
    """What the browser sends when the player's Sync is pressed (or playback paused)."""
    at.session_state["player"] = {"frame": frame, "nonce": f"sync-{frame}-{len(at.caption)}"}
    return at.run()


def assert_every_view(at: AppTest) -> None:
    heads = [h.value for h in at.subheader]
    for view in ("Side by side", "Relevance per frame", "Saliency tubes", "Predictions",
                 "Method comparison", "Metrics"):
        assert view in heads
    # the player holds frame + full + spatial + temporal (+ colour bars) of every frame
    data = player_data(at)
    assert data["columns"] == ["Frame", "Full relevance", "Spatial (appearance)",
                               "Temporal (motion)"]
    rows = [r for g in data["groups"] for r in g["rows"]]
    assert rows and all(len(r["frames"]) == data["n"] for r in rows)
    assert all(len(seq) == data["n"] for r in rows for seq in r["cells"])
    assert all(u.startswith("data:image/") for u in data["pool"])
    # comparison grid, two tubes (+ the crop of the video)
    assert len(at.image) >= 3
    assert len(at.get("plotly_chart")) >= 3  # per-frame plot, top-5, freeze-frame strip


# --------------------------------------------------------------------------- app
def test_own_model_renders_every_view_and_the_frame_scrubber_moves_them(env):
    at = app_with(env)
    assert_healthy(at)
    assert_every_view(at)
    assert metric(at, "Explaining the class") in CLASSES
    # the player scrubs in the browser: frame 5's panels differ from frame 0's
    data = player_data(at)
    row = data["groups"][0]["rows"][0]
    assert all(seq[5] != seq[0] for seq in [row["frames"], *row["cells"]])
    before = image_urls(at)
    sync_player(at, 5)  # the player sends its frame back
    assert_healthy(at)
    assert at.session_state["s_frame"] == 5
    after = image_urls(at)
    assert len(after) == len(before)
    # the comparison grid follows the synced frame; the tubes and the video's crop do not
    assert sum(a != b for a, b in zip(after, before, strict=True)) == 1
    assert any("show frame 5" in c.value for c in at.caption)
    assert player_data(at) == data  # nothing re-sent to the browser


def test_switching_the_shown_method_and_the_method_list(env):
    at = app_with(env)
    before = image_urls(at)
    at.sidebar.selectbox(key="s_shown_method").set_value("gradcam").run()
    assert_healthy(at)
    assert image_urls(at)[:4] != before[:4]  # the tubes of the shown method
    assert any("gradcam" in c.value for c in at.caption)
    at.sidebar.multiselect(key="s_methods").set_value(["gradcam"]).run()
    assert_healthy(at)
    assert at.sidebar.selectbox(key="s_shown_method").value == "gradcam"
    assert [m.label for m in at.metric if m.label.startswith("Motion share ·")] == [
        "Motion share · gradcam"]


def test_choosing_another_target_class_explains_that_class(env):
    at = app_with(env)
    predicted = metric(at, "Model predicts")
    other = next(i for i, name in enumerate(CLASSES) if name != predicted)
    at.sidebar.selectbox(key="s_target").set_value(other).run()
    assert_healthy(at)
    assert metric(at, "Explaining the class") == CLASSES[other]
    assert metric(at, "Model predicts") == predicted  # the prediction does not change
    assert any(f"evidence for “{CLASSES[other]}”" in c.value for c in at.caption)


def test_a_bad_upload_shows_an_error_and_the_app_recovers(env):
    at = app_with(env)
    upload_clip(at, env / "bad.mp4")
    assert not at.exception
    messages = " ".join(e.value for e in at.error)
    assert "Could not read the clip" in messages
    assert "Traceback" not in messages
    assert not [h for h in at.subheader if h.value == "Side by side"]
    upload_clip(at, env / "clip.mp4")
    assert_healthy(at)
    assert_every_view(at)


def test_a_checkpoint_that_does_not_fit_is_a_readable_error(env, tmp_path):
    torch.save({"conv.weight": torch.zeros(2, 2)}, Path(env) / "models" / "wrong.pt")
    try:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.session_state["s_model_source"] = "own"
        at.session_state["s_arch"] = TINY
        at.session_state["s_checkpoint"] = "wrong.pt"
        at.run()
        assert not at.exception
        text = " ".join(e.value for e in at.error)
        assert "Could not load the model" in text and "does not fit" in text
        at.sidebar.selectbox(key="s_checkpoint").set_value("tiny.pt").run()
        assert not at.exception
        assert "Could not load the model" not in " ".join(e.value for e in at.error)
    finally:
        (Path(env) / "models" / "wrong.pt").unlink()


@pytest.mark.slow
def test_default_load_shows_the_bundled_model_on_the_first_sample(env):
    from dashboard.samples import sample_clips
    from xai_core.models.bundled import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "motion.pt").is_file():
        pytest.skip("bundled weights motion.pt not trained yet (make train)")
    if not sample_clips():
        pytest.skip("sample clips not generated yet (make samples)")
    # the real model on a full 16×112×112 clip: two methods with their freeze-frame
    # decompositions take ~20 s on an idle 2-core CPU, minutes on a busy one
    at = AppTest.from_file(APP, default_timeout=1200)
    at.run()
    assert_healthy(at)
    assert_every_view(at)
    assert at.sidebar.selectbox(key="s_model").value == "motion"
    assert at.sidebar.selectbox(key="s_sample").value == sample_clips()[0].name


# --------------------------------------------------------------------------- pieces
def test_settings_json_round_trip_and_bad_files():
    s = dataclasses.replace(Settings(), methods=["dtd"], target=3, cmap="coolwarm", frame=7,
                            method_params={"dtd": {"alpha": 2.0, "beta": 1.0}})
    assert Settings.from_json(s.to_json()) == s
    with pytest.raises(ParameterError, match="not valid JSON"):
        Settings.from_json("{oops")
    with pytest.raises(ParameterError, match="does not hold dashboard settings"):
        Settings.from_json('{"cmap": "bwr"}')
    with pytest.raises(ParameterError, match="unknown fields"):
        Settings.from_json('{"xai_dashboard_settings": 1, "colour": "red"}')
    with pytest.raises(ParameterError, match="alpha"):
        Settings.from_json('{"xai_dashboard_settings": 1, "alpha": "high"}')


def test_settings_embed_the_core_options_and_files_written_earlier_still_load():
    import json

    from dashboard.settings import OPTION_FIELDS

    # the options are the core's own type, with its defaults; their widget keys (s_<option>)
    # never meet a setting's
    assert Settings().options == DecompositionOptions()
    assert not set(OPTION_FIELDS) & {f.name for f in dataclasses.fields(Settings)}
    saved = json.loads(dataclasses.replace(
        Settings(), options=DecompositionOptions(sigma=3.0, slice="mean")).to_json())
    assert saved["options"]["sigma"] == 3.0 and "sigma" not in saved
    # version 1: the options as flat keys, the motion-panel toggle as "selective"
    old = {"xai_dashboard_settings": 1, "model": "motion", "methods": ["dtd"], "target": 2,
           "slice": "mean", "normalise": "max-abs", "sigma": 3.0, "sobel_border": "zeros",
           "selective": True, "cmap": "coolwarm"}
    s = Settings.from_json(json.dumps(old))
    assert s.options == DecompositionOptions(slice="mean", normalise="max-abs", sigma=3.0,
                                             sobel_border="zeros")
    assert s.show_selective is True and s.target == 2 and s.cmap == "coolwarm"
    # the core checks its options, the methods their parameters
    with pytest.raises(ParameterError, match="sigma"):
        Settings.from_json(json.dumps({**old, "sigma": -1.0}))
    with pytest.raises(ParameterError, match="unknown options"):
        Settings.from_json(json.dumps({**saved, "options": {"colour": 1}}))
    with pytest.raises(ParameterError, match="alpha − beta = 1"):
        Settings.from_json(json.dumps({**saved, "method_params": {"dtd": {"alpha": 3.0}}}))
    with pytest.raises(ParameterError, match="target"):
        Settings.from_json(json.dumps({**saved, "target": "move_left (93%)"}))


def test_probabilities_never_read_0_percent():
    from dashboard.display import probability

    assert [probability(p) for p in (0.93, 0.01, 0.003, 0.0004, 0.0)] == [
        "93%", "1%", "0.3%", "<0.1%", "<0.1%"]


def test_an_explanation_job_advances_with_the_cost_of_each_stage(env):
    from xai_core import engine
    from xai_core.estimate import pass_counts
    from xai_core.models.registry import load_model
    from xai_core.request import ExplainRequest

    model = load_model(arch=TINY, checkpoint=env / "models" / "tiny.pt")
    request = ExplainRequest.build(model, env / "clip.mp4", ["gradient", "gradcam"],
                                   decompose=["gradcam"])
    counts = pass_counts(request)
    full_g, split_g = counts.methods["gradient"]
    full_c, split_c = counts.methods["gradcam"]
    assert split_g == 0 and split_c > full_c  # the split costs more than the explanation
    total = counts.prediction + full_g + full_c + split_c
    runner = JobRunner()
    trace = []

    def work(progress):
        def report(event):
            progress(event)
            trace.append((event, runner.get(request.key()).fraction))
        return engine.run(request, cache=None, progress=report)

    job = runner.submit(request.key(), work)
    assert job.wait(120) and job.status == "done", job.error
    fractions = [f for _, f in trace]
    assert fractions == sorted(fractions) and job.fraction == 1.0

    def at_end(method, stage):
        return next(f for e, f in trace
                    if (e.method, e.stage) == (method, stage) and e.done == e.total > 0)

    assert at_end(None, "freeze-frame predictions") == pytest.approx(counts.prediction / total)
    assert at_end("gradient", "full") == pytest.approx((counts.prediction + full_g) / total)
    assert at_end("gradcam", "full") == pytest.approx(
        (counts.prediction + full_g + full_c) / total)
    assert at_end("gradcam", "freeze frames") == pytest.approx(1.0)


def test_metrics_are_computed_on_demand_with_a_table(env):
    at = app_with(env)
    assert not at.dataframe  # nothing computed before asking
    at.button(key="compute_metrics").click().run()
    assert_healthy(at)
    assert len(at.dataframe) == 1
    table = at.dataframe[0].value  # method × metric: one row per method and map
    assert list(table.columns[:2]) == ["method", "map"]
    assert {"dtd", "gradcam"} <= set(table["method"])
    assert not table.duplicated(["method", "map"]).any()
    precision = [c for c in table.columns if c.startswith("motion_precision")]
    assert precision and table[precision[0]].between(0, 1).any()
    # the uploaded clip has no ground truth: localisation metrics are skipped, not failed
    assert any("Skipped" in c.value and "ground_truth" in c.value for c in at.caption)


def test_upload_folder_is_private_replaces_files_and_is_removed():
    from dashboard.resources import UploadFolder

    folder = UploadFolder()
    assert (folder.path.stat().st_mode & 0o777) == 0o700
    first = folder.store("video", "a.mp4", b"one")
    second = folder.store("video", "b.mp4", b"two")
    assert second.read_bytes() == b"two" and not first.exists()  # replaced, old one deleted
    assert folder.get("video") == second
    folder.discard("video")
    assert folder.get("video") is None and not second.exists()
    folder.store("checkpoint", "m.pt", b"weights")
    path = folder.path
    folder.cleanup()
    assert not path.exists()


def test_exports_are_readable_files(env):
    import io
    import json
    import zipfile

    import av
    from PIL import Image

    from dashboard import display, export
    from xai_core.results import Explanation

    at = app_with(env)
    expl = at.session_state["_explanation"][1]
    settings = dataclasses.replace(Settings(), methods=list(expl.methods), shown_method="dtd")
    scales = display.scales_for(expl, settings)
    with zipfile.ZipFile(io.BytesIO(export.npz_zip(expl))) as zf:
        names = set(zf.namelist())
        assert {"explanation/dtd.npz", "explanation/gradcam.npz",
                "explanation/summary.json"} <= names
        summary = json.loads(zf.read("explanation/summary.json"))
        assert summary["target"] == expl.target
        out = Path(env) / "unzipped"
        zf.extractall(out)
    back = Explanation.from_npz(out / "explanation")
    np.testing.assert_array_equal(back["dtd"].temporal, expl["dtd"].temporal)  # signed, exact
    png = Image.open(io.BytesIO(export.view_image_png(expl, settings, scales, 3)))
    assert png.format == "PNG" and png.size[0] >= 4 * 64
    mp4 = Path(env) / "overlay.mp4"
    mp4.write_bytes(export.overlay_mp4(expl, settings, scales))
    with av.open(str(mp4)) as box:
        assert box.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in box.decode(video=0)) == expl.frames.shape[0]
    assert Settings.from_json(settings.to_json()) == settings


def test_play_runs_in_the_browser_and_pause_syncs_the_frame(env):
    at = app_with(env)
    data = player_data(at)
    # Play runs client-side at the clip's rate (the 8 fps test video), over every frame
    assert data["fps"] == 8.0 and data["n"] == 8
    assert not [b for b in at.button if b.key == "play"]  # no server-side play loop
    start = at.session_state["s_frame"]
    at.run()
    assert at.session_state["s_frame"] == start  # nothing advances on the server
    sync_player(at, 6)  # pausing sends the frame the player stopped on
    assert_healthy(at)
    assert at.session_state["s_frame"] == 6
    at.run()
    assert at.session_state["s_frame"] == 6  # paused: stays put


# --------------------------------------------------------------------------- long methods
def test_a_long_explanation_waits_for_start_and_shows_its_estimate(env, monkeypatch):
    from dashboard import compute
    from dashboard.compute import job_runner

    # gradient on the 8-frame clip: the clip + one freeze-frame clip per distinct frame
    # (up to 9 passes), above a limit of 5
    monkeypatch.setattr(compute, "CONFIRM_ABOVE_PASSES", 5)
    at = app_with(env, ["gradient"], **{"s_sigma": 3.5})  # a request no other test made
    assert_healthy(at)
    warning = " ".join(w.value for w in at.warning)
    passes = re.search(r"runs \*\*(\d+) model passes", warning)
    assert passes and 5 < int(passes.group(1)) <= 9 and "measured pass" in warning
    assert "gradient: ≈" in at.code[0].value
    start = next(b for b in at.button if b.label.startswith("Start ("))
    assert not [h for h in at.subheader if h.value == "Side by side"]  # nothing computed
    assert job_runner().pending() == 0
    start.click().run()
    assert_healthy(at)
    assert_every_view(at)
    assert not [w for w in at.warning if "model passes" in w.value]
    # back to the same request later: cached, so it shows at once without asking
    at.sidebar.slider(key="s_sigma").set_value(4.0).run()
    at.sidebar.slider(key="s_sigma").set_value(3.5).run()
    assert_healthy(at)
    assert [h for h in at.subheader if h.value == "Side by side"]


def test_extremal_perturbation_defaults_to_full_relevance_only(env):
    at = app_with(env, ["gradcam", "extremal-perturbation"],
                  **{"p_extremal-perturbation_iterations": 4,
                     "p_extremal-perturbation_areas": "0.1, 0.3",
                     "p_extremal-perturbation_step": 4})
    assert_healthy(at)
    assert at.sidebar.multiselect(key="s_full_only").value == ["extremal-perturbation"]
    assert at.session_state["method_params"]["extremal-perturbation"] == {
        "areas": (0.1, 0.3), "iterations": 4, "step": 4}
    # 4 iterations × 2 areas = 8 passes: below the confirmation limit, computed at once
    assert_every_view(at)
    expl = at.session_state["_explanation"][1]
    assert not expl["extremal-perturbation"].decomposed and expl["gradcam"].decomposed
    assert expl["extremal-perturbation"].params["areas"] == [0.1, 0.3]
    at.sidebar.selectbox(key="s_shown_method").set_value("extremal-perturbation").run()
    assert_healthy(at)
    captions = " ".join(c.value for c in at.caption)
    assert "Not computed: full relevance only" in captions
    assert metric(at, "Motion share · extremal-perturbation") == "n/a"
    assert metric(at, "Motion share · gradcam") != "n/a"
    # asking for the split: a request of its own, computed with spatial and temporal maps
    at.sidebar.multiselect(key="s_full_only").set_value([]).run()
    assert_healthy(at)
    expl = at.session_state["_explanation"][1]
    assert expl["extremal-perturbation"].decomposed


def test_a_tuple_parameter_the_method_refuses_is_explained_and_the_default_kept(env):
    at = app_with(env, ["extremal-perturbation"],
                  **{"p_extremal-perturbation_areas": "0.1, 2",
                     "p_extremal-perturbation_iterations": 2})
    assert not at.exception
    errors = " ".join(e.value for e in at.sidebar.error)
    assert "areas" in errors and "≤ 0.999" in errors and "Using the default" in errors
    assert "areas" not in at.session_state["method_params"]["extremal-perturbation"]


def test_settings_with_method_parameters_load_back_into_the_widgets(env):
    saved = dataclasses.replace(
        Settings(), model_source="own", arch=TINY, classes="classes.txt",
        methods=["gradcam", "extremal-perturbation"], full_only=["extremal-perturbation"],
        method_params={"extremal-perturbation": {"areas": [0.2], "iterations": 3}})
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["_pending_settings"] = Settings.from_json(saved.to_json())
    at.run()
    assert not at.exception
    assert at.text_input(key="p_extremal-perturbation_areas").value == "0.2"
    assert at.number_input(key="p_extremal-perturbation_iterations").value == 3
    assert at.session_state["method_params"] == {
        "extremal-perturbation": {"areas": (0.2,), "iterations": 3}}
    assert at.sidebar.multiselect(key="s_full_only").value == ["extremal-perturbation"]
    bad = dataclasses.replace(saved, full_only=["dtd"])
    with pytest.raises(ParameterError, match="full_only"):
        Settings.from_json(bad.to_json())
