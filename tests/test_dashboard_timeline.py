"""The timeline under an uploaded video: a strip of windows, a click opens one in the views.

The small C3D on 8×32×32 clips (random weights, from a models folder) and a generated
5-second video of 40 frames at 8 fps: the timeline's windows take every frame (8 fps is
below the assumed 25 fps of a model without a rate) and tile the video, 5 windows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_healthy, dashboard_env, good_clip, own_model_app, upload

from dashboard import timeline_view
from xai_core.decompose import DEFAULT_OPTIONS
from xai_core.models.registry import load_model
from xai_core.progress import ignore
from xai_core.timeline import timeline
from xai_core.video.read import probe

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

TINY = "tiny-small-c3d-timeline-test"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from dashboard_env(tmp_path_factory, "timeline", TINY)


def app_with_video(video: Path) -> AppTest:
    at = own_model_app(TINY, ["gradcam"])
    return upload(at, video.name, video.read_bytes(), mime="video/mp4")


def strip_buttons(at: AppTest) -> list:
    return [b for b in at.button if str(b.key).startswith("timeline_open_")]


def summary(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption if c.value.startswith("Model **"))


def test_the_strip_shows_every_window_and_a_click_opens_one(env):
    video = good_clip(env, "long.mp4", frames=40)
    at = app_with_video(video)
    assert_healthy(at)
    assert "Timeline of the whole video" in [h.value for h in at.subheader]
    assert any("**5 windows** of 8 frames" in c.value for c in at.caption)
    buttons = strip_buttons(at)
    assert [b.key for b in buttons] == [f"timeline_open_{i}" for i in range(5)]
    assert buttons[0].label == "Shown" and buttons[2].label == "Open"  # the clip: window 0
    assert at.get("plotly_chart")  # the figure: top class and motion share over time
    thumbs = [i.caption for im in at.image for i in im.proto.imgs if "· motion " in i.caption]
    assert len(thumbs) == 5 and thumbs[2].startswith("0:02 · ")
    assert "video frames 0–7" in summary(at)

    at.button(key="timeline_open_2").click().run()
    assert_healthy(at)
    assert at.session_state["s_start"] == 16
    assert at.sidebar.slider(key="s_start").value == 16
    assert "video frames 16–23" in summary(at)  # the views explain that window now
    assert [b.label for b in strip_buttons(at)][2] == "Shown"


def test_a_click_on_the_figure_opens_the_window_at_that_time(env, monkeypatch):
    model = load_model(arch=TINY, checkpoint=env / "models" / "tiny.pt", device="cpu")
    tl = timeline(model, good_clip(env, "long.mp4", frames=40))
    # what the browser sends for a click at 3.5 s (window 3: 3.0–4.0 s)
    state = {timeline_view.PLOT_KEY: {"selection": {"points": [{"x": 3.5}]}}}
    monkeypatch.setattr(timeline_view.st, "session_state", state)
    timeline_view._select(tl)
    assert (state["s_start"], state["s_stride"]) == (24, 1)
    # the strip's thumbnails: every window's first frame with the model's crop in yellow
    video = Path(tl.video)
    strip = timeline_view._compute(model, video, DEFAULT_OPTIONS, None, probe(video), ignore)
    assert [i for i, _ in strip.thumbs] == [0, 1, 2, 3, 4]
    image = strip.thumbs[0][1]
    assert image.shape[0] == timeline_view.THUMB_HEIGHT
    assert (image.reshape(-1, 3) == (255, 215, 0)).all(axis=1).any()


def test_a_video_of_one_clip_has_no_timeline(env):
    at = app_with_video(env / "clip.mp4")  # 8 frames: the model's own clip
    assert_healthy(at)
    assert "Timeline of the whole video" not in [h.value for h in at.subheader]
    assert not strip_buttons(at)
