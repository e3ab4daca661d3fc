"""Journeys through the dashboard in a real browser, as a new user takes them.

AppTest drives one step at a time; these tests drive sequences of steps in Debian's
Chromium (Playwright) on the dashboard's own server — changes of clip, model, window,
stride, target, display settings and methods one after the other, scrubbing and clicking
the per-frame plot, switching to one's own checkpoint with an uploaded clip, to a
pretrained torchvision and a Hugging Face model with an uploaded clip, a demonstration (two
models with one scrubber, the movie and the offline report downloaded, the link and the
settings file opened in a new browser), an evaluation run opened on the dataset page and
back, a slow method started, changed under way and cancelled, and a seeded random journey
of at least 50 widget changes. After every step the page must settle without an exception
on the page, a traceback in the server log or an error box the step did not ask for
(:class:`journey.Journey`); a failure lists the steps so far and saves a screenshot.

Here: one dashboard server for all journeys (a private result cache they share; an offline
torch hub cache holding random r3d_18 weights under torchvision's file name, and the
Hugging Face hub offline, for the real-model journey), one Chromium per module, each
journey a fresh browser context opened on a link with the cheapest method (Grad-CAM), its
steps and their times written to ``test-output/browser/journeys/``. Skipped, saying why,
without Chromium, Playwright, the bundled weights or the sample clips. ``make journeys``
runs only these.
"""

from __future__ import annotations

import pytest
from browser_helpers import CHROMIUM, FLAGS, dashboard_server
from journey import Journey
from journey_steps import OUT


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    from helpers import put_random_weights

    tmp = tmp_path_factory.mktemp("journeys")
    env = {"TORCH_HOME": str(tmp / "torch"), "HF_HUB_OFFLINE": "1"}
    with pytest.MonkeyPatch.context() as mp:  # where put_random_weights puts the file
        mp.setenv("TORCH_HOME", env["TORCH_HOME"])
        put_random_weights("r3d_18", "KINETICS400_V1")
    with dashboard_server(tmp, env=env) as s:
        yield s


@pytest.fixture(scope="module")  # Playwright's sync API must be closed before other tests'
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


@pytest.fixture(scope="session")
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
