"""Fused LRP against zennit: time relative to a forward pass, equality, peak memory.

For the bundled ``motion`` model (small C3D, trained), C3D and torchvision's ``r3d_18``
(random weights), on one real 16×112×112 clip (``sample_videos/agree_move_up.mp4``),
with torch using 1 and 2 threads, each model and thread count in its own process:

1. **Time**: median wall seconds of one no-grad forward, and of each LRP preset
   (``dtd`` with β = 0 and β = 1, ``lrp-epsilon``, ``lrp-epsilon-gamma-box``) computed by
   zennit (``method.impl = "zennit"``, the reference) and by the fused rules
   (:mod:`xai_core.methods.lrp_fused`, the default). The cases are interleaved round by
   round (forward, then every preset both ways), so a change of load hits all of them;
   the ratios divide medians of the same run. CPU seconds (``time.process_time``) give a
   second ratio that a shared machine disturbs less.
2. **Equality**: ``‖fused − zennit‖ / ‖zennit‖`` of the raw relevance, and the
   difference of the totals (conservation) relative to ``Σ|zennit|``.
3. **Peak memory**: each preset and implementation once more in a fresh process (one
   thread): how far the explanation raises the process' high-water mark (``ru_maxrss``)
   above what loading the model and one forward pass reached.

Timings are recorded, never asserted. The load average is printed before and after each
process. Run: ``.venv/bin/python benchmarks/bench_lrp.py [--repeats 5]
[--models motion,c3d,r3d_18] [--threads 1,2] [--no-memory]`` and paste the Markdown into
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_models import child_rows  # noqa: E402
from bench_timeline import load_avg  # noqa: E402

from xai_core.methods import get_method  # noqa: E402
from xai_core.models.registry import LoadedModel, get_spec, load_model, wrap_module  # noqa: E402
from xai_core.video.clip import load_clip  # noqa: E402

VIDEO = ROOT / "sample_videos" / "agree_move_up.mp4"
MODELS = {"motion": "bundled `motion` (small C3D, trained)",
          "c3d": "C3D, random weights (78 M parameters)",
          "r3d_18": "torchvision R3D-18, random weights (33 M parameters)"}
PRESETS = {"dtd": ("dtd", {}), "dtd β=1": ("dtd", {"alpha": 2.0, "beta": 1.0}),
           "lrp-epsilon": ("lrp-epsilon", {}),
           "lrp-epsilon-gamma-box": ("lrp-epsilon-gamma-box", {})}


def build(name: str) -> LoadedModel:
    if name == "motion":
        return load_model("motion", device="cpu")
    spec = get_spec(name)
    torch.manual_seed(0)
    return wrap_module(spec.build(spec.default_num_classes).eval(), spec, device="cpu")


# --------------------------------------------------------------------------- child
def child(name: str, threads: int, repeats: int) -> None:
    """Time, compare and measure one model at one thread count; one JSON line per result."""
    torch.set_num_threads(threads)
    model = build(name)
    x = load_clip(VIDEO, model).tensor
    target = 0

    def forward() -> None:
        with torch.no_grad():
            model.module(x)

    cases = {"forward": forward}
    methods = {}
    for label, (method, params) in PRESETS.items():
        for impl in ("zennit", "fused"):
            m = get_method(method, **params)
            m.impl = impl
            methods[label, impl] = m
            cases[f"{label}|{impl}"] = lambda m=m: m.attribute(model, x, target)

    # equality: one run per case (it also warms up every code path)
    raw = {key: fn().raw.double() for key, fn in cases.items() if key != "forward"}
    for label in PRESETS:
        fused, ref = raw[f"{label}|fused"], raw[f"{label}|zennit"]
        print(json.dumps({
            "kind": "equality", "preset": label,
            "rel_err": float((fused - ref).norm() / ref.norm()),
            "sum_diff": float((fused.sum() - ref.sum()).abs() / ref.abs().sum()),
            "sum": float(ref.sum())}), flush=True)
    del raw

    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for key, fn in cases.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    for key in cases:
        print(json.dumps({"kind": "time", "case": key, "wall": statistics.median(wall[key]),
                          "cpu": statistics.median(cpu[key]), "walls": wall[key]}), flush=True)


def memory_child(name: str, label: str, impl: str) -> None:
    """Peak memory of one explanation in this fresh process, above loading + a forward."""
    torch.set_num_threads(1)
    model = build(name)
    x = load_clip(VIDEO, model).tensor
    with torch.no_grad():
        model.module(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    method, params = PRESETS[label]
    m = get_method(method, **params)
    m.impl = impl
    m.attribute(model, x, 0)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"extra_mb": (after - before) / 1024, "peak_mb": after / 1024}))


# --------------------------------------------------------------------------- parent
def memory(name: str) -> dict[str, dict]:
    out = {}
    for label in PRESETS:
        for impl in ("zennit", "fused"):
            cmd = [sys.executable, __file__, "--memory", name, label, impl]
            lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            out[f"{label}|{impl}"] = json.loads(lines.strip().splitlines()[-1])
            print(f"  {name} memory {label}/{impl}: {out[f'{label}|{impl}']}", file=sys.stderr)
    return out


def run_child(name: str, threads: int, repeats: int) -> tuple[list[dict], float, str, str]:
    load_before = load_avg()
    cmd = [sys.executable, __file__, "--child", name, "--threads", str(threads),
           "--repeats", str(repeats)]
    rows, code, maxrss = child_rows(cmd, f"{name}/{threads}")
    if code:
        raise SystemExit(f"{name} with {threads} thread(s) failed")
    return rows, maxrss, load_before, load_avg()


def section(name: str, threads: int, mem: dict[str, dict] | None, rows: list[dict],
            maxrss: float, load_before: str, load_after: str) -> list[str]:
    times = {r["case"]: r for r in rows if r["kind"] == "time"}
    equal = {r["preset"]: r for r in rows if r["kind"] == "equality"}
    fwd = times["forward"]
    out = [f"#### {MODELS[name]}, {threads} thread{'s' * (threads > 1)}", "",
           f"Forward (no grad, 1 clip): **{fwd['wall']:.3f} s** wall, {fwd['cpu']:.3f} s CPU; "
           f"load average before / after: {load_before} → {load_after}; process peak "
           f"RSS {maxrss:,.0f} MB.", "",
           "| preset | zennit s | zennit × fwd | fused s | fused × fwd | speed-up | "
           "× fwd (CPU s) zennit → fused | ‖fused − zennit‖ / ‖zennit‖ | Δ Σ / Σ\\|R\\| "
           "| extra peak MB zennit / fused |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label in PRESETS:
        z, f = times[f"{label}|zennit"], times[f"{label}|fused"]
        e = equal[label]
        out.append(
            f"| {label} | {z['wall']:.3f} | {z['wall'] / fwd['wall']:.1f} | {f['wall']:.3f} | "
            f"**{f['wall'] / fwd['wall']:.1f}** | {z['wall'] / f['wall']:.1f} | "
            f"{z['cpu'] / fwd['cpu']:.1f} → {f['cpu'] / fwd['cpu']:.1f} | {e['rel_err']:.1e} | "
            f"{e['sum_diff']:.1e} | " + (
                f"{mem[f'{label}|zennit']['extra_mb']:,.0f} / "
                f"{mem[f'{label}|fused']['extra_mb']:,.0f} |" if mem else "– |"))
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-memory", action="store_true", help="skip the memory processes")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--memory", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, int(args.threads), args.repeats)
        return
    if args.memory:
        memory_child(*args.memory)
        return
    start = time.time()
    lines = [f"_{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, median of "
             f"{args.repeats} interleaved rounds; ratios in bold: fused wall time ÷ forward "
             "wall time_", ""]
    for name in args.models.split(","):
        mem = None if args.no_memory else memory(name)
        for threads in map(int, args.threads.split(",")):
            lines += section(name, threads, mem, *run_child(name, threads, args.repeats))
    lines.append(f"_(run took {time.time() - start:.0f} s)_")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
