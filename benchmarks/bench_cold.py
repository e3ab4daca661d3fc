"""A cold four-view explanation, end to end, with the time of every stage.

Four views = the full DTD map (Montavon et al. 2017), its freeze-frame split into spatial
and temporal relevance (Hiley et al. 2019) and the selective map (Hiley et al. 2020), as
the dashboard asks for them (``ExplainRequest.build(..., decompose=True)`` then
``engine.run``). Each case runs in a **fresh Python process** with an **empty cache**
(``XAI_CACHE_DIR`` pointing to a new temporary folder), so imports, model load, clip
decoding, first-call kernel set-up and the cache write are all paid, as by a user's
first click. Cases:

* ``motion``: the bundled small C3D (``load_model("motion")``) on ``sample_videos/``;
  aim: under 5 s on two CPU cores.
* ``r3d18``: torchvision's r3d_18 (random weights, 16×112×112, Tran et al. 2018) on the
  same clip; aim: under 25 s on two CPU cores (under 1 s on a GPU, ``gpu.sh``).

Per stage: imports (torch; xai_core; the LRP family with zennit, the only one a DTD
lookup imports), model load, clip decode + preprocess, request build, then inside
``engine.run`` (from its progress events): predictions of the clip and its freeze-frame
clips (one batch), explanations of the clip and its freeze-frame clips (one batch), the
split's arithmetic, selective relevance, result + cache write. Then
the same request again in the same process: served by the cache, and computed warm
without the cache. Peak memory of the cold run: the process's peak RSS (``VmHWM``; it
includes what the allocator keeps after freeing) and ``torch.cuda.max_memory_allocated``
on CUDA; the batch sizes the memory budget chose just before the run
(:mod:`xai_core.budget`); load average before and after.

``.venv/bin/python benchmarks/bench_cold.py [--cases motion,r3d18] [--device cpu|cuda]
[--clip sample_videos/move_right.mp4] [--json out.json]`` prints a markdown table for
``benchmarks/RESULTS.md``. Timings are recorded, never asserted.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # before anything heavy is imported: the cold start counts

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "sample_videos" / "move_right.mp4"
CASES = {"motion": "bundled small C3D (`motion`, trained)",
         "r3d18": "torchvision r3d_18, random weights"}
AIM_S = {("motion", "cpu"): 5.0, ("r3d18", "cpu"): 25.0, ("r3d18", "cuda"): 1.0}
#: Stages inside engine.run, in order: (label, progress stage that ends it, its method).
RUN_STAGES = (("predictions: clip + freeze frames", "freeze-frame predictions", False),
              ("explanations, first chunk (the clip + freeze-frame clips)", "full", True),
              ("explanations, other chunks + the split's arithmetic", "freeze frames", True),
              ("selective", "selective", True))


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (MiB): ``VmHWM``, else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- child
def child(case: str, device: str, clip_path: str) -> dict:
    """One cold explanation in this (fresh) process; returns the stage times."""
    stages: dict[str, float] = {}
    load_before = load_average()
    mark = START

    def lap(label: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[label] = now - mark
        mark = now

    import torch
    lap("import torch")
    sys.path.insert(0, str(ROOT))
    from xai_core import engine
    from xai_core.budget import clips_per_pass, memory_budget
    from xai_core.decompose import clips_per_batch
    from xai_core.request import ExplainRequest
    lap("import xai_core")
    from xai_core.methods.base import get_method
    get_method("dtd")  # its family only: LRP, zennit (→ torchvision → torch._dynamo)
    lap("import the LRP family (zennit)")
    model = _model(case, device)
    lap("model load")
    from xai_core.video.clip import load_clip
    clip = load_clip(clip_path, model.input)
    lap("clip decode + preprocess")
    request = ExplainRequest.build(model, clip, ["dtd"], decompose=True)
    lap("request build")
    method = request.methods["dtd"]
    chosen = {"explanations": clips_per_batch(method, request.model, request.x),
              "predictions": clips_per_pass(request.model, request.x, gradients=False),
              "budget": memory_budget(request.model.device)}
    lap("memory budget (activation size, fake pass)")  # memoised: the run reuses it
    after_setup = time.perf_counter()

    events: list[tuple[float, str, bool, int, int]] = []
    exp = engine.run(request, progress=lambda e: events.append(
        (time.perf_counter(), e.stage, e.method is not None, e.done, e.total)))
    end = time.perf_counter()
    mark = after_setup
    for label, stage, per_method in RUN_STAGES:
        done = [t for t, s, m, d, n in events if s == stage and m == per_method and d >= n > 0]
        if done:
            stages[label] = done[-1] - mark
            mark = done[-1]
    stages["result + cache write"] = end - mark
    total = end - START
    peak_rss = peak_rss_mib()  # of the cold run, before the re-runs below
    dev = request.model.device
    peak_cuda = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None

    tic = time.perf_counter()
    engine.run(request)  # the same request again: from the cache
    cached = time.perf_counter() - tic
    tic = time.perf_counter()
    engine.run(request, cache=None)  # warm: kernels set up, nothing stored
    warm = time.perf_counter() - tic

    return {
        "case": case, "device": str(dev), "stages": stages, "total_s": total,
        "after_imports_s": total - sum(v for k, v in stages.items() if k.startswith("import")),
        "run_s": end - after_setup, "cached_rerun_s": cached, "warm_rerun_s": warm,
        "engine_timings": exp.timings, "method_timings": exp["dtd"].timings,
        "freeze_frame_passes": exp["dtd"].freeze_frame_passes,
        "clips_per_pass": {k: chosen[k] for k in ("explanations", "predictions")},
        "budget_bytes": chosen["budget"],
        "peak_rss_mib": peak_rss,
        "peak_cuda_mib": peak_cuda,
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "load_before": load_before, "load_after": load_average(),
    }


def _model(case: str, device: str):
    from xai_core.models.registry import get_spec, load_model, wrap_module
    if case == "motion":
        return load_model("motion", device=device)
    import torch
    torch.manual_seed(0)
    spec = get_spec("r3d_18")
    return wrap_module(spec.build(spec.default_num_classes), spec, device=device)


# --------------------------------------------------------------------------- parent
def run_case(case: str, device: str, clip: str) -> dict:
    """``child`` in a fresh interpreter with an empty cache folder."""
    with tempfile.TemporaryDirectory(prefix="xai-cold-") as cache_dir:
        env = {**os.environ, "XAI_CACHE_DIR": cache_dir}
        out = subprocess.run([sys.executable, __file__, "--child", case, "--device", device,
                              "--clip", clip], env=env, capture_output=True, text=True,
                             check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(results: list[dict], clip: str) -> str:
    first = results[0]
    where = first["gpu"] or f"{platform.machine()}, {first['threads']} torch threads"
    lines = [f"_{where}, torch {first['torch']}, clip `{Path(clip).name}`, "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC_", "",
             "| stage | " + " | ".join(f"{r['case']} ({r['device']})" for r in results) + " |",
             "|---|" + "---:|" * len(results)]
    labels = list(dict.fromkeys(k for r in results for k in r["stages"]))
    for label in labels:
        cells = [f"{r['stages'][label]:.2f}" if label in r["stages"] else "–" for r in results]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    def row(name: str, cell) -> None:
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in results) + " |")

    row("**total, cold process (s)**", lambda r: f"**{r['total_s']:.2f}**")
    row("after the imports (s)", lambda r: f"{r['after_imports_s']:.2f}")
    row("aim (s)", lambda r: _aim(r))
    row("same request again, cached (s)", lambda r: f"{r['cached_rerun_s']:.3f}")
    row("same request again, warm, no cache (s)", lambda r: f"{r['warm_rerun_s']:.2f}")
    row("freeze-frame clips explained", lambda r: str(r["freeze_frame_passes"]))
    row("clips per pass: explanations / predictions",
        lambda r: f"{r['clips_per_pass']['explanations']} / {r['clips_per_pass']['predictions']}")
    row("memory budget (GiB)", lambda r: f"{r['budget_bytes'] / 2**30:.1f}")
    row("peak memory of the cold run (MiB)",
        lambda r: (f"{r['peak_cuda_mib']:.0f} GPU, " if r["peak_cuda_mib"] else "")
        + f"{r['peak_rss_mib']:.0f} RSS")
    row("load average before → after", lambda r: f"{r['load_before']} → {r['load_after']}")
    return "\n".join(lines)


def _aim(r: dict) -> str:
    aim = AIM_S.get((r["case"], r["device"].split(":")[0]))
    if aim is None:
        return "–"
    return f"< {aim:g} ({'met' if r['total_s'] < aim else 'not met'})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated: motion, r3d18")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--clip", default=str(CLIP), help="a video file")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.device, args.clip)))
        return 0
    results = []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        if case not in CASES:
            p.error(f"unknown case {case!r}; known: {', '.join(CASES)}")
        results.append(run_case(case, args.device, args.clip))
        print(f"{case}: {results[-1]['total_s']:.2f} s cold (load {results[-1]['load_after']})",
              file=sys.stderr)
    write_results(markdown(results, args.clip), results, args.json)
    return 0


def write_results(text: str, results: object, path: Path | None) -> None:
    """Print the markdown; with ``path``, also write it with the raw results as JSON."""
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"results": results, "markdown": text}, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
