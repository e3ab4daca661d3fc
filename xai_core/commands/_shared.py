"""Pieces shared by the commands: their parser, and the flags that choose a model."""

from __future__ import annotations

import argparse

from ..errors import ParameterError

#: Help of the model-choice flags, one wording for every command.
WEIGHTS_HELP = ("torchvision's pretrained weights of --arch by name, fetched on first use into "
                "the torch hub cache: KINETICS400_V1, R3D_18_Weights.KINETICS400_V1 or DEFAULT "
                "(see `models`)")
HF_HELP = ("a Hugging Face video classifier (VideoMAE, TimeSformer, ViViT): hub id (from the "
           "cache; downloaded when online) or a folder written by save_pretrained")


def command_parser(sub: argparse._SubParsersAction, name: str, *, help: str,
                   description: str, video: str | None = None, out: str | None = None,
                   **kwargs) -> argparse.ArgumentParser:
    """The parser of one command, with its ``video`` argument and ``--out`` folder if any."""
    p = sub.add_parser(name, help=help, description=description, **kwargs)
    if video:
        p.add_argument("video", help=video)
    if out:
        p.add_argument("--out", required=True, metavar="DIR", help=out)
    return p


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag that chooses the model and its device (one place: add new sources here).

    ``--weights`` and ``--hf`` are models that bring their own classes and input spec.
    """
    p.add_argument("--model", default=None, help="bundled model name (default: motion)")
    p.add_argument("--arch", help="architecture of an own checkpoint (see `models`)")
    p.add_argument("--checkpoint", help="own checkpoint (.pt/.pth state dict)")
    p.add_argument("--classes", help="class-names file of the checkpoint (one per line)")
    p.add_argument("--weights", metavar="NAME", help=WEIGHTS_HELP)
    p.add_argument("--hf", metavar="ID_OR_FOLDER", help=HF_HELP)
    p.add_argument("--device", default=None, help="cpu or cuda (default: automatic)")


def check_model_arguments(args: argparse.Namespace) -> None:
    """Refuse contradictory model arguments before anything is loaded."""
    weights, hf = getattr(args, "weights", None), getattr(args, "hf", None)
    if hf is not None and (args.model is not None or args.arch or args.checkpoint or weights
                           or args.classes):
        raise ParameterError("--hf is given alone",
                             hint="The Hugging Face model brings its classes and input spec; "
                                  "drop --model, --arch, --checkpoint, --weights and --classes.")
    if weights is not None:
        if args.checkpoint or args.classes:
            raise ParameterError("give either --weights or --checkpoint, not both",
                                 hint="--weights loads torchvision's pretrained weights, with "
                                      "their own class names; --checkpoint your own file.")
        if not args.arch or args.model is not None:
            raise ParameterError("--weights needs --arch (and no --model)",
                                 hint="For example --arch r3d_18 --weights KINETICS400_V1.")
    if args.model is not None and (args.arch or args.checkpoint):
        raise ParameterError("give either --model or --arch with --checkpoint, not both",
                             hint="--model picks a bundled model; --arch/--checkpoint your own.")
    if args.classes and not args.checkpoint:
        raise ParameterError("--classes belongs to an own checkpoint",
                             hint="Add --arch NAME --checkpoint FILE.")


def model_source(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``load_model`` the command line asks for."""
    return {"arch": args.arch, "checkpoint": args.checkpoint, "classes": args.classes,
            "device": args.device, "weights": getattr(args, "weights", None),
            "hf": getattr(args, "hf", None)}
