"""``models``: the registered models, one line each.

Example::

    python -m xai_core models
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..models.registry import list_models
from ..models.spec import ModelSpec


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "models", help="list the registered models",
        description="List the bundled models and the architectures an own checkpoint can use "
                    "(--arch), with their input and number of classes.")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return p


def describe(spec: ModelSpec) -> dict:
    """The facts shown for one model (also the ``--json`` form)."""
    inp = spec.input
    if spec.weights:
        ready = Path(spec.weights).is_file()
        status = "bundled" if ready else "bundled, weights missing (make train)"
    else:
        status = "needs checkpoint"
    return {
        "name": spec.name,
        "architecture": spec.architecture or spec.name,
        "input": f"{inp.num_frames}×{inp.height}×{inp.width} {inp.channel_order}",
        # own checkpoints: the head decides (default_num_classes only seeds a random build)
        "classes": len(spec.class_names) if spec.class_names else None,
        "status": status,
        "description": spec.description,
    }


def run(args: argparse.Namespace) -> int:
    specs = sorted(list_models(), key=lambda s: not s.weights)  # bundled first, else as registered
    rows = [describe(s) for s in specs]
    if args.json:
        print(json.dumps(rows))
        return 0
    head = {"name": "NAME", "architecture": "ARCHITECTURE", "input": "INPUT (T×H×W)",
            "classes": "CLASSES", "status": "WEIGHTS"}
    table = [head] + [{**r, "classes": r["classes"] or "from checkpoint"} for r in rows]
    widths = {k: max(len(str(r[k])) for r in table) for k in head}
    for r in table:
        print("  ".join(f"{str(r[k]):<{widths[k]}}" for k in head).rstrip())
    return 0
