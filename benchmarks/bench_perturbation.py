"""Cost and faithfulness of spatio-temporal extremal perturbation on the CPU.

Three measurements, printed as markdown for ``benchmarks/RESULTS.md``:

1. **Bundled model** (``motion``, falls back to a random small C3D when the weights are
   missing): wall time per clip, iterations run, whether the masks converged (early stop)
   and the kept area of each target area, at the method's default settings; and how the
   masks settle: at snapshots during the run, the agreement (IoU of the voxels above ½)
   of each area's mask with its final mask, and the insertion AUC of the map so far —
   "iterations to convergence" is the first snapshot from which every area's mask
   agrees with its final one to IoU ≥ 0.9.
2. **C3D** (random weights, 78 M parameters, 3×16×112×112): seconds per iteration over a
   few iterations, extrapolated to the default iteration count and to the iterations the
   bundled model needed — a full run takes tens of minutes per clip here, which is the
   number the UI's estimate must show before starting.
3. **Insertion AUC** (Li et al. 2021 §4.1; ``xai_core.metrics.causal``) of the
   perturbation map beside Grad-CAM, DTD and a random map on the same synthetic clips
   (probability of the predicted class while voxels are revealed into a blurred clip,
   16×16 patches per frame, 32 steps).

Run (after the training job, it takes a while):
``.venv/bin/python benchmarks/bench_perturbation.py [--clips 3] [--c3d-iterations 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core.baselines import baseline_clip  # noqa: E402
from xai_core.methods import get_method  # noqa: E402
from xai_core.methods.perturbation import (  # noqa: E402
    ExtremalPerturbation,
    extremal_perturbation,
    saliency_from_masks,
)
from xai_core.metrics.causal import auc, perturbation_curve, random_map  # noqa: E402
from xai_core.models.architectures import C3D  # noqa: E402
from xai_core.models.bundled import WEIGHTS_DIR, small_c3d_spec  # noqa: E402
from xai_core.models.registry import LoadedModel, get_spec, load_model, wrap_module  # noqa: E402
from xai_core.synthetic.world import render_clip  # noqa: E402
from xai_core.video.preprocess import normalise  # noqa: E402


def bundled_model() -> tuple[LoadedModel, str]:
    if (WEIGHTS_DIR / "motion.pt").is_file():
        return load_model("motion", device="cpu"), "bundled `motion`"
    from xai_core.models.architectures import SmallC3D

    torch.manual_seed(0)
    return (wrap_module(SmallC3D(num_classes=8), small_c3d_spec(), device="cpu"),
            "small C3D, random weights (bundled weights missing)")


def synthetic_clips(model: LoadedModel, n: int, first_seed: int = 9000):
    """(clip tensor, actor mask) pairs of the synthetic world."""
    out = []
    for i in range(n):
        clip = render_clip(first_seed + i)
        out.append((normalise(clip.frames, model.input).unsqueeze(0), clip.actor_mask))
    return out


def actor_share(rel: np.ndarray, actor: np.ndarray) -> float:
    """Share of the map's positive mass on the actor (where the motion evidence is)."""
    pos = np.clip(rel, 0, None)
    return float(pos[actor].sum() / max(pos.sum(), 1e-12))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def insertion_auc(model: LoadedModel, x: torch.Tensor, target: int, rel: np.ndarray) -> float:
    start = baseline_clip(model, x, "blur", 10.0)
    return auc(perturbation_curve(model, x, target, rel, start, x, steps=32, grid=(16, 16)))


def defaults(**overrides) -> dict:
    return {**{k: p.default for k, p in ExtremalPerturbation.params.items()}, **overrides}


#: Fractions of the iteration budget at which the masks are snapshotted.
SNAPSHOTS = (1 / 12, 1 / 6, 1 / 3, 1 / 2, 2 / 3, 5 / 6, 1.0)
#: Agreement with the final mask that counts as settled.
SETTLED_IOU = 0.9


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    on_a, on_b = a > 0.5, b > 0.5
    union = (on_a | on_b).sum().item()
    return 1.0 if union == 0 else (on_a & on_b).sum().item() / union


def settling(model: LoadedModel, x: torch.Tensor, target: int, res, smooth: float) -> list:
    """Per snapshot: (iteration, min IoU over areas with the final mask, insertion AUC)."""
    final = res.masks[0].cpu()
    out = []
    for it, masks in sorted(res.history.items()):
        ious = [mask_iou(masks[0, a], final[a]) for a in range(final.shape[0])]
        rel = saliency_from_masks(masks, smooth)[0].numpy()
        out.append((it, min(ious), insertion_auc(model, x, target, rel)))
    return out


def bench_bundled(model: LoadedModel, clips: list, iterations: int) -> dict:
    defaults_ = defaults(iterations=iterations)
    kwargs = {k: v for k, v in defaults_.items() if k != "smooth"}
    method = get_method("extremal-perturbation", iterations=iterations)
    snaps = sorted({max(1, round(f * iterations)) for f in SNAPSHOTS})
    rows = []
    for i, (x, actor) in enumerate(clips):
        with torch.no_grad():
            target = int(model.module(x).argmax(1))
        t0, c0 = time.perf_counter(), time.process_time()
        res = extremal_perturbation(model.module, x, target, **kwargs,
                                    progress=lambda d, n, s: None, snapshots=snaps)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        settle = settling(model, x, target, res, defaults_["smooth"])
        settled = next((it for j, (it, _, _) in enumerate(settle)
                        if all(v >= SETTLED_IOU for _, v, _ in settle[j:])), None)
        ep_map = saliency_from_masks(res.masks, defaults_["smooth"])[0].numpy()
        maps = {"extremal-perturbation": ep_map}
        for name in ("gradcam", "dtd"):
            maps[name] = get_method(name).attribute(model, x, target).relevance[0].numpy()
        maps["random"] = random_map(ep_map.shape, seed=1)
        aucs = {k: insertion_auc(model, x, target, v) for k, v in maps.items()}
        shares = {k: actor_share(v, actor) for k, v in maps.items()}
        rows.append({"seconds": seconds, "cpu": cpu, "iterations": int(res.iterations[0]),
                     "converged": bool(res.converged[0]), "kept": res.kept[0].tolist(),
                     "aucs": aucs, "shares": shares, "actor": float(actor.mean()),
                     "settle": settle, "settled": settled,
                     "kept_clip": (res.masks[0] > 0.5).float().mean(dim=(1, 2, 3)).tolist()})
        log(f"clip {i}: {seconds:.0f} s ({cpu:.0f} CPU s), {rows[-1]['iterations']} it, "
            f"settled at {settled}, "
            f"{[(it, round(v, 3), round(a, 3)) for it, v, a in settle]}, "
            f"converged={rows[-1]['converged']}, kept={np.round(rows[-1]['kept'], 3)}, "
            f"insertion={ {k: round(v, 3) for k, v in aucs.items()} }, "
            f"actor share={ {k: round(v, 3) for k, v in shares.items()} }")
    return {"rows": rows, "areas": defaults_["areas"], "passes": method.cost_passes()}


def bench_c3d(iterations: int) -> float:
    spec = get_spec("c3d")
    torch.manual_seed(0)
    model = wrap_module(C3D(num_classes=101), spec, device="cpu")
    x = torch.randn(1, *spec.input.shape)
    kwargs = defaults(iterations=iterations, tolerance=0.0)
    kwargs.pop("smooth")
    t0 = time.perf_counter()
    extremal_perturbation(model.module, x, 0, **kwargs)
    return (time.perf_counter() - t0) / iterations


def load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--c3d-iterations", type=int, default=3)
    ap.add_argument("--skip-c3d", action="store_true")
    ap.add_argument("--iterations", type=int, default=None,
                    help="override the default iterations (smoke runs only)")
    args = ap.parse_args()

    model, label = bundled_model()
    clips = synthetic_clips(model, args.clips)
    default_iters = args.iterations or ExtremalPerturbation.params["iterations"].default
    bundled = bench_bundled(model, clips, default_iters)
    rows = bundled["rows"]
    mean_iters = statistics.mean(r["iterations"] for r in rows)

    print(f"Target areas {list(bundled['areas'])} (fractions of the clip's T×H×W voxels).\n")
    print(f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CPU, load average at the end {load_average()} "
          "(the machine is shared: CPU seconds are the steadier number). Default settings: areas "
          f"{list(bundled['areas'])}, {default_iters} iterations max "
          f"({bundled['passes']} forward+backward clip passes by `cost_passes()`).\n")
    print(f"**{label}**, {len(rows)} synthetic clips (seeds 9000+), 3×16×112×112:\n")
    print("| clip | wall s | CPU s (all threads) | wall s/iteration | iterations run | early "
          f"stop | masks settled (IoU ≥ {SETTLED_IOU} with final) from iteration | kept area "
          "(canvas incl. margin, as the constraint) | kept area inside the clip |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rows):
        kept = ", ".join(f"{k:.3f}" for k in r["kept"])
        inside = ", ".join(f"{k:.3f}" for k in r["kept_clip"])
        print(f"| {i} | {r['seconds']:.0f} | {r['cpu']:.0f} | {r['seconds'] / r['iterations']:.1f} "
              f"| {r['iterations']} | {r['converged']} | {r['settled']} | {kept} | {inside} |")
    print(f"\nMedian {statistics.median(r['seconds'] for r in rows):.0f} s per clip; "
          f"mean {mean_iters:.0f} iterations.\n")
    print("How the masks settle (mean over clips): the smallest IoU over areas between the "
          "mask at that iteration and the final one, and the insertion AUC of the map at that "
          "iteration:\n")
    print("| iteration | min IoU with final mask | insertion AUC |")
    print("|---|---|---|")
    for j, (it, _, _) in enumerate(rows[0]["settle"]):
        iou = statistics.mean(r["settle"][j][1] for r in rows)
        ins = statistics.mean(r["settle"][j][2] for r in rows)
        print(f"| {it} | {iou:.3f} | {ins:.3f} |")
    print()

    if not args.skip_c3d:
        per_it = bench_c3d(args.c3d_iterations)
        print(f"**C3D** (random weights), 3×16×112×112: {per_it:.1f} s per iteration "
              f"(mean of {args.c3d_iterations}), i.e. ≈ {per_it * default_iters / 60:.0f} min "
              f"per clip at {default_iters} iterations, ≈ {per_it * mean_iters / 60:.0f} min at "
              f"the {mean_iters:.0f} iterations the bundled model needed (extrapolated).\n")

    names = list(rows[0]["aucs"])
    print("Insertion AUC (higher is better; blurred start, 16×16 patches, 32 steps):\n")
    print("| clip | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, r in enumerate(rows):
        print(f"| {i} | " + " | ".join(f"{r['aucs'][n]:.3f}" for n in names) + " |")
    means = [statistics.mean(r["aucs"][n] for r in rows) for n in names]
    print("| mean | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    print("\nShare of the positive map mass on the actor (the actor covers "
          f"{statistics.mean(r['actor'] for r in rows):.1%} of the clip on average):\n")
    print("| clip | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, r in enumerate(rows):
        print(f"| {i} | " + " | ".join(f"{r['shares'][n]:.3f}" for n in names) + " |")


if __name__ == "__main__":
    main()
