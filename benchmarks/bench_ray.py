"""Evaluation throughput: the in-process engine against the Ray engine with 1 and 2 workers,
and the per-pass and per-clip times that docs/scaling.md's UCF-101 estimate starts from.

1. **Engines.** The same synthetic clips (bundled model's 16×112×112 input) through
   ``run_evaluation`` and ``run_evaluation_ray`` (a local Ray, 1 then 2 workers, one torch
   thread each): clips per minute end to end (Ray start, workers loading the model,
   report included) and after start-up (first to last finished clip).
2. **Passes.** :func:`xai_core.estimate.estimate_cost` of Grad-CAM and DTD with the
   freeze-frame split on one clip: model passes per clip and the measured seconds per
   clip of a forward+backward pass (batch of four), for the bundled model and R3D-18
   (random weights, 101 classes: UCF-101's usual network).
3. **One clip end to end.** ``evaluate_item`` of Grad-CAM + DTD with the default metrics
   on the bundled model: explanation against metrics.

The machine may be shared: the load average is printed with every number.

Run: ``.venv/bin/python benchmarks/bench_ray.py [--clips 16] [--methods gradcam]``; on a
GPU machine ``--parts passes --device cuda`` measures the GPU's seconds per pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core.decompose import DEFAULT_OPTIONS  # noqa: E402
from xai_core.engine import explain  # noqa: E402
from xai_core.estimate import estimate_cost  # noqa: E402
from xai_core.evaluation import (  # noqa: E402
    ModelRef,
    evaluate_item,
    run_evaluation,
    run_evaluation_ray,
    synthetic_items,
)
from xai_core.evaluation.plan import RunSettings  # noqa: E402
from xai_core.evaluation.scoring import resolve_metrics  # noqa: E402
from xai_core.models.registry import get_spec, load_model, wrap_module  # noqa: E402
from xai_core.video.clip import load_clip  # noqa: E402

#: Metrics of the engine comparison: a real run's kinds (a seeded random baseline, causal
#: forward passes) at a size that keeps the benchmark to minutes on two cores.
ENGINE_METRICS = ["motion_share", "selectivity", "ground_truth", "insertion:steps=8,grid=16"]


def load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def engines(args: argparse.Namespace, out: Path) -> None:
    ref = ModelRef.of(args.model)
    model = ref.load(device="cpu")
    items = synthetic_items(args.clips, 0.0, size=model.input.height,
                            num_frames=model.input.num_frames)
    print(f"### Engines: {args.clips} synthetic clips, `{args.model}`, methods "
          f"{', '.join(args.methods)} (split on), metrics {', '.join(ENGINE_METRICS)}\n")
    print("| engine | workers | end to end s | clips/min end to end | clips/min after start-up "
          "| load average before | load average after |")
    print("|---|---:|---:|---:|---:|---|---|")
    torch.set_num_threads(1)  # as each Ray worker (one CPU each): the same work per clip
    tables = {}
    for engine, workers in (("in-process", 1), ("ray", 1), ("ray", 2)):
        stamps: list[float] = []
        before = load()
        tic = time.perf_counter()
        kw = {"metrics": ENGINE_METRICS, "show_progress": False, "restart": True,
              "on_record": lambda _id, s=stamps: s.append(time.perf_counter())}
        dest = out / f"{engine}-{workers}"
        if engine == "ray":
            res = run_evaluation_ray(ref, items, args.methods, dest, workers=workers,
                                     model=model, **kw)
        else:
            res = run_evaluation(model, items, args.methods, dest, model_ref=ref, **kw)
        wall = time.perf_counter() - tic
        tables[(engine, workers)] = res.table
        steady = (len(stamps) - workers) / (stamps[-1] - stamps[workers - 1]) * 60 \
            if len(stamps) > workers and stamps[-1] > stamps[workers - 1] else float("nan")
        print(f"| {engine} | {workers} | {wall:.1f} | {len(items) / wall * 60:.1f} | "
              f"{steady:.1f} | {before} | {load()} |", flush=True)
    base = tables[("in-process", 1)]
    same = all(t.equals(base) for t in tables.values())
    print(f"\nTables of the three runs identical: **{same}**. "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, one torch thread per worker "
          f"(and in-process).\n")


def passes(args: argparse.Namespace) -> None:
    print(f"### Passes per clip and seconds per pass ({args.device})\n")
    print("| model | parameters | method | passes per clip (split on) | s per pass per clip "
          "(batch of 4) | estimated s per clip | load average |")
    print("|---|---:|---|---:|---:|---:|---|")
    torch.set_num_threads(args.threads)
    bundled = load_model(args.model, device=args.device)
    spec = get_spec("r3d_18")
    torch.manual_seed(0)
    r3d = wrap_module(spec.build(101), spec, [f"class{i}" for i in range(101)], name="r3d_18",
                      device=args.device)
    frames = synthetic_items(1, 0.0, size=128, num_frames=16)[0].source
    for m in (bundled, r3d):
        clip = load_clip(frames, m.input)
        params = sum(p.numel() for p in m.module.parameters()) / 1e6
        for method in ("gradcam", "dtd"):
            try:
                est = estimate_cost(m, clip, [method], cache=None)
            except Exception as exc:  # a method that does not apply to the network
                print(f"| {m.name} | {params:.2f} M | {method} | – | – | – | "
                      f"{type(exc).__name__}: {str(exc)[:80]} |")
                continue
            cost = est.methods[0]
            print(f"| {m.name} | {params:.2f} M | {method} | {cost.passes} | "
                  f"{est.pass_seconds:.3f} | {est.seconds:.1f} | {load()} |", flush=True)
    print(f"\n{args.threads} torch threads, {platform.machine()}, device {args.device}.\n")


def one_clip(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    item = synthetic_items(1, 0.0, size=model.input.height,
                           num_frames=model.input.num_frames, seed=700_000_100)[0]
    clip = load_clip(item.source, model.input)
    tic = time.perf_counter()
    explain(model, clip, ["gradcam", "dtd"], cache=None)
    explained = time.perf_counter() - tic
    settings = RunSettings(("gradcam", "dtd"), {}, DEFAULT_OPTIONS, tuple(resolve_metrics(None)),
                           "predicted")
    tic = time.perf_counter()
    record = evaluate_item(model, item, settings)
    whole = time.perf_counter() - tic
    assert "error" not in record, record.get("error")
    print("### One clip, Grad-CAM + DTD (split on), default metrics\n")
    print(f"`{args.model}`, {args.threads} torch threads: explain {explained:.1f} s, explain + "
          f"default metrics {whole:.1f} s (metrics ×{whole / explained:.2f} the explanation); "
          f"load average {load()}.\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="motion")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--methods", nargs="+", default=["gradcam"])
    ap.add_argument("--threads", type=int, default=2, help="torch threads of parts 2 and 3")
    ap.add_argument("--device", default="cpu",
                    help="device of part 2 (cuda on a GPU machine: the speed-up S of "
                         "docs/scaling.md is the CPU's seconds per pass over this one)")
    ap.add_argument("--parts", nargs="+", default=["engines", "passes", "clip"],
                    choices=["engines", "passes", "clip"])
    args = ap.parse_args()
    print(f"_{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average at the start {load()}_\n")
    out = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        if "engines" in args.parts:
            engines(args, out)
        if "passes" in args.parts:
            passes(args)
        if "clip" in args.parts:
            one_clip(args)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
