"""The sample clips in ``sample_videos/``: their manifest and ground-truth masks.

``scripts/make_samples.py`` renders them from the synthetic world and writes, per clip,
``<name>.mp4`` (H.264, browser-playable), ``<name>.masks.npz`` (``actor_mask`` and
``context_mask``, bool (T, H, W)) and one ``manifest.json`` for all. The masks are exact;
the frames went through lossy H.264, so they are close to, not equal to, the rendered ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VideoError

#: Where the repository keeps its sample clips.
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "sample_videos"

#: Sample kinds, in the order the manifest lists them.
KINDS = ("motion", "conflict", "agree", "static", "long")


@dataclass(frozen=True)
class SampleEntry:
    """One manifest entry.

    Attributes
    ----------
    name, file, masks
        Sample name and its video / mask file names (relative to the folder).
    path, masks_path
        Absolute paths of the video and of the masks.
    label, context
        Class shown by the actor's motion, and the kind of the static context object.
    frames, fps, seed
        Length, frame rate, and the seed that renders it again.
    kind
        ``motion`` (context independent of class), ``conflict`` (context of another
        class), ``agree`` (context of the class), ``static`` (all frames identical),
        ``long`` (longer than one clip).
    suits
        Bundled model(s) the sample is meant to show.
    description
        One sentence for the UI.
    """

    name: str
    file: str
    masks: str
    path: Path
    masks_path: Path
    label: str
    context: str
    frames: int
    fps: float
    seed: int
    kind: str
    suits: tuple[str, ...]
    description: str = ""
    extra: dict = field(default_factory=dict)


def read_manifest(directory: str | os.PathLike = SAMPLES_DIR, *, strict: bool = True) -> dict:
    """The raw ``manifest.json`` of a samples folder.

    Parameters
    ----------
    directory
        The folder holding ``manifest.json``.
    strict
        ``True``: a missing or unreadable manifest is a :class:`VideoError`. ``False``:
        it reads as ``{}`` (any folder of clips may hold one, or not).

    Returns
    -------
    dict
        The parsed JSON.
    """
    path = Path(directory) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not strict:
            return {}
        raise VideoError(f"no sample manifest in {str(Path(directory))!r}",
                         hint="Generate the samples with `make samples`.") from None
    except (OSError, ValueError) as exc:
        if not strict:
            return {}
        raise VideoError(f"the sample manifest {path} cannot be read ({exc})",
                         hint="Regenerate it with `make samples`.") from exc


def manifest_entries(directory: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The manifest's entries by file name (``{}`` when there is no readable manifest).

    Parameters
    ----------
    directory
        A folder of clips, with or without a ``manifest.json`` as
        ``scripts/make_samples.py`` writes it (``samples: [{file, label, context, kind}]``).

    Returns
    -------
    dict
        File name → its entry; entries without a ``file`` name are left out.
    """
    data = read_manifest(directory, strict=False)
    samples = data.get("samples") if isinstance(data, dict) else None
    if not isinstance(samples, list):
        return {}
    return {s["file"]: s for s in samples if isinstance(s, dict) and isinstance(s.get("file"), str)}


def list_samples(directory: str | os.PathLike = SAMPLES_DIR) -> list[SampleEntry]:
    """Manifest entries of a samples folder (empty list when the folder has none)."""
    directory = Path(directory)
    if not (directory / "manifest.json").is_file():
        return []
    known = set(SampleEntry.__dataclass_fields__) - {"path", "masks_path", "extra", "suits"}
    entries = []
    for item in read_manifest(directory)["samples"]:
        base = {k: v for k, v in item.items() if k in known}
        entries.append(SampleEntry(**base, suits=tuple(item.get("suits", ())),
                                   path=directory / item["file"],
                                   masks_path=directory / item["masks"],
                                   extra={k: v for k, v in item.items() if k not in known
                                          and k != "suits"}))
    return entries


def get_sample(name: str, directory: str | os.PathLike = SAMPLES_DIR) -> SampleEntry:
    """The entry called ``name``; a clear error naming the available ones otherwise."""
    samples = list_samples(directory)
    for s in samples:
        if s.name == name:
            return s
    raise VideoError(f"no sample called {name!r}",
                     hint="Available: " + (", ".join(s.name for s in samples) or "none") + ".")


def load_masks(entry: SampleEntry | str, directory: str | os.PathLike = SAMPLES_DIR,
               ) -> dict[str, np.ndarray]:
    """Ground-truth masks of a sample: ``{"actor": ..., "context": ...}``, bool (T, H, W).

    ``entry`` is a :class:`SampleEntry` or a sample name (looked up in ``directory``).
    Masks cover the whole video at its own resolution (frame t of the file is mask t).
    """
    if isinstance(entry, str):
        entry = get_sample(entry, directory)
    try:
        with np.load(entry.masks_path) as data:
            return {"actor": data["actor_mask"].astype(bool),
                    "context": data["context_mask"].astype(bool)}
    except (OSError, KeyError, ValueError) as exc:
        raise VideoError(f"the masks of sample {entry.name!r} cannot be read ({exc})",
                         hint="Regenerate the samples with `make samples`.") from exc
