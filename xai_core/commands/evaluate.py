"""``evaluate``: score methods over a dataset of clips (or generated synthetic clips), resumably.

Examples::

    python -m xai_core evaluate videos/ --model motion --methods dtd gradcam --out runs/eval
    python -m xai_core evaluate --synthetic 24 --context-rate 1 --model context-biased \\
        --methods dtd gradcam guided-backprop --out runs/eval-ctx --metrics motion_precision \\
        ground_truth insertion:steps=16
    python -m xai_core evaluate UCF-101/ --arch r3d_18 --checkpoint r3d.pt --classes classes.txt \\
        --methods gradcam dtd --out runs/ucf --engine ray --address auto --gpus-per-worker 1

Rerunning the same command continues where a killed run stopped. The exit code is 1 when
some clips failed (they are listed in OUT/failed.csv and tried again by a rerun).
"""

from __future__ import annotations

import argparse
import sys

from ..decompose import (
    DEFAULT_SELECTIVE,
    SELECTIVE_HELP,
    DecompositionOptions,
    selective_variants,
)
from ..errors import ParameterError
from ..evaluation import (
    DEFAULT_METRICS,
    ModelRef,
    items_from_path,
    run_evaluation,
    run_evaluation_ray,
    synthetic_items,
)
from ..registry import parse_spec
from ._shared import add_model_arguments, check_model_arguments, command_parser

ENGINES = ("in-process", "ray")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(
        sub, "evaluate", help="score explanation methods over many clips (tables + report)",
        description="Explain every clip with every method and score the explanations with "
                    "metrics (motion precision, selectivity, insertion/deletion beside a random "
                    "map, pointing game, ground-truth localisation ...). Resumable: rerun the "
                    "same command after an interruption.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Metrics: " + ", ".join(DEFAULT_METRICS) + ", sanity (opt-in). Parameters: "
               "NAME:key=value,key=value (e.g. insertion:steps=16,grid=8; "
               "variants=full+selective picks map variants).")
    p.add_argument("clips_dir", nargs="?", metavar="CLIPS",
                   help="folder of videos / frame folders (ground truth optional: NAME.npz "
                   "with actor/context/segment, NAME.json with label), a folder of class "
                   "folders (UCF-101 layout: the folder name is the label), or a CSV list of "
                   "path,label rows (paths relative to the list; optional start, stride "
                   "columns)")
    p.add_argument("--synthetic", type=int, metavar="N",
                   help="generate N synthetic clips with their masks instead of reading a folder")
    p.add_argument("--context-rate", type=float, default=0.0,
                   help="synthetic clips: probability that the context object is the class' "
                        "own kind (0 independent, 1 always; default 0)")
    p.add_argument("--moving-fraction", type=float, default=1.0,
                   help="synthetic clips: the actor moves only during a random segment of this "
                        "fraction of the frames (ground truth of the temporal pointing game; "
                        "default 1: always)")
    p.add_argument("--seed", type=int, default=None,
                   help="synthetic clips: first seed (default: a range unused in training)")
    add_model_arguments(p)
    p.add_argument("--methods", nargs="+", required=True, metavar="METHOD",
                   help="methods, optionally with parameters: NAME or NAME:key=value,...")
    p.add_argument("--metrics", nargs="+", default=None, metavar="METRIC",
                   help="metrics (default: all but sanity), NAME or NAME:key=value,...")
    p.add_argument("--out", required=True, help="output folder (records, tables, report)")
    p.add_argument("--limit", type=int, help="evaluate only the first N clips")
    p.add_argument("--target", choices=("predicted", "label"), default="predicted",
                   help="explain the predicted class (default, as the papers) or the label")
    p.add_argument("--sigma", type=float, default=4.0,
                   help="selective relevance threshold in standard deviations (default 4)")
    p.add_argument("--selective", choices=selective_variants(), default=DEFAULT_SELECTIVE,
                   help=SELECTIVE_HELP)
    p.add_argument("--slice", default="same", choices=("same", "first", "mean"),
                   help="freeze-frame slice used as spatial relevance (default same)")
    p.add_argument("--normalise", default="none", choices=("none", "max-abs"),
                   help="normalisation before subtracting spatial from full (default none)")
    p.add_argument("--restart", action="store_true",
                   help="discard the records of an earlier run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("engine", "where the clips are computed")
    g.add_argument("--engine", choices=ENGINES, default="in-process",
                   help="in-process (default: one clip after another here) or ray (a pool of "
                        "Ray workers, each with the model loaded once)")
    g.add_argument("--address", help="ray: a running Ray cluster (host:6379, ray://host:10001 "
                   "or auto); default: a local Ray started for the run")
    g.add_argument("--workers", type=int, help="ray: workers (default: as many as the "
                   "CPUs, or GPUs with --gpus-per-worker, allow)")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="ray: GPUs per worker (fractions share a GPU; default 0: CPU)")
    g.add_argument("--cpus-per-worker", type=int, default=1, metavar="C",
                   help="ray: CPUs (torch threads) per worker (default 1)")
    return p


def _check_engine(args: argparse.Namespace) -> None:
    """Refuse Ray flags without ``--engine ray``, and a device Ray cannot give."""
    if args.engine != "ray":
        given = [f for f, v in (("--address", args.address), ("--workers", args.workers),
                                ("--gpus-per-worker", args.gpus_per_worker or None),
                                ("--cpus-per-worker", None if args.cpus_per_worker == 1
                                 else args.cpus_per_worker)) if v is not None]
        if given:
            raise ParameterError(f"{', '.join(given)} belong(s) to the Ray engine",
                                 hint="Add --engine ray.")
        return
    if args.device == "cuda" and not args.gpus_per_worker:
        raise ParameterError("--device cuda with --engine ray needs --gpus-per-worker",
                             hint="Ray gives each worker its GPUs: add --gpus-per-worker 1.")
    if args.device == "cpu" and args.gpus_per_worker:
        raise ParameterError("--device cpu contradicts --gpus-per-worker",
                             hint="Drop one of them.")


def run(args: argparse.Namespace) -> int:
    if (args.synthetic is None) == (args.clips_dir is None):
        raise ParameterError("give either CLIPS_DIR or --synthetic N",
                             hint="e.g. `evaluate videos/ ...` or `evaluate --synthetic 24 ...`.")
    check_model_arguments(args)
    _check_engine(args)
    ref = ModelRef.of(args.model, arch=args.arch, checkpoint=args.checkpoint,
                      classes=args.classes, weights=args.weights, hf=args.hf)
    # the Ray engine's workers load their own copy; this one only describes the model
    model = ref.load(device="cpu" if args.engine == "ray" else args.device)
    if args.synthetic is not None:
        kw = {} if args.seed is None else {"seed": args.seed}
        spec = model.input
        items = synthetic_items(args.synthetic, args.context_rate, size=spec.height,
                                num_frames=spec.num_frames, moving=args.moving_fraction, **kw)
        source = (f"synthetic world: {args.synthetic} clips, context rate {args.context_rate}, "
                  f"seeds from {items[0].meta['seed']}")
        if args.moving_fraction < 1:
            source += f", actor moving in {args.moving_fraction:g} of the frames"
    else:
        items, source = items_from_path(args.clips_dir)
    methods, params = [], {}
    for spec_text in args.methods:
        name, kv = parse_spec(spec_text)
        methods.append(name)
        if kv:
            params[name] = kv
    options = DecompositionOptions(slice=args.slice, normalise=args.normalise, sigma=args.sigma,
                                   selective=args.selective)
    common = {"metrics": args.metrics, "options": options, "method_params": params,
              "target": args.target, "limit": args.limit, "restart": args.restart,
              "show_progress": not args.no_progress, "source": source}
    if args.engine == "ray":
        result = run_evaluation_ray(ref, items, methods, args.out, model=model,
                                    address=args.address, workers=args.workers,
                                    gpus_per_worker=args.gpus_per_worker,
                                    cpus_per_worker=args.cpus_per_worker, **common)
    else:
        result = run_evaluation(model, items, methods, args.out, model_ref=ref, **common)
    clips = len(result.table["clip_id"].unique()) if not result.table.empty else 0
    print(f"{clips} clips ({result.computed} computed, {result.reused} reused from earlier "
          f"runs, {result.failed} failed)")
    for name, path in result.files.items():
        print(f"  {name}: {path}")
    for note in result.notes:
        print(f"  note: {note}", file=sys.stderr)
    return 1 if result.failed else 0
