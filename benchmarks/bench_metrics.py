"""Cost of each metric on one explained clip (median of a few repeats).

Usage::

    python benchmarks/bench_metrics.py [--model motion] [--methods dtd gradcam] [--repeats 3]

Uses the bundled model when its weights exist, else a randomly initialised small C3D
(same cost). Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_core import explain  # noqa: E402
from xai_core.evaluation import clip_masks, evidence, synthetic_items  # noqa: E402
from xai_core.metrics import get_metric  # noqa: E402
from xai_core.models.architectures import SmallC3D  # noqa: E402
from xai_core.models.bundled import small_c3d_spec  # noqa: E402
from xai_core.models.registry import load_model, wrap_module  # noqa: E402
from xai_core.video.clip import load_clip  # noqa: E402

METRICS = ("motion_precision", "selectivity", "agreement", "ground_truth", "pointing_game",
           "insertion", "deletion", "saliency_metric")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="motion")
    ap.add_argument("--methods", nargs="+", default=["dtd", "gradcam"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    try:
        model = load_model(args.model, device="cpu")
    except Exception:  # weights not trained yet: same architecture, same cost
        torch.manual_seed(0)
        model = wrap_module(SmallC3D(8), small_c3d_spec(), device="cpu")
    item = synthetic_items(1, 1.0)[0]
    clip = load_clip(item.source, model.input)
    exp = explain(model, clip, args.methods, cache=None)
    masks = clip_masks(item.masks, clip.indices, model.input)
    print(f"model {model.name}, methods {args.methods}, {torch.get_num_threads()} threads, "
          f"clip {tuple(clip.tensor.shape)}")
    print("| metric | maps scored | median s per clip | s per map |")
    print("|---|---|---|---|")
    for name in METRICS:
        metric = get_metric(name)
        times, n_rows = [], 0
        for _ in range(args.repeats):
            ev = evidence(model, exp, clip.tensor, masks)  # fresh: no shared flow / baselines
            tic = time.perf_counter()
            rows = metric.compute(ev)
            times.append(time.perf_counter() - tic)
            n_rows = len({(r.method, r.variant) for r in rows if r.method != "random"})
        med = statistics.median(times)
        per = med / n_rows if n_rows else float("nan")
        print(f"| {name} | {n_rows} | {med:.2f} | {per:.2f} |")


if __name__ == "__main__":
    main()
