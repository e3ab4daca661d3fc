"""Our methods next to zennit and captum used by hand, in the same run, on the same clip.

For the bundled small C3D (``motion``) and C3D (Tran et al. 2015, random weights), each
row is the median time of one clip ÷ a no-grad forward pass timed just before it (so a
drifting load on a shared machine hits both sides of the ratio alike), and the peak
memory the row added (CPU: the process's peak RSS above what it held before, reset with
``/proc/self/clear_refs``; CUDA: ``torch.cuda.max_memory_allocated`` above the allocated
memory before).

* **ours**: ``get_method(name).attribute(model, x, target)`` — DTD (Montavon et al.
  2017), gradient, input × gradient, integrated gradients (Sundararajan et al. 2017),
  Grad-CAM (Selvaraju et al. 2017) upsampled to the clip;
* **zennit by hand** (Anders et al. 2021): a ``Gradient`` attributor with the README's
  ``EpsilonPlusFlat`` composite, and with a z⁺ composite (DTD: ``ZPlus`` on every
  convolution and linear layer), both with ``SequentialMergeBatchNorm``;
* **captum by hand** (Kokhlikyan et al. 2020): ``Saliency``, ``InputXGradient``,
  ``IntegratedGradients`` (same steps as ours) and ``LayerGradCam`` on the model's CAM
  layer + ``LayerAttribution.interpolate`` to the clip;
* **the freeze-frame split** (Hiley et al. 2019): our T freeze-frame DTD explanations in
  one batch (``discriminative``, batch from the memory budget) vs the authors' loop of
  single-clip passes (aim on a GPU: ≥ 10× faster).

``.venv/bin/python benchmarks/bench_peers.py [--device cpu|cuda] [--repeats 2]
[--skip-c3d] [--split-models motion,c3d] [--json out.json]``. Recorded, never asserted.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core.decompose import (  # noqa: E402
    DecompositionOptions,
    discriminative,
    freeze_frame_clips,
)
from xai_core.methods.base import get_method, model_guard  # noqa: E402
from xai_core.models.architectures import C3D  # noqa: E402
from xai_core.models.registry import LoadedModel, get_spec, load_model, wrap_module  # noqa: E402
from xai_core.predict import class_probabilities  # noqa: E402
from xai_core.video.clip import load_clip  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_cold import load_average, write_results  # noqa: E402

CLIP = ROOT / "sample_videos" / "move_right.mp4"
#: Our methods, with settings shared with the peers' rows where a method has them.
OURS = {"dtd": {}, "gradient": {}, "input-x-gradient": {},
        "integrated-gradients": {"steps": 8}, "gradcam": {}}
IG_STEPS = 8


# --------------------------------------------------------------------------- measuring
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        tic = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def _libc():
    """glibc, told to return freed memory to the system (or ``None`` elsewhere): without
    it, memory freed by an earlier row stays in the RSS and hides the next row's peak."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD fixed: big blocks go back at free
        return libc
    except (OSError, AttributeError):
        return None


LIBC = _libc()


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def peak_mib(fn: Callable[[], object], device: torch.device) -> float | None:
    """Memory one call of ``fn`` adds at its peak (MiB), or ``None`` if unmeasurable."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    if LIBC is not None:
        LIBC.malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        base = _status_kib("VmRSS:")
        fn()
        return (_status_kib("VmHWM:") - base) / 1024
    except (OSError, StopIteration):
        return None


# --------------------------------------------------------------------------- peers
def zennit_rows(model: LoadedModel) -> dict[str, Callable[[torch.Tensor, int], object]]:
    """A zennit user's code: a composite, a ``Gradient`` attributor, a one-hot output."""
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonPlusFlat, LayerMapComposite
    from zennit.rules import Pass, ZPlus
    from zennit.types import Activation, Convolution, Linear

    def run(make: Callable[[], object]) -> Callable[[torch.Tensor, int], object]:
        def attribute(x: torch.Tensor, target: int) -> object:
            one_hot = torch.eye(model.num_classes, device=x.device)[[target]]
            with model_guard(model.module), Gradient(model=model.module,
                                                     composite=make()) as attributor:
                return attributor(x, one_hot)[1]
        return attribute

    return {
        "EpsilonPlusFlat + Gradient": run(
            lambda: EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()])),
        "z⁺ (DTD) + Gradient": run(lambda: LayerMapComposite(
            layer_map=[(Activation, Pass()), (Convolution, ZPlus()), (Linear, ZPlus())],
            canonizers=[SequentialMergeBatchNorm()])),
    }


def captum_rows(model: LoadedModel) -> dict[str, Callable[[torch.Tensor, int], object]]:
    """A captum user's code: an attribution object per method, ``attribute(x, target)``."""
    from captum.attr import (
        InputXGradient,
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        Saliency,
    )

    net = model.module
    layer = net.get_submodule(model.spec.cam_layer)

    def guarded(fn: Callable[[torch.Tensor, int], object]) -> Callable[[torch.Tensor, int], object]:
        def attribute(x: torch.Tensor, target: int) -> object:
            with model_guard(net):
                return fn(x.clone().requires_grad_(True), target)
        return attribute

    def gradcam(x: torch.Tensor, target: int) -> object:
        cam = LayerGradCam(net, layer).attribute(x, target=target)
        return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "trilinear")

    return {
        "Saliency": guarded(lambda x, t: Saliency(net).attribute(x, target=t,
                                                                        abs=False)),
        "InputXGradient": guarded(lambda x, t: InputXGradient(net).attribute(x,
                                                                                    target=t)),
        f"IntegratedGradients ({IG_STEPS} steps)": guarded(
            lambda x, t: IntegratedGradients(net).attribute(x, target=t, n_steps=IG_STEPS)),
        "LayerGradCam + interpolate": guarded(gradcam),
    }


# --------------------------------------------------------------------------- one model
def bench_model(model: LoadedModel, x: torch.Tensor, repeats: int, split: bool) -> list[dict]:
    dev = model.device
    xd = x.to(dev)
    target = int(class_probabilities(model, x)[0].argmax())
    rows: list[dict] = []

    def row(group: str, name: str, fn: Callable[[], object], reps: int = repeats) -> None:
        forward = timed(lambda: class_probabilities(model, x), dev, repeats)
        seconds = timed(fn, dev, reps)
        rows.append({"group": group, "name": name, "seconds": seconds, "forward": forward,
                     "ratio": seconds / forward, "peak_mib": peak_mib(fn, dev),
                     "load": os.getloadavg()[0]})
        print(f"  {group} {name}: {seconds:.3f} s = {seconds / forward:.1f}× forward",
              file=sys.stderr, flush=True)

    for name, params in OURS.items():
        method = get_method(name, **params)
        row("ours", name, lambda m=method: m.attribute(model, x, target))
    for group, fns in (("zennit", zennit_rows(model)), ("captum", captum_rows(model))):
        for name, fn in fns.items():
            row(group, name, lambda f=fn: f(xd, target))
    if split:
        method = get_method("dtd")
        full = method.attribute(model, x, target).relevance[0]
        opts = DecompositionOptions(reuse_identical=False)
        t = x.shape[2]
        row("split", f"ours: {t} freeze-frame DTD clips in one batch",
            lambda: discriminative(method, model, x, target, full, opts), 1)
        row("split", f"authors' loop: {t} single-clip DTD passes",
            lambda: [method.attribute(model, freeze_frame_clips(x, [i]), target)
                     for i in range(t)], 1)
    return rows


def models(device: str, skip_c3d: bool) -> list[tuple[str, LoadedModel]]:
    out = [("motion", load_model("motion", device=device))]
    if not skip_c3d:
        torch.manual_seed(0)
        out.append(("c3d", wrap_module(C3D(num_classes=101), get_spec("c3d"), device=device)))
    return out


def markdown(label: str, rows: list[dict]) -> str:
    lines = [f"#### {label}", "", "| group | row | seconds | forward just before (s) | × forward "
             "| peak memory added (MiB) | load |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        peak = "–" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
        lines.append(f"| {r['group']} | {r['name']} | {r['seconds']:.3f} | {r['forward']:.3f} "
                     f"| {r['ratio']:.1f} | {peak} | {r['load']:.1f} |")
    ours, loop = ([r["seconds"] for r in rows if r["group"] == "split" and r["name"].startswith(k)]
                  for k in ("ours", "authors"))
    if ours and loop:
        lines += ["", f"Freeze-frame split, one batch vs the authors' loop: "
                      f"**{loop[0] / ours[0]:.1f}×** faster."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--skip-c3d", action="store_true")
    p.add_argument("--split-models", default=None,
                   help="models with the batch-vs-loop rows (default: motion on the CPU, "
                        "all on CUDA)")
    p.add_argument("--clip", default=str(CLIP))
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    split_for = (args.split_models.split(",") if args.split_models is not None
                 else ["motion", "c3d"] if args.device.startswith("cuda") else ["motion"])
    load = load_average()
    header = [f"_{platform.machine()}, {torch.get_num_threads()} torch threads, "
              f"torch {torch.__version__}, device {args.device}"
              + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
              + f", {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load at start {load}_"]
    results = {}
    for label, model in models(args.device, args.skip_c3d):
        print(f"{label}:", file=sys.stderr, flush=True)
        x = load_clip(args.clip, model.input).tensor
        results[label] = bench_model(model, x, args.repeats, label in split_for)
        header += ["", markdown(label, results[label])]
    write_results("\n".join(header), results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
