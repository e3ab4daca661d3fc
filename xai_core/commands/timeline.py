"""``timeline``: top classes and motion share of sliding windows over a whole video.

Examples::

    python -m xai_core timeline long.mp4 --out runs/long
    python -m xai_core timeline long.mp4 --arch r3d_18 --weights KINETICS400_V1 \\
        --window-step 64 --sample-every 2 --method dtd --out runs/long-r3d
    python -m xai_core timeline long.mp4 --max-windows 20 --out runs/long   # first 20 only

The folder gets ``timeline.csv`` (one row per window: ``start_s``, ``end_s``, ``top1`` ..
``top5`` with their probabilities, ``motion_share`` ...), ``timeline.json`` (the layout and
whether the run is complete) and ``timeline.html`` (interactive plot, opens offline).
Every window goes through the result cache, so a rerun after an interruption recomputes
nothing done; the csv is rewritten every ``--write-every`` windows meanwhile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ..methods.base import get_method
from ..models.registry import load_model
from ..progress import ProgressEvent
from ..registry import parse_spec
from ..timeline import DEFAULT_METHOD, check_out_dir, timeline
from ..video.read import probe
from ._shared import add_model_arguments, check_model_arguments, command_parser, model_source


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(
        sub, "timeline", help="top classes and motion share over a whole video",
        description="Slide windows over a whole video; per window write its start and end "
                    "(seconds), the top classes and the motion share of one method to "
                    "timeline.csv, plus an interactive timeline.html.",
        video="video file (mp4, avi, mov, webm, mkv)",
        out="output folder (created)")
    add_model_arguments(p)
    p.add_argument("--window-step", type=int, default=None, metavar="N",
                   help="source frames between window starts (default: a window's length, "
                        "so windows tile the video)")
    p.add_argument("--sample-every", type=int, default=None, metavar="K",
                   help="use every K-th frame in a window (default: video fps / the model's "
                        "fps, 25 when the model states none)")
    p.add_argument("--method", default=DEFAULT_METHOD, metavar="NAME[:KEY=VALUE,...]",
                   help=f"method whose motion share is recorded (default {DEFAULT_METHOD}, "
                        "the cheapest that separates motion from scene; see `methods`)")
    p.add_argument("--target", default=None, metavar="CLASS",
                   help="class explained in every window (default: each window's prediction)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes per window (5)")
    p.add_argument("--max-windows", type=int, default=None, metavar="N",
                   help="compute only the first N windows (rerun with more to continue)")
    p.add_argument("--write-every", type=int, default=10, metavar="N",
                   help="rewrite the partial csv every N windows (default 10)")
    p.add_argument("--no-cache", action="store_true", help="compute afresh; do not store")
    return p


def run(args: argparse.Namespace) -> int:
    check_model_arguments(args)
    method, params = parse_spec(args.method)
    get_method(method, **params)  # a bad name or value fails before anything is loaded
    out = Path(args.out)
    check_out_dir(out)
    info = probe(args.video)  # an unreadable video fails before the model is loaded
    model = load_model(args.model, **model_source(args))
    kwargs = {"cache": None} if args.no_cache else {}
    with _WindowBar() as bar:
        result = timeline(model, args.video, window_step=args.window_step,
                          sample_every=args.sample_every, method=method, method_params=params,
                          target=args.target, top=args.top, max_windows=args.max_windows,
                          out_dir=out, write_every=args.write_every, progress=bar, **kwargs)
    ws = result.windows
    cached = sum(w.cached for w in ws)
    print(f"{model.name} on {Path(args.video).name} ({info.duration:.1f} s, {info.fps:g} fps): "
          f"{len(ws)} of {result.planned} windows of {result.clip_frames} frames, every "
          f"{result.sample_every} frame(s), step {result.window_step} frames")
    shares = sorted(w.motion_share for w in ws if w.motion_share == w.motion_share)
    if shares:
        print(f"  motion share ({method}): median {shares[len(shares) // 2]:.1%}, "
              f"range {shares[0]:.1%}–{shares[-1]:.1%}")
    print(f"wrote {out}/ (timeline.csv, timeline.json, timeline.html; {cached} window(s) "
          f"from cache, {result.seconds:.1f} s)")
    if not result.complete:
        print(f"note: {result.planned - len(ws)} window(s) left; rerun with a larger "
              "--max-windows (or none) to continue", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


class _WindowBar:
    """One tqdm bar over the windows on stderr (receives the timeline's progress events)."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if self.bar is None:
            self.bar = tqdm(total=event.total, desc="windows", unit="window", file=sys.stderr,
                            leave=False, dynamic_ncols=True)
        if event.done != self.bar.n:
            self.bar.n = event.done
            self.bar.refresh()

    def __enter__(self) -> _WindowBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
