"""The in-process evaluation run, and the one function that evaluates a clip.

:func:`evaluate_item` explains and scores one clip and returns its record (or an error
record when the clip fails): the in-process engine (:func:`run_evaluation`) and every Ray
worker (:mod:`.ray_engine`) call it, so both engines compute the same numbers. Each
finished clip is written as its own record (:mod:`.records`); a rerun skips the clips that
have one, so a run killed after k clips continues where it stopped and the table — always
rebuilt from the records (:mod:`.tables`) — has no duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..decompose import DEFAULT_OPTIONS, DecompositionOptions
from ..engine import explain
from ..errors import ParameterError
from ..metrics import Metric
from ..models.registry import LoadedModel
from ..video.clip import load_clip
from .inputs import EvalItem, clip_masks
from .modelref import ModelRef
from .plan import EvaluationResult, RunSettings, finish_run, plan_run
from .records import clip_seed, make_error_record, make_record
from .scoring import evaluate_clip

__all__ = ["EvaluationResult", "evaluate_item", "run_evaluation"]


def run_evaluation(model: LoadedModel, items: Sequence[EvalItem], methods: Sequence[str],
                   out_dir: str | Path, *, metrics: Iterable[str | Metric] | None = None,
                   options: DecompositionOptions = DEFAULT_OPTIONS,
                   method_params: dict[str, dict[str, Any]] | None = None,
                   target: str = "predicted", limit: int | None = None,
                   restart: bool = False, cache: Any = None, show_progress: bool = True,
                   on_record: Callable[[str], None] | None = None,
                   source: str = "", report: bool = True,
                   model_ref: ModelRef | None = None) -> EvaluationResult:
    """Explain and score every clip × method, resumably, then write table and report.

    Parameters
    ----------
    model, methods, options, method_params
        As for :func:`xai_core.explain`.
    items
        Clips (:func:`~xai_core.evaluation.folder_items`,
        :func:`~xai_core.evaluation.csv_items`, :func:`~xai_core.evaluation.synthetic_items`).
    out_dir
        Output folder (records, manifest, settings, shards, table, report).
    metrics
        Metric names/specs/instances (default :data:`~xai_core.evaluation.DEFAULT_METRICS`).
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
    show_progress
        Show a progress bar over the clips.
    on_record
        Called with the clip id after each record is safely written.
    source
        Text describing where the clips come from (for the manifest and report).
    report
        Also write ``report.md`` and ``report.html``.
    model_ref
        How to load the model again, for ``settings.json`` (the dashboard reopens clips
        of the run with it).

    Returns
    -------
    EvaluationResult
        The table, its summary, the files written and how many clips were computed and
        failed. A clip that fails gets an error record and the run goes on.
    """
    plan = plan_run(model, items, methods, out_dir, metrics=metrics, options=options,
                    method_params=method_params, target=target, limit=limit, restart=restart,
                    source=source, model_ref=model_ref, engine="in-process")
    computed = failed = 0
    bar = tqdm(total=len(plan.items), initial=len(plan.items) - len(plan.todo),
               desc="evaluate", unit="clip", disable=not show_progress, dynamic_ncols=True)
    try:
        for it in plan.todo:
            bar.set_postfix_str(it.clip_id[-28:] + (f" ({failed} failed)" if failed else ""))
            record = evaluate_item(model, it, plan.settings, cache)
            plan.folder.write(it.clip_id, record)
            computed += 1
            failed += "error" in record
            bar.update(1)
            if on_record is not None:
                on_record(it.clip_id)
    finally:
        bar.close()
    return finish_run(plan, model.name, computed, report=report)


def evaluate_item(model: LoadedModel, item: EvalItem, settings: RunSettings,
                  cache: Any = None) -> dict[str, Any]:
    """Explain and score one clip: its record, or an error record when it fails.

    The one code path of both engines. Everything random is seeded by the clip's name
    (:func:`~xai_core.evaluation.clip_seed`), so the same clip gives the same numbers
    in any process, in any order.

    Parameters
    ----------
    model
        The model.
    item
        The clip (a light item, :meth:`EvalItem.light`, is rebuilt first).
    settings
        Methods, parameters, options, metrics and target of the run.
    cache
        Result cache for the explanation, or ``None``.

    Returns
    -------
    dict
        :func:`~xai_core.evaluation.records.make_record`, or
        :func:`~xai_core.evaluation.records.make_error_record` when anything about this
        clip fails (unreadable video, a method's error, out of memory ...).
    """
    tic = time.perf_counter()
    try:
        item = item.rebuilt()
        clip = load_clip(item.source, model.input, start=item.start, stride=item.stride,
                         name=item.clip_id)
        masks = clip_masks(item.masks, clip.indices, model.input)
        if settings.target == "label" and item.label is None:
            raise ParameterError(f"clip {item.clip_id} has no label to explain",
                                 hint="Use --target predicted, or add NAME.json with a label.")
        label = None if item.label is None else model.class_index(item.label)
        params = settings.method_params
        exp = explain(model, clip, list(settings.methods),
                      target=label if settings.target == "label" else None,
                      options=settings.options,
                      method_params={m: params[m] for m in settings.methods if m in params},
                      cache=cache)
        scores = evaluate_clip(model, clip, exp, list(settings.metrics), masks,
                               seed=clip_seed(item.clip_id), cache=None)
    except Exception as exc:  # the clip fails, the run goes on (KeyboardInterrupt stops it)
        return make_error_record(item, exc, time.perf_counter() - tic, model.class_names)
    return make_record(item, label, exp, scores, time.perf_counter() - tic,
                       indices=list(clip.indices))
