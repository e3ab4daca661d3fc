"""The tables of an evaluation run, rebuilt from its records, and the files they go to.

The tidy table (``results.csv``, and ``results.parquet`` when pyarrow is installed) has
one row per clip × method × map variant × quantity; the summary (``summary.csv``) the
mean ± std of each; the report (``report.html`` with Plotly figures, ``report.md``,
:mod:`xai_core.metrics.report`) is laid out like Tables 1–4 of Hiley et al. 2020 and
Table 2 of Li et al. 2021.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_text
from ..errors import ParameterError
from ..metrics import get_metric
from ..metrics import report as evaluation_report

__all__ = ["TABLE_COLUMNS", "build_table", "summarise", "write_outputs"]

#: Columns of the tidy table (the records' ``meta_*`` columns go after ``correct``).
TABLE_COLUMNS = ["clip_id", "model", "label", "label_name", "target", "target_name",
                 "predicted", "predicted_name", "correct", "method", "variant", "metric",
                 "quantity", "value"]


def build_table(records: Iterable[dict[str, Any]], model_name: str = "") -> pd.DataFrame:
    """The tidy table: one row per clip × method × variant × quantity (records in order).

    Parameters
    ----------
    records
        Per-clip records as :func:`~xai_core.evaluation.run_evaluation` writes them.
    model_name
        Value of the ``model`` column.

    Returns
    -------
    pandas.DataFrame
        :data:`TABLE_COLUMNS` with a ``meta_<key>`` column per record meta key.
    """
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
    """Mean, std and count (finite values) per method × variant × metric × quantity.

    Parameters
    ----------
    table
        The tidy table (:func:`build_table`).

    Returns
    -------
    pandas.DataFrame
        ``method``, ``variant``, ``metric``, ``quantity``, ``mean``, ``std``, ``n`` and
        ``higher_is_better`` (``None`` for a metric no longer registered).
    """
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
    """Write results.csv (+ .parquet), summary.csv, report.md, report.html (+ PNGs when possible).

    Every file is put in place atomically.

    Parameters
    ----------
    out
        The output folder.
    table, summary
        :func:`build_table` and :func:`summarise` of the records.
    records
        The per-clip records (curves and overview of the report).
    config
        The run's configuration (its manifest).
    report
        Also write the report.

    Returns
    -------
    files : dict
        Name → path of every file written.
    notes : list of str
        What could not be written, and why.
    """
    files: dict[str, Path] = {}
    notes: list[str] = []
    files["results.csv"] = out / "results.csv"
    write_text(files["results.csv"], table.to_csv(index=False))
    try:  # parquet is optional: written only where pyarrow is installed
        import pyarrow  # noqa: F401
    except ImportError:
        notes.append("results.parquet not written: pyarrow is not installed")
    else:
        files["results.parquet"] = out / "results.parquet"
        with atomic_path(files["results.parquet"]) as tmp:
            table.to_parquet(tmp, index=False)
    files["summary.csv"] = out / "summary.csv"
    write_text(files["summary.csv"], summary.to_csv(index=False))
    if report:
        written, more = evaluation_report.write_report(out, table, summary, records, config)
        files.update(written)
        notes.extend(more)
    return files, notes
