"""Timeline over a long video: time per minute of 720p video, decoding a window at the end
of a 10-minute video, peak memory.

A 10-minute 1280×720 25-fps H.264 video is generated with PyAV (a blurred texture panning
4 px a frame, one key frame every 250 frames as x264's default ``keyint``; one GOP is
encoded, then its packets are muxed again with shifted timestamps, so the content repeats
every 250 frames). Then:

1. **Time per minute of video**: ``timeline`` on the first ``--windows`` windows at the
   default layout (each window costs the same wherever it is: reading seeks), for the
   bundled ``motion`` model and for ``r3d_18`` with random weights; per window: computed,
   decoding + preprocessing alone, and a rerun served by the cache; extrapolated to the
   windows of one minute. Also the cache entry size per window.
2. **Decoding one window** (16 frames) near the start and at the end of the video, at the
   same place in its GOP, per backend (``read_sample``: open + seek + decode), with the
   frames PyAV decoded counted; beside it, decoding the whole file once.
3. **Peak memory** of ``timeline`` (RSS high-water mark, Linux ``VmHWM`` reset before the
   run) over 6 and 17 windows spread over the whole video, each in a fresh process (the
   video repeats every 250 frames: steps that are not multiples of it give distinct clips,
   so the cache serves nothing).
4. **Why the decoder is closed while computing**: the peak memory of one r3d_18
   forward+backward on 8 clips with no reader, a decord reader or a PyAV reader open.

A guard thread ends the run when its memory passes ``--rss-guard-mb`` (default 8000): the
machine is shared and has no swap.

Run: ``.venv/bin/python benchmarks/bench_timeline.py [--windows 6] [--r3d-windows 3]
[--parts decode,motion,r3d,memory]`` (prints markdown; 15–30 min on 2 busy CPU cores).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the long test video, made as the tests make it

from xai_core.cache import ResultCache  # noqa: E402
from xai_core.models.registry import get_spec, load_model, wrap_module  # noqa: E402
from xai_core.timeline import timeline  # noqa: E402
from xai_core.video import read as read_module  # noqa: E402
from xai_core.video import read_sample, sliding_windows  # noqa: E402
from xai_core.video.checks import DEFAULT_LIMITS  # noqa: E402
from xai_core.video.preprocess import normalise, resize_and_crop  # noqa: E402

timeline_module = importlib.import_module("xai_core.timeline")  # the package exports the function

from video_files import GOP, write_long_video  # noqa: E402

FPS = 25  # the long video's frame rate (write_long_video's default)


def r3d_random():
    spec = get_spec("r3d_18")
    torch.manual_seed(0)
    return wrap_module(spec.build(400), spec, name="r3d_18 (random weights)", device="cpu")


def load(name: str):
    return load_model("motion", device="cpu") if name == "motion" else r3d_random()  # r3d


def load_avg() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


# --------------------------------------------------------------------------- 1. time
def time_per_minute(video: Path, name: str, windows: int, folder: Path) -> str:
    model = load(name)
    cache_dir = folder / f"cache-{name.replace(' ', '_')}"
    tl = timeline(model, video, cache=ResultCache(cache_dir), max_windows=windows)
    computed = tl.seconds / windows
    rerun = timeline(model, video, cache=ResultCache(cache_dir), max_windows=windows)
    assert all(w.cached for w in rerun.windows)
    tic = time.perf_counter()
    starts = [w.start_frame for w in tl.windows]
    crop = functools.partial(resize_and_crop, spec=model.input)
    for _, cropped in timeline_module._read_windows(video, starts, tl.clip_frames,
                                                    tl.sample_every, DEFAULT_LIMITS, crop):
        normalise(cropped, model.input)
    decode = (time.perf_counter() - tic) / windows
    size = sum(p.stat().st_size for p in cache_dir.rglob("*.val")) / windows / 2**20
    per_min = 60 * FPS / tl.window_step
    return (f"| {model.name} | {tl.clip_frames} / {tl.sample_every} / {tl.window_step} | "
            f"{per_min:.1f} | {computed:.2f} | {decode:.3f} | {rerun.seconds / windows:.3f} | "
            f"**{computed * per_min / 60:.1f} min** | {rerun.seconds / windows * per_min:.0f} s "
            f"| {size:.2f} |")


# --------------------------------------------------------------------------- 2. decode
class CountingPyAV(read_module.PyAVDecoder):
    decoded = 0

    def _index(self, frame) -> int:
        CountingPyAV.decoded += 1
        return super()._index(frame)


def decode_table(video: Path) -> list[str]:
    total = 600 * FPS
    places = {"start (frame 200)": 200, "middle (frame 7 450)": total // 2 - 50,
              "end (frame 14 950)": total - GOP + 200}
    backends = {"decord": read_module.DecordDecoder, "opencv": read_module.OpenCVDecoder,
                "pyav": CountingPyAV}
    rows = ["| backend | " + " | ".join(places) + " |", "|---|" + "---:|" * len(places)]
    saved = read_module._DECODERS
    try:
        for label, cls in backends.items():
            read_module._DECODERS = (cls,)
            cells = []
            for start in places.values():
                best, counted = math.inf, 0
                for _ in range(3):
                    CountingPyAV.decoded = 0
                    tic = time.perf_counter()
                    read_sample(video, start, 16, 1)
                    best = min(best, time.perf_counter() - tic)
                    counted = CountingPyAV.decoded
                extra = f" ({counted} frames decoded)" if cls is CountingPyAV else ""
                cells.append(f"{best:.3f} s{extra}")
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
    finally:
        read_module._DECODERS = saved
    tic = time.perf_counter()
    with av.open(str(video)) as container:
        n = sum(1 for _ in container.decode(video=0))
    rows.append(f"\nDecoding the whole file once (PyAV, {n} frames, not converted to RGB): "
                f"**{time.perf_counter() - tic:.1f} s**.")
    return rows


# --------------------------------------------------------------------------- 3. memory
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_guard(limit_mb: int) -> None:
    """End this process (exit 3) when its resident memory passes ``limit_mb``."""
    def watch() -> None:
        while _status_kb("VmRSS") < limit_mb * 1024:
            time.sleep(0.1)
        print(f"stopped: resident memory above {limit_mb} MB", file=sys.stderr, flush=True)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def memory_child(video: str, step: int, folder: str) -> None:
    """In a fresh process: RSS before, the high-water mark during ``timeline``."""
    model = load("motion")
    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
    tl = timeline(model, video, window_step=step, cache=ResultCache(Path(folder) / "cache"),
                  out_dir=Path(folder) / "out")
    print(json.dumps({"windows": len(tl.windows), "before_mb": before / 1024,
                      "peak_mb": _status_kb("VmHWM") / 1024, "seconds": tl.seconds}))


def memory_table(video: Path, folder: Path) -> list[str]:
    rows = ["| windows (step) | RSS before (MB) | peak RSS (MB) | peak − before (MB) | "
            "seconds |", "|---|---:|---:|---:|---:|"]
    for step in (2999, 997):  # not multiples of the GOP: every window's content differs
        sub = folder / f"mem-{step}"
        sub.mkdir()
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(video),
                              str(step), str(sub)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(f"| {r['windows']} ({step}) | {r['before_mb']:.0f} | {r['peak_mb']:.0f} | "
                    f"**{r['peak_mb'] - r['before_mb']:.0f}** | {r['seconds']:.0f} |")
    return rows


def decoder_child(mode: str) -> None:
    """In a fresh process: peak memory of r3d_18's forward+backward on 8 clips (as a
    freeze-frame chunk), with nothing open or with a decoder holding the video open."""
    model = load("r3d")
    if mode != "none":
        read_module._DECODERS = {"decord": (read_module.DecordDecoder,),
                                 "pyav": (read_module.PyAVDecoder,)}[mode]
        windows = sliding_windows(Path(tempfile.gettempdir()) / "bench-timeline-60s.mp4",
                                  16, 16, 1)
        next(windows)  # the reader stays open, as while iterating sliding_windows
    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    x = torch.randn(8, 3, 16, 112, 112, requires_grad=True)
    model.module(x).sum().backward()
    print(json.dumps({"before_mb": before / 1024, "peak_mb": _status_kb("VmHWM") / 1024}))


def decoder_table() -> list[str]:
    write_long_video(Path(tempfile.gettempdir()) / "bench-timeline-60s.mp4", 60)
    rows = ["| reader open during the pass | RSS before (MB) | peak RSS (MB) | peak − before "
            "(MB) |", "|---|---:|---:|---:|"]
    for mode in ("none", "decord", "pyav"):
        out = subprocess.run([sys.executable, __file__, "--decoder-child", mode],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(f"| {mode} | {r['before_mb']:.0f} | {r['peak_mb']:.0f} | "
                    f"**{r['peak_mb'] - r['before_mb']:.0f}** |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=6, help="windows timed per model")
    ap.add_argument("--r3d-windows", type=int, default=3)
    ap.add_argument("--parts", default="decode,motion,r3d,memory,decoder")
    ap.add_argument("--rss-guard-mb", type=int, default=8000)
    ap.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--decoder-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    rss_guard(args.rss_guard_mb)
    parts = set(args.parts.split(","))
    if args.decoder_child:
        decoder_child(args.decoder_child)
        return
    if args.memory_child:
        video, step, folder = args.memory_child
        memory_child(video, int(step), folder)
        return
    started = time.perf_counter()
    print(f"_{platform.machine()}, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}, CPU; load average at the start {load_avg()}_\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tic = time.perf_counter()
        video = write_long_video(folder / "ten-minutes-720p.mp4")
        print(f"10-minute 720p video written in {time.perf_counter() - tic:.1f} s "
              f"({video.stat().st_size / 2**20:.0f} MB).\n")
        if "decode" in parts:
            print("Decoding one window of 16 frames (best of 3; `read_sample` opens the file, "
                  "seeks, decodes):\n")
            print("\n".join(decode_table(video)), "\n", flush=True)
        if parts & {"motion", "r3d"}:
            print("Timeline (Grad-CAM, default layout; seconds per window):\n")
            print("| model | T / K / step (frames) | windows per minute | computed | decode + "
                  "preprocess | rerun (cached) | per minute of video, computed | per minute, "
                  "cached | cache MB per window |")
            print("|---|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
        for name, n in (("motion", args.windows), ("r3d", args.r3d_windows)):
            if name in parts:
                print(time_per_minute(video, name, n, folder), flush=True)
        if "memory" in parts:
            print(f"\nPeak memory (bundled `motion`, Grad-CAM, windows spread over the whole "
                  f"video, fresh process each; load average now {load_avg()}):\n")
            print("\n".join(memory_table(video, folder)))
        if "decoder" in parts:
            print("\nr3d_18 forward+backward on 8 clips (a freeze-frame chunk) while a "
                  "decoder holds a 720p video open (fresh process each):\n")
            print("\n".join(decoder_table()))
    print(f"\n_(run took {time.perf_counter() - started:.0f} s; load average at the end "
          f"{load_avg()})_")


if __name__ == "__main__":
    main()
