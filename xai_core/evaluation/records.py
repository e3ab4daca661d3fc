"""The records of an evaluation run: what makes it resumable.

Each finished clip is one JSON record in ``OUT/records/``, written atomically and durably
(:func:`xai_core.atomic.write_json`); a clip with a record is done. A clip that failed
gets an *error record* (``NAME-CRC.error.json``: the error, no scores) instead, and is
tried again by the next run. ``OUT/manifest.json`` holds the run's configuration, so
records of different configurations never mix in one folder. Both engines (in-process and
Ray) write the same records through :class:`RecordFolder`.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import traceback
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_json
from ..errors import ParameterError
from ..results import Explanation
from .inputs import EvalItem
from .scoring import ClipScores

__all__ = ["RECORD_VERSION", "RecordFolder", "clip_seed", "load_record", "make_error_record",
           "make_record"]

#: Format of the per-clip records (part of the run's configuration). 2: start, stride,
#: frame indices and origin of the clip; error records.
RECORD_VERSION = 2


class RecordFolder:
    """``OUT/records/`` of one run, checked against ``OUT/manifest.json``.

    Parameters
    ----------
    out
        The run's output folder (created when missing).
    config
        The run's configuration, JSON-able; written as the manifest.
    restart
        Discard the records (and Parquet shards) of an earlier run instead of refusing
        another configuration.

    Raises
    ------
    ParameterError
        When the folder cannot be created, or holds records of another configuration.
    """

    def __init__(self, out: Path, config: dict[str, Any], restart: bool = False) -> None:
        self.out = out
        self.path = out / "records"
        manifest = out / "manifest.json"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
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
            for p in self.path.glob("*.json"):
                p.unlink()
            shutil.rmtree(out / "shards", ignore_errors=True)
        write_json(manifest, config, durable=True)

    @classmethod
    def existing(cls, out: Path) -> RecordFolder:
        """The record folder of a run opened elsewhere (a Ray worker): no manifest check."""
        folder = cls.__new__(cls)
        folder.out, folder.path = out, out / "records"
        return folder

    def file(self, clip_id: str, error: bool = False) -> Path:
        """The record file of a clip: a safe, unique stem (readable part + short hash)."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id)[:80]
        suffix = ".error.json" if error else ".json"
        return self.path / f"{safe}-{zlib.crc32(clip_id.encode()):08x}{suffix}"

    def has(self, clip_id: str) -> bool:
        """Whether the clip has a finished record (an error record does not count)."""
        return self.file(clip_id).is_file()

    def failed(self, clip_id: str) -> bool:
        """Whether the clip's last attempt failed (it has an error record, no record)."""
        return not self.has(clip_id) and self.file(clip_id, error=True).is_file()

    def write(self, clip_id: str, record: dict[str, Any]) -> None:
        """Put a clip's record (or error record) in place, atomically and durably.

        A record replaces an earlier error record of the clip.
        """
        error = "error" in record
        write_json(self.file(clip_id, error), record, durable=True)
        if not error:
            self.file(clip_id, error=True).unlink(missing_ok=True)

    def read(self, clip_id: str) -> dict[str, Any]:
        """A clip's record, or its error record when it has only that (:func:`load_record`)."""
        path = self.file(clip_id)
        return load_record(path if path.is_file() else self.file(clip_id, error=True))


def clip_seed(clip_id: str) -> int:
    """Seed of a clip's random baselines: stable across runs and resumptions.

    Parameters
    ----------
    clip_id
        The clip's name in the run.

    Returns
    -------
    int
        A non-negative 31-bit seed.
    """
    return zlib.crc32(clip_id.encode()) & 0x7FFFFFFF


def _where(item: EvalItem) -> dict[str, Any]:
    """The fields that say where a clip came from and which frames were used."""
    return {
        "record_version": RECORD_VERSION,
        "clip_id": item.clip_id,
        "source": str(item.source) if not isinstance(item.source, np.ndarray) else "generated",
        "origin": item.origin,
        "start": item.start, "stride": item.stride,
    }


def make_record(item: EvalItem, label: int | None, explanation: Explanation,
                scores: ClipScores, seconds: float, indices: list[int] | None = None
                ) -> dict[str, Any]:
    """The JSON-able record of one explained and scored clip.

    Parameters
    ----------
    item
        The clip.
    label
        Its true class index, when known.
    explanation
        Its explanation.
    scores
        Its scores (:func:`~xai_core.evaluation.evaluate_clip`).
    seconds
        Time spent on it.
    indices
        The source frame of every clip frame (``Clip.indices``).

    Returns
    -------
    dict
        Where the clip came from (``source``, ``origin``, ``start``, ``stride``,
        ``indices``), prediction, label, meta, score rows ``[method, variant, metric,
        quantity, value]`` (non-finite values as ``None``), curves and skipped metrics.
    """
    exp = explanation
    names = exp.class_names
    return {
        **_where(item),
        "indices": None if indices is None else [int(i) for i in indices],
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
        "seconds": seconds,
    }


def make_error_record(item: EvalItem, exc: BaseException, seconds: float,
                      class_names: list[str] | None = None) -> dict[str, Any]:
    """The record of a clip that failed: the error in one line, and its traceback.

    Parameters
    ----------
    item
        The clip.
    exc
        What went wrong.
    seconds
        Time spent before it failed.
    class_names
        The model's classes, to name the clip's label (the per-class tables count
        failed clips too).

    Returns
    -------
    dict
        ``error`` (one line: the user-facing message of an
        :class:`~xai_core.errors.XaiError`, else ``Type: message``), ``traceback``, where
        the clip came from, its label and meta; no scores.
    """
    message = exc.user_message() if hasattr(exc, "user_message") else str(exc)
    return {
        **_where(item),
        "label": item.label if isinstance(item.label, (int, str)) else None,
        "label_name": _label_name(item.label, class_names),
        "meta": {k: _jsonable(v) for k, v in item.meta.items()},
        "error": f"{type(exc).__name__}: {message}".replace("\n", " "),
        "traceback": "".join(traceback.format_exception(exc))[-4000:],
        "seconds": seconds,
    }


def _label_name(label: Any, names: list[str] | None) -> str | None:
    """The class name of a label (index or name), when it can be told."""
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        return label
    if names is not None and label is not None and 0 <= int(label) < len(names):
        return names[int(label)]
    return None


def _jsonable(v: Any) -> Any:
    """NumPy scalars as Python ones (non-finite floats as ``None``)."""
    if isinstance(v, (np.integer, np.bool_)):
        return v.item()
    if isinstance(v, np.floating):
        return _json_num(float(v))
    return v


def _json_num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def load_record(path: Path) -> dict[str, Any]:
    """One clip's record, as :func:`~xai_core.evaluation.run_evaluation` wrote it.

    Parameters
    ----------
    path
        The record file (``OUT/records/NAME-CRC.json``).

    Returns
    -------
    dict
        The record.

    Raises
    ------
    ParameterError
        When the file cannot be read or parsed (deleting it re-evaluates the clip).
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParameterError(f"record {path.name} is unreadable ({exc})",
                             hint="Delete it; the clip is evaluated again on the next run.") \
            from exc
