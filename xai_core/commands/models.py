"""``models``: the registered models, torchvision's pretrained weights, model cards.

Examples::

    python -m xai_core models                     # bundled models and architectures
    python -m xai_core models --pretrained        # torchvision's pretrained video weights
    python -m xai_core models --card r3d_18 --weights KINETICS400_V1
    python -m xai_core models --hf path/to/videomae-folder
"""

from __future__ import annotations

import argparse
import json

from ..errors import ParameterError
from ..models.cards import ModelCard, hf_card, pretrained_card, pretrained_cards, spec_card
from ..models.registry import get_spec, list_models
from ..models.spec import ModelSpec
from ._shared import command_parser


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(
        sub, "models", help="list the models and show model cards",
        description="List the bundled models and the architectures an own checkpoint can use "
                    "(--arch), with their input, parameters and weights; --pretrained lists "
                    "torchvision's pretrained video weights (--arch A --weights W); --card and "
                    "--hf show one model's card: what it expects (frames, size, sampling, "
                    "normalisation), where its weights come from, its size.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--pretrained", action="store_true",
                   help="torchvision's pretrained video classifiers, one card each")
    p.add_argument("--card", metavar="NAME", help="the card of one model or architecture")
    p.add_argument("--weights", metavar="NAME",
                   help="with --card ARCH: the card of torchvision's weights NAME")
    p.add_argument("--hf", metavar="ID_OR_FOLDER",
                   help="the card of a Hugging Face video classifier (loads it)")
    return p


def describe(spec: ModelSpec) -> dict:
    """The facts shown for one model (also the ``--json`` form)."""
    card = spec_card(spec)
    return {
        "name": spec.name,
        "architecture": card.architecture,
        "input": f"{card.input} {spec.input.channel_order}",
        # own checkpoints: the head decides (default_num_classes only seeds a random build)
        "classes": card.classes,
        "params": card.params,
        "status": card.status,
        "description": spec.description,
        "resize": card.resize,
        "sampling": card.sampling,
        "normalisation": card.normalisation,
        "weights": card.weights,
        "explained_at": card.explained_at,
    }


def _millions(n: int | None) -> str:
    return f"{n / 1e6:.1f} M" if n else "?"


def _print_cards(cards: list[ModelCard], as_json: bool) -> None:
    if as_json:
        print(json.dumps([c.to_dict() for c in cards]))
        return
    print("\n\n".join(c.text() for c in cards))


def run(args: argparse.Namespace) -> int:
    if args.weights and not args.card:
        raise ParameterError("--weights belongs to --card ARCH",
                             hint="For example: models --card r3d_18 --weights KINETICS400_V1.")
    if args.hf:
        _print_cards([hf_card(args.hf)], args.json)
        return 0
    if args.card:
        card = (pretrained_card(args.card, args.weights) if args.weights
                else spec_card(get_spec(args.card)))
        _print_cards([card], args.json)
        return 0
    if args.pretrained:
        _print_cards(pretrained_cards(), args.json)
        return 0
    specs = sorted(list_models(), key=lambda s: not s.weights)  # bundled first, else as registered
    rows = [describe(s) for s in specs]
    if args.json:
        print(json.dumps(rows))
        return 0
    head = {"name": "NAME", "architecture": "ARCHITECTURE", "input": "INPUT (T×H×W)",
            "classes": "CLASSES", "params": "PARAMS", "status": "WEIGHTS"}
    table = [head] + [{**r, "classes": r["classes"] or "from checkpoint",
                       "params": _millions(r["params"])} for r in rows]
    widths = {k: max(len(str(r[k])) for r in table) for k in head}
    for r in table:
        print("  ".join(f"{str(r[k]):<{widths[k]}}" for k in head).rstrip())
    return 0
