"""Clips on disk: a folder (flat, or one folder per class as UCF-101), or a CSV list.

* :func:`folder_items` — videos and frame folders in one folder (ground truth beside
  them), or the **UCF-101 layout**: one sub-folder per class (``ApplyEyeMakeup/
  v_ApplyEyeMakeup_g01_c01.avi``; frame folders inside class folders work too), the
  folder's name being the label.
* :func:`csv_items` — a list of ``path,label`` rows as Kinetics-style annotations use
  (paths relative to the CSV's folder, labels as class names or indices; optional
  ``start`` / ``stride`` columns and any further columns as table metadata).
* :func:`items_from_path` — whichever of the two a path is (the CLI's positional).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError, VideoError
from ..synthetic.samples import manifest_entries
from ..video.clip import IMAGE_EXTENSIONS, _natural_key
from ..video.read import VIDEO_EXTENSIONS
from .inputs import EvalItem

__all__ = ["csv_items", "file_item", "folder_items", "items_from_path"]

#: Columns of a CSV list with a meaning of their own (the others go to ``meta``).
CSV_COLUMNS = ("path", "label", "start", "stride")


def items_from_path(path: str | Path) -> tuple[list[EvalItem], str]:
    """The clips a path names: a folder (:func:`folder_items`) or a CSV list (:func:`csv_items`).

    Parameters
    ----------
    path
        A folder of clips (flat or one folder per class) or a ``.csv`` file.

    Returns
    -------
    items : list of EvalItem
        The clips.
    source : str
        A description of where they come from (manifest and report).
    """
    p = Path(path)
    if p.is_file() and p.suffix.lower() in (".csv", ".txt"):
        return csv_items(p), f"list {p}"
    if p.is_dir():
        return folder_items(p), f"folder {p}"
    raise VideoError(f"{str(p)!r} is neither a folder nor a CSV list",
                     hint="Give a folder of videos (or of class folders), a .csv list of "
                          "path,label rows, or --synthetic N.")


def _is_clip(p: Path) -> bool:
    """A video file, or a folder holding frame images."""
    if p.is_file():
        return p.suffix.lower() in VIDEO_EXTENSIONS
    return p.is_dir() and any(q.suffix.lower() in IMAGE_EXTENSIONS for q in p.iterdir())


def _clips_in(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir(), key=lambda p: _natural_key(p.name))
            if not p.name.startswith(".") and _is_clip(p)]


def folder_items(folder: str | Path) -> list[EvalItem]:
    """Videos and frame folders in ``folder`` (numeric name order) with their ground truth.

    Beside ``NAME.mp4`` (or a frame folder ``NAME/``) the optional ``NAME.npz`` (or
    ``NAME.masks.npz``) holds masks over the whole source — ``actor`` / ``context``
    (N, H, W) bool (``actor_mask`` / ``context_mask`` are accepted too) and ``segment``
    (N,) bool — and the optional ``NAME.json`` a ``label`` (index or class name). A
    ``manifest.json`` as in ``sample_videos/`` (``samples: [{file, label, context,
    kind}]``) also supplies labels and context names.

    A folder that holds no clips but sub-folders of clips is read in the **UCF-101
    layout**: each sub-folder is a class, its name the clips' label (``NAME.json`` beside
    a clip still wins), the clip's name ``CLASS/NAME``.

    Parameters
    ----------
    folder
        The folder of clips, or of class folders.

    Returns
    -------
    list of EvalItem
        One item per video or frame folder; ``NAME.json``'s label wins over the
        manifest's and the class folder's.
    """
    root = Path(folder)
    if not root.is_dir():
        raise VideoError(f"{str(root)!r} is not a folder",
                         hint="Give a folder of videos, or use --synthetic N.")
    entries = _clips_in(root)
    if not entries:
        classes = [(d, _clips_in(d)) for d in sorted(root.iterdir(),
                                                     key=lambda p: _natural_key(p.name))
                   if d.is_dir() and not d.name.startswith(".")]
        classes = [(d, clips) for d, clips in classes if clips]
        if classes:
            return [file_item(p, f"{d.name}/{_stem(p)}", label=d.name)
                    for d, clips in classes for p in clips]
        raise VideoError(f"folder {root.name!r} holds no videos or frame folders",
                         hint=f"Put {', '.join(VIDEO_EXTENSIONS)} files in it, or one folder "
                              "of them per class (UCF-101 layout).")
    listed = manifest_entries(root)
    items = []
    for p in entries:
        entry = listed.get(p.name, {})
        item = file_item(p, _stem(p), label=entry.get("label"))
        item.meta = {k: entry[k] for k in ("context", "kind") if isinstance(entry.get(k), str)}
        items.append(item)
    return items


def _stem(p: Path) -> str:
    return p.stem if p.is_file() else p.name


def file_item(path: Path, clip_id: str, *, label: int | str | None = None, start: int = 0,
              stride: int = 1) -> EvalItem:
    """One clip file (or frame folder) with the ground truth beside it.

    Parameters
    ----------
    path
        The video file or frame folder.
    clip_id
        Its name in the run.
    label
        Its label when known from elsewhere (class folder, manifest, CSV); a
        ``NAME.json`` beside the clip wins.
    start, stride
        First source frame and step of the clip.

    Returns
    -------
    EvalItem
        The item (its source the absolute path), with ``origin`` ``{"kind": "file",
        "path": <absolute path>}``.
    """
    path = path.resolve()  # absolute: a Ray worker may run in another folder
    stem = _stem(path)
    own = _read_label(path.parent, stem)
    return EvalItem(clip_id=clip_id, source=path, masks=_read_masks(path.parent, stem),
                    label=own if own is not None else label, start=start, stride=stride,
                    origin={"kind": "file", "path": str(path)})


def csv_items(path: str | Path) -> list[EvalItem]:
    """The clips of a CSV list: ``path,label`` rows (Kinetics-style annotations).

    The first row is a header when it names a ``path`` column; the columns ``label``,
    ``start`` (first frame) and ``stride`` are then optional and every further column
    goes to the table as metadata. Without a header the rows are ``path[,label]``.
    Blank rows and rows starting with ``#`` are skipped.

    Parameters
    ----------
    path
        The CSV file. Relative clip paths are relative to its folder.

    Returns
    -------
    list of EvalItem
        One item per row, named by the path as written (``path@start`` with a start);
        labels that are whole numbers become class indices.

    Raises
    ------
    VideoError
        When the list cannot be read, is empty, or names files that do not exist.
    ParameterError
        When a start or stride is not a whole number of the right range.
    """
    src = Path(path)
    try:
        text = src.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"the list {src.name} cannot be read ({exc})",
                         hint="Give a UTF-8 CSV file of path,label rows.") from exc
    rows = [(n, [c.strip() for c in r]) for n, r in enumerate(csv.reader(text.splitlines()), 1)
            if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    header = [c.lower() for c in rows[0][1]] if rows else []
    if "path" in header:
        rows = rows[1:]
    else:
        header = ["path", "label"]
    if not rows:
        raise VideoError(f"the list {src.name} has no clips",
                         hint="Write one path,label row per clip.")
    items, missing = [], []
    for line, cells in rows:
        row = dict(zip(header, cells, strict=False))
        rel = row.get("path", "")
        if not rel:
            raise VideoError(f"{src.name}, line {line}: no path",
                             hint="Each row starts with the clip's path.")
        clip = Path(rel) if Path(rel).is_absolute() else src.parent / rel
        if not (clip.is_file() or clip.is_dir()):
            missing.append(f"line {line}: {rel}")
            continue
        start = _whole(row.get("start"), 0, "start", src.name, line)
        stride = _whole(row.get("stride"), 1, "stride", src.name, line, low=1)
        label = _label(row.get("label"))
        item = file_item(clip, f"{rel}@{start}" if start else rel, label=label, start=start,
                         stride=stride)
        item.meta = {k: v for k, v in row.items() if k not in CSV_COLUMNS and k}
        items.append(item)
    if missing:
        raise VideoError(f"{len(missing)} file(s) listed in {src.name} do not exist: "
                         + "; ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
                         hint=f"Paths are relative to the list's folder ({src.parent}).")
    return items


def _label(text: str | None) -> int | str | None:
    if text is None or text == "":
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _whole(text: str | None, default: int, name: str, file: str, line: int, low: int = 0
           ) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise ParameterError(f"{file}, line {line}: {name} must be a whole number ≥ {low}, "
                             f"not {text!r}", hint=f"Leave {name} empty for {default}.")
    return value


def _read_masks(root: Path, stem: str) -> dict[str, np.ndarray] | None:
    """``NAME.masks.npz`` or ``NAME.npz`` beside a clip: its masks, or ``None``."""
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
    """The ``label`` of ``NAME.json`` beside a clip, or ``None``."""
    path = root / f"{stem}.json"
    if not path.is_file():
        return None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    label = data.get("label") if isinstance(data, dict) else None
    if isinstance(label, (int, float)) and not isinstance(label, bool):
        return int(label)
    return label if isinstance(label, str) else None
