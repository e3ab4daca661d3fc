"""Scrub and Play in a real browser: key press → the new frame on screen, client side.

Starts the dashboard (its own Streamlit server on a free port, result cache in a
temporary folder) on the bundled ``motion`` model and the first sample clip (methods
dtd + gradcam: two rows of four views), opens it in Debian's Chromium (Playwright,
headless), and measures inside the page:

* **step latency** — ``→`` pressed on the page (a capture listener on the page's
  document records the time) until: the player's pictures get their new sources (a
  ``MutationObserver`` inside the player's iframe), the next animation frame after that
  (the new sources are painted from then on), and every changed picture decoded plus the
  next animation frame (the frame fully visible). All times are
  ``performance.timeOrigin + performance.now()`` of the two documents, so they compare.
* **messages to the server while stepping** — websocket frames the browser sends
  (a round trip would send one per step);
* **Play** — Space, then the intervals between shown frames against the clip's rate;
* **Sync** — the player's Sync button until the views below say they show that frame
  (one fragment round trip, for reference).
* **page load** — from opening the page until the player holds its pictures and the run
  is over: first with an empty result cache (cold), then ``--cached`` times in a new
  browser context (every result from the cache: start-up of a session, model load,
  rendering).

Run: ``.venv/bin/python benchmarks/bench_scrub.py [--steps 48] [--cached 2] [--url URL]``
(``--url``: an already running dashboard). Prints a Markdown section for ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser_helpers import CHROMIUM, FLAGS, PLAYER, dashboard_server  # noqa: E402

#: Installed in the page: press times (page document) and picture changes (player iframe).
INSTRUMENT = """() => {
  const f = document.querySelector('iframe[title*="frame_player"]');
  const w = f.contentWindow, d = f.contentDocument;
  const now = x => x.performance.timeOrigin + x.performance.now();
  const lat = window.__lat = {press: [], change: [], paint: [], visible: []};
  document.addEventListener('keydown', () => lat.press.push(now(window)), true);
  const obs = new w.MutationObserver(muts => {
    lat.change.push(now(w));
    w.requestAnimationFrame(() => lat.paint.push(now(w)));
    Promise.all(muts.map(m => m.target.decode().catch(() => null)))
      .then(() => w.requestAnimationFrame(() => lat.visible.push(now(w))));
  });
  d.querySelectorAll('#views img').forEach(i =>
    obs.observe(i, {attributes: true, attributeFilter: ['src']}));
  return d.querySelectorAll('#views img').length;
}"""


#: Press the player's Sync; resolves with the ms until the views below name its frame.
SYNC = """() => new Promise(resolve => {
  const d = document.querySelector('iframe[title*="frame_player"]').contentDocument;
  const want = 'show frame ' + d.body.dataset.frame + '.';
  const t0 = performance.now();
  const obs = new MutationObserver(() => {
    if (document.querySelector('[data-testid="stMain"]').innerText.includes(want)) {
      obs.disconnect();
      resolve(performance.now() - t0);
    }
  });
  obs.observe(document.body, {subtree: true, childList: true, characterData: true});
  d.getElementById('sync').click();
})"""


def stats(values: list[float]) -> str:
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    return f"{statistics.median(values):.1f} | {p90:.1f} | {max(values):.1f} | {len(values)}"


def _ready(page, url: str):
    """Open ``url``; wait until the frame player holds its pictures and Streamlit's status
    widget is gone; return the player's frame."""
    page.goto(url)
    page.wait_for_selector(PLAYER, timeout=1_800_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=1_800_000, polling=250)
    player = next(f for f in page.frames if "frame_player" in (f.url or ""))
    player.wait_for_function("() => window.__player && window.__player.data")
    return player


def measure(url: str, steps: int, gap_ms: int, cached: int) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1300})
            sent: list[float] = []
            page.on("websocket", lambda ws: ws.on("framesent", lambda _: sent.append(1)))
            tic = time.perf_counter()
            player = _ready(page, url)
            out["load_s"] = time.perf_counter() - tic
            out["payload_kb"] = player.evaluate(
                "window.__player.data.pool.reduce((a, u) => a + u.length, 0)") / 1024
            out["pictures"] = player.evaluate("window.__player.data.pool.length")
            out["fps"] = player.evaluate("window.__player.data.fps")
            out["n"] = player.evaluate("window.__player.n")
            out["images"] = page.evaluate(INSTRUMENT)
            page.mouse.click(1430, 10)  # focus the page itself, not the player
            before = len(sent)
            for _ in range(steps):
                page.keyboard.press("ArrowRight")
                page.wait_for_timeout(gap_ms)
            page.wait_for_timeout(300)
            out["sent_while_stepping"] = len(sent) - before
            lat = page.evaluate("window.__lat")
            for name in ("change", "paint", "visible"):
                out[name] = [b - a for a, b in zip(lat["press"], lat[name], strict=False)]
            # Play: Space, ~3 s, Space
            shown = player.evaluate("window.__player.shows.length")
            page.keyboard.press(" ")
            page.wait_for_timeout(3000)
            times = player.evaluate(f"window.__player.shows.slice({shown}).map(s => s.at)")
            out["play_intervals"] = [b - a for a, b in zip(times, times[1:], strict=False)]
            page.keyboard.press(" ")  # pause: syncs once
            page.wait_for_function(
                "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                timeout=120_000, polling=100)
            # Sync: one fragment round trip, timed in the page
            page.keyboard.press("ArrowRight")
            out["sync_ms"] = page.evaluate(SYNC)
            out["cached_load_s"] = []
            for _ in range(cached):  # a new browser context: every result from the cache
                context = browser.new_context(viewport={"width": 1440, "height": 1300})
                tic = time.perf_counter()
                _ready(context.new_page(), url)
                out["cached_load_s"].append(time.perf_counter() - tic)
                context.close()
        finally:
            browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=48, help="→ presses")
    parser.add_argument("--gap", type=int, default=150, help="ms between presses")
    parser.add_argument("--url", help="an already running dashboard (default: start one)")
    parser.add_argument("--cached", type=int, default=2,
                        help="page loads again afterwards, every result from the cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scrub-") as tmp, \
            (contextlib.nullcontext(None) if args.url else dashboard_server(Path(tmp))) as server:
        r = measure(args.url or server.url, args.steps, args.gap, args.cached)
    load = os.getloadavg()[0]
    print("### Scrub and Play in the browser (`bench_scrub.py`)\n")
    print(f"Bundled `motion`, first sample clip ({r['n']} frames), dtd + gradcam: "
          f"{r['images']} pictures on screen per step; the player got {r['pictures']} distinct "
          f"pictures, {r['payload_kb']:.0f} KB of data URIs, once (page ready "
          f"{r['load_s']:.0f} s after opening it, the explanation computed or from the cache). "
          f"Load average {load:.1f} on {os.cpu_count()} cores.\n")
    print("| → pressed on the page until … | median ms | p90 ms | max ms | n |")
    print("|---|---|---|---|---|")
    print(f"| the pictures have their new sources (MutationObserver) | {stats(r['change'])} |")
    print(f"| the next animation frame (new sources painted) | {stats(r['paint'])} |")
    print(f"| every changed picture decoded + next frame (fully visible) | "
          f"{stats(r['visible'])} |")
    print(f"\nWebsocket messages sent to the server while stepping: "
          f"**{r['sent_while_stepping']}**.")
    if r["play_intervals"]:
        print(f"Play: {len(r['play_intervals']) + 1} frames in 3 s, interval median "
              f"{statistics.median(r['play_intervals']):.0f} ms (clip rate {r['fps']:g} fps = "
              f"{1000 / r['fps']:.0f} ms).")
    print(f"Sync (one fragment round trip: the player's Sync pressed → the views below name "
          f"its frame): {r['sync_ms']:.0f} ms.")
    if r["cached_load_s"]:
        print("Page load: **cold {:.1f} s** (empty result cache{}), **cached {}** (a new "
              "browser context, every result from the cache).".format(
                  r["load_s"], "" if args.url is None else " unless the server had one",
                  " and ".join(f"{t:.1f} s" for t in r["cached_load_s"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
