"""Scrubbing and Play happen in the browser: no server round trip per step.

Debian's Chromium driven by Playwright, on the dashboard's own server (the
``browser_server`` fixture of ``conftest.py``: bundled ``motion`` model, first sample
clip, dtd + gradcam). Keys are pressed on the page itself — not in the player, not on a slider — and
the player (an iframe holding every frame) must follow: the frame counter, the pictures'
sources, no websocket message to the server and no "running" indicator. Space plays at
the clip's rate; pausing sends the frame back once, and the views below say so.
Skipped, saying why, without Chromium, Playwright, the bundled weights or the samples.
"""

from __future__ import annotations

import statistics

import pytest
from browser_helpers import CHROMIUM, FLAGS, player_frame
from browser_helpers import idle as _idle

pytestmark = pytest.mark.browser

#: Page-side press times and player-side picture changes, in one time base.
_INSTRUMENT = """() => {
  const f = document.querySelector('iframe[title*="frame_player"]');
  const w = f.contentWindow;
  const now = x => x.performance.timeOrigin + x.performance.now();
  const lat = window.__lat = {press: [], change: []};
  document.addEventListener('keydown', () => lat.press.push(now(window)), true);
  const obs = new w.MutationObserver(() => lat.change.push(now(w)));
  f.contentDocument.querySelectorAll('#views img').forEach(i =>
    obs.observe(i, {attributes: true, attributeFilter: ['src']}));
}"""


def _sources(player) -> list[str]:
    return player.evaluate("Array.from(document.querySelectorAll('#views img'))"
                           ".map(i => i.src.slice(-64))")


def test_arrow_keys_and_space_drive_the_player_without_a_round_trip(browser_server):
    from playwright.sync_api import expect, sync_playwright

    url, _ = browser_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1200})
            sent: list[int] = []
            page.on("websocket", lambda ws: ws.on("framesent", lambda m: sent.append(len(m))))
            page.goto(url)
            _idle(page)
            player = player_frame(page)
            counter = player.locator("#counter")
            expect(counter).to_have_text(r"Frame 0 / 15 · video frame 0")
            assert page.locator('[data-testid="stException"]').count() == 0
            before = _sources(player)
            assert len(before) >= 8  # two methods × (frame + 3 panels), colour bars
            page.evaluate(_INSTRUMENT)

            page.mouse.click(1430, 10)  # focus the page: no slider, not the player
            sent_before = len(sent)
            for frame in (1, 2, 3):
                page.keyboard.press("ArrowRight")
                player.wait_for_function(f"() => document.body.dataset.frame === '{frame}'",
                                         timeout=2_000)
            expect(counter).to_have_text("Frame 3 / 15 · video frame 3")
            after = _sources(player)
            # the frame and every relevance panel changed (colour bars may not: one scale)
            assert sum(a != b for a, b in zip(before, after, strict=True)) >= 8
            page.wait_for_timeout(500)
            assert len(sent) == sent_before, "a step sent a message to the server"
            assert page.locator('[data-testid="stStatusWidget"]').count() == 0
            lat = page.evaluate("window.__lat")
            steps = [c - p for p, c in zip(lat["press"], lat["change"], strict=True)]
            assert len(steps) == 3 and statistics.median(steps) < 150, steps

            # ← goes back, in the browser too
            page.keyboard.press("ArrowLeft")
            expect(counter).to_have_text("Frame 2 / 15 · video frame 2")

            # Space plays at the clip's rate, and pauses
            page.keyboard.press(" ")
            player.wait_for_function("() => document.body.dataset.playing === '1'")
            player.wait_for_function("() => Number(document.body.dataset.frame) >= 6",
                                     timeout=10_000)
            assert len(sent) == sent_before  # playing needs the server no more than stepping
            page.keyboard.press(" ")
            player.wait_for_function("() => document.body.dataset.playing === '0'")
            stopped = int(player.evaluate("document.body.dataset.frame"))
            # pausing sends the frame back once: the views below follow it
            expect(page.get_by_text(f"show frame {stopped}.", exact=False).first).to_be_visible(
                timeout=60_000)
            assert len(sent) > sent_before
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
