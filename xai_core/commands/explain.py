"""``explain``: explain a clip and write the maps, a summary and previews to a folder.

Examples::

    python -m xai_core explain sample_videos/move_left.mp4 --out runs/move_left
    python -m xai_core explain clip.mp4 --method dtd --method gradcam --sigma 2 --out out/
    python -m xai_core explain clip.mp4 --arch c3d --checkpoint c3d.pt --classes ucf.txt \\
        --method integrated-gradients:steps=64 --out out/
    python -m xai_core explain clip.mp4 --method extremal-perturbation \\
        --full-only extremal-perturbation --estimate     # how long, before starting

The folder gets, per method, ``<method>.npz`` (float32 ``full``, ``spatial``,
``temporal`` (not for ``--full-only`` methods), ``selective`` (T×H×W), bool
``selective_mask``, ``raw`` when the method has one, uint8 ``frames`` (T×H×W×3 RGB as
cropped for the model)), ``<method>.png`` (strips of the maps) and ``<method>.mp4``
(full | temporal overlay, or full | selective without the split; H.264), plus
``summary.json``; with ``--report`` also ``report.html`` (the verdict in plain words, the
four views at the key frames, the per-frame relevance plot; self-contained) and
``side_by_side.mp4`` (frame | full | spatial | temporal, a row per method). It is
written to a temporary folder and renamed into place, so a failure never leaves half a
result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .. import render
from ..atomic import atomic_dir
from ..decompose import (
    DEFAULT_SELECTIVE,
    NORMALISATIONS,
    SELECTIVE_HELP,
    SLICES,
    SOBEL_BORDERS,
    DecompositionOptions,
    selective_variants,
)
from ..engine import run as run_request
from ..errors import ParameterError
from ..estimate import estimate
from ..methods.base import get_method
from ..models.registry import load_model
from ..progress import ProgressEvent
from ..registry import parse_spec
from ..render.movie import write_side_by_side
from ..render.report_page import write_report
from ..request import ExplainRequest
from ..results import Explanation
from ..synthetic.samples import manifest_entries
from ..verdict import verdict
from ..video.clip import load_clip
from ..video.write import write_video
from ._shared import add_model_arguments, check_model_arguments, command_parser, model_source

#: Frame rate of the preview videos (the clip's own timing is in summary.json).
PREVIEW_FPS = 8.0


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = command_parser(
        sub, "explain", help="explain a clip: full / spatial / temporal / selective relevance",
        description="Explain one clip of a video with one or more methods, split each "
                    "explanation into spatial and temporal (motion) relevance, and write "
                    "the maps (npz), summary.json and previews (png, mp4) to --out.",
        video="video file (mp4, avi, mov, webm, mkv) or folder of frames",
        out="output folder (created)")
    add_model_arguments(p)
    p.add_argument("--method", "--methods", action="extend", nargs="+", dest="methods",
                   metavar="M", help="methods to run, each NAME or NAME:key=value,...: "
                                     "--method dtd gradcam or repeated (default dtd; see "
                                     "`methods`)")
    p.add_argument("--full-only", action="extend", nargs="+", default=[], metavar="M",
                   help="methods explained without the spatial / temporal split (full and "
                        "selective relevance only): the split explains one more clip per "
                        "frame, e.g. --full-only extremal-perturbation")
    p.add_argument("--estimate", action="store_true",
                   help="print how long the explanation would take (measured pass time × "
                        "model passes; cached results cost nothing) and exit")
    p.add_argument("--param", action="append", default=[], metavar="M:KEY=VALUE",
                   help="parameters of a computed method, in the NAME:key=value syntax of "
                        "--method: integrated-gradients:steps=64 or "
                        "occlusion:window=4,28,28,stride=2,14,14 (repeatable)")
    p.add_argument("--target", default=None, metavar="CLASS",
                   help="class index or name to explain (default: the predicted class)")
    p.add_argument("--start", type=int, default=0, metavar="FRAME",
                   help="first frame of the clip (default 0)")
    p.add_argument("--stride", type=int, default=1, metavar="N",
                   help="take every N-th frame (default 1)")
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
    p.add_argument("--selective", choices=selective_variants(), default=DEFAULT_SELECTIVE,
                   help=SELECTIVE_HELP)
    p.add_argument("--chunk-size", type=int, default=None, metavar="N",
                   help="freeze-frame clips per pass (default: the method's)")
    p.add_argument("--no-cache", action="store_true", help="compute afresh; do not store")
    p.add_argument("--no-previews", action="store_true", help="write npz and json only")
    p.add_argument("--report", action="store_true",
                   help="also write report.html (verdict, key frames, per-frame plot; opens "
                        "offline) and side_by_side.mp4 (frame | full | spatial | temporal)")
    p.add_argument("--truth", default=None, metavar="CLASS",
                   help="ground-truth class for the report's verdict (default: the label in a "
                        "manifest.json beside the video, as for the sample clips)")
    return p


def method_specs(specs: list[str], extra: list[str]) -> tuple[list[str], dict[str, dict]]:
    """``--method`` specs and ``--param`` specs (both ``NAME:key=value,...``) →
    (method names in order, ``{method: {param: value}}``); values stay strings, each
    method validates its own."""
    names: list[str] = []
    params: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, kv = parse_spec(spec)
        names.append(name)
        if kv:
            params.setdefault(name, {}).update(kv)
    for spec in extra:
        name, kv = parse_spec(spec)
        if not kv:
            raise ParameterError(f"--param {spec!r} is not METHOD:KEY=VALUE",
                                 hint="For example --param integrated-gradients:steps=64.")
        if name not in names:
            raise ParameterError(f"--param {spec!r} is for {name!r}, which is not computed",
                                 hint=f"Add --method {name}, or drop the parameter.")
        params.setdefault(name, {}).update(kv)
    return names, params


def run(args: argparse.Namespace) -> int:

    check_model_arguments(args)
    methods, params = method_specs(args.methods or ["dtd"], args.param)
    for name in methods:
        get_method(name, **params.get(name, {}))  # bad names or values fail before loading
    stray = sorted(set(args.full_only) - set(methods))
    if stray:
        raise ParameterError(f"--full-only names method(s) {stray} that are not computed",
                             hint=f"Computed methods: {', '.join(methods)}.")
    decompose = [m for m in methods if m not in args.full_only]
    options = DecompositionOptions(slice=args.slice, normalise=args.normalise, sigma=args.sigma,
                                   sobel_border=args.sobel_border, selective=args.selective,
                                   chunk_size=args.chunk_size)
    out = Path(args.out)
    if not args.estimate:
        _check_destination(out)

    model = load_model(args.model, **model_source(args))
    if args.target is not None:
        model.class_index(args.target)  # an unknown class fails before any computation
    clip = load_clip(args.video, model.input, start=args.start, stride=args.stride)
    request = ExplainRequest.build(model, clip, methods, target=args.target, options=options,
                                   method_params=params, decompose=decompose)
    kwargs = {} if not args.no_cache else {"cache": None}
    if args.estimate:
        cost = estimate(request, **kwargs)
        print(f"{model.name} on {model.device}, forward+backward pass of this clip: "
              f"{cost.pass_seconds:.2f} s per clip (measured)")
        print(cost.describe())
        print(f"total: {cost.total()}")
        return 0
    with _StageBars() as bars:
        exp = run_request(request, progress=bars, **kwargs)
    truth = args.truth or sample_truth(args.video)
    write_outputs(exp, out, previews=not args.no_previews,
                  report={"truth": truth, "settings": _report_settings(args)}
                  if args.report else None)

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
    if args.report:
        print(f"verdict: {verdict(exp, truth).text}")
    return 0


def sample_truth(video: str) -> str | None:
    """The label of ``video`` in a ``manifest.json`` beside it (the sample clips'), if any."""
    path = Path(video)
    entry = manifest_entries(path.parent).get(path.name) if path.is_file() else None
    label = entry.get("label") if entry else None
    return label if isinstance(label, str) else None


def _report_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The command line as the report prints it."""
    skip = {"func", "command", "report", "estimate", "no_previews", "debug"}
    return {"command": "explain", **{k: v for k, v in vars(args).items()
                                     if k not in skip and not callable(v)}}


def _pct(v: float | None) -> str:
    return "n/a" if v is None or np.isnan(v) else f"{v:.1%}"


# --------------------------------------------------------------------------- writing
def _check_destination(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier ``explain`` output."""
    if out.exists() and (not out.is_dir() or
                         (any(out.iterdir()) and not (out / "summary.json").is_file())):
        raise ParameterError(f"{out} exists and is not an earlier explain output",
                             hint="Choose a new or empty --out folder.")


def write_outputs(exp: Explanation, out: str | Path, *, previews: bool = True,
                  report: dict[str, Any] | None = None) -> Path:
    """Write npz files, summary.json and previews into ``out`` atomically.

    ``report`` (keyword arguments of :func:`~xai_core.render.report_page.report_html`,
    e.g. ``truth``) adds ``report.html`` and ``side_by_side.mp4``. Everything goes to a
    temporary sibling folder first, which then replaces ``out`` (an earlier output there
    is swapped out and removed only after the new one is in place).
    """
    out = Path(out)
    _check_destination(out)
    with atomic_dir(out) as tmp:
        exp.to_npz(tmp)
        if previews:
            for name, result in exp.methods.items():
                _write_previews(tmp, name, exp.frames, result)
        if report is not None:
            write_report(tmp / "report.html", exp, **report)
            write_side_by_side(tmp / "side_by_side.mp4", exp)
    return out


def _write_previews(folder: Path, name: str, frames: np.ndarray, result) -> None:
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
    """A tqdm bar per stage on stderr (receives the engine's progress events)."""

    def __init__(self) -> None:
        self.bar = None
        self.stage = None

    def __call__(self, event: ProgressEvent) -> None:
        stage, done, total = (f"{event.method}: {event.stage}" if event.method else event.stage,
                              event.done, event.total)
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
