"""``predict``: the top classes of a video clip.

Examples::

    python -m xai_core predict sample_videos/move_left.mp4
    python -m xai_core predict clip.mp4 --arch r3d_18 --checkpoint r3d.pt --classes classes.txt
    python -m xai_core predict clip.mp4 --arch r3d_18 --weights KINETICS400_V1
    python -m xai_core predict clip.mp4 --hf MCG-NJU/videomae-base-finetuned-kinetics
    python -m xai_core predict clip.mp4 --start 32 --stride 2 --json
"""

from __future__ import annotations

import argparse
import json
import sys

from ..models.registry import load_model
from ..predict import predict
from ..video.clip import load_clip
from ._shared import add_model_arguments, check_model_arguments, command_parser, model_source


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(
        sub, "predict", help="top classes of a video clip",
        description="Read one clip of a video (or a folder of frames) and print the model's "
                    "most probable classes with their probabilities.",
        video="video file (mp4, avi, mov, webm, mkv) or folder of frames")
    add_model_arguments(p)
    p.add_argument("--start", type=int, default=0, metavar="FRAME",
                   help="first frame of the clip (default 0)")
    p.add_argument("--stride", type=int, default=1, metavar="N",
                   help="take every N-th frame (default 1)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes to show (default 5)")
    p.add_argument("--json", action="store_true",
                   help='print a JSON list of {"class", "index", "probability"}')
    return p


def run(args: argparse.Namespace) -> int:
    check_model_arguments(args)
    model = load_model(args.model, **model_source(args))
    clip = load_clip(args.video, model.input, start=args.start, stride=args.stride)
    preds = predict(model, clip, top=args.top)
    if clip.padded:  # on stderr, so it is said with --json too without spoiling the JSON
        print(f"note: the video has fewer than {clip.num_frames} frames from {clip.start} with "
              f"stride {clip.stride}; the clip was loop-padded", file=sys.stderr)
    if args.json:
        print(json.dumps([p.to_dict() for p in preds]))
        return 0
    span = f"frames {min(clip.indices)}–{max(clip.indices)}, stride {clip.stride}"
    print(f"{model.name} on {clip.source} ({span}):")
    width = max(len(p.class_name) for p in preds)
    for rank, p in enumerate(preds, 1):
        print(f"{rank:>3}. {p.class_name:<{width}}  {p.probability:7.2%}")
    return 0
