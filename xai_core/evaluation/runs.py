"""Open a run folder again — finished, still going, or killed half-way — for the dashboard.

:func:`open_run` reads ``manifest.json`` (the configuration), ``settings.json`` (how to
load the model and explain a clip again) and the per-clip records, and returns an
:class:`EvaluationRun`: the tidy table, one row per clip (:func:`clip_table`), one row per
class (:func:`class_table`), and what is needed to reopen any clip in the four views with
the run's settings (:meth:`EvaluationRun.item`, :meth:`EvaluationRun.load_clip`,
:meth:`EvaluationRun.explain_kwargs`, :meth:`EvaluationRun.load_model`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..decompose import DecompositionOptions
from ..errors import ParameterError, VideoError
from ..models.registry import LoadedModel
from ..video.clip import Clip, load_clip
from .inputs import EvalItem, clip_masks, item_from_origin
from .modelref import ModelRef
from .records import load_record
from .tables import build_table

__all__ = ["EvaluationRun", "class_table", "clip_table", "open_run"]


@dataclass
class EvaluationRun:
    """A run folder as the dashboard's dataset view needs it.

    Attributes
    ----------
    folder
        The run's output folder.
    config
        Its configuration (``manifest.json``): model, weights hash, method keys (name and
        parameters), metric keys, decomposition options, target, source.
    settings
        ``settings.json``: ``engine``, ``model`` (:meth:`ModelRef.describe`, ``None``
        when the run was given a model from Python without a reference), ``methods``,
        ``method_params``, ``options``, ``metrics``, ``target``, ``source``, ``clips``
        (how many the run has), ``clip_ids``; empty for a run written before it existed.
    records
        Clip id → its record (an error record when its last attempt failed), in run order.
    table
        The tidy table of the clips that did not fail
        (:func:`~xai_core.evaluation.build_table`).
    clips
        One row per clip (:func:`clip_table`), failed clips included.
    """

    folder: Path
    config: dict[str, Any]
    settings: dict[str, Any]
    records: dict[str, dict[str, Any]]
    table: pd.DataFrame
    clips: pd.DataFrame

    @property
    def total(self) -> int:
        """Clips the run has (done or not)."""
        return int(self.settings.get("clips", len(self.records)))

    @property
    def done(self) -> int:
        """Clips with a finished record."""
        return sum("error" not in r for r in self.records.values())

    @property
    def failed(self) -> list[str]:
        """Clips whose last attempt failed."""
        return [c for c, r in self.records.items() if "error" in r]

    @property
    def complete(self) -> bool:
        """Whether every clip has a finished record."""
        return self.done >= self.total

    @property
    def methods(self) -> list[str]:
        """The explained methods, in run order."""
        return list(self.settings.get("methods")
                    or [m.get("method") for m in self.config.get("methods", [])])

    def model_ref(self) -> ModelRef:
        """How to load the run's model again.

        Raises
        ------
        ParameterError
            When the run does not say (written from Python without a ``model_ref``).
        """
        d = dict(self.settings.get("model") or {})
        if not d:
            raise ParameterError(f"the run in {self.folder} does not say how to load its model "
                                 f"({self.config.get('model')})",
                                 hint="Load the model yourself and pass it to the view.")
        return ModelRef.from_description(d)

    def load_model(self, device: str | None = None) -> LoadedModel:
        """The run's model (:meth:`model_ref`), checked against the run's weights hash."""
        model = self.model_ref().load(device=device)
        if model.weights_hash != self.config.get("weights_hash"):
            raise ParameterError(f"the model file of {model.name} changed since the run",
                                 hint="Its weights hash differs from the run's manifest.")
        return model

    def record(self, clip_id: str) -> dict[str, Any]:
        """A clip's record (an error record when it failed)."""
        try:
            return self.records[clip_id]
        except KeyError:
            raise ParameterError(f"no clip {clip_id!r} in the run in {self.folder}",
                                 hint="Pick a clip from the run's table.") from None

    def item(self, clip_id: str) -> EvalItem:
        """The clip as the run evaluated it: source, masks, label, start and stride."""
        rec = self.record(clip_id)
        origin = rec.get("origin")
        if not origin:
            raise VideoError(f"clip {clip_id!r} was given as frames in memory and cannot be "
                             "reopened", hint="Evaluate files or synthetic clips to reopen them.")
        label = rec.get("label")
        return item_from_origin(clip_id, origin, label=label,
                                start=int(rec.get("start", 0)), stride=int(rec.get("stride", 1)))

    def load_clip(self, clip_id: str, model: LoadedModel) -> Clip:
        """The clip on the model's input grid, with the run's start and stride."""
        it = self.item(clip_id)
        return load_clip(it.source, model.input, start=it.start, stride=it.stride, name=clip_id)

    def masks(self, clip_id: str, clip: Clip, model: LoadedModel) -> dict[str, Any] | None:
        """The clip's ground truth on its (T, H, W) grid (for the metrics panel), or None."""
        return clip_masks(self.item(clip_id).masks, clip.indices, model.input)

    def explain_kwargs(self, clip_id: str | None = None) -> dict[str, Any]:
        """Keyword arguments of :func:`xai_core.explain` that reproduce the run's settings.

        Parameters
        ----------
        clip_id
            With ``target="label"`` runs: the clip whose label is the target.

        Returns
        -------
        dict
            ``methods``, ``method_params``, ``options`` (a ``DecompositionOptions``) and
            ``target`` (the class index, or ``None`` for the predicted class).
        """
        s = self.settings
        if s:
            params = {m: dict(p) for m, p in s.get("method_params", {}).items()}
            options = DecompositionOptions(**s.get("options", {}))
        else:  # an older run: the manifest's validated keys
            params = {m["method"]: {k: v for k, v in m.items() if k != "method"}
                      for m in self.config.get("methods", [])}
            options = DecompositionOptions(**self.config.get("options", {}))
        target = None
        if self.config.get("target") == "label" and clip_id is not None:
            target = self.record(clip_id).get("label")
        return {"methods": self.methods, "method_params": params, "options": options,
                "target": target}


def open_run(folder: str | Path) -> EvaluationRun:
    """Open an evaluation folder written by ``python -m xai_core evaluate`` (either engine).

    Parameters
    ----------
    folder
        The run's ``--out`` folder; a run still going or killed half-way opens with the
        clips done so far.

    Returns
    -------
    EvaluationRun
        Configuration, settings, records, the tidy table and the per-clip table.

    Raises
    ------
    ParameterError
        When the folder holds no evaluation run.
    """
    root = Path(folder)
    try:
        config = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParameterError(f"{root} holds no evaluation run (no readable manifest.json)",
                             hint="Open the --out folder of `python -m xai_core evaluate`.") \
            from exc
    try:
        settings = json.loads((root / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        settings = {}
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "records").glob("*.json")):
        rec = load_record(path)
        cid = rec.get("clip_id")
        if cid is not None and (cid not in found or "error" in found[cid]):
            found[cid] = rec
    order = [c for c in settings.get("clip_ids", []) if c in found]
    order += sorted(set(found) - set(order))
    records = {c: found[c] for c in order}
    table = build_table([r for r in records.values() if "error" not in r],
                        str(config.get("model", "")))
    return EvaluationRun(root, config, settings, records, table, clip_table(records, table))


def clip_table(records: dict[str, dict[str, Any]], table: pd.DataFrame) -> pd.DataFrame:
    """One row per clip: what the dataset view lists, sorts and filters.

    Parameters
    ----------
    records
        Clip id → record (:attr:`EvaluationRun.records`).
    table
        The tidy table of those records.

    Returns
    -------
    pandas.DataFrame
        ``clip_id``, ``label``, ``label_name``, ``predicted``, ``predicted_name``,
        ``correct``, ``target_name``, ``target_probability``, ``error``, ``seconds``,
        ``source``, ``start``, ``stride``, ``meta_*``, and per method
        ``motion_share:<method>`` (discriminative) and ``selective_share:<method>``
        when the run scored ``motion_share``.
    """
    keys = ("label", "label_name", "predicted", "predicted_name", "correct", "target_name",
            "target_probability", "error", "seconds", "source", "start", "stride")
    rows = [{"clip_id": c, **{k: r.get(k) for k in keys},
             **{f"meta_{k}": v for k, v in (r.get("meta") or {}).items()}}
            for c, r in records.items()]
    clips = pd.DataFrame(rows, columns=None if rows else ["clip_id", *keys])
    if table.empty or "motion_share" not in set(table["metric"]):
        return clips
    share = table[table["metric"] == "motion_share"]
    names = {"motion_share_discriminative": "motion_share",
             "motion_share_selective": "selective_share"}
    share = share[share["quantity"].isin(names)]
    wide = share.pivot_table(index="clip_id", columns=["quantity", "method"], values="value",
                             aggfunc="first")
    wide.columns = [f"{names[q]}:{m}" for q, m in wide.columns]
    return clips.merge(wide.reset_index(), on="clip_id", how="left")


def class_table(clips: pd.DataFrame) -> pd.DataFrame:
    """One row per true class: clips, accuracy and mean motion shares.

    What the "motion share per class" and "accuracy against motion share" plots show.

    Parameters
    ----------
    clips
        :func:`clip_table` (:attr:`EvaluationRun.clips`).

    Returns
    -------
    pandas.DataFrame
        ``label_name``, ``clips``, ``failed``, ``accuracy`` and the mean of every
        ``motion_share:<method>`` / ``selective_share:<method>`` column; empty when no
        clip has a label.
    """
    if clips.empty or clips["label_name"].isna().all():
        return pd.DataFrame(columns=["label_name", "clips", "failed", "accuracy"])
    c = clips[clips["label_name"].notna()].copy()
    c["failed"] = c["error"].notna()
    c["correct"] = c["correct"].astype("float")
    shares = [k for k in c.columns if k.startswith(("motion_share:", "selective_share:"))]
    g = c.groupby("label_name", sort=True)
    out = g.agg(clips=("clip_id", "count"), failed=("failed", "sum"),
                accuracy=("correct", "mean"))
    if shares:
        out = out.join(g[shares].mean())
    return out.reset_index()
