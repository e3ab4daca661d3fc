"""Parquet shards of the tidy table: ``OUT/shards/*.parquet``, written while a run goes.

Each Ray worker writes the table rows of its finished clips as a shard every so many
clips (and when the run ends); the in-process engine writes one shard per invocation.
A run always ends with :func:`complete_shards`, so every clip with a record has its rows in
exactly one shard — also after a killed run, whose last clips had records but no shard
yet. Together the shards hold the same rows as ``results.parquet``; they can be read
while a long run is still going (:func:`read_shards`) without touching its records.
Needs pyarrow (as ``results.parquet``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import atomic_path
from .tables import build_table

__all__ = ["complete_shards", "read_shards", "shard_clip_ids", "write_shard"]


def _have_pyarrow() -> bool:
    try:  # optional, as results.parquet
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def shard_name(tag: str, seq: int) -> str:
    """A shard's file name: unique per process, time, tag and sequence number."""
    return f"part-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{tag}-{seq:05d}.parquet"


def write_shard(out: Path, records: Iterable[dict[str, Any]], model_name: str, tag: str,
                seq: int) -> Path | None:
    """Write the table rows of some records as one shard, atomically.

    Parameters
    ----------
    out
        The run's output folder (the shard goes to ``out/shards/``).
    records
        Finished records (error records and records without rows are left out).
    model_name
        The table's ``model`` column.
    tag, seq
        Who wrote it (``w0`` for Ray worker 0, ``local``) and its sequence number.

    Returns
    -------
    Path or None
        The shard, or ``None`` when there was nothing to write or no pyarrow.
    """
    table = build_table([r for r in records if "error" not in r and r.get("rows")], model_name)
    if table.empty or not _have_pyarrow():
        return None
    path = out / "shards" / shard_name(tag, seq)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)
    return path


def shard_clip_ids(out: Path) -> set[str]:
    """The clips whose rows are in a shard already (reads only the ``clip_id`` column)."""
    folder = out / "shards"
    if not folder.is_dir() or not _have_pyarrow():
        return set()
    import pyarrow.parquet as pq

    ids: set[str] = set()
    for path in sorted(folder.glob("*.parquet")):
        ids.update(pq.read_table(path, columns=["clip_id"]).column(0).to_pylist())
    return ids


def complete_shards(out: Path, records: list[dict[str, Any]], model_name: str) -> Path | None:
    """Write one shard for the records that have rows but are in no shard yet.

    Parameters
    ----------
    out
        The run's output folder.
    records
        Every record of the run.
    model_name
        The table's ``model`` column.

    Returns
    -------
    Path or None
        The shard written, or ``None`` when every record was in a shard already.
    """
    have = shard_clip_ids(out)
    rest = [r for r in records if "error" not in r and r.get("rows") and r["clip_id"] not in have]
    return write_shard(out, rest, model_name, "rest", 0) if rest else None


def read_shards(out: str | Path) -> pd.DataFrame:
    """The tidy table from a run's shards (also while the run is still going).

    Parameters
    ----------
    out
        The run's output folder.

    Returns
    -------
    pandas.DataFrame
        The rows of every shard (columns of all shards; missing ``meta_*`` values as NaN),
        empty when there are none.
    """
    folder = Path(out) / "shards"
    paths = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not paths or not _have_pyarrow():
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
