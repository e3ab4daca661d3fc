"""Evaluate explanations: one clip for the dashboard, or datasets of clips, resumably.

* :mod:`.inputs` — the clips: :class:`EvalItem`, generated from the synthetic world with
  their masks (:func:`synthetic_items`); :func:`clip_masks` puts masks on a clip's grid.
* :mod:`.datasets` — clips on disk: a folder (videos or frame folders with optional ground
  truth beside them, or one folder per class as UCF-101, :func:`folder_items`) or a CSV
  list of ``path,label`` rows (:func:`csv_items`).
* :mod:`.scoring` — :func:`evaluate_clip` scores one :class:`~xai_core.results.Explanation`
  with the metrics of :mod:`xai_core.metrics` (what the dashboard's metrics panel calls;
  cached in the engine's result cache).
* :mod:`.run` — :func:`run_evaluation` explains every clip with every method and scores
  it, in this process; :func:`evaluate_item` is the one function that evaluates a clip
  (both engines call it). It is **resumable**: each finished clip is written as its own
  JSON record, atomically, into ``OUT/records/``; a rerun skips the clips that have a
  record, so a run killed after k clips continues where it stopped and the table — always
  rebuilt from the records — has no duplicates. A manifest refuses to mix records of
  different configurations in one folder. A clip that fails gets an error record and
  the run goes on.
* :mod:`.ray_engine` — :func:`run_evaluation_ray`: the same run on a pool of Ray actors
  (a local Ray or a cluster), one model per actor; :class:`ModelRef` (:mod:`.modelref`)
  is the picklable model the actors load.
* :mod:`.plan` — what both engines share: checking and planning a run, finishing it.
* :mod:`.records` — one JSON record per finished clip and the run's manifest;
  :mod:`.shards` — the tidy table as Parquet shards written while the run goes.
* :mod:`.runs` — :func:`open_run`: a run folder (finished or partial) opened again for
  the dashboard's dataset view, with everything needed to reopen a clip.
* :mod:`.tables` — the results as a tidy table (``results.csv``, and ``results.parquet``
  when pyarrow is installed: one row per clip × method × map variant × quantity), a
  summary of mean ± std (``summary.csv``) and a report (``report.html`` with Plotly
  figures, ``report.md``) laid out like Tables 1–4 of Hiley et al. 2020 and Table 2 of
  Li et al. 2021.
"""

from .datasets import csv_items, folder_items, items_from_path
from .inputs import SYNTHETIC_SEED_BASE, EvalItem, clip_masks, item_from_origin, synthetic_items
from .modelref import ModelRef
from .plan import EvaluationResult, RunSettings
from .ray_engine import run_evaluation_ray
from .records import RECORD_VERSION, clip_seed, load_record
from .run import evaluate_item, run_evaluation
from .runs import EvaluationRun, class_table, clip_table, open_run
from .scoring import DEFAULT_METRICS, ClipScores, evaluate_clip, evidence, resolve_metrics
from .shards import read_shards
from .tables import TABLE_COLUMNS, build_table, summarise, write_outputs

__all__ = [
    "DEFAULT_METRICS",
    "RECORD_VERSION",
    "SYNTHETIC_SEED_BASE",
    "TABLE_COLUMNS",
    "ClipScores",
    "EvalItem",
    "EvaluationResult",
    "EvaluationRun",
    "ModelRef",
    "RunSettings",
    "build_table",
    "class_table",
    "clip_masks",
    "clip_seed",
    "clip_table",
    "csv_items",
    "evaluate_clip",
    "evaluate_item",
    "evidence",
    "folder_items",
    "item_from_origin",
    "items_from_path",
    "load_record",
    "open_run",
    "read_shards",
    "resolve_metrics",
    "run_evaluation",
    "run_evaluation_ray",
    "summarise",
    "synthetic_items",
    "write_outputs",
]
