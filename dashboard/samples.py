"""The sample clips offered in the sidebar, with their ground truth (from xai_core)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SampleClip:
    """One sample: where it is, what it shows, and how to get its ground-truth masks."""

    name: str
    path: Path
    truth: str
    title: str
    description: str


def sample_clips() -> list[SampleClip]:
    """Sample clips shipped in ``sample_videos/`` (empty when none are installed)."""
    try:
        from xai_core.synthetic.samples import list_samples
    except ModuleNotFoundError:
        return []
    return [_entry(s) for s in list_samples()]


def _entry(s) -> SampleClip:
    return SampleClip(name=s.name, path=Path(s.path), truth=s.label,
                      title=f"{s.name} — {s.label}", description=getattr(s, "description", ""))


def sample_masks(name: str) -> dict[str, np.ndarray] | None:
    """Ground-truth masks of a sample (actor, context, …), or None."""
    try:
        from xai_core.synthetic.samples import load_masks
    except ModuleNotFoundError:
        return None
    return load_masks(name)
