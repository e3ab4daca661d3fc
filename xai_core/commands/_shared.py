"""Pieces shared by the commands that load a model (predict, explain)."""

from __future__ import annotations

import argparse

from ..errors import ParameterError


def check_model_arguments(args: argparse.Namespace) -> None:
    """Refuse contradictory model arguments before anything is loaded."""
    if args.model is not None and (args.arch or args.checkpoint):
        raise ParameterError("give either --model or --arch with --checkpoint, not both",
                             hint="--model picks a bundled model; --arch/--checkpoint your own.")
    if args.classes and not args.checkpoint:
        raise ParameterError("--classes belongs to an own checkpoint",
                             hint="Add --arch NAME --checkpoint FILE.")
