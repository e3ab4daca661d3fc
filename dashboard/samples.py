"""The sample clips offered in the sidebar, with their ground truth (from xai_core)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from xai_core.errors import VideoError
from xai_core.evaluation import clip_masks
from xai_core.models.spec import InputSpec
from xai_core.synthetic.samples import SAMPLES_DIR, list_samples, load_masks

_KIND_NOTES = {
    "motion": "context unrelated to the class",
    "conflict": "context of another class",
    "agree": "context of the class",
    "static": "no motion at all",
    "long": "longer than one clip: try the window slider",
}


@dataclass(frozen=True)
class SampleClip:
    """One sample as the sidebar shows it."""

    name: str
    path: Path
    truth: str
    title: str
    description: str


def sample_clips() -> list[SampleClip]:
    """Sample clips shipped in ``sample_videos/`` (empty when none are installed)."""
    manifest = SAMPLES_DIR / "manifest.json"
    stamp = manifest.stat().st_mtime_ns if manifest.is_file() else 0
    return list(_catalogue(stamp))


@lru_cache(maxsize=4)
def _catalogue(stamp: int) -> tuple[SampleClip, ...]:
    """The manifest read once per version of the file (``stamp`` is its mtime)."""
    out = []
    for s in list_samples():
        suits = f" Meant for the {' and '.join(s.suits)} model." if s.suits else ""
        out.append(SampleClip(
            name=s.name, path=Path(s.path), truth=s.label,
            title=f"{s.name} — {_KIND_NOTES.get(s.kind, s.kind)}",
            description=f"{s.description}.{suits}"
            if s.description else suits.strip()))
    return tuple(out)


def sample_masks(name: str, indices: Sequence[int], grid: tuple[int, int] | InputSpec
                 ) -> dict[str, np.ndarray] | None:
    """Ground-truth masks of a sample on the clip's grid, or None if they do not line up.

    The masks cover the whole video at its own resolution; the clip's frames are picked
    by their video indices and the masks resized and cropped as the frames were
    (:func:`xai_core.evaluation.clip_masks`).

    Parameters
    ----------
    name
        The sample's name.
    indices
        Video frame index of every clip frame (``Clip.indices``).
    grid
        The model's input spec (``Clip.input_spec``): masks at any resolution are brought
        onto it. Or the clip's (H, W): then masks at another resolution (a model that
        resizes the video) give None.

    Returns
    -------
    dict or None
        ``actor`` and ``context``, bool (T, H, W); None when they do not fit the clip.
    """
    masks = _masks(name, SAMPLES_DIR / "manifest.json")
    if isinstance(grid, InputSpec):
        spec = grid
    elif any(m.shape[1:3] != tuple(grid) for m in masks.values()):
        return None
    else:
        spec = InputSpec(num_frames=len(indices), height=grid[0], width=grid[1])
    try:
        return clip_masks(masks, indices, spec)
    except VideoError:  # the clip uses frames the masks do not cover
        return None


@lru_cache(maxsize=8)
def _masks(name: str, _manifest: Path) -> dict[str, np.ndarray]:
    """A sample's masks, read once per name (``_manifest`` only keys the cache)."""
    masks = load_masks(name)
    for m in masks.values():
        m.setflags(write=False)  # shared between sessions: read only
    return masks
