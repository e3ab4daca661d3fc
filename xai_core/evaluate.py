"""Evaluate explanations: one clip for the dashboard, or folders of clips, resumably.

* :func:`evaluate_clip` scores one :class:`~xai_core.results.Explanation` with the
  metrics of :mod:`xai_core.metrics` (what the dashboard's metrics panel calls; cached
  in the engine's result cache).
* :func:`run_evaluation` explains every clip with every method and scores it. It is
  **resumable**: each finished clip is written as its own JSON record, atomically
  (temporary file, fsync, rename), into ``OUT/records/``; a rerun skips the clips that
  have a record, so a run killed after k clips continues where it stopped and the
  table — always rebuilt from the records — has no duplicates. A manifest refuses to
  mix records of different configurations in one folder.
* The results are a tidy table (``results.csv``, and ``results.parquet`` when pyarrow is
  installed: one row per clip × method × map variant × quantity), a summary of
  mean ± std (``summary.csv``) and a report (``report.html`` with Plotly figures,
  ``report.md``) laid out like Tables 1–4 of Hiley et al. 2020 and Table 2 of Li et al.
  2021.

Clips come from a folder (videos or frame folders, with optional ground truth beside
them) or are generated from the synthetic world with their masks (:func:`synthetic_items`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .decompose import DEFAULT_OPTIONS, DecompositionOptions
from .engine import DEFAULT_CACHE, explain, tensor_hash
from .errors import ParameterError, VideoError
from .metrics import ClipEvidence, Metric, get_metric
from .models.registry import LoadedModel
from .results import Explanation

#: Metrics of a run unless asked otherwise (the sanity check re-runs every method once per
#: layer: ask for it with ``--metrics sanity``).
DEFAULT_METRICS: tuple[str, ...] = (
    "motion_precision", "selectivity", "agreement", "overhead", "motion_share",
    "insertion", "deletion", "saliency_metric", "pointing_game", "temporal_pointing_game",
    "ground_truth",
)

#: Seeds of generated evaluation clips start here: far from the training seeds of
#: ``scripts/train_bundled.py`` (10 000 000 + 100 000 000·k + i) and its held-out range.
SYNTHETIC_SEED_BASE = 700_000_000

RECORD_VERSION = 1


# --------------------------------------------------------------------------- inputs
@dataclass
class EvalItem:
    """One clip to evaluate.

    Attributes
    ----------
    clip_id
        Unique name in the run (file stem, or ``synthetic-<seed>``).
    source
        A video path, a frame folder, or uint8 RGB frames (N, H, W, 3).
    masks
        Ground truth at the source's resolution and length: ``actor``/``context``
        (N, H, W) bool, ``segment`` (N,) bool; ``None`` when there is none.
    label
        True class (index, or name resolved against the model's classes), when known.
    meta
        Extra columns for the table (e.g. the synthetic context kind).
    """

    clip_id: str
    source: str | Path | np.ndarray
    masks: dict[str, np.ndarray] | None = None
    label: int | str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def synthetic_items(n: int, context_rate: float = 0.0, *, seed: int = SYNTHETIC_SEED_BASE,
                    size: int = 112, num_frames: int = 16, moving: float = 1.0
                    ) -> list[EvalItem]:
    """``n`` clips of the synthetic world with their actor and context masks.

    Clip i is ``render_clip(seed + i)`` with the given ``context_rate`` (0: context
    independent of the class, 1: always the class' own context kind).

    ``moving < 1`` makes the actor move during one segment of ``round(moving · T)``
    frames only (at a seeded random start) and stand still before and after it — the
    first and last frames of the segment are repeated, with fresh sensor noise of the
    world's σ in every frame — and adds that segment as the ``segment`` ground truth of
    the temporal pointing game.
    """
    from .synthetic.world import CLASSES, CONTEXT_KINDS, WorldConfig, render_clip

    if n < 1:
        raise ParameterError("--synthetic needs at least one clip", hint="Use --synthetic 24.")
    if not 0.0 <= context_rate <= 1.0:
        raise ParameterError(f"context rate must be in [0, 1], got {context_rate}")
    if not 0.0 < moving <= 1.0:
        raise ParameterError(f"the moving fraction must be in (0, 1], got {moving}")
    config = WorldConfig(size=size, num_frames=num_frames, context_rate=context_rate)
    items = []
    for i in range(n):
        s = seed + i
        meta: dict[str, Any] = {"seed": s}
        if moving >= 1.0:
            c = render_clip(s, config=config)
            frames, actor, context = c.frames, c.actor_mask, c.context_mask
            masks = {"actor": actor, "context": context}
        else:
            # noise-free render (the noise is drawn last, so the scene is the same clip)
            c = render_clip(s, config=dataclasses.replace(config, noise=0.0))
            length = min(num_frames, max(2, round(moving * num_frames)))
            rng = np.random.default_rng([s, 1])
            a = int(rng.integers(0, num_frames - length + 1))
            idx = np.clip(np.arange(num_frames), a, a + length - 1)
            noise = rng.standard_normal(c.frames.shape, dtype=np.float32) * config.noise
            frames = np.clip(c.frames[idx].astype(np.float32) + noise, 0, 255).round()
            frames = frames.astype(np.uint8)
            segment = np.zeros(num_frames, bool)
            segment[a : a + length] = True
            masks = {"actor": c.actor_mask[idx], "context": c.context_mask[idx],
                     "segment": segment}
            meta["segment"] = f"{a}-{a + length - 1}"
        meta |= {"context": c.context, "context_name": CONTEXT_KINDS[c.context],
                 "context_agrees": c.context == c.label, "label_name": CLASSES[c.label]}
        items.append(EvalItem(clip_id=f"synthetic-{s}", source=frames, masks=masks,
                              label=c.label, meta=meta))
    return items


def folder_items(folder: str | Path) -> list[EvalItem]:
    """Videos and frame folders in ``folder`` (numeric name order) with their ground truth.

    Beside ``NAME.mp4`` (or a frame folder ``NAME/``) the optional ``NAME.npz`` (or
    ``NAME.masks.npz``) holds masks over the whole source — ``actor`` / ``context``
    (N, H, W) bool (``actor_mask`` / ``context_mask`` are accepted too) and ``segment``
    (N,) bool — and the optional ``NAME.json`` a ``label`` (index or class name). A
    ``manifest.json`` as in ``sample_videos/`` (``samples: [{file, label, context,
    kind}]``) also supplies labels and context names.
    """
    from .video.clip import IMAGE_EXTENSIONS, _natural_key
    from .video.read import VIDEO_EXTENSIONS

    root = Path(folder)
    if not root.is_dir():
        raise VideoError(f"{str(root)!r} is not a folder",
                         hint="Give a folder of videos, or use --synthetic N.")
    entries = []
    for p in sorted(root.iterdir(), key=lambda p: _natural_key(p.name)):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            entries.append(p)
        elif p.is_dir() and any(q.suffix.lower() in IMAGE_EXTENSIONS for q in p.iterdir()):
            entries.append(p)
    if not entries:
        raise VideoError(f"folder {root.name!r} holds no videos or frame folders",
                         hint=f"Put {', '.join(VIDEO_EXTENSIONS)} files in it.")
    listed = _read_manifest(root)
    items = []
    for p in entries:
        stem = p.stem if p.is_file() else p.name
        masks = _read_masks(root, stem)
        entry = listed.get(p.name, {})
        label = _read_label(root, stem)
        if label is None:
            label = entry.get("label")
        meta = {k: entry[k] for k in ("context", "kind") if isinstance(entry.get(k), str)}
        items.append(EvalItem(clip_id=stem, source=p, masks=masks, label=label, meta=meta))
    return items


def _read_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """``manifest.json`` of a sample folder (``scripts/make_samples.py``): file → entry."""
    path = root / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    samples = data.get("samples") if isinstance(data, dict) else None
    if not isinstance(samples, list):
        return {}
    return {s["file"]: s for s in samples if isinstance(s, dict) and isinstance(s.get("file"), str)}


def _read_masks(root: Path, stem: str) -> dict[str, np.ndarray] | None:
    for name in (f"{stem}.masks.npz", f"{stem}.npz"):
        path = root / name
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as npz:
                    raw = {k: npz[k] for k in npz.files}
            except (OSError, ValueError) as exc:
                raise VideoError(f"ground truth {name} cannot be read ({exc})",
                                 hint="Write it with np.savez(path, actor=..., context=...).") \
                    from exc
            masks = {}
            for key in ("actor", "context", "segment"):
                for candidate in (key, f"{key}_mask"):
                    if candidate in raw:
                        masks[key] = raw[candidate].astype(bool)
                        break
            return masks or None
    return None


def _read_label(root: Path, stem: str) -> int | str | None:
    path = root / f"{stem}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    label = data.get("label") if isinstance(data, dict) else None
    if isinstance(label, bool):
        return None
    return int(label) if isinstance(label, (int, float)) else label if isinstance(label, str) \
        else None


def clip_masks(masks: dict[str, np.ndarray] | None, indices: Sequence[int], spec
               ) -> dict[str, np.ndarray] | None:
    """Bring source-resolution masks onto the clip's grid: the clip's frame indices, then
    the same resize and centre crop as the frames."""
    from .video.preprocess import resize_and_crop

    if not masks:
        return None
    idx = np.asarray(indices, int)
    out = {}
    for key, m in masks.items():
        m = np.asarray(m, bool)
        if key == "segment":
            if m.ndim != 1 or idx.max() >= m.shape[0]:
                raise VideoError(f"ground-truth segment has {m.shape} entries; the clip uses "
                                 f"frame {idx.max()}", hint="Give one bool per source frame.")
            out[key] = m[idx]
            continue
        if m.ndim != 3 or idx.max() >= m.shape[0]:
            raise VideoError(f"ground-truth mask {key!r} has shape {m.shape}; the clip uses "
                             f"frame {idx.max()}", hint="Give one (H, W) mask per source frame.")
        rgb = np.repeat((m[idx].astype(np.uint8) * 255)[..., None], 3, axis=3)
        out[key] = resize_and_crop(rgb, spec)[..., 0] > 127
    return out


# --------------------------------------------------------------------------- one clip
@dataclass
class ClipScores:
    """The metrics of one explained clip.

    ``rows``: dicts with ``method``, ``variant``, ``metric``, ``quantity``, ``value``,
    ``higher_is_better``; ``curves``: insertion/deletion curves keyed
    ``"metric|method|variant"``; ``skipped``: metric → what it lacked.
    """

    rows: list[dict[str, Any]]
    curves: dict[str, list[float]]
    skipped: dict[str, str]
    cache_hit: bool = False

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["method", "variant", "metric", "quantity",
                                                "value", "higher_is_better"])


def resolve_metrics(metrics: Iterable[str | Metric] | None) -> list[Metric]:
    """Metric instances from names, ``"name:key=value,..."`` specs or instances."""
    out = []
    for m in DEFAULT_METRICS if metrics is None else metrics:
        if isinstance(m, Metric):
            out.append(m)
            continue
        name, params = parse_spec(m)
        variants = params.pop("variants", None)
        out.append(get_metric(name, variants=variants.split("+") if variants else None,
                              **params))
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ParameterError(f"a metric is listed twice: {names}", hint="List each metric once.")
    return out


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"insertion:steps=16,grid=8"`` → ``("insertion", {"steps": "16", "grid": "8"})``."""
    name, _, rest = spec.partition(":")
    params = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ParameterError(f"cannot read {part!r} in {spec!r}",
                                 hint="Write NAME:key=value,key=value.")
        params[key.strip()] = value.strip()
    if not name.strip():
        raise ParameterError(f"no name in {spec!r}", hint="Write NAME or NAME:key=value.")
    return name.strip(), params


def evidence(model: LoadedModel, explanation: Explanation, x, masks=None, seed: int = 0
             ) -> ClipEvidence:
    """The :class:`ClipEvidence` metrics read, from an explanation and its clip tensor."""
    maps = {name: r.maps() for name, r in explanation.methods.items()}
    return ClipEvidence(
        maps=maps, target=explanation.target, model=model, x=x,
        frames=explanation.frames, masks=masks,
        timings={n: dict(r.timings) for n, r in explanation.methods.items()},
        motion_share={n: dict(r.motion_share) for n, r in explanation.methods.items()},
        method_params={n: {k: v for k, v in r.params.items() if k != "method"}
                       for n, r in explanation.methods.items()},
        seed=seed)


def evaluate_clip(model: LoadedModel, clip: Any, explanation: Explanation,
                  metrics: Iterable[str | Metric] | None = None,
                  masks: dict[str, np.ndarray] | None = None,
                  progress: Callable[[str, int, int], None] | None = None, *,
                  seed: int = 0, cache: Any = DEFAULT_CACHE) -> ClipScores:
    """Score one explanation with metrics (the dashboard's metrics panel).

    Parameters
    ----------
    model
        The model that was explained.
    clip
        The explained clip: a :class:`~xai_core.video.clip.Clip`, a normalised tensor
        (1, 3, T, H, W) or anything :func:`xai_core.engine.prepare_clip` accepts.
    explanation
        What :func:`xai_core.explain` returned for this clip.
    metrics
        Names, ``"name:key=value"`` specs or :class:`Metric` instances; default
        :data:`DEFAULT_METRICS`. Metrics whose needs are missing (no masks ...) are
        listed in ``skipped`` instead of failing.
    masks
        Ground truth on the clip's grid (T, H, W): ``actor``, ``context``, ``segment``.
    progress
        ``progress(metric, done, total)``.
    seed
        Seeds the random-map baselines and tie breaks.
    cache
        The engine's :class:`~xai_core.cache.ResultCache` (default: the shared one), or
        ``None``.
    """
    from .cache import default_cache
    from .engine import prepare_clip

    chosen = resolve_metrics(metrics)
    x, _, _ = prepare_clip(model, clip)
    if tuple(x.shape[2:]) != tuple(explanation.frames.shape[:3]):
        raise ParameterError(f"the clip {tuple(x.shape[2:])} is not the explained one "
                             f"{tuple(explanation.frames.shape[:3])}",
                             hint="Pass the clip the explanation was computed for.")
    masks = _check_masks(masks, tuple(x.shape[2:]))

    def compute() -> tuple[dict, dict]:
        scores = _score(model, explanation, x, masks, chosen, seed, progress)
        return {}, {"rows": scores.rows, "curves": scores.curves, "skipped": scores.skipped}

    if cache is DEFAULT_CACHE:
        cache = default_cache()
    if cache is None:
        _, meta = compute()
        return ClipScores(meta["rows"], meta["curves"], meta["skipped"])
    key = cache.make_key({
        "kind": "metrics", "clip": tensor_hash(x), "weights": model.weights_hash,
        "target": explanation.target, "options": explanation.options.key(),
        "methods": {n: r.params for n, r in explanation.methods.items()},
        "metrics": [m.key() for m in chosen], "seed": seed,
        "masks": {k: tensor_hash_np(v) for k, v in sorted((masks or {}).items())}})
    _, meta, hit = cache.get_or_compute(key, compute)
    return ClipScores(meta["rows"], meta["curves"], meta["skipped"], cache_hit=hit)


def tensor_hash_np(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return f"{a.dtype}{a.shape}:{zlib.crc32(a.tobytes()):08x}"


def _check_masks(masks, shape) -> dict[str, np.ndarray] | None:
    if not masks:
        return None
    out = {}
    for key, m in masks.items():
        m = np.asarray(m, bool)
        want = shape[:1] if key == "segment" else shape
        if m.shape != want:
            raise ParameterError(f"mask {key!r} has shape {m.shape}, the clip is {want}",
                                 hint="Give masks on the model's (T, H, W) grid "
                                      "(see xai_core.evaluate.clip_masks).")
        out[key] = m
    return out


def _score(model, explanation, x, masks, metrics, seed, progress) -> ClipScores:
    ev = evidence(model, explanation, x, masks, seed)
    rows, skipped = [], {}
    for i, metric in enumerate(metrics):
        if progress is not None:
            progress(metric.name, i, len(metrics))
        lacking = metric.missing(ev)
        if lacking:
            skipped[metric.name] = "needs " + ", ".join(lacking)
            continue
        for s in metric.compute(ev):
            rows.append({"method": s.method, "variant": s.variant, "metric": metric.name,
                         "quantity": s.quantity, "value": _finite_or_nan(s.value),
                         "higher_is_better": metric.higher_is_better})
    if progress is not None:
        progress("done", len(metrics), len(metrics))
    curves = {f"{m}|{meth}|{v}": c for (m, meth, v), c in ev.curves.items()}
    return ClipScores(rows, curves, skipped)


def _finite_or_nan(v: float) -> float:
    return float(v) if v is not None and math.isfinite(v) else float("nan")


# --------------------------------------------------------------------------- the run
@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` wrote and computed."""

    out_dir: Path
    table: pd.DataFrame
    summary: pd.DataFrame
    files: dict[str, Path]
    computed: int
    reused: int
    notes: list[str]


def run_evaluation(model: LoadedModel, items: Sequence[EvalItem], methods: Sequence[str],
                   out_dir: str | Path, *, metrics: Iterable[str | Metric] | None = None,
                   options: DecompositionOptions = DEFAULT_OPTIONS,
                   method_params: dict[str, dict[str, Any]] | None = None,
                   target: str = "predicted", limit: int | None = None,
                   restart: bool = False, cache: Any = None, show_progress: bool = True,
                   on_record: Callable[[str], None] | None = None,
                   source: str = "", report: bool = True) -> EvaluationResult:
    """Explain and score every clip × method, resumably, then write table and report.

    Parameters
    ----------
    model, methods, options, method_params
        As for :func:`xai_core.explain`.
    items
        Clips (:func:`folder_items`, :func:`synthetic_items`).
    out_dir
        Output folder (records, manifest, table, report).
    metrics
        Metric names/specs/instances (default :data:`DEFAULT_METRICS`).
    target
        ``"predicted"`` explains the model's top class (as the papers); ``"label"`` the
        true class (needs labels).
    limit
        Evaluate only the first ``limit`` clips.
    restart
        Discard the records of an earlier run in ``out_dir`` instead of resuming.
    cache
        Result cache for the explanations (default ``None``: the per-clip records are
        what makes the run resumable; caching every map would fill the disk).
    on_record
        Called with the clip id after each record is safely written.
    source
        Text describing where the clips come from (for the manifest and report).
    """
    if target not in ("predicted", "label"):
        raise ParameterError(f"target must be 'predicted' or 'label', not {target!r}")
    methods = list(methods)
    if not methods:
        raise ParameterError("no method given", hint="Pass --methods, e.g. dtd gradcam.")
    chosen = resolve_metrics(metrics)
    items = list(items)[: limit if limit is not None else None]
    if limit is not None and limit < 1:
        raise ParameterError("--limit must be at least 1")
    ids = [it.clip_id for it in items]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ParameterError(f"clip names are not unique: {dup[:5]}",
                             hint="Rename the files so every clip has its own name.")
    from .methods.base import get_method

    params = method_params or {}
    method_keys = [get_method(m, **params.get(m, {})).key() for m in methods]
    out = Path(out_dir)
    records_dir = out / "records"
    config = {
        "record_version": RECORD_VERSION, "model": model.name,
        "weights_hash": model.weights_hash, "methods": method_keys,
        "metrics": [m.key() for m in chosen], "options": options.key(), "target": target,
        "source": source,
    }
    _prepare_out(out, records_dir, config, restart)

    done = {p.stem for p in records_dir.glob("*.json")}
    todo = [it for it in items if _record_name(it.clip_id) not in done]
    computed = 0
    bar = _progress_bar(len(items), len(items) - len(todo), show_progress)
    try:
        for it in todo:
            bar.set_postfix_str(it.clip_id[-28:])
            record = _evaluate_item(model, it, methods, params, options, chosen, target, cache)
            _write_json_atomic(records_dir / f"{_record_name(it.clip_id)}.json", record)
            computed += 1
            bar.update(1)
            if on_record is not None:
                on_record(it.clip_id)
    finally:
        bar.close()

    records = [load_record(records_dir / f"{_record_name(i)}.json") for i in ids]
    table = build_table(records, model.name)
    summary = summarise(table)
    files, notes = write_outputs(out, table, summary, records, config, report=report)
    return EvaluationResult(out, table, summary, files, computed, len(items) - len(todo), notes)


def _progress_bar(total: int, initial: int, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="evaluate", unit="clip", disable=not show,
                dynamic_ncols=True)


def _prepare_out(out: Path, records_dir: Path, config: dict, restart: bool) -> None:
    manifest = out / "manifest.json"
    try:
        records_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"cannot create the output folder {out} ({exc.strerror})",
                             hint="Choose a writable --out folder.") from exc
    if manifest.is_file() and not restart:
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        if old != json.loads(json.dumps(config)):
            differs = sorted(k for k in config if (old or {}).get(k) != json.loads(
                json.dumps(config[k])))
            raise ParameterError(
                f"{out} holds results of a different run (differs in: {', '.join(differs)})",
                hint="Use another --out folder, or --restart to discard the old records.")
    if restart:
        for p in records_dir.glob("*.json"):
            p.unlink()
    _write_json_atomic(manifest, config)


def _record_name(clip_id: str) -> str:
    """A safe, unique file stem for a clip id (readable part + short hash)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id)[:80]
    return f"{safe}-{zlib.crc32(clip_id.encode()):08x}"


def clip_seed(clip_id: str) -> int:
    """Seed of a clip's random baselines: stable across runs and resumptions."""
    return zlib.crc32(clip_id.encode()) & 0x7FFFFFFF


def _evaluate_item(model, item: EvalItem, methods, params, options, metrics, target, cache
                   ) -> dict[str, Any]:
    from .video.clip import load_clip

    tic = time.perf_counter()
    clip = load_clip(item.source, model.input, name=item.clip_id)
    masks = clip_masks(item.masks, clip.indices, model.input)
    if target == "label" and item.label is None:
        raise ParameterError(f"clip {item.clip_id} has no label to explain",
                             hint="Use --target predicted, or add NAME.json with a label.")
    label = None if item.label is None else model.class_index(item.label)
    exp = explain(model, clip, methods, target=label if target == "label" else None,
                  options=options, method_params={m: params[m] for m in methods if m in params},
                  cache=cache)
    scores = evaluate_clip(model, clip, exp, metrics, masks, seed=clip_seed(item.clip_id),
                           cache=None)
    names = exp.class_names
    return {
        "record_version": RECORD_VERSION,
        "clip_id": item.clip_id,
        "source": str(item.source) if not isinstance(item.source, np.ndarray) else "generated",
        "label": label,
        "label_name": None if label is None else names[label],
        "target": exp.target, "target_name": exp.target_name,
        "predicted": exp.predicted, "predicted_name": names[exp.predicted],
        "target_probability": float(exp.probabilities[exp.target]),
        "correct": None if label is None else bool(exp.predicted == label),
        "meta": {k: _jsonable(v) for k, v in item.meta.items()},
        "rows": [[r["method"], r["variant"], r["metric"], r["quantity"], _json_num(r["value"])]
                 for r in scores.rows],
        "curves": scores.curves,
        "skipped": scores.skipped,
        "seconds": time.perf_counter() - tic,
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer, np.bool_)):
        return v.item()
    if isinstance(v, np.floating):
        return _json_num(float(v))
    return v


def _json_num(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a crash leaves either the old file or the new one, never half."""
    text = json.dumps(data, indent=1, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes files private; results are for sharing
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def load_record(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParameterError(f"record {path.name} is unreadable ({exc})",
                             hint="Delete it; the clip is evaluated again on the next run.") \
            from exc


# --------------------------------------------------------------------------- tables
TABLE_COLUMNS = ["clip_id", "model", "label", "label_name", "target", "target_name",
                 "predicted", "predicted_name", "correct", "method", "variant", "metric",
                 "quantity", "value"]


def build_table(records: Iterable[dict[str, Any]], model_name: str = "") -> pd.DataFrame:
    """The tidy table: one row per clip × method × variant × quantity (records in order)."""
    rows = []
    for rec in records:
        base = {"clip_id": rec["clip_id"], "model": model_name, "label": rec["label"],
                "label_name": rec["label_name"], "target": rec["target"],
                "target_name": rec["target_name"], "predicted": rec["predicted"],
                "predicted_name": rec["predicted_name"], "correct": rec["correct"],
                **{f"meta_{k}": v for k, v in rec.get("meta", {}).items()}}
        for method, variant, metric, quantity, value in rec["rows"]:
            rows.append({**base, "method": method, "variant": variant, "metric": metric,
                         "quantity": quantity, "value": np.nan if value is None else value})
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    extra = [c for c in table.columns if c not in TABLE_COLUMNS]
    return table[TABLE_COLUMNS[:9] + extra + TABLE_COLUMNS[9:]]


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count (finite values) per method × variant × metric × quantity."""
    cols = ["method", "variant", "metric", "quantity"]
    if table.empty:
        return pd.DataFrame(columns=[*cols, "mean", "std", "n", "higher_is_better"])
    g = table.groupby(cols, sort=False, dropna=False)["value"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    directions = {m: _direction(m) for m in out["metric"].unique()}
    out["higher_is_better"] = out["metric"].map(directions)
    return out


def _direction(metric: str) -> Any:
    try:
        return get_metric(metric).higher_is_better
    except ParameterError:
        return None


def write_outputs(out: Path, table: pd.DataFrame, summary: pd.DataFrame,
                  records: list[dict[str, Any]], config: dict[str, Any], *, report: bool = True
                  ) -> tuple[dict[str, Path], list[str]]:
    """results.csv (+ .parquet), summary.csv, report.md, report.html (+ PNGs when possible)."""
    from .metrics import report as evaluation_report

    files: dict[str, Path] = {}
    notes: list[str] = []
    files["results.csv"] = out / "results.csv"
    _write_text_atomic(files["results.csv"], table.to_csv(index=False))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        notes.append("results.parquet not written: pyarrow is not installed")
    else:
        files["results.parquet"] = out / "results.parquet"
        table.to_parquet(files["results.parquet"], index=False)
    files["summary.csv"] = out / "summary.csv"
    _write_text_atomic(files["summary.csv"], summary.to_csv(index=False))
    if report:
        written, more = evaluation_report.write_report(out, table, summary, records, config)
        files.update(written)
        notes.extend(more)
    return files, notes


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


__all__ = ["DEFAULT_METRICS", "ClipScores", "EvalItem", "EvaluationResult",
           "build_table", "clip_masks", "evaluate_clip", "folder_items", "run_evaluation",
           "summarise", "synthetic_items"]
