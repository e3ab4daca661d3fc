"""What both engines share around the per-clip work: planning a run and finishing it.

:func:`plan_run` checks the request (methods, metrics, unique names, labels the model
knows), opens the record folder, writes ``settings.json`` (what the dashboard needs to
reopen a clip with the run's settings) and lists the clips still to do; :func:`finish_run`
rebuilds the table from the records and writes shards, tables, failures and the report.
The in-process engine (:mod:`.run`) and the Ray engine (:mod:`.ray_engine`) differ only in
how they get from one to the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import write_json, write_text
from ..decompose import DecompositionOptions
from ..errors import ParameterError
from ..methods.base import get_method
from ..metrics import Metric
from ..models.registry import LoadedModel
from .inputs import EvalItem
from .modelref import ModelRef
from .records import RECORD_VERSION, RecordFolder
from .scoring import resolve_metrics
from .shards import complete_shards
from .tables import build_table, summarise, write_outputs

__all__ = ["EvaluationResult", "RunPlan", "RunSettings", "finish_run", "plan_run"]

#: Version of ``OUT/settings.json`` (read by :func:`~xai_core.evaluation.open_run`).
SETTINGS_VERSION = 1


@dataclass(frozen=True)
class RunSettings:
    """How every clip of a run is explained and scored (picklable: it travels to workers).

    Attributes
    ----------
    methods, method_params, options
        As for :func:`xai_core.explain`.
    metrics
        The resolved metrics.
    target
        ``"predicted"`` or ``"label"``.
    """

    methods: tuple[str, ...]
    method_params: dict[str, dict[str, Any]]
    options: DecompositionOptions
    metrics: tuple[Metric, ...]
    target: str


@dataclass
class EvaluationResult:
    """What a run wrote and computed.

    Attributes
    ----------
    out_dir
        The output folder.
    table, summary
        The tidy table and its summary (:func:`~xai_core.evaluation.build_table`,
        :func:`~xai_core.evaluation.summarise`), of the clips that did not fail.
    files
        Name → path of every file written besides the records.
    computed, reused
        Clips evaluated by this call (failed ones included), and clips whose record an
        earlier run left.
    notes
        What could not be written, and why.
    failed
        Clips whose last attempt failed (listed in ``failed.csv``, retried by a rerun).
    """

    out_dir: Path
    table: pd.DataFrame
    summary: pd.DataFrame
    files: dict[str, Path]
    computed: int
    reused: int
    notes: list[str]
    failed: int = 0


@dataclass
class RunPlan:
    """A checked run: its folder, settings and the clips still to do.

    Attributes
    ----------
    out
        The output folder.
    items
        Every clip of the run, in order.
    todo
        The clips without a finished record (clips that failed earlier included).
    folder
        The record folder.
    config
        The run's configuration (``manifest.json``).
    settings
        How each clip is explained and scored.
    """

    out: Path
    items: list[EvalItem]
    todo: list[EvalItem]
    folder: RecordFolder
    config: dict[str, Any]
    settings: RunSettings


def plan_run(model: LoadedModel, items: Sequence[EvalItem], methods: Sequence[str],
             out_dir: str | Path, *, metrics: Iterable[str | Metric] | None,
             options: DecompositionOptions, method_params: dict[str, dict[str, Any]] | None,
             target: str, limit: int | None, restart: bool, source: str,
             model_ref: ModelRef | None = None, engine: str = "in-process") -> RunPlan:
    """Check a run's request, open its record folder and list the clips still to do.

    Parameters
    ----------
    model
        The model (its name, weights hash and classes; not run here).
    items, methods, out_dir, metrics, options, method_params, target, limit, restart, source
        As for :func:`~xai_core.evaluation.run_evaluation`.
    model_ref
        How to load the model again (written to ``settings.json``); ``None`` for a model
        that cannot be reloaded by name (the dashboard then needs it given).
    engine
        ``"in-process"`` or ``"ray"`` (written to ``settings.json``; not part of the
        configuration: either engine may resume the other's run).

    Returns
    -------
    RunPlan
        The checked run.

    Raises
    ------
    ParameterError
        On no methods, an unknown method or metric, repeated clip names, a label the
        model does not know, or a missing label with ``target="label"``.
    """
    if target not in ("predicted", "label"):
        raise ParameterError(f"target must be 'predicted' or 'label', not {target!r}")
    methods = list(methods)
    if not methods:
        raise ParameterError("no method given", hint="Pass --methods, e.g. dtd gradcam.")
    chosen = resolve_metrics(metrics)
    if limit is not None and limit < 1:
        raise ParameterError("--limit must be at least 1")
    items = list(items)[: limit if limit is not None else None]
    ids = [it.clip_id for it in items]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ParameterError(f"clip names are not unique: {dup[:5]}",
                             hint="Rename the files so every clip has its own name.")
    _check_labels(model, items, target)
    params = {m: dict(p) for m, p in (method_params or {}).items() if m in methods}
    method_keys = [get_method(m, **params.get(m, {})).key() for m in methods]
    out = Path(out_dir)
    config = {
        "record_version": RECORD_VERSION, "model": model.name,
        "weights_hash": model.weights_hash, "methods": method_keys,
        "metrics": [m.key() for m in chosen], "options": options.key(), "target": target,
        "source": source,
    }
    folder = RecordFolder(out, config, restart)
    settings = RunSettings(tuple(methods), params, options, tuple(chosen), target)
    write_json(out / "settings.json", {
        "settings_version": SETTINGS_VERSION, "engine": engine,
        "model": model_ref.describe() if model_ref is not None else None,
        "methods": methods, "method_params": params,
        "options": dataclasses.asdict(options), "metrics": config["metrics"],
        "target": target, "source": source, "clips": len(items), "clip_ids": ids,
    }, durable=True)
    todo = [it for it in items if not folder.has(it.clip_id)]
    return RunPlan(out, items, todo, folder, config, settings)


def _check_labels(model: LoadedModel, items: list[EvalItem], target: str) -> None:
    """Every label names one of the model's classes; with ``target="label"`` every clip
    has one. Checked before anything runs, so a long run does not stop at clip 9,000."""
    unknown = []
    for it in items:
        if it.label is None:
            if target == "label":
                raise ParameterError(f"clip {it.clip_id} has no label to explain",
                                     hint="Use --target predicted, or add NAME.json with a "
                                          "label.")
            continue
        try:
            model.class_index(it.label)
        except ParameterError:
            unknown.append(f"{it.label!r} ({it.clip_id})")
    if unknown:
        raise ParameterError(
            f"{len(unknown)} clip(s) have labels that model {model.name} does not know: "
            + ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else ""),
            hint=f"Use class names of the model ({', '.join(model.class_names[:6])}, ...) or "
                 f"indices 0..{model.num_classes - 1}; an own checkpoint names its classes "
                 "with --classes FILE.")


def finish_run(plan: RunPlan, model_name: str, computed: int, *, report: bool = True
               ) -> EvaluationResult:
    """Rebuild the table from the records and write shards, tables, failures and report.

    Parameters
    ----------
    plan
        The run.
    model_name
        The table's ``model`` column.
    computed
        Clips evaluated by this call.
    report
        Also write ``report.md`` and ``report.html``.

    Returns
    -------
    EvaluationResult
        Table, summary, files, counts and notes.
    """
    folder, out = plan.folder, plan.out
    records = [folder.read(it.clip_id) for it in plan.items
               if folder.has(it.clip_id) or folder.failed(it.clip_id)]
    ok = [r for r in records if "error" not in r]
    failed = [r for r in records if "error" in r]
    table = build_table(ok, model_name)
    summary = summarise(table)
    complete_shards(out, ok, model_name)
    files, notes = write_outputs(out, table, summary, ok, plan.config, report=report)
    failures = out / "failed.csv"
    if failed:
        frame = pd.DataFrame([{k: r.get(k) for k in ("clip_id", "source", "label", "error")}
                              for r in failed])
        write_text(failures, frame.to_csv(index=False))
        files["failed.csv"] = failures
        notes.append(f"{len(failed)} clip(s) failed (listed in {failures}); a rerun tries them "
                     "again")
    else:
        failures.unlink(missing_ok=True)
    missing = len(plan.items) - len(records)
    if missing:
        notes.append(f"{missing} clip(s) not evaluated yet; rerun the same command to continue")
    reused = len(plan.items) - len(plan.todo)
    return EvaluationResult(out, table, summary, files, computed, reused, notes, len(failed))
