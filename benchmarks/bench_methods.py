"""Cost of each method and of the decompositions, relative to one forward pass.

Measured in one run on the same clip, so ratios are comparable across machines:

1. **Methods**: median seconds of ``method.attribute`` on one clip ÷ median seconds of one
   no-grad forward pass, on the bundled small C3D (``motion``; random weights if the
   bundled weights are missing) and on the full-size C3D (random weights, 78 M
   parameters). Aims: gradient-type ≤ 4× a forward, DTD ≤ 6×.
2. **Selective overhead**: the Sobel + threshold step ÷ the explanation's time (aim < 2 %).
3. **Discriminative decomposition**: the T freeze-frame explanations batched (the
   engine's way) vs a Python loop of single-clip passes (the authors' way); and the exact
   saving of explaining each distinct frame once, on a clip whose frames come in pairs.
4. **End to end**: ``explain()`` without cache (prediction, freeze-frame predictions,
   full, freeze frames, selective) ÷ a forward pass.

Timings are recorded, never asserted. Run after the training job (it needs the cores):
``.venv/bin/python benchmarks/bench_methods.py [--repeats 3] [--skip-c3d] [--quick]``
and paste the printed markdown into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core.decompose import (  # noqa: E402
    DecompositionOptions,
    discriminative,
    freeze_frame_clips,
    selective_relevance,
)
from xai_core.engine import explain  # noqa: E402
from xai_core.errors import MethodError  # noqa: E402
from xai_core.methods.base import get_method  # noqa: E402
from xai_core.models.architectures import C3D, SmallC3D  # noqa: E402
from xai_core.models.bundled import WEIGHTS_DIR, small_c3d_spec  # noqa: E402
from xai_core.models.registry import LoadedModel, get_spec, load_model, wrap_module  # noqa: E402
from xai_core.predict import class_probabilities  # noqa: E402
from xai_core.synthetic.world import render_clip  # noqa: E402
from xai_core.video.preprocess import preprocess  # noqa: E402

#: Methods timed on every model, with settings that keep the run short where a method's
#: cost is a multiple of passes by design (its pass count is printed beside it).
METHODS: dict[str, dict] = {
    "gradient": {},
    "input-x-gradient": {},
    "guided-backprop": {},
    "gradcam": {},
    "saliency-tubes": {},
    "guided-gradcam": {},
    "dtd": {},
    "lrp-epsilon": {},
    "lrp-epsilon-gamma-box": {},
    "integrated-gradients": {},
    "smoothgrad": {},
    "occlusion": {},
}
#: Methods whose cost is many passes by design: timed on the small model only.
MANY_PASSES = {"integrated-gradients", "smoothgrad", "occlusion"}
#: Methods for the batched-vs-loop freeze-frame comparison.
DECOMPOSE = {"small": ("gradient", "dtd"), "c3d": ("gradient",)}


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def small_model(quick: bool) -> tuple[LoadedModel, str]:
    if quick:
        from xai_core.models.spec import InputSpec

        spec = dataclasses.replace(small_c3d_spec("small-c3d-quick"),
                                   input=InputSpec(num_frames=8, height=32, width=32,
                                                   mean=(0.45,) * 3, std=(0.225,) * 3))
        torch.manual_seed(0)
        return wrap_module(SmallC3D(8), spec, device="cpu"), "small C3D 8×32×32 (quick)"
    if (WEIGHTS_DIR / "motion.pt").is_file():
        return load_model("motion", device="cpu"), "bundled `motion` (small C3D, trained)"
    torch.manual_seed(0)
    return (wrap_module(SmallC3D(8), small_c3d_spec(), device="cpu"),
            "small C3D, random weights (bundled weights missing)")


def c3d_model() -> tuple[LoadedModel, str]:
    torch.manual_seed(0)
    return (wrap_module(C3D(num_classes=101), get_spec("c3d"), device="cpu"),
            "C3D, random weights (78 M parameters)")


def clip_for(model: LoadedModel, seed: int = 9100) -> torch.Tensor:
    frames = render_clip(seed).frames
    t = model.input.num_frames
    frames = np.concatenate([frames] * (1 + t // len(frames)))[:t]
    return preprocess(frames, model.input)[0]


def bench_methods(model: LoadedModel, x: torch.Tensor, names: list[str], repeats: int
                  ) -> list[dict]:
    target = int(class_probabilities(model, x)[0].argmax())
    rows = []
    for name in names:
        method = get_method(name, **METHODS[name])
        try:
            method.check(model)
        except MethodError as exc:
            rows.append({"method": name, "skipped": exc.message})
            continue
        reps = 1 if method.cost_passes() > 4 or name in MANY_PASSES else repeats
        # a forward timed right before, so that a shared machine's drifting load
        # affects both sides of the ratio alike
        forward = median_time(lambda: class_probabilities(model, x), repeats)
        t = median_time(lambda m=method: m.attribute(model, x, target), reps)
        full = method.attribute(model, x, target).relevance[0]
        sel = median_time(lambda f=full: selective_relevance(f, 4.0), 20, warmup=2)
        rows.append({"method": name, "seconds": t, "ratio": t / forward, "forward": forward,
                     "passes": method.cost_passes(), "selective_ms": sel * 1e3,
                     "selective_pct": 100 * sel / t})
        print(f"  {name}: {t:.3f} s = {t / forward:.1f}× forward", file=sys.stderr, flush=True)
    return rows


def bench_decomposition(model: LoadedModel, x: torch.Tensor, name: str) -> dict:
    method = get_method(name, **METHODS[name])
    target = int(class_probabilities(model, x)[0].argmax())
    full = method.attribute(model, x, target).relevance[0]
    t_frames = x.shape[2]

    def batched() -> None:
        discriminative(method, model, x, target, full,
                       DecompositionOptions(reuse_identical=False))

    def loop() -> None:
        for t in range(t_frames):
            method.attribute(model, freeze_frame_clips(x, [t]), target)

    tb = median_time(batched, 1)
    tl = median_time(loop, 1)
    # exact saving: a clip whose frames come in identical pairs has T/2 distinct frames
    pairs = x[:, :, torch.arange(t_frames) // 2 * 2].contiguous()
    full_p = method.attribute(model, pairs, target).relevance[0]
    td = median_time(lambda: discriminative(method, model, pairs, target, full_p), 1)
    tn = median_time(lambda: discriminative(method, model, pairs, target, full_p,
                                            DecompositionOptions(reuse_identical=False)), 1,
                     warmup=0)
    print(f"  {name} freeze frames: batched {tb:.2f} s, loop {tl:.2f} s", file=sys.stderr,
          flush=True)
    return {"method": name, "batched": tb, "loop": tl, "pairs_distinct": td, "pairs_all": tn,
            "batch": method.default_batch_size}


def bench_explain(model: LoadedModel, x: torch.Tensor, name: str, repeats: int) -> dict:
    forward = median_time(lambda: class_probabilities(model, x), repeats)
    t = median_time(lambda: explain(model, x, name, cache=None), 1)
    return {"method": name, "seconds": t, "ratio": t / forward, "forward": forward}


def markdown(label: str, forward: float, rows: list[dict], decomp: list[dict],
             e2e: list[dict], frames: int) -> str:
    out = [f"### {label}", "", f"One forward pass (no grad, 1 clip) at the start: "
           f"**{forward * 1e3:.0f} ms**; each ratio uses a forward timed just before it.",
           "", "| method | passes | seconds | forward just before (s) | × forward | "
           "selective (ms) | selective / method |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['method']} | – | – | – | – | – | not applicable: {r['skipped']} |")
            continue
        out.append(f"| {r['method']} | {r['passes']} | {r['seconds']:.3f} | {r['forward']:.3f} | "
                   f"{r['ratio']:.1f} | "
                   f"{r['selective_ms']:.2f} | {r['selective_pct']:.2f} % |")
    if decomp:
        out += ["", f"Freeze-frame decomposition ({frames} freeze-frame clips):", "",
                "| method | batched (s) | loop of single passes (s) | loop ÷ batched | "
                "paired frames: distinct only (s) | paired frames: all T (s) |",
                "|---|---:|---:|---:|---:|---:|"]
        for d in decomp:
            out.append(f"| {d['method']} (batch {d['batch']}) | {d['batched']:.2f} | "
                       f"{d['loop']:.2f} | {d['loop'] / d['batched']:.2f} | "
                       f"{d['pairs_distinct']:.2f} | {d['pairs_all']:.2f} |")
    if e2e:
        out += ["", "End to end `explain()` (no cache):", "",
                "| method | seconds | forward just before (s) | × forward |",
                "|---|---:|---:|---:|"]
        for e in e2e:
            out.append(f"| {e['method']} | {e['seconds']:.2f} | {e['forward']:.3f} | "
                       f"{e['ratio']:.1f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    ap.add_argument("--skip-c3d", action="store_true", help="only the small model")
    ap.add_argument("--quick", action="store_true", help="tiny input, smoke test of the script")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"_{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
          f"threads, torch {torch.__version__}, {when}_\n")
    models = [("small", *small_model(args.quick))]
    if not args.skip_c3d and not args.quick:
        models.append(("c3d", *c3d_model()))
    for kind, model, label in models:
        print(f"{label}", file=sys.stderr, flush=True)
        x = clip_for(model)
        forward = median_time(lambda m=model, c=x: class_probabilities(m, c), args.repeats)
        names = [n for n in METHODS if kind == "small" or n not in MANY_PASSES]
        rows = bench_methods(model, x, names, args.repeats)
        decomp = [bench_decomposition(model, x, n) for n in DECOMPOSE[kind]]
        e2e = [bench_explain(model, x, n, args.repeats) for n in (("gradient", "dtd")
                                                                 if kind == "small" else ())]
        print(markdown(label, forward, rows, decomp, e2e, x.shape[2]) + "\n", flush=True)
    print(f"_(run took {time.perf_counter() - started:.0f} s)_")
    return 0


if __name__ == "__main__":
    sys.exit(main())
