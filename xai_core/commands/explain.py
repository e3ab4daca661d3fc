"""``explain``: explain a clip and write the maps, a summary and previews to a folder.

Examples::

    python -m xai_core explain sample_videos/move_left.mp4 --out runs/move_left
    python -m xai_core explain clip.mp4 --method dtd --method gradcam --sigma 2 --out out/
    python -m xai_core explain clip.mp4 --arch c3d --checkpoint c3d.pt --classes ucf.txt \\
        --param integrated-gradients.steps=64 --method integrated-gradients --out out/
    python -m xai_core explain clip.mp4 --method extremal-perturbation \\
        --full-only extremal-perturbation --estimate     # how long, before starting

The folder gets, per method, ``<method>.npz`` (float32 ``full``, ``spatial``,
``temporal`` (not for ``--full-only`` methods), ``selective`` (T×H×W), bool
``selective_mask``, ``raw`` when the method has one, uint8 ``frames`` (T×H×W×3 RGB as
cropped for the model)), ``<method>.png`` (strips of the maps) and ``<method>.mp4``
(full | temporal overlay, or full | selective without the split; H.264), plus
``summary.json``. It is written to a temporary folder and renamed into place, so a
failure never leaves half a result.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..decompose import NORMALISATIONS, SLICES, SOBEL_BORDERS, DecompositionOptions
from ..errors import ParameterError
from ..estimate import estimate_cost
from ..methods.base import METHODS, get_method
from ..models.registry import load_model
from ..results import Explanation
from ._shared import check_model_arguments

#: Frame rate of the preview videos (the clip's own timing is in summary.json).
PREVIEW_FPS = 8.0


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "explain", help="explain a clip: full / spatial / temporal / selective relevance",
        description="Explain one clip of a video with one or more methods, split each "
                    "explanation into spatial and temporal (motion) relevance, and write "
                    "the maps (npz), summary.json and previews (png, mp4) to --out.")
    p.add_argument("video", help="video file (mp4, avi, mov, webm, mkv) or folder of frames")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--model", default=None, help="bundled model name (default: motion)")
    p.add_argument("--arch", help="architecture of an own checkpoint (see `models`)")
    p.add_argument("--checkpoint", help="own checkpoint (.pt/.pth state dict)")
    p.add_argument("--classes", help="class-names file of the checkpoint (one per line)")
    p.add_argument("--method", "--methods", action="extend", nargs="+", dest="methods",
                   metavar="M", help="methods to run: --method dtd gradcam or repeated "
                                     "(default dtd; see `methods`)")
    p.add_argument("--full-only", action="extend", nargs="+", default=[], metavar="M",
                   help="methods explained without the spatial / temporal split (full and "
                        "selective relevance only): the split explains one more clip per "
                        "frame, e.g. --full-only extremal-perturbation")
    p.add_argument("--estimate", action="store_true",
                   help="print how long the explanation would take (measured pass time × "
                        "model passes; cached results cost nothing) and exit")
    p.add_argument("--param", action="append", default=[], metavar="M.KEY=VALUE",
                   help="method parameter, e.g. integrated-gradients.steps=64 or "
                        "occlusion.window=4,28,28 (repeatable)")
    p.add_argument("--target", default=None, metavar="CLASS",
                   help="class index or name to explain (default: the predicted class)")
    p.add_argument("--start", type=int, default=0, metavar="FRAME",
                   help="first frame of the clip (default 0)")
    p.add_argument("--stride", type=int, default=1, metavar="N",
                   help="take every N-th frame (default 1)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: automatic)")
    p.add_argument("--sigma", type=float, default=4.0, metavar="N",
                   help="selective relevance threshold in standard deviations (default 4)")
    p.add_argument("--slice", choices=SLICES, default="same",
                   help="slice of each freeze-frame explanation used as spatial relevance "
                        "(default same; first = the authors' scripts)")
    p.add_argument("--normalise", choices=NORMALISATIONS, default="none",
                   help="scaling before full − spatial (default none: units kept; "
                        "max-abs = the paper's)")
    p.add_argument("--sobel-border", choices=SOBEL_BORDERS, default="replicate",
                   help="temporal padding of the Sobel derivative (default replicate)")
    p.add_argument("--chunk-size", type=int, default=None, metavar="N",
                   help="freeze-frame clips per pass (default: the method's)")
    p.add_argument("--no-cache", action="store_true", help="compute afresh; do not store")
    p.add_argument("--no-previews", action="store_true", help="write npz and json only")
    return p


def parse_params(items: list[str], methods: list[str]) -> dict[str, dict[str, Any]]:
    """``["ig.steps=64", "occlusion.window=4,28,28"]`` → ``{"ig": {"steps": "64"}, ...}``.

    Values stay strings (tuples split on commas); each method validates and converts its
    own parameters.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, dot, rest = item.partition(".")
        key, eq, value = rest.partition("=")
        if not dot or not eq or not name or not key:
            raise ParameterError(f"--param {item!r} is not METHOD.KEY=VALUE",
                                 hint="For example --param integrated-gradients.steps=64.")
        if name not in methods:
            raise ParameterError(f"--param {item!r} is for {name!r}, which is not computed",
                                 hint=f"Add --method {name}, or drop the parameter.")
        cls = METHODS.get(name)
        spec = cls.params.get(key) if cls is not None else None
        if spec is not None and isinstance(spec.default, tuple):
            value = tuple(v.strip() for v in value.split(","))
        out.setdefault(name, {})[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from ..engine import explain
    from ..video.clip import load_clip

    check_model_arguments(args)
    methods = args.methods or ["dtd"]
    for name in methods:
        get_method(name)  # unknown names fail now, before loading anything
    params = parse_params(args.param, methods)
    stray = sorted(set(args.full_only) - set(methods))
    if stray:
        raise ParameterError(f"--full-only names method(s) {stray} that are not computed",
                             hint=f"Computed methods: {', '.join(methods)}.")
    decompose = [m for m in methods if m not in args.full_only]
    options = DecompositionOptions(slice=args.slice, normalise=args.normalise, sigma=args.sigma,
                                   sobel_border=args.sobel_border, chunk_size=args.chunk_size)
    out = Path(args.out)
    if not args.estimate:
        _check_destination(out)

    model = load_model(args.model, arch=args.arch, checkpoint=args.checkpoint,
                       classes=args.classes, device=args.device)
    if args.target is not None:
        model.class_index(args.target)  # an unknown class fails before any computation
    clip = load_clip(args.video, model.input, start=args.start, stride=args.stride)
    kwargs = {} if not args.no_cache else {"cache": None}
    if args.estimate:
        cost = estimate_cost(model, clip, methods, target=args.target, options=options,
                             method_params=params, decompose=decompose, **kwargs)
        print(f"{model.name} on {model.device}, forward+backward pass of this clip: "
              f"{cost.pass_seconds:.2f} s per clip (measured)")
        print(cost.describe())
        print(f"total: {cost.total()}")
        return 0
    with _StageBars() as bars:
        exp = explain(model, clip, methods, target=args.target, options=options,
                      method_params=params, decompose=decompose, progress=bars, **kwargs)
    write_outputs(exp, out, previews=not args.no_previews)

    hits = sum(exp.cache_hits.values())
    print(f"{model.name}: {exp.target_name} ({exp.probabilities[exp.target]:.1%}) on "
          f"{clip.source}, frames {min(clip.indices)}–{max(clip.indices)}")
    for name, r in exp.methods.items():
        share = r.motion_share
        split = (f"discriminative {_pct(share.get('discriminative'))}" if r.decomposed
                 else "discriminative not computed (--full-only)")
        print(f"  {name:<24} motion share: {split}, selective {_pct(share.get('selective'))}")
    print(f"wrote {out}/ ({len(methods)} method(s), {hits} from cache, "
          f"{exp.timings['total']:.1f} s)")
    if clip.padded:
        print(f"note: the video is shorter than the clip from frame {clip.start} with stride "
              f"{clip.stride}; it was loop-padded (the jump back is motion not in the video)",
              file=sys.stderr)
    for note in exp.warnings:  # e.g. a method fell back to the CPU
        print(f"warning: {note}", file=sys.stderr)
    return 0


def _pct(v: float | None) -> str:
    return "n/a" if v is None or np.isnan(v) else f"{v:.1%}"


# --------------------------------------------------------------------------- writing
def _check_destination(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier ``explain`` output."""
    if out.exists() and (not out.is_dir() or
                         (any(out.iterdir()) and not (out / "summary.json").is_file())):
        raise ParameterError(f"{out} exists and is not an earlier explain output",
                             hint="Choose a new or empty --out folder.")


def write_outputs(exp: Explanation, out: str | Path, *, previews: bool = True) -> Path:
    """Write npz files, summary.json and previews into ``out`` atomically.

    Everything goes to a temporary sibling folder first, which then replaces ``out`` (an
    earlier output there is swapped out and removed only after the new one is in place).
    """
    out = Path(out)
    _check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        exp.to_npz(tmp)
        if previews:
            for name, result in exp.methods.items():
                _write_previews(tmp, name, exp.frames, result)
        _default_permissions(tmp)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _default_permissions(folder: Path) -> None:
    """Temporary files are private (0600/0700); the result gets the user's usual mode."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for f in folder.iterdir():
        f.chmod(0o666 & ~umask)


def _write_previews(folder: Path, name: str, frames: np.ndarray, result) -> None:
    from .. import render
    from ..video.write import write_video

    maps = result.maps()  # no spatial / temporal for a method explained --full-only
    # one scale for the maps: they are in the same units, so colours compare
    scale = render.max_abs(*maps.values()) or 1.0
    zoom = max(1.0, 96.0 / frames.shape[1])
    strips = [[render.strip(frames, m, scale=scale, zoom=zoom)] for m in maps.values()]
    render.save_png(folder / f"{name}.png", render.grid(strips, row_titles=list(maps)))
    full = render.overlay_frames(frames, maps["full"], scale=scale, zoom=2.0)
    motion = maps["temporal"] if "temporal" in maps else maps["selective"]
    temporal = render.overlay_frames(frames, motion, scale=scale, zoom=2.0)
    gap = np.full((*full.shape[:2], 4, 3), 255, np.uint8)
    write_video(folder / f"{name}.mp4", np.concatenate([full, gap, temporal], axis=2),
                PREVIEW_FPS)


class _StageBars:
    """A tqdm bar per stage on stderr (``progress(stage, done, total)`` of ``explain``)."""

    def __init__(self) -> None:
        self.bar = None
        self.stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=stage, file=sys.stderr, unit="step",
                            leave=False, dynamic_ncols=True)
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> _StageBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
