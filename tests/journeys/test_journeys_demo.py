"""Journeys 6–8 in a real browser: a demonstration (two models with one scrubber, the
movie and the report downloaded, the report opened offline, the view brought back from
its link and its settings file); an evaluation run on the dataset page and back; a slow
method started, changed under way and cancelled."""

from __future__ import annotations

import re

import pytest
from journey import Journey
from journey_steps import (
    OUT,
    START,
    download,
    pictures,
    player_shows,
    sample,
    says,
)

pytestmark = [pytest.mark.browser, pytest.mark.journey]


# --------------------------------------------------------------------------- 6: a demo
def test_a_demo_two_models_exports_and_the_link(journey, server, browser, tmp_path):
    """What a demonstration takes: the motion model beside the context-biased one on one
    clip with one scrubber, both verdicts' numbers, the side-by-side movie and the report
    downloaded (the report opens offline), and the link and the settings file each bringing
    the view back in a new browser."""
    from xai_core.video import probe

    j = journey
    j.open(server.url + START)
    j.select("Sample clip", sample("grow", j))
    single = pictures(j)
    j.toggle("Compare with a second model")
    says(j, r"Two models on this clip:")
    assert j.value("Second model").startswith("context-biased")
    assert pictures(j) > single, "the second model's views are not in the player"
    j.radio("The second model explains", "its own predicted class")
    j.keys("ArrowRight", "ArrowRight")
    player_shows(j, 2)
    j.step("press Sync views below", j.player().locator("#sync").click)
    says(j, r"show frame 2\.")
    assert j.main.get_by_text(re.compile(r"of the evidence for")).count() >= 1  # a verdict

    movie = download(j, "Side-by-side video (mp4)", tmp_path)
    info = probe(movie)
    assert info.frames == 16 and info.width > 2 * info.height, info

    report = download(j, "Report (HTML)", tmp_path)
    offline = browser.new_context(offline=True)
    try:
        page = offline.new_page()
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if r.url.startswith("http") else None)
        page.goto(report.as_uri())
        assert "grow" in page.locator("body").inner_text()
        page.wait_for_function("() => Array.from(document.images).length > 0 && "
                               "Array.from(document.images).every(i => i.naturalWidth > 0)",
                               timeout=30_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)  # the plot draws
        assert asked == [], f"the report asks the network for {asked}"
    finally:
        offline.close()

    link = j.main.locator('[data-testid="stCode"]').filter(has_text="?").last.inner_text()
    assert "compare=" in link and "frame=2" in link, link
    settings = download(j, "Settings (JSON)", tmp_path)

    def open_link(again: Journey) -> None:
        again.open(link.strip())

    def load_settings(again: Journey) -> None:
        again.open(server.url + START)
        again.expand("Load settings (JSON)")
        again.upload("Settings saved with the Export button", settings)

    for how, reopen in (("the link", open_link), ("the settings file", load_settings)):
        context = browser.new_context(viewport={"width": 1440, "height": 1100})
        try:
            again = Journey(context.new_page(), server.log, f"{j.name} ({how})", shots=OUT)
            reopen(again)
            assert again.value("Sample clip").startswith("grow"), how
            assert again.is_on("Compare with a second model"), how
            says(again, r"Two models on this clip:")
            player_shows(again, 2)
            assert pictures(again) == pictures(j), how
            j.steps += [f"{how}: {step}" for step in again.steps]
        finally:
            context.close()


# --------------------------------------------------------------------------- 7: a dataset
def test_an_evaluation_run_and_back_to_the_clip(journey, server, run_folder):
    """From the clip page to an evaluation run (its table filtered, a clip opened with the
    run's settings and scrubbed) and back: each page keeps what was chosen on it."""
    j = journey
    j.open(server.url + START)
    colours = j.options("Colour map")
    j.select("Colour map", colours[2])
    j.radio("Page", "Open an evaluation")
    says(j, r"Type the folder of an evaluation run")
    j.text("Run folder", str(run_folder))
    says(j, r"3 of 3 clips done")
    j.select("Method", "gradient")
    j.radio("Clips", "correct")
    j.radio("Clips", "all")
    clips = j.options("Clip")
    assert len(clips) == 3, clips
    j.select("Clip", clips[1])
    j.step("press Open this clip", j.main.get_by_role("button", name="Open this clip").click)
    says(j, rf"Clip {re.escape(clips[1])} — ground truth")
    j.player()
    j.keys("ArrowRight", "ArrowRight", "ArrowRight")
    player_shows(j, 3)
    j.radio("Page", "Explore a clip")
    assert j.value("Colour map") == colours[2]  # kept while the other page was shown
    j.player()
    j.radio("Page", "Open an evaluation")
    assert j.page.get_by_role("textbox", name="Run folder").input_value() == str(run_folder)
    assert j.value("Method") == "gradient" and j.value("Clip") == clips[1]
    says(j, rf"Clip {re.escape(clips[1])} — ground truth")  # still open
    j.select("Method", "gradcam")  # the page works on: the views show the other method
    j.radio("Page", "Explore a clip")
    j.select("Colour map", colours[0])


# --------------------------------------------------------------------------- 8: a slow method
SLOW = "extremal-perturbation (perturbation)"


def test_a_slow_method_started_changed_under_way_and_cancelled(journey, server):
    """A method that needs Start: its estimate beside the views already there, Start, a
    display setting changed while it computes (the computation goes on, the previous views
    stay), Cancel, and the method removed again."""
    j = journey
    progress = j.main.locator('[data-testid="stProgress"]')

    def computing() -> None:  # the job's progress bar, the previous views kept meanwhile
        j.run_began()
        progress.first.wait_for(timeout=120_000)
        says(j, r"the views below still show the previous one")
        j.player()

    j.open(server.url + START)
    j.add("Explanation methods", SLOW)
    says(j, r"runs [\d,]+ model passes")
    start = j.main.get_by_role("button", name=re.compile(r"^Start \("))
    assert start.count() == 1
    j.player()  # Grad-CAM's views stay while the estimate waits for Start
    j.step("press Start", start.click, until=computing)
    j.select("Colour map", j.options("Colour map")[3], until=computing)
    j.radio("Show relevance", "as a heat map", until=computing)
    j.step("press Cancel", j.main.get_by_role("button", name="Cancel", exact=True).click)
    says(j, r"Computation cancelled")
    assert j.main.get_by_role("button", name="Explain", exact=True).count() == 1
    j.remove("Explanation methods", SLOW)
    assert j.chosen("Explanation methods") == ["gradcam (cam)"]
    assert progress.count() == 0 and j.main.get_by_text("Computation cancelled").count() == 0
    j.player()


