"""How close the time estimate shown before starting comes to the time actually taken.

For each method, on a bundled model and a sample clip, the estimate of
:func:`xai_core.estimate.estimate_cost` (a timed forward+backward pass per clip × the
method's passes × the clips explained, plus the forward-only predictions) is printed
beside the wall time of ``explain`` on the same request, without the cache. The ratio
measured / estimated is the number that matters: near 1 the UI's estimate is honest.

Extremal perturbation runs with a fixed number of iterations and early stopping off
(``tolerance=0``), so the estimate is not an upper bound there but a prediction.

Run: ``.venv/bin/python benchmarks/bench_estimate.py [--model motion] [--clip PATH]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core.engine import explain  # noqa: E402
from xai_core.estimate import estimate_cost  # noqa: E402
from xai_core.models.registry import load_model  # noqa: E402
from xai_core.video.clip import load_clip  # noqa: E402

#: (method, parameters, decomposed) — cheap and costly methods, with and without the split.
CASES = [
    ("gradient", {}, True),
    ("gradcam", {}, True),
    ("guided-backprop", {}, True),
    ("dtd", {}, True),
    ("integrated-gradients", {"steps": 16}, True),
    ("occlusion", {}, False),
    ("extremal-perturbation", {"iterations": 40, "tolerance": 0.0}, False),
    ("extremal-perturbation", {"iterations": 6, "tolerance": 0.0}, True),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="motion")
    ap.add_argument("--clip", default=str(ROOT / "sample_videos" / "move_left.mp4"))
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    clip = load_clip(args.clip, model.input)
    print(f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CPU; model `{args.model}`, clip "
          f"`{Path(args.clip).name}` ({model.input.num_frames} frames).\n")
    print("| method | parameters | split | passes | estimated s (incl. predictions) | measured s "
          "| measured / estimated |")
    print("|---|---|---|---|---|---|---|")
    for name, params, split in CASES:
        cost = estimate_cost(model, clip, name, method_params={name: params}, decompose=split,
                             cache=None)
        tic = time.perf_counter()
        explain(model, clip, name, method_params={name: params}, decompose=split, cache=None)
        took = time.perf_counter() - tic
        m = cost.methods[0]
        shown = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
        print(f"| {name} | {shown} | {'yes' if split else 'no'} | {m.passes:,} | "
              f"{cost.seconds:.1f} | {took:.1f} | {took / cost.seconds:.2f} |", flush=True)
    try:
        load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    print(f"\nA forward+backward pass measured at {cost.pass_seconds:.3f} s per clip (batch of "
          f"4); load average at the end {load}.")


if __name__ == "__main__":
    main()
