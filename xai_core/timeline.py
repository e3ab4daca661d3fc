"""A timeline over a whole video: top classes and motion share of every sliding window.

A model sees ``T`` frames (16 for the bundled models); a real video is minutes long.
:func:`timeline` slides windows over the whole file and records per window its seconds,
top classes and the **motion share** of one method (Σ temporal⁺ / (Σ spatial⁺ + Σ
temporal⁺), from the freeze-frame split of Hiley et al. (2019)).

Windows. A window takes every K-th frame (``sample_every``), spanning (T−1)·K + 1 source
frames. K defaults to ``round(video fps / model fps)`` (≥ 1), so the model sees motion at
the speed it learnt; the model's rate is ``model.input.fps`` if its input spec has one,
else ``model.spec.extra["frame_rate"]`` (torchvision's pretrained weights state it), else
:data:`DEFAULT_MODEL_FPS` = 25 fps, the rate of typical training videos (UCF-101,
Kinetics); the bundled models learnt on synthetic clips without a rate and get it too.
``window_step`` defaults to T·K (windows tile the video); when the grid misses the last
frames, one more window is aligned to the end. Starts strictly increase.

Method. Grad-CAM by default: one backward pass per clip (≈ 1 forward on the bundled
model, ``benchmarks/RESULTS.md``), the cheapest method whose motion share separates the
bundled models (0.92 motion vs 0.31 context-biased, README; DTD 0.97 vs 0.45 at ~9× the
cost). The split it needs explains one more clip per distinct frame.

Reading, memory, resuming. The file is opened once per :data:`READ_CHUNK` windows and each
window read by a seek, decoding only its frames; one window's full-size frames exist at a
time, then the model-size crops of a chunk and one small row per window. Each window is an
:class:`~xai_core.request.ExplainRequest` run by :func:`xai_core.engine.run`, so it is
cached and a rerun recomputes nothing done (it decodes again, to know the content). With
``out_dir`` the csv and json are rewritten atomically every ``write_every`` windows and on
an interruption (``"complete": false``), and a rerun there reuses the rows of the same
model, method and layout whose clips hash alike, even after the cache evicted them.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .atomic import write_json, write_text
from .cache import DEFAULT_CACHE, ResultCache
from .decompose import DEFAULT_OPTIONS, DecompositionOptions
from .engine import run
from .errors import ParameterError
from .methods.base import get_method
from .models.registry import LoadedModel
from .progress import Progress, ProgressEvent, ignore
from .request import ExplainRequest, prepare_clip
from .results import Explanation
from .version import __version__
from .video.checks import DEFAULT_LIMITS, VideoLimits
from .video.clip import Clip, load_clip
from .video.preprocess import normalise, resize_and_crop
from .video.read import _Video, probe  # one open file for several windows
from .video.sampling import sample_indices

__all__ = ["DEFAULT_METHOD", "DEFAULT_MODEL_FPS", "FILES", "Timeline", "TimelineWindow",
           "check_out_dir", "model_fps", "timeline", "window_starts"]

#: Frame rate assumed for a model whose spec states none (typical training videos).
DEFAULT_MODEL_FPS = 25.0
#: The cheapest method whose motion share separates the bundled models (module doc).
DEFAULT_METHOD = "gradcam"
#: What :meth:`Timeline.write` puts in its folder.
FILES = ("timeline.csv", "timeline.json", "timeline.html")
#: Windows read per opening of the file (its decoder is closed while models compute).
READ_CHUNK = 8
_TAIL = ("target", "target_prob", "motion_share", "freeze_frame_prob", "padded", "cached",
         "clip_hash")


@dataclass(frozen=True)
class TimelineWindow:
    """One window (one row of ``timeline.csv``), in temporal order by ``index``.

    ``start_frame``/``end_frame`` are the first and last source frames used;
    ``start_s``/``end_s`` the start of the first frame and the end of the last, in
    seconds. ``top``: ``(class, probability)``, best first. ``target``: the class explained
    (the prediction unless a target was asked), ``target_prob`` its probability,
    ``motion_share`` its motion share in [0, 1] (``nan`` without positive relevance),
    ``freeze_frame_prob`` its mean probability on the freeze-frame clips (what single
    frames alone say). ``padded``: the video is shorter than a window (loop-padded);
    ``cached``: nothing was computed; ``clip_hash``: the clip's identity in the cache.
    """

    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    top: tuple[tuple[str, float], ...]
    target: str
    target_prob: float
    motion_share: float
    freeze_frame_prob: float
    padded: bool = False
    cached: bool = False
    clip_hash: str = ""

    @property
    def top1(self) -> str:
        return self.top[0][0]

    @property
    def top1_prob(self) -> float:
        return self.top[0][1]

    def row(self) -> dict[str, Any]:
        """The csv row: window, seconds, frames, ``topK``/``topK_prob``, then the rest."""
        row: dict[str, Any] = {"window": self.index, "start_s": self.start_s,
                               "end_s": self.end_s, "start_frame": self.start_frame,
                               "end_frame": self.end_frame}
        for k, (name, prob) in enumerate(self.top, 1):
            row[f"top{k}"], row[f"top{k}_prob"] = name, prob
        return row | {name: getattr(self, name) for name in _TAIL}

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> TimelineWindow:
        """A window from a csv row of strings (as :func:`csv.DictReader` gives)."""
        ks = sorted(int(c[3:]) for c in row if c.startswith("top") and c[3:].isdigit())
        return cls(int(row["window"]), int(row["start_frame"]), int(row["end_frame"]),
                   float(row["start_s"]), float(row["end_s"]),
                   tuple((row[f"top{k}"], float(row[f"top{k}_prob"])) for k in ks),
                   row["target"], float(row["target_prob"]), _float(row["motion_share"]),
                   _float(row["freeze_frame_prob"]), row["padded"] == "True",
                   row["cached"] == "True", row.get("clip_hash", ""))


@dataclass
class Timeline:
    """Windows over one video and their layout; fewer than ``planned`` when cut short
    (``max_windows``, an interruption): see :attr:`complete`."""

    video: str
    model: str
    method: str
    method_key: dict[str, Any]
    fps: float
    total_frames: int
    clip_frames: int
    sample_every: int
    window_step: int
    planned: int
    model_fps: float
    weights_hash: str = ""
    target: str | None = None
    top: int = 5
    options: dict[str, Any] = field(default_factory=dict)
    windows: list[TimelineWindow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.total_frames / self.fps

    @property
    def complete(self) -> bool:
        return len(self.windows) == self.planned

    def meta(self) -> dict[str, Any]:
        """Everything but the rows (``timeline.json``)."""
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "windows"}
        return meta | {"duration_s": self.duration_s, "windows_done": len(self.windows),
                       "complete": self.complete, "xai_core": __version__}

    def to_frame(self) -> Any:
        """A :class:`pandas.DataFrame`, one row per window (the csv's columns)."""
        import pandas as pd  # on use: importing xai_core should not pay for pandas

        return pd.DataFrame([w.row() for w in self.windows])

    def figure(self) -> Any:
        """Interactive plotly figure (:func:`xai_core.timeline_figure.timeline_figure`)."""
        from .timeline_figure import timeline_figure

        return timeline_figure(self)

    def write(self, out_dir: str | Path, *, html: bool = True) -> dict[str, Path]:
        """Write ``timeline.csv``, ``timeline.json`` and (``html``) a self-contained
        ``timeline.html`` (plotly.js embedded: opens offline), each atomically.

        Without ``html`` an earlier ``timeline.html`` there is removed: it would show
        other windows than the csv.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name.split(".")[1]: out / name for name in FILES}
        write_text(paths["csv"], self.to_frame().to_csv(index=False))
        write_json(paths["json"], self.meta())
        if not html:
            paths.pop("html").unlink(missing_ok=True)
            return paths
        write_text(paths["html"], self.figure().to_html(include_plotlyjs=True, full_html=True))
        return paths

    @classmethod
    def read(cls, out_dir: str | Path) -> Timeline:
        """A timeline written by :meth:`write` (or an interrupted run), read back."""
        out = Path(out_dir)
        try:
            meta = json.loads((out / "timeline.json").read_text())
            with open(out / "timeline.csv", newline="", encoding="utf-8") as fh:
                windows = [TimelineWindow.from_row(r) for r in csv.DictReader(fh)]
            names = set(cls.__dataclass_fields__) - {"windows"}
            return cls(**{k: v for k, v in meta.items() if k in names}, windows=windows)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ParameterError(f"{out} holds no readable timeline ({exc})",
                                 hint="Point to the --out folder of `timeline`.") from None

    def clip(self, index: int, model: LoadedModel) -> Clip:
        """The clip of window ``index`` for ``model`` (the same content hash as on the
        timeline, so explaining it again is served by the cache)."""
        return load_clip(self.video, model.input, start=self.windows[index].start_frame,
                         stride=self.sample_every)

    def thumbnails(self, height: int = 64, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """``(window index, its first frame at ``height`` px, uint8 RGB)`` of every
        ``every``-th window and the last, in order; a seek per thumbnail."""
        ws = [w for w in self.windows
              if w.index % _count("every", every) == 0 or w is self.windows[-1]]

        def small(frames: np.ndarray) -> np.ndarray:
            size = (max(1, round(frames.shape[2] * height / frames.shape[1])), int(height))
            return cv2.resize(frames[0], size, interpolation=cv2.INTER_AREA)

        starts = [w.start_frame for w in ws]
        for w, (_, image) in zip(ws, _read_windows(Path(self.video), starts, 1, 1,
                                                   DEFAULT_LIMITS, small), strict=True):
            yield w.index, image


# --------------------------------------------------------------------------- layout
def model_fps(model: LoadedModel) -> float:
    """The frame rate ``model`` expects (see the module doc for where it comes from)."""
    for value in (getattr(model.input, "fps", None), (model.spec.extra or {}).get("frame_rate")):
        if value:
            return float(value)
    return DEFAULT_MODEL_FPS


def window_starts(total: int, num_frames: int, sample_every: int, step: int) -> list[int]:
    """Start frames of the windows over ``total`` frames, strictly increasing: the grid
    0, step, 2·step ... plus one window aligned to the end when the grid misses frames."""
    span = (num_frames - 1) * sample_every + 1
    if total <= span:
        return [0]
    starts = list(range(0, total - span + 1, step))
    if starts[-1] + span < total:
        starts.append(total - span)
    return starts


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path if it is new, empty or an earlier timeline output."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / "timeline.json").is_file())):
        raise ParameterError(f"{out} exists and is not an earlier timeline output",
                             hint="Choose a new or empty output folder.")
    return out


def _count(name: str, value: Any, *, none: bool = False) -> int | None:
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name} must be a whole number ≥ 1, got {value!r}.",
                             hint=f"For example {name}=1.")
    return int(value)


# --------------------------------------------------------------------------- computing
def timeline(model: LoadedModel, video: str | Path, *, window_step: int | None = None,
             sample_every: int | None = None, method: str = DEFAULT_METHOD,
             method_params: Mapping[str, Any] | None = None, target: int | str | None = None,
             top: int = 5, options: DecompositionOptions = DEFAULT_OPTIONS,
             cache: ResultCache | None = DEFAULT_CACHE, progress: Progress | None = None,
             max_windows: int | None = None, out_dir: str | Path | None = None,
             write_every: int = 10, limits: VideoLimits = DEFAULT_LIMITS) -> Timeline:
    """Slide windows over a whole video: per window its seconds, top classes, motion share.

    Parameters
    ----------
    model, video
        A :class:`~xai_core.models.registry.LoadedModel` and a video file.
    window_step
        Source frames between window starts (default T·K: the windows tile the video).
    sample_every
        K: every K-th frame in a window (default ``round(video fps / model fps)``).
    method, method_params, target, options
        Method whose motion share is recorded (module doc), its parameters, the class
        explained (``None``: each window's prediction), the split's options.
    top
        Classes recorded per window.
    cache
        The result cache (default shared one; ``None`` computes everything).
    progress
        Receives ``ProgressEvent("windows", done, total, overall=...)``; ``overall``
        advances inside a window too.
    max_windows
        Compute only the first windows (a rerun continues: the cache keeps them).
    out_dir, write_every
        Write ``timeline.csv``/``.json`` every ``write_every`` windows and on an
        interruption, all of :data:`FILES` at the end. New, empty or an earlier timeline
        output; nothing is written when the video or a parameter is bad.
    limits
        Video size and length caps.

    Returns
    -------
    Timeline

    Raises
    ------
    VideoError, ParameterError, MethodError
        An unreadable video, a bad parameter, a method that does not apply to ``model``.
    """
    started = time.perf_counter()
    path = Path(video)
    top, write_every = _count("top", top), _count("write_every", write_every)
    max_windows = _count("max_windows", max_windows, none=True)
    k = _count("sample_every", sample_every, none=True)
    step = _count("window_step", window_step, none=True)
    explainer = get_method(method, **dict(method_params or {}))
    explainer.check(model)
    chosen = None if target is None else model.class_names[model.class_index(target)]
    out = None if out_dir is None else check_out_dir(out_dir)
    info = probe(path, limits)
    fps, notes = info.fps, []
    if not fps > 0:
        fps = model_fps(model)
        notes.append(f"the video does not state its frame rate; {fps:g} fps assumed")
    t, k = model.input.num_frames, k or max(1, round(fps / model_fps(model)))
    step = step or t * k
    starts = window_starts(info.frames, t, k, step)
    as_json = json.loads(json.dumps([explainer.key(), options.key()]))  # as read back
    result = Timeline(str(path), model.name, method, as_json[0], fps, info.frames, t, k, step,
                      len(starts), model_fps(model), model.weights_hash, chosen, top,
                      as_json[1], notes=notes)
    earlier = _earlier_windows(out, result)
    todo = starts[:max_windows]
    report = progress or ignore
    request: ExplainRequest | None = None
    try:
        crop = functools.partial(resize_and_crop, spec=model.input)
        for i, (start, cropped) in enumerate(_read_windows(path, todo, t, k, limits, crop)):
            indices, padded = sample_indices(info.frames, start, t, k)
            if padded:  # only when the video is shorter than one window: one window
                result.notes.append("the video is shorter than one window; loop-padded")
            clip = Clip(cropped, normalise(cropped, model.input).unsqueeze(0), str(path), start,
                        k, tuple(indices), padded, model.input, fps)  # = load_clip's
            old = earlier.get(i)
            if old is not None and (old.start_frame, old.clip_hash) == (start, clip.content_hash):
                result.windows.append(replace(old, cached=True))  # done by an earlier run
                report(ProgressEvent("windows", i + 1, len(todo), overall=(i + 1) / len(todo)))
                continue
            if request is None:
                params = {method: dict(method_params or {})}
                request = ExplainRequest.build(model, clip, method, target=target,
                                               options=options, method_params=params)
            else:
                x, seen, clip_info = prepare_clip(model, clip)
                request = request.replace(x=x, frames=seen, clip=clip_info)

            def inner(event: ProgressEvent, i: int = i) -> None:
                report(ProgressEvent("windows", i, len(todo),
                                     overall=(i + event.fraction) / len(todo)))

            exp = run(request, cache=cache, progress=inner)
            result.windows.append(_window(i, indices, padded, exp, fps, method, top))
            report(ProgressEvent("windows", i + 1, len(todo), overall=(i + 1) / len(todo)))
            if out is not None and (i + 1) % write_every == 0 and i + 1 < len(todo):
                result.seconds = time.perf_counter() - started
                result.write(out, html=False)
    except BaseException:
        result.seconds = time.perf_counter() - started
        if out is not None and result.windows:  # a valid partial timeline stays behind
            with contextlib.suppress(Exception):
                result.write(out, html=False)
        raise
    result.seconds = time.perf_counter() - started
    if out is not None:
        result.write(out)
    return result


def _read_windows(path: Path, starts: list[int], num_frames: int, sample_every: int,
                  limits: VideoLimits, prepare: Callable[[np.ndarray], Any],
                  ) -> Iterator[tuple[int, Any]]:
    """``(start, prepare(frames))`` of the windows at ``starts``, in order.

    :data:`READ_CHUNK` windows per opening of the file, each by a seek and the decoding of
    its own frames only; one window's full-size frames exist at a time (``prepare`` makes
    them small). The file is closed before the windows are handed on: with a decord
    reader open, torch's peak memory in a backward pass was ≈ 3× (RESULTS.md).
    """
    for first in range(0, len(starts), READ_CHUNK):
        with _Video(path, limits) as video:
            chunk = [(start, prepare(video.gather(sample_indices(
                video.info.frames, start, num_frames, sample_every)[0])))
                for start in starts[first:first + READ_CHUNK]]
        yield from chunk


def _window(index: int, indices: list[int], padded: bool, exp: Explanation, fps: float,
            method: str, top: int) -> TimelineWindow:
    probs = np.asarray(exp.probabilities)
    best = np.argsort(-probs, kind="stable")[:top]
    result = exp.methods[method]
    first, last = min(indices), max(indices)
    return TimelineWindow(
        index, first, last, first / fps, (last + 1) / fps,
        tuple((exp.class_names[j], float(probs[j])) for j in best),
        exp.target_name, float(probs[exp.target]),
        _float(result.motion_share.get("discriminative")),
        float(np.mean(np.asarray(exp.freeze_frame_probabilities)[:, exp.target])),
        padded, bool(exp.predictions_cache_hit and result.cache_hit), exp.clip.content_hash)


def _earlier_windows(out: Path | None, now: Timeline) -> dict[int, TimelineWindow]:
    """Windows an earlier run wrote to ``out`` with the same model, method, options and
    layout, by index (each is reused only if its clip's content hash matches too)."""
    if out is None or not (out / "timeline.json").is_file():
        return {}
    with contextlib.suppress(ParameterError):
        old = Timeline.read(out)
        same = ("weights_hash", "method_key", "target", "top", "options",
                "total_frames", "clip_frames", "sample_every", "window_step")
        if all(getattr(old, f) == getattr(now, f) for f in same):
            return {w.index: w for w in old.windows}
    return {}


def _float(value: Any) -> float:
    return float("nan") if value is None or value == "" else float(value)
