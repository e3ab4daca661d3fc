"""``evaluate``: score methods over a folder of clips (or generated synthetic clips), resumably.

Examples::

    python -m xai_core evaluate videos/ --model motion --methods dtd gradcam --out runs/eval
    python -m xai_core evaluate --synthetic 24 --context-rate 1 --model context-biased \\
        --methods dtd gradcam guided-backprop --out runs/eval-ctx --metrics motion_precision \\
        ground_truth insertion:steps=16

Rerunning the same command continues where a killed run stopped.
"""

from __future__ import annotations

import argparse
import sys

from ..decompose import DecompositionOptions
from ..errors import ParameterError
from ..evaluate import (
    DEFAULT_METRICS,
    folder_items,
    parse_spec,
    run_evaluation,
    synthetic_items,
)
from ..models.registry import load_model


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate", help="score explanation methods over many clips (tables + report)",
        description="Explain every clip with every method and score the explanations with "
                    "metrics (motion precision, selectivity, insertion/deletion beside a random "
                    "map, pointing game, ground-truth localisation ...). Resumable: rerun the "
                    "same command after an interruption.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Metrics: " + ", ".join(DEFAULT_METRICS) + ", sanity (opt-in). Parameters: "
               "NAME:key=value,key=value (e.g. insertion:steps=16,grid=8; "
               "variants=full+selective picks map variants).")
    p.add_argument("clips_dir", nargs="?", help="folder of videos / frame folders "
                   "(ground truth optional: NAME.npz with actor/context/segment, NAME.json "
                   "with label)")
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
    p.add_argument("--model", default=None, help="bundled model name (default: motion)")
    p.add_argument("--arch", help="architecture of an own checkpoint")
    p.add_argument("--checkpoint", help="own checkpoint (.pt/.pth state dict)")
    p.add_argument("--classes", help="class-names file of the checkpoint")
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
    p.add_argument("--slice", default="same", choices=("same", "first", "mean"),
                   help="freeze-frame slice used as spatial relevance (default same)")
    p.add_argument("--normalise", default="none", choices=("none", "max-abs"),
                   help="normalisation before subtracting spatial from full (default none)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: automatic)")
    p.add_argument("--restart", action="store_true",
                   help="discard the records of an earlier run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    if (args.synthetic is None) == (args.clips_dir is None):
        raise ParameterError("give either CLIPS_DIR or --synthetic N",
                             hint="e.g. `evaluate videos/ ...` or `evaluate --synthetic 24 ...`.")
    model = load_model(args.model, arch=args.arch, checkpoint=args.checkpoint,
                       classes=args.classes, device=args.device)
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
        items = folder_items(args.clips_dir)
        source = f"folder {args.clips_dir}"
    methods, params = [], {}
    for spec_text in args.methods:
        name, kv = parse_spec(spec_text)
        methods.append(name)
        if kv:
            params[name] = kv
    options = DecompositionOptions(slice=args.slice, normalise=args.normalise, sigma=args.sigma)
    result = run_evaluation(model, items, methods, args.out, metrics=args.metrics,
                            options=options, method_params=params, target=args.target,
                            limit=args.limit, restart=args.restart,
                            show_progress=not args.no_progress, source=source)
    print(f"{len(result.table['clip_id'].unique()) if not result.table.empty else 0} clips "
          f"({result.computed} computed, {result.reused} reused from earlier runs)")
    for name, path in result.files.items():
        print(f"  {name}: {path}")
    for note in result.notes:
        print(f"  note: {note}", file=sys.stderr)
    return 0
