"""Journeys 1–3 in a real browser: the reported crash sequence and every display
setting; an uploaded long video's window, stride, target, methods and options, and its
timeline strip; scrubbing, Sync and clicks on the per-frame plot. See :mod:`journey` for
what every step checks."""

from __future__ import annotations

import pytest
from journey_steps import (
    SLICE,
    START,
    click_point,
    explaining,
    player_shows,
    sample,
    says,
    small_video,
)

pytestmark = [pytest.mark.browser, pytest.mark.journey]


# --------------------------------------------------------------------------- 1: the crash
def test_settings_after_the_prediction_changed(journey, server):
    """The reported crash: after anything changed the prediction, the next change of any
    setting stopped the page (a stale "Class to explain" label came back as the target)."""
    j = journey
    j.open(server.url + START)
    j.select("Sample clip", sample("grow", j))
    says(j, r"clip grow\.mp4")
    j.radio("Colour scale", "per frame")
    j.select("Sample clip", sample("rotate_cw", j))
    j.radio("Colour scale", "per clip")  # any setting, right after the prediction changed
    j.select("Bundled model", "context-biased")
    says(j, r"Model context-biased · clip rotate_cw\.mp4")
    j.radio("Show relevance", "as a heat map")
    target = j.options("Class to explain")[2]
    j.select("Class to explain", target)
    assert explaining(j) == target
    j.select("Colour map", j.options("Colour map")[3])
    j.toggle("Grey frames under the relevance")
    j.slide("Overlay opacity", "ArrowLeft", 2)
    j.slide("Contrast γ (1 = linear)", "End")
    j.radio("Panels of a method", "each panel its own scale")
    j.select("Bundled model", "motion")  # a class chosen for another model is not kept
    assert j.value("Class to explain") == "The predicted class"
    assert j.sidebar.get_by_text("was reset to the predicted one").count() == 1
    j.radio("Colour scale", "shared across methods")
    j.select("Sample clip", sample("move_left", j))
    j.radio("Show relevance", "on the frame")


# --------------------------------------------------------------------------- 2: a window
def test_window_stride_target_methods_and_options_of_an_uploaded_video(journey, server,
                                                                       tmp_path):
    j = journey
    video = small_video(tmp_path / "long_clip.mp4", frames=40)
    j.open(server.url + START)
    j.radio("Clip", "Upload a video")
    j.upload("Video (", video)
    assert j.sidebar.get_by_text("40 frames, 112×112").count() == 1
    says(j, r"clip long_clip\.mp4 \(video frames 0–15\)")
    j.slide("Window start (frame)", "End")
    says(j, r"video frames 24–39\)")
    j.number("Stride (take every n-th frame)", 2)  # the start moves back to fit
    says(j, r"video frames 9–39, every 2nd\)")
    j.slide("Window start (frame)", "ArrowLeft")
    says(j, r"video frames 8–38, every 2nd\)")
    target = j.options("Class to explain")[3]
    j.select("Class to explain", target)
    assert explaining(j) == target
    j.add("Explanation methods", "gradient (gradient)")  # the same clip: the class stays
    j.select("Method shown in the frame views", "gradient")
    j.remove("Explanation methods", "gradcam (cam)")
    assert j.chosen("Explanation methods") == ["gradient (gradient)"]
    j.toggle("Motion panel: selective relevance")
    j.toggle("Grey frames under the relevance")
    j.radio("Show relevance", "as a heat map")
    j.expand("Decomposition options")
    j.select(SLICE, "first")
    assert explaining(j) == target
    j.number("Stride (take every n-th frame)", 1)  # another clip: back to the predicted class
    says(j, r"video frames 8–23\)")
    assert j.value("Class to explain") == "The predicted class"
    j.slide("Window start (frame)", "ArrowRight", 3)
    says(j, r"video frames 11–26\)")
    j.add("Explanation methods", "gradcam (cam)")
    opens = j.main.get_by_role("button", name="Open", exact=True)  # the timeline strip
    j.step("open the timeline's second window", opens.nth(1).click)
    start = int(j.slider_value("Window start (frame)"))
    assert start != 11
    says(j, rf"video frames {start}–{start + 15}\)")
    assert j.main.get_by_role("button", name="Shown", exact=True).count() == 1
    j.slide("Window start (frame)", "Home")  # the sidebar moves away from it again
    says(j, r"video frames 0–15\)")


# --------------------------------------------------------------------------- 3: scrubbing
def test_scrub_sync_and_click_the_per_frame_plot(journey, server):
    j = journey
    j.open(server.url + START)
    j.keys("ArrowRight", "ArrowRight", "ArrowRight")
    player_shows(j, 3)
    j.step("press Sync views below", j.player().locator("#sync").click)
    says(j, r"show frame 3\.")
    click_point(j, 9)
    j.keys("ArrowLeft", "ArrowLeft")
    player_shows(j, 7)
    click_point(j, 9)  # the frame the server already has: the player must still go there
    j.keys("ArrowLeft", "ArrowLeft")
    click_point(j, 9)  # plotly reads a click on its selected point as "deselect"
    j.keys("ArrowRight")
    j.step("press Sync views below", j.player().locator("#sync").click)
    says(j, r"show frame 10\.")
    click_point(j, 4)
    j.keys(" ")  # play …
    j.player().wait_for_function("() => Number(document.body.dataset.frame) >= 6",
                                 timeout=30_000)
    j.keys(" ", rerun=True)  # … and pause: the frame goes back to the server
    says(j, rf"show frame {j.frame()}\.")
    j.select("Sample clip", sample("grow", j))  # a new clip after all that
    click_point(j, 2)


