"""Server side of a frame change, on a cached explanation (the browser side: bench_scrub.py).

Scrubbing and Play run in the browser (:mod:`dashboard.player` holds every frame); the
server sees the frame only when the player syncs it (Sync, or pausing). Three numbers,
all after the explanation has been computed once (so nothing is recomputed):

* ``apptest rerun`` — ``streamlit.testing`` AppTest: the player's sync value set, the
  script run, until every element is rendered. AppTest re-runs the whole script (a
  browser re-runs only the fragment of the frame views), so this is an upper bound.
* ``frame views`` — what a server-side frame change used to draw per step: the four
  side-by-side panels and their colour bars, the per-frame plot and the method grid,
  built by the dashboard's own functions, without Streamlit.
* ``player payload`` — building every frame's pictures for the player once (per
  explanation and display choice).

Run: ``.venv/bin/python benchmarks/bench_dashboard.py [--frames 16] [--repeat 3]``. Uses the
bundled ``motion`` model and the first sample clip when they exist, else the small C3D
with random weights on a synthetic clip (same sizes, so the same rendering cost).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import plotly.io
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard import comparison, display, over_time, player  # noqa: E402
from dashboard.samples import sample_clips  # noqa: E402
from dashboard.settings import Settings, widget_key  # noqa: E402
from xai_core.models.architectures import SmallC3D  # noqa: E402
from xai_core.models.bundled import WEIGHTS_DIR  # noqa: E402
from xai_core.synthetic.world import CLASSES, render_clip  # noqa: E402
from xai_core.video.write import write_video  # noqa: E402

APP = str(ROOT / "streamlit_app.py")


def build_app(tmp: Path) -> tuple[AppTest, str]:
    at = AppTest.from_file(APP, default_timeout=1800)
    if (WEIGHTS_DIR / "motion.pt").is_file() and sample_clips():
        at.run()
        return at, "bundled motion model, first sample clip"
    models = tmp / "models"
    models.mkdir()
    torch.manual_seed(0)
    torch.save(SmallC3D(num_classes=len(CLASSES)).state_dict(), models / "random.pt")
    os.environ["XAI_MODELS_DIR"] = str(models)
    clip = tmp / "clip.mp4"
    write_video(clip, render_clip(3, label=1).frames, fps=8)
    at.session_state["s_model_source"] = "own"
    at.session_state["s_arch"] = "small-c3d"
    at.session_state["s_clip_source"] = "upload"
    at.run()
    at.sidebar.file_uploader(key="upload_video").set_value(
        (clip.name, clip.read_bytes(), "video/mp4"))
    at.run()
    return at, "small C3D (random weights), synthetic 16×112×112 clip"


def frame_views_ms(at: AppTest, frames: list[int], repeat: int) -> list[float]:
    """The fragment's work for each frame, without Streamlit, in ms."""
    expl = at.session_state["_explanation"][1]
    values = {f.name: at.session_state[widget_key(f.name)] for f in dataclasses.fields(Settings)
              if widget_key(f.name) in at.session_state}
    settings = dataclasses.replace(Settings(**values), methods=list(expl.methods))
    settings.shown_method = settings.shown_method or settings.methods[0]
    scales = display.scales_for(expl, settings)
    fig = over_time.figure(expl, settings.shown_method, 0)  # built once per explanation
    out = []
    for _ in range(repeat):
        for t in frames:
            tic = time.perf_counter()
            display.frame_image(expl, t)
            for kind in ("full", "spatial", "temporal"):
                display.panel(expl, settings.shown_method, kind, t, settings, scales)
                display.colour_bar(expl, settings.shown_method, kind, t, settings, scales)
            # what st.plotly_chart does with the cached figure: to_dict + JSON
            plotly.io.to_json(over_time.mark_frame(fig, t).to_dict(), validate=False)
            comparison.grid_image(expl, settings, scales, t)
            out.append(1000 * (time.perf_counter() - tic))
    return out


def payload_ms(at: AppTest, repeat: int) -> list[float]:
    """Building the player's pictures of every frame (done once per explanation), in ms."""
    expl = at.session_state["_explanation"][1]
    values = {f.name: at.session_state[widget_key(f.name)] for f in dataclasses.fields(Settings)
              if widget_key(f.name) in at.session_state}
    settings = dataclasses.replace(Settings(**values), methods=list(expl.methods))
    group = player.Group(expl, display.scales_for(expl, settings), "")
    out = []
    for _ in range(repeat):
        tic = time.perf_counter()
        player.payload([group], settings, 8.0)
        out.append(1000 * (time.perf_counter() - tic))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="frames to scrub through")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the frames")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        os.environ.setdefault("XAI_CACHE_DIR", str(Path(tmp) / "cache"))
        tic = time.perf_counter()
        at, what = build_app(Path(tmp))
        first = time.perf_counter() - tic
        if at.exception or at.error:
            print("the app failed:", [e.value for e in at.exception] + [e.value for e in at.error])
            return 1
        expl = at.session_state["_explanation"][1]
        n = min(args.frames, expl.frames.shape[0])
        frames = list(range(1, n)) + [0]
        rerun = []
        for r in range(args.repeat):
            for t in frames:
                at.session_state["player"] = {"frame": t, "nonce": f"{r}-{t}"}
                tic = time.perf_counter()
                at.run()
                rerun.append(1000 * (time.perf_counter() - tic))
                assert not at.exception and not at.error
                assert at.session_state[widget_key("frame")] == t
        views = frame_views_ms(at, frames, args.repeat)
        payload = payload_ms(at, args.repeat)
    methods = ", ".join(at.sidebar.multiselect(key="s_methods").value)
    print(f"### Dashboard: scrubber change → rendered frame ({what}; methods {methods})\n")
    print(f"First load incl. computing the explanation: {first:.1f} s\n")
    print("| measured (server side, cached explanation) | median ms | p90 ms | n |")
    print("|---|---|---|---|")
    for name, values in (("AppTest: player sync → script rerun done (whole page)", rerun),
                         ("frame views of one frame, server side (old per-step work)", views),
                         ("player payload: every frame's pictures, once", payload)):
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
        print(f"| {name} | {statistics.median(values):.0f} | {p90:.0f} | {len(values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
