"""Real models: forward time, each method's cost relative to a forward, peak memory.

For torchvision's ``r3d_18``, ``mvit_v2_s`` and ``swin3d_t`` and a VideoMAE-base
configuration (``transformers.VideoMAEConfig()`` defaults: 16 frames 224², ViT-B), all
with random weights on the CPU, at each model's own input size:

1. **Forward**: one clip, no grad (``class_probabilities``), median of ``--repeats``.
2. **Methods**: every registered method (``xai_core.methods.base.METHODS``) that applies
   to the model, on one clip, against a forward timed just before it (median of
   ``--repeats``); refused methods are listed with ``Method.check``'s reason and checked
   against the applicability table (``xai_core/applicability.py``). Methods costing many
   passes by design (integrated gradients, SmoothGrad, occlusion, extremal perturbation)
   are timed on a sample of their passes (:data:`SAMPLED`; ``--quick`` samples fewer,
   ``--full`` runs their defaults: hours); the table gives seconds per pass and the cost
   projected to the default settings. Occlusion's passes are forward-only occluded clips,
   counted at the model's clip size.
3. **Peak memory**: each model runs in its own process; its high-water mark
   (``os.wait4``'s ``ru_maxrss``) and, per method, ``VmHWM`` reset before the method
   (``/proc/self/clear_refs``) against the resident memory before it.
4. **The estimate** the CLI and dashboard show before starting
   (:func:`xai_core.estimate.estimate_cost`, full relevance only, no cache) per method at
   its default settings, against the measured or projected seconds.

The models are built through the project's own loading: random weights saved under the
exact file name torchvision's weights API expects in a temporary ``TORCH_HOME``
(``load_model(arch=..., weights="KINETICS400_V1")``), and a ``save_pretrained`` folder of a
randomly initialised ``VideoMAEForVideoClassification`` with its default video processor
(``load_model(hf=folder)``, ``HF_HUB_OFFLINE=1``). Nothing is downloaded.

A guard ends a model's process when its resident memory passes ``--rss-guard-mb``
(the machine is shared and has no swap); the rows measured until then are kept.

Run: ``.venv/bin/python benchmarks/bench_models.py [--models r3d_18,mvit_v2_s]
[--repeats 3] [--threads 1] [--quick | --full]`` (prints markdown; 23 min with one thread,
33 min with two, on the 2 shared CPU cores; one thread keeps the ratios steady when other
jobs run — two OpenMP threads stall whenever one is descheduled).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_methods import clip_for, median_time  # noqa: E402
from bench_timeline import _status_kb, load_avg, rss_guard  # noqa: E402

from xai_core.applicability import cell  # noqa: E402
from xai_core.errors import MethodError  # noqa: E402
from xai_core.estimate import TIMED_BATCH, estimate_cost, pass_seconds  # noqa: E402
from xai_core.methods.base import METHODS, Method, get_method  # noqa: E402
from xai_core.methods.occlusion import window_positions  # noqa: E402
from xai_core.models.registry import LoadedModel, load_model  # noqa: E402
from xai_core.predict import class_probabilities  # noqa: E402

#: model → (applicability-table family, title)
MODELS: dict[str, tuple[str, str]] = {
    "r3d_18": ("video-resnet", "torchvision R3D-18"),
    "mvit_v2_s": ("mvit", "torchvision MViT-V2-S"),
    "swin3d_t": ("swin3d", "torchvision Swin3D-T"),
    "videomae-base": ("videomae", "VideoMAE-base (`VideoMAEConfig()` defaults)"),
}
#: Methods timed on a sample of their passes: name → (default run, ``--quick``) parameters.
#: Occlusion's window is set per clip (:func:`occlusion_sample`); extremal perturbation
#: optimises one area for a few steps (4 areas × 300 steps by default).
SAMPLED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "integrated-gradients": ({"steps": 2}, {"steps": 2}),
    "smoothgrad": ({"samples": 2}, {"samples": 1}),
    "occlusion": ({"batch": 4}, {"batch": 4}),
    "extremal-perturbation": ({"areas": (0.1,), "iterations": 2, "tolerance": 0.0},
                              {"areas": (0.1,), "iterations": 1, "tolerance": 0.0}),
}
#: A method whose first run is shorter than this is timed ``--repeats`` more times (median).
RETIME_BELOW_S = 5.0


def emit(**row: Any) -> None:
    """One result line for the parent process."""
    print(json.dumps(row), flush=True)


# --------------------------------------------------------------------------- child
def load(name: str, folder: Path) -> LoadedModel:
    """``name`` with random weights, through ``load_model`` (see the module doc)."""
    if name == "videomae-base":
        import transformers as tf

        torch.manual_seed(0)
        net = tf.VideoMAEForVideoClassification(tf.VideoMAEConfig(num_labels=400)).eval()
        net.save_pretrained(folder / name)
        tf.VideoMAEVideoProcessor().save_pretrained(folder / name)
        return load_model(hf=folder / name, device="cpu")
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import put_random_weights  # the tests' offline stand-in for a download

    put_random_weights(name, "KINETICS400_V1")  # under TORCH_HOME, set by the caller
    return load_model(arch=name, weights="KINETICS400_V1", device="cpu")


def occlusion_sample(x: torch.Tensor) -> dict[str, Any]:
    """A window of the whole clip length and half its height and width: 4 positions."""
    t, h, w = x.shape[2:]
    half = (t, (h + 1) // 2, (w + 1) // 2)
    return {"window": half, "stride": half}


def occluded_clips(method: Method, x: torch.Tensor) -> int:
    """Forward-only clips occlusion runs on ``x``: every window position, plus the clip."""
    size = tuple(x.shape[2:])
    window = tuple(min(w, d) for w, d in zip(method.config["window"], size, strict=True))
    return window_positions(size, window, method.config["stride"]) + 1


def passes(method: Method, x: torch.Tensor) -> int:
    """Passes of ``method`` on ``x``: forward-only clips for occlusion, else its
    ``cost_passes`` (forward+backward passes of one clip)."""
    return occluded_clips(method, x) if method.name == "occlusion" else method.cost_passes()


def clock(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall seconds of ``fn`` over ``repeats`` runs, and its mean CPU seconds (all
    threads: steadier than wall time on a shared machine)."""
    cpu = time.process_time()
    wall = median_time(fn, repeats, warmup=0)
    return wall, (time.process_time() - cpu) / repeats


def time_method(model: LoadedModel, x: torch.Tensor, target: int, method: Method,
                repeats: int) -> tuple[float, float]:
    """Wall and CPU seconds of one explanation (median of ``repeats`` when it is short)."""
    def run() -> object:
        return method.attribute(model, x, target)

    first = clock(run, 1)
    return first if first[0] >= RETIME_BELOW_S or repeats < 2 else clock(run, repeats)


def child(name: str, args: argparse.Namespace) -> None:
    """Measure one model in this process; one JSON line per result on stdout."""
    rss_guard(args.rss_guard_mb)
    if args.threads:
        torch.set_num_threads(args.threads)
    family = MODELS[name][0]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TORCH_HOME"] = str(Path(tmp) / "torch")
        os.environ["HF_HUB_OFFLINE"] = "1"

        def no_download(url: str, *rest: Any, **kw: Any) -> None:
            raise RuntimeError(f"bench_models downloads nothing ({url})")

        torch.hub.download_url_to_file = no_download
        tic = time.perf_counter()
        model = load(name, Path(tmp))
        load_s = time.perf_counter() - tic
    x = clip_for(model)
    params = sum(p.numel() for p in model.module.parameters())
    emit(kind="model", name=name, display=model.name, input=list(x.shape[2:]), params=params,
         load_s=load_s, threads=torch.get_num_threads(), rss_mb=_status_kb("VmRSS") / 1024)
    target = int(class_probabilities(model, x)[0].argmax())
    class_probabilities(model, x)  # the first forward pays for allocations
    forwards = [clock(lambda: class_probabilities(model, x), 1)
                for _ in range(max(args.repeats, 1))]
    emit(kind="forward", seconds=[f[0] for f in forwards], cpu=[f[1] for f in forwards],
         load=load_avg())
    warm = x.clone().requires_grad_(True)  # the first backward pays for its allocations
    model.module(warm)[0, target].backward()
    del warm
    model.module.zero_grad(set_to_none=True)
    names = sorted(METHODS, key=lambda n: n in SAMPLED)  # the cheap ones first
    timed: dict[str, dict[str, Any]] = {}
    for method_name in names:
        expected = cell(method_name, family)[0]
        default = get_method(method_name)
        try:
            default.check(model)
        except MethodError as exc:
            emit(kind="refused", method=method_name, reason=exc.message,
                 table_agrees=expected == "refused")
            continue
        sample = {} if args.full or method_name not in SAMPLED else dict(
            SAMPLED[method_name][args.quick])
        if method_name == "occlusion" and sample:
            sample.update(occlusion_sample(x))
        method = get_method(method_name, **sample)
        emit(kind="start", method=method_name)
        forward, forward_cpu = clock(lambda: class_probabilities(model, x),
                                     max(args.repeats, 1))
        before = _status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        seconds, cpu = time_method(model, x, target, method, args.repeats)
        row = {"method": method_name, "setting": sample, "passes": passes(method, x),
               "default_passes": passes(default, x), "seconds": seconds, "forward": forward,
               "cpu": cpu, "forward_cpu": forward_cpu,
               "rss_before_mb": before / 1024, "peak_mb": _status_kb("VmHWM") / 1024,
               "table_agrees": expected != "refused", "load": load_avg()}
        timed[method_name] = row
        emit(kind="method", **row)
    # The estimate last: its timing pass (4 clips forward+backward) is the biggest in memory.
    emit(kind="start", method="estimate (pass_seconds: 4 clips forward+backward)")
    tic, cpu = time.perf_counter(), time.process_time()
    per_pass = pass_seconds(model, x)  # as estimate_cost times it; remembered for it below
    emit(kind="pass", seconds=per_pass, took=time.perf_counter() - tic,
         # its passes: a warm-up and two timed ones, of TIMED_BATCH clips each
         cpu=(time.process_time() - cpu) / (3 * TIMED_BATCH), peak_mb=_status_kb("VmHWM") / 1024)
    for method_name in timed:
        est = estimate_cost(model, x, method_name, decompose=False, cache=None).methods[0]
        emit(kind="estimate", method=method_name, passes=est.passes, seconds=est.seconds)


# --------------------------------------------------------------------------- parent
def run_child(name: str, args: argparse.Namespace) -> tuple[list[dict], int, float]:
    """Run :func:`child` for ``name`` in a fresh process: its rows, exit code and peak
    resident memory (MB, ``ru_maxrss`` of that process alone)."""
    cmd = [sys.executable, __file__, "--child", name, "--repeats", str(args.repeats),
           "--rss-guard-mb", str(args.rss_guard_mb)]
    cmd += ["--quick"] * args.quick + ["--full"] * args.full
    cmd += ["--threads", str(args.threads)] if args.threads else []
    return child_rows(cmd, name)


def child_rows(cmd: list[str], tag: str) -> tuple[list[dict], int, float]:
    """Run a benchmark's child process ``cmd``: the JSON rows it prints (echoed to stderr,
    prefixed by ``tag``, as they come), its exit code and its peak resident memory (MB,
    ``ru_maxrss`` of that process alone)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    rows = []
    for line in proc.stdout:
        if line.startswith("{"):
            rows.append(json.loads(line))
            print(f"  {tag}: {line.strip()[:160]}", file=sys.stderr, flush=True)
    _, status, usage = os.wait4(proc.pid, 0)
    return rows, os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024


def num(value: float) -> str:
    """Two significant figures for small numbers, thousands separated for large ones."""
    return f"{value:.2g}" if value < 10 else f"{value:,.0f}"


def fmt_setting(setting: dict[str, Any]) -> str:
    if not setting:
        return "default"
    return ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, tuple | list) else v}"
                     for k, v in setting.items())


def model_section(name: str, rows: list[dict], code: int, peak_mb: float,
                  load_before: str) -> tuple[list[str], dict[str, Any]]:
    """Markdown of one model, and its key numbers for the summary."""
    info = next((r for r in rows if r["kind"] == "model"), None)
    if info is None:
        return [f"### {name}", "", f"Did not load (exit code {code})."], {}
    start = next(r for r in rows if r["kind"] == "forward")
    fwd = sorted(start["seconds"])
    median = fwd[len(fwd) // 2]
    t, h, w = info["input"]
    out = [f"### {MODELS[name][1]}: {t}×{h}×{w}, {info['params'] / 1e6:.1f} M parameters", "",
           f"`{info['display']}`, random weights, loaded in {info['load_s']:.1f} s; "
           f"{info['threads']} torch threads. Forward (no grad, 1 clip): **median "
           f"{median:.2f} s** of {len(fwd)} ({fwd[0]:.2f}–{fwd[-1]:.2f} s; CPU "
           f"{sorted(start['cpu'])[len(fwd) // 2]:.2f} s). Peak resident memory of the "
           f"model's process: **{peak_mb:,.0f} MB** (after loading: {info['rss_mb']:,.0f} MB). "
           f"Load average before {load_before}.", "",
           "| method | timed setting | passes | seconds | forward just before (s) | × forward "
           "| × forward, CPU time | per pass × forward | default passes | default s "
           "(projected) | default × forward | peak RSS MB (+ over before) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    key: dict[str, Any] = {"name": name, "input": f"{t}×{h}×{w}", "forward": median,
                           "peak": peak_mb, "params": info["params"], "timed": {}}
    for r in rows:
        if r["kind"] == "refused":
            mark = "" if r["table_agrees"] else " (**the applicability table says it works**)"
            out.append(f"| {r['method']} |" + " – |" * 10 + f" refused: {r['reason']}{mark} |")
        elif r["kind"] == "method":
            r["ratio"] = r["seconds"] / r["forward"]
            r["ratio_cpu"] = r["cpu"] / r["forward_cpu"]
            r["projected"] = r["seconds"] / r["passes"] * r["default_passes"]
            mark = "" if r["table_agrees"] else " (**table says refused**)"
            out.append(f"| {r['method']}{mark} | {fmt_setting(r['setting'])} | {r['passes']} | "
                       f"{r['seconds']:.2f} | {r['forward']:.2f} | {r['ratio']:.1f} | "
                       f"{r['ratio_cpu']:.1f} | {r['ratio_cpu'] / r['passes']:.2f} | "
                       f"{r['default_passes']:,} | {num(r['projected'])} | "
                       f"{num(r['projected'] / r['forward'])} | {r['peak_mb']:,.0f} "
                       f"(+{r['peak_mb'] - r['rss_before_mb']:,.0f}) |")
            key["timed"][r["method"]] = r
    if code != 0:
        last = [r for r in rows if r["kind"] == "start"]
        what = last[-1]["method"] if last else "loading"
        guard = ", the memory guard" if code == 3 else ""
        out += ["", f"**The process stopped (exit code {code}{guard}) during {what}.**"]
    out += estimate_lines(rows, key)
    return out, key


def estimate_lines(rows: list[dict], key: dict[str, Any]) -> list[str]:
    """The estimate against the measured (or projected) seconds, per method."""
    per_pass = next((r for r in rows if r["kind"] == "pass"), None)
    estimates = [r for r in rows if r["kind"] == "estimate"]
    if per_pass is None or not estimates:
        return []
    grad = key["timed"].get("gradient")
    single = (f"; one clip's gradient: {grad['seconds']:.2f} s (CPU {grad['cpu']:.2f} s)"
              if grad else "")
    out = ["", f"Estimate (`estimate_cost`, default settings, full relevance only): a "
               f"forward+backward pass timed at **{per_pass['seconds']:.2f} s per clip** "
               f"(CPU {per_pass['cpu']:.2f} s) on a batch of {TIMED_BATCH}; timing it took "
               f"{per_pass['took']:.0f} s, peak RSS {per_pass['peak_mb']:,.0f} MB{single}.", "",
           "| method | estimated passes | estimated s | measured (or projected) s | "
           "÷ estimated | ÷ estimated, CPU time |", "|---|---:|---:|---:|---:|---:|"]
    key["estimate"] = {}
    for e in estimates:
        r = key["timed"][e["method"]]
        # the same comparison in CPU seconds: passes × the pass's CPU time per clip
        cpu_ratio = (r["cpu"] / r["passes"] * r["default_passes"]) / (
            e["passes"] * per_pass["cpu"])
        out.append(f"| {e['method']} | {e['passes']:,} | {num(e['seconds'])} | "
                   f"{num(r['projected'])} | {r['projected'] / e['seconds']:.2f} | "
                   f"{cpu_ratio:.2f} |")
        key["estimate"][e["method"]] = (r["projected"] / e["seconds"], cpu_ratio)
    return out


def summary(keys: list[dict[str, Any]]) -> list[str]:
    """Ratios to a forward (wall / CPU time) and memory of every model, side by side."""
    cols = ["gradient", "input-x-gradient", "gradcam", "guided-backprop", "dtd", "attn-lrp"]
    out = ["### Summary", "", "Cells: × a forward in wall time / in CPU time; occlusion at its "
           "default window, projected.", "",
           "| model | input | parameters | forward (s) | " + " | ".join(cols)
           + " | occlusion (default) | peak RSS (MB) |",
           "|---|---|---:|---:|" + "---:|" * len(cols) + "---:|---:|"]
    for k in keys:
        if not k:
            continue
        timed = k["timed"]
        cells = [f"{timed[c]['ratio']:.1f} / {timed[c]['ratio_cpu']:.1f}" if c in timed
                 else "–" for c in cols]
        occ = timed.get("occlusion")
        occ_text = (f"{num(occ['projected'] / occ['forward'])} / "
                    f"{num(occ['ratio_cpu'] / occ['passes'] * occ['default_passes'])}"
                    if occ else "–")
        out.append(f"| {k['name']} | {k['input']} | {k['params'] / 1e6:.1f} M | "
                   f"{k['forward']:.2f} | " + " | ".join(cells)
                   + f" | {occ_text} | {k['peak']:,.0f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--repeats", type=int, default=3, help="forwards per median")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="sample fewer passes of the expensive methods")
    mode.add_argument("--full", action="store_true",
                      help="run the expensive methods at their defaults (hours)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--rss-guard-mb", type=int, default=16000,
                    help="end a model's process above this resident memory")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args)
        return 0
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    started = time.perf_counter()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"_{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {when}; "
          f"load average at the start {load_avg()}_\n", flush=True)
    keys = []
    for name in names:
        before = load_avg()
        rows, code, peak = run_child(name, args)
        lines, key = model_section(name, rows, code, peak, before)
        keys.append(key)
        print("\n".join(lines) + f"\n\nLoad average after: {load_avg()}.\n", flush=True)
    print("\n".join(summary(keys)))
    print(f"\n_(run took {time.perf_counter() - started:.0f} s; load average at the end "
          f"{load_avg()})_")
    return 0


if __name__ == "__main__":
    sys.exit(main())
