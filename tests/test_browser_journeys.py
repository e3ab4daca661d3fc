"""Journeys through the dashboard in a real browser, as a new user takes them.

AppTest drives one step at a time; these tests drive sequences of steps in Debian's
Chromium (Playwright) on the dashboard's own server — changes of clip, model, window,
stride, target, display settings and methods one after the other, scrubbing and clicking
the per-frame plot, switching to one's own checkpoint with an uploaded clip, to a
pretrained torchvision and a Hugging Face model with an uploaded clip, a demonstration (two
models with one scrubber, the movie and the offline report downloaded, the link opened in
a new browser), an evaluation run opened on the dataset page and back, a slow method
started, changed under way and cancelled, and a seeded random journey of at least 50 widget
changes. After every step the page must settle without an exception on the page, a
traceback in the server log or an error box the step did not ask for
(:class:`journey.Journey`); a failure lists the steps so far.

One server for the module (private result cache: the journeys share it; an offline torch
hub cache holding random r3d_18 weights under torchvision's file name, and the Hugging
Face hub offline, for the real-model journey); each journey a fresh browser context,
opened on a link with the cheapest method (Grad-CAM). The random journey's seed is
:data:`SEED`; ``XAI_JOURNEY_SEED=n`` tries another. Each journey's steps and their times
are written to ``test-output/browser/journeys/``. Skipped, saying why, without Chromium,
Playwright, the bundled weights or the sample clips.
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, FLAGS, PLAYER, ROOT, dashboard_server
from journey import Journey, JourneyError

pytestmark = [pytest.mark.browser, pytest.mark.journey]

#: The random journey's seed (``XAI_JOURNEY_SEED`` overrides it).
SEED = int(os.environ.get("XAI_JOURNEY_SEED", "20261128"))
RANDOM_STEPS = 50
#: Every journey starts on this link: the bundled motion model, the first sample clip,
#: Grad-CAM only (the cheapest method).
START = "/?methods=gradcam"
CHEAP_METHODS = ("gradient (gradient)", "gradcam (cam)", "input-x-gradient (gradient)",
                 "dtd (lrp)")
SAMPLES = ("move_left", "grow", "rotate_cw")
OUT = ROOT / "test-output" / "browser" / "journeys"
SIGMA = "Selective threshold n (keep |∂R/∂t| > n·σ)"
SLICE = "Spatial slice of a freeze-frame explanation"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from helpers import put_random_weights

    tmp = tmp_path_factory.mktemp("journeys")
    env = {"TORCH_HOME": str(tmp / "torch"), "HF_HUB_OFFLINE": "1"}
    with pytest.MonkeyPatch.context() as mp:  # where put_random_weights puts the file
        mp.setenv("TORCH_HOME", env["TORCH_HOME"])
        put_random_weights("r3d_18", "KINETICS400_V1")
    with dashboard_server(tmp, env=env) as s:
        yield s


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def journey(browser, server, request):
    context = browser.new_context(viewport={"width": 1440, "height": 1100})
    j = Journey(context.new_page(), server.log, request.node.name, shots=OUT)
    try:
        yield j
    finally:
        context.close()
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{request.node.name}.txt").write_text("".join(
            f"{i + 1:3d}. {s}" + (f"  ({j.times[i]:.1f} s)\n" if i < len(j.times) else "\n")
            for i, s in enumerate(j.steps)))


def _sample(name: str, j: Journey) -> str:
    """The sample clip's option label (``grow — context unrelated to the class``)."""
    return next(o for o in j.options("Sample clip") if o.split(" — ")[0] == name)


def _explaining(j: Journey) -> str:
    metric = j.main.locator('[data-testid="stMetric"]').filter(has_text="Explaining the class")
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _says(j: Journey, pattern: str) -> None:
    """The main area shows text matching ``pattern`` (the page has settled already)."""
    try:
        j.main.get_by_text(re.compile(pattern)).first.wait_for(timeout=10_000)
    except Exception:  # noqa: BLE001 - say what the page says instead
        captions = j.main.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
        j.fail(f"the page does not say {pattern!r}; its captions: {captions[:6]}")


def _small_video(path: Path, frames: int, seed: int = 5) -> Path:
    from xai_core.synthetic.world import WorldConfig, render_clip
    from xai_core.video.write import write_video

    clip = render_clip(seed, label=2, config=WorldConfig(num_frames=frames))
    return write_video(path, clip.frames, fps=8)


# --------------------------------------------------------------------------- 1: the crash
def test_settings_after_the_prediction_changed(journey, server):
    """The reported crash: after anything changed the prediction, the next change of any
    setting stopped the page (a stale "Class to explain" label came back as the target)."""
    j = journey
    j.open(server.url + START)
    j.select("Sample clip", _sample("grow", j))
    _says(j, r"clip grow\.mp4")
    j.radio("Colour scale", "per frame")
    j.select("Sample clip", _sample("rotate_cw", j))
    j.radio("Colour scale", "per clip")  # any setting, right after the prediction changed
    j.select("Bundled model", "context-biased")
    _says(j, r"Model context-biased · clip rotate_cw\.mp4")
    j.radio("Show relevance", "as a heat map")
    target = j.options("Class to explain")[2]
    j.select("Class to explain", target)
    assert _explaining(j) == target
    j.select("Colour map", j.options("Colour map")[3])
    j.toggle("Grey frames under the relevance")
    j.slide("Overlay opacity", "ArrowLeft", 2)
    j.slide("Contrast γ (1 = linear)", "End")
    j.radio("Panels of a method", "each panel its own scale")
    j.select("Bundled model", "motion")  # a class chosen for another model is not kept
    assert j.value("Class to explain") == "The predicted class"
    assert j.sidebar.get_by_text("was reset to the predicted one").count() == 1
    j.radio("Colour scale", "shared across methods")
    j.select("Sample clip", _sample("move_left", j))
    j.radio("Show relevance", "on the frame")


# --------------------------------------------------------------------------- 2: a window
def test_window_stride_target_methods_and_options_of_an_uploaded_video(journey, server,
                                                                       tmp_path):
    j = journey
    video = _small_video(tmp_path / "long_clip.mp4", frames=40)
    j.open(server.url + START)
    j.radio("Clip", "Upload a video")
    j.upload("Video (", video)
    assert j.sidebar.get_by_text("40 frames, 112×112").count() == 1
    _says(j, r"clip long_clip\.mp4 \(video frames 0–15\)")
    j.slide("Window start (frame)", "End")
    _says(j, r"video frames 24–39\)")
    j.number("Stride (take every n-th frame)", 2)  # the start moves back to fit
    _says(j, r"video frames 9–39, every 2nd\)")
    j.slide("Window start (frame)", "ArrowLeft")
    _says(j, r"video frames 8–38, every 2nd\)")
    target = j.options("Class to explain")[3]
    j.select("Class to explain", target)
    assert _explaining(j) == target
    j.add("Explanation methods", "gradient (gradient)")  # the same clip: the class stays
    j.select("Method shown in the frame views", "gradient")
    j.remove("Explanation methods", "gradcam (cam)")
    assert j.chosen("Explanation methods") == ["gradient (gradient)"]
    j.toggle("Motion panel: selective relevance")
    j.toggle("Grey frames under the relevance")
    j.radio("Show relevance", "as a heat map")
    j.expand("Decomposition options")
    j.select(SLICE, "first")
    assert _explaining(j) == target
    j.number("Stride (take every n-th frame)", 1)  # another clip: back to the predicted class
    _says(j, r"video frames 8–23\)")
    assert j.value("Class to explain") == "The predicted class"
    j.slide("Window start (frame)", "ArrowRight", 3)
    _says(j, r"video frames 11–26\)")
    j.add("Explanation methods", "gradcam (cam)")
    opens = j.main.get_by_role("button", name="Open", exact=True)  # the timeline strip
    j.step("open the timeline's second window", opens.nth(1).click)
    start = int(j.slider_value("Window start (frame)"))
    assert start != 11
    _says(j, rf"video frames {start}–{start + 15}\)")
    assert j.main.get_by_role("button", name="Shown", exact=True).count() == 1
    j.slide("Window start (frame)", "Home")  # the sidebar moves away from it again
    _says(j, r"video frames 0–15\)")


# --------------------------------------------------------------------------- 3: scrubbing
def _click_point(j: Journey, frame: int) -> None:
    """Click the per-frame plot's point of ``frame`` (first trace), scrolled into view;
    the player must show that frame."""
    chart = j.main.get_by_role("heading", name="Relevance per frame").locator(
        "xpath=following::div[@data-testid='stPlotlyChart'][1]")

    def click() -> None:
        chart.evaluate("e => e.scrollIntoView({block: 'center'})")
        point = chart.locator(".scatterlayer .trace").first.locator(".points path").nth(frame)
        box = point.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        j.page.mouse.move(x, y)
        chart.locator(".hoverlayer .hovertext").first.wait_for(timeout=10_000)
        j.page.mouse.click(x, y)

    j.step(f"click the per-frame plot at frame {frame}", click)
    _player_shows(j, frame)
    _says(j, rf"show frame {frame}\.")


def _player_shows(j: Journey, frame: int) -> None:
    try:
        j.player().wait_for_function(f"() => document.body.dataset.frame === '{frame}'",
                                     timeout=10_000)
    except Exception:  # noqa: BLE001 - say what it shows instead
        j.fail(f"the player shows frame {j.frame()}, not {frame}")


def test_scrub_sync_and_click_the_per_frame_plot(journey, server):
    j = journey
    j.open(server.url + START)
    j.keys("ArrowRight", "ArrowRight", "ArrowRight")
    _player_shows(j, 3)
    j.step("press Sync views below", j.player().locator("#sync").click)
    _says(j, r"show frame 3\.")
    _click_point(j, 9)
    j.keys("ArrowLeft", "ArrowLeft")
    _player_shows(j, 7)
    _click_point(j, 9)  # the frame the server already has: the player must still go there
    j.keys("ArrowLeft", "ArrowLeft")
    _click_point(j, 9)  # plotly reads a click on its selected point as "deselect"
    j.keys("ArrowRight")
    j.step("press Sync views below", j.player().locator("#sync").click)
    _says(j, r"show frame 10\.")
    _click_point(j, 4)
    j.keys(" ")  # play …
    j.player().wait_for_function("() => Number(document.body.dataset.frame) >= 6",
                                 timeout=30_000)
    j.keys(" ", rerun=True)  # … and pause: the frame goes back to the server
    _says(j, rf"show frame {j.frame()}\.")
    j.select("Sample clip", _sample("grow", j))  # a new clip after all that
    _click_point(j, 2)


# --------------------------------------------------------------------------- 4: own model
def test_own_checkpoint_with_an_uploaded_clip_and_class_names_afterwards(journey, server,
                                                                         tmp_path):
    from helpers import write_model_files

    from xai_core.models.registry import get_spec
    from xai_core.synthetic.world import CLASSES

    j = journey
    ckpt, names = write_model_files(tmp_path, get_spec("small-c3d"))  # a real architecture
    video = _small_video(tmp_path / "my_clip.mp4", frames=16, seed=11)
    j.open(server.url + START)
    j.radio("Clip", "Upload a video")
    j.upload("Video (", video)
    _says(j, r"clip my_clip\.mp4")
    j.select("Bundled model", "context-biased")
    j.radio("Model", "My own checkpoint")
    # the clip stays: its file in the uploader and its caption
    assert j.sidebar.get_by_text("my_clip.mp4", exact=True).count() == 1
    assert j.sidebar.get_by_text("16 frames, 112×112").count() == 1
    _says(j, r"Upload a checkpoint")
    j.upload("Checkpoint (state dict", ckpt)
    _says(j, r"Model small-c3d:net\.pt · clip my_clip\.mp4")
    numbered = j.options("Class to explain")
    assert set(numbered[1:]) == {f"class {i}" for i in range(len(CLASSES))}, numbered
    j.upload("Class names (.txt", names)  # after the checkpoint: the names are used
    named = j.options("Class to explain")
    assert set(named[1:]) == set(CLASSES), named
    assert j.page.get_by_text(re.compile(r"\bclass \d\b")).count() == 0
    j.select("Class to explain", named[2])
    assert _explaining(j) == named[2]
    j.radio("Colour scale", "per frame")
    j.radio("Model", "Bundled")  # the bundled model chosen before is still chosen
    assert j.sidebar.get_by_text("my_clip.mp4", exact=True).count() == 1
    assert j.value("Bundled model") == "context-biased"
    _says(j, r"Model context-biased · clip my_clip\.mp4")


# --------------------------------------------------------------------------- 5: real models
def test_pretrained_and_hugging_face_models_with_an_uploaded_clip(journey, server, tmp_path):
    """A user's own video through torchvision's and Hugging Face's models (offline stand-ins
    in their ecosystems' caches), a mistyped model folder, and back to the bundled model."""
    from tiny_transformers import LABELS, save_hf
    from torchvision.models.video import R3D_18_Weights

    j = journey
    video = _small_video(tmp_path / "holiday.mp4", frames=16, seed=3)
    folder = save_hf(tmp_path, "videomae")
    j.open(server.url + START)
    j.radio("Clip", "Upload a video")
    j.upload("Video (", video)
    j.radio("Model", "Pretrained (torchvision)")
    _says(j, r"Model r3d_18.* · clip holiday\.mp4")
    assert j.value("Architecture").startswith("r3d_18")
    kinetics = R3D_18_Weights.KINETICS400_V1.meta["categories"]
    shown = j.options("Class to explain")[1:]  # the list draws the first few of 400
    assert len(shown) >= 5 and set(shown) <= set(kinetics), shown
    j.select("Weights", "KINETICS400_V1")  # the same file: served from the cache
    j.select("Class to explain", shown[2])
    assert _explaining(j) == shown[2]
    j.radio("Model", "Hugging Face")
    _says(j, r"Enter a Hugging Face hub id")
    j.text("Hugging Face model", str(tmp_path / "no-such-model"),
           errors=r"cannot load the Hugging Face model .*no such folder")
    assert j.sidebar.get_by_text("holiday.mp4", exact=True).count() == 1  # the clip stays
    j.text("Hugging Face model", str(folder))
    _says(j, r"· clip holiday\.mp4")
    assert set(j.options("Class to explain")[1:]) == set(LABELS)
    assert j.value("Class to explain") == "The predicted class"  # not the Kinetics class
    j.radio("Colour scale", "per frame")
    j.radio("Model", "Bundled")
    _says(j, r"Model motion · clip holiday\.mp4")


# --------------------------------------------------------------------------- 6: a demo
def _pictures(j: Journey) -> int:
    return int(j.player().evaluate("document.querySelectorAll('#views img').length"))


def _download(j: Journey, button: str, folder: Path) -> Path:
    """Click a download button (no run) and keep the file it gives."""
    saved: list[Path] = []

    def click() -> None:
        with j.page.expect_download(timeout=600_000) as info:
            j.main.get_by_role("button", name=button, exact=True).click()
        saved.append(folder / info.value.suggested_filename)
        info.value.save_as(saved[0])

    j.step(f"download {button!r}", click, rerun=False)
    return saved[0]


def test_a_demo_two_models_exports_and_the_link(journey, server, browser, tmp_path):
    """What a demonstration takes: the motion model beside the context-biased one on one
    clip with one scrubber, both verdicts' numbers, the side-by-side movie and the report
    downloaded (the report opens offline), and the link and the settings file each bringing
    the view back in a new browser."""
    from xai_core.video import probe

    j = journey
    j.open(server.url + START)
    j.select("Sample clip", _sample("grow", j))
    single = _pictures(j)
    j.toggle("Compare with a second model")
    _says(j, r"Two models on this clip:")
    assert j.value("Second model").startswith("context-biased")
    assert _pictures(j) > single, "the second model's views are not in the player"
    j.radio("The second model explains", "its own predicted class")
    j.keys("ArrowRight", "ArrowRight")
    _player_shows(j, 2)
    j.step("press Sync views below", j.player().locator("#sync").click)
    _says(j, r"show frame 2\.")
    assert j.main.get_by_text(re.compile(r"of the evidence for")).count() >= 1  # a verdict

    movie = _download(j, "Side-by-side video (mp4)", tmp_path)
    info = probe(movie)
    assert info.frames == 16 and info.width > 2 * info.height, info

    report = _download(j, "Report (HTML)", tmp_path)
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
    settings = _download(j, "Settings (JSON)", tmp_path)

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
            _says(again, r"Two models on this clip:")
            _player_shows(again, 2)
            assert _pictures(again) == _pictures(j), how
            j.steps += [f"{how}: {step}" for step in again.steps]
        finally:
            context.close()


# --------------------------------------------------------------------------- 7: a dataset
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """An evaluation run of three synthetic clips with the bundled motion model."""
    import torch

    from xai_core.evaluation import ModelRef, run_evaluation, synthetic_items

    out = tmp_path_factory.mktemp("evaluation") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = ModelRef.of("motion")
        run_evaluation(ref.load(device="cpu"), synthetic_items(3, 0.5), ["gradcam", "gradient"],
                       out, metrics=["motion_share"], show_progress=False, report=False,
                       model_ref=ref)
    finally:
        torch.set_num_threads(threads)
    return out


def test_an_evaluation_run_and_back_to_the_clip(journey, server, run_folder):
    """From the clip page to an evaluation run (its table filtered, a clip opened with the
    run's settings and scrubbed) and back: each page keeps what was chosen on it."""
    j = journey
    j.open(server.url + START)
    colours = j.options("Colour map")
    j.select("Colour map", colours[2])
    j.radio("Page", "Open an evaluation")
    _says(j, r"Type the folder of an evaluation run")
    j.text("Run folder", str(run_folder))
    _says(j, r"3 of 3 clips done")
    j.select("Method", "gradient")
    j.radio("Clips", "correct")
    j.radio("Clips", "all")
    clips = j.options("Clip")
    assert len(clips) == 3, clips
    j.select("Clip", clips[1])
    j.step("press Open this clip", j.main.get_by_role("button", name="Open this clip").click)
    _says(j, rf"Clip {re.escape(clips[1])} — ground truth")
    j.player()
    j.keys("ArrowRight", "ArrowRight", "ArrowRight")
    _player_shows(j, 3)
    j.radio("Page", "Explore a clip")
    assert j.value("Colour map") == colours[2]  # kept while the other page was shown
    j.player()
    j.radio("Page", "Open an evaluation")
    assert j.page.get_by_role("textbox", name="Run folder").input_value() == str(run_folder)
    assert j.value("Method") == "gradient" and j.value("Clip") == clips[1]
    _says(j, rf"Clip {re.escape(clips[1])} — ground truth")  # still open
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
        _says(j, r"the views below still show the previous one")
        j.player()

    j.open(server.url + START)
    j.add("Explanation methods", SLOW)
    _says(j, r"runs [\d,]+ model passes")
    start = j.main.get_by_role("button", name=re.compile(r"^Start \("))
    assert start.count() == 1
    j.player()  # Grad-CAM's views stay while the estimate waits for Start
    j.step("press Start", start.click, until=computing)
    j.select("Colour map", j.options("Colour map")[3], until=computing)
    j.radio("Show relevance", "as a heat map", until=computing)
    j.step("press Cancel", j.main.get_by_role("button", name="Cancel", exact=True).click)
    _says(j, r"Computation cancelled")
    assert j.main.get_by_role("button", name="Explain", exact=True).count() == 1
    j.remove("Explanation methods", SLOW)
    assert j.chosen("Explanation methods") == ["gradcam (cam)"]
    assert progress.count() == 0 and j.main.get_by_text("Computation cancelled").count() == 0
    j.player()


# --------------------------------------------------------------------------- 9: at random
def _checked(j: Journey, group: str) -> str:
    return j.page.get_by_role("radiogroup", name=group, exact=True).locator(
        '[data-testid="stRadioOption"]:has(input:checked)').inner_text().strip()


def _shown(j: Journey, role: str, name: str) -> bool:
    return j.page.get_by_role(role, name=name, exact=True).count() > 0


def _other(rng: random.Random, options: list[str], current: str) -> str:
    return rng.choice([o for o in options if o != current])


def _radio_other(j: Journey, rng: random.Random, group: str) -> None:
    options = j.page.get_by_role("radiogroup", name=group, exact=True).locator(
        '[data-testid="stRadioOption"]').all_inner_texts()
    j.radio(group, _other(rng, [o.strip() for o in options], _checked(j, group)))


def _select_other(j: Journey, rng: random.Random, label: str, first: int = 99) -> None:
    j.select(label, _other(rng, j.options(label)[:first], j.value(label)))


def _methods(j: Journey, rng: random.Random) -> None:
    chosen = j.chosen("Explanation methods")
    if chosen and (len(chosen) >= 2 or rng.random() < 0.4):
        j.remove("Explanation methods", rng.choice(chosen))
    else:
        j.add("Explanation methods", rng.choice([m for m in CHEAP_METHODS if m not in chosen]))


def _sigma(j: Journey, rng: random.Random) -> None:
    j.expand("Decomposition options")
    value = j.slider_value(SIGMA)
    key = "ArrowLeft" if value >= 8 or (value > 0.5 and rng.random() < 0.5) else "ArrowRight"
    j.slide(SIGMA, key)


def _slice(j: Journey, rng: random.Random) -> None:
    j.expand("Decomposition options")
    _select_other(j, rng, SLICE)


def _steps(j: Journey, rng: random.Random) -> None:
    n = int(j.player().evaluate("window.__player.data.n"))
    key, count = rng.choice(["ArrowRight", "ArrowLeft"]), rng.randint(1, 4)
    want = (j.frame() + (count if key == "ArrowRight" else -count)) % n
    j.keys(*[key] * count)
    _player_shows(j, want)


def _play_pause(j: Journey, rng: random.Random) -> None:
    j.keys(" ")
    start = j.frame()
    j.player().wait_for_function(f"() => document.body.dataset.frame !== '{start}'",
                                 timeout=30_000)
    j.keys(" ", rerun=True)
    _says(j, rf"show frame {j.frame()}\.")


def _samples(j: Journey, rng: random.Random) -> None:
    options = [o for o in j.options("Sample clip") if o.split(" — ")[0] in SAMPLES]
    j.select("Sample clip", _other(rng, options, j.value("Sample clip")))


#: What the random journey does: (name, weight, is it on the page now?, do it). Changes
#: that compute a new explanation weigh half as much as those that only redraw it.
ACTIONS = [
    ("sample clip", 1, lambda j: _shown(j, "combobox", "Sample clip"), _samples),
    ("bundled model", 1, lambda j: _shown(j, "combobox", "Bundled model"),
     lambda j, rng: _select_other(j, rng, "Bundled model")),
    ("target", 1, lambda j: _shown(j, "combobox", "Class to explain"),
     lambda j, rng: _select_other(j, rng, "Class to explain", first=4)),
    ("methods", 1, lambda j: True, _methods),
    ("sigma", 1, lambda j: bool(j.chosen("Explanation methods")), _sigma),
    ("slice", 1, lambda j: bool(j.chosen("Explanation methods")), _slice),
    ("colour scale", 2, lambda j: True, lambda j, rng: _radio_other(j, rng, "Colour scale")),
    ("colour map", 2, lambda j: True, lambda j, rng: _select_other(j, rng, "Colour map")),
    ("overlay / heat map", 2, lambda j: True,
     lambda j, rng: _radio_other(j, rng, "Show relevance")),
    ("panel scales", 2, lambda j: True,
     lambda j, rng: _radio_other(j, rng, "Panels of a method")),
    ("shown method", 2, lambda j: len(j.chosen("Explanation methods")) > 1,
     lambda j, rng: _select_other(j, rng, "Method shown in the frame views")),
    ("motion panel", 2, lambda j: True,
     lambda j, rng: j.toggle("Motion panel: selective relevance")),
    ("grey frames", 2, lambda j: True,
     lambda j, rng: j.toggle("Grey frames under the relevance")),
    ("frame steps", 2, lambda j: j.page.locator(PLAYER).count() > 0, _steps),
    ("play / pause", 2, lambda j: j.page.locator(PLAYER).count() > 0, _play_pause),
]


def test_a_seeded_random_journey(journey, server):
    j = journey
    rng = random.Random(SEED)
    j.name = f"random journey (XAI_JOURNEY_SEED={SEED})"
    j.open(server.url + START)
    done: Counter[str] = Counter()
    while sum(done.values()) < RANDOM_STEPS:
        here = [a for a in ACTIONS if a[2](j)]
        name, _, _, act = rng.choices(here, weights=[a[1] for a in here])[0]
        try:
            act(j, rng)
        except JourneyError:
            raise
        except Exception as exc:  # noqa: BLE001 - a timeout between steps: say where
            j.fail(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        done[name] += 1
    print(f"random journey, seed {SEED}: {dict(done)}")
    assert j.chosen("Explanation methods") == [] or _shown(j, "combobox", "Class to explain")
