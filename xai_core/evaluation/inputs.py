"""The clips an evaluation run scores: :class:`EvalItem`, the synthetic world's clips with
their masks (:func:`synthetic_items`), an item rebuilt from where it came from
(:func:`item_from_origin`, what a Ray worker and the dashboard use), and
:func:`clip_masks`, which brings masks over a whole source onto one clip's frames as the
model sees them. Folders and CSV lists of files are read by :mod:`.datasets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError, VideoError
from ..models.spec import InputSpec
from ..synthetic.world import CLASSES, CONTEXT_KINDS, WorldConfig, render_clip
from ..video.preprocess import resize_and_crop

__all__ = ["SYNTHETIC_SEED_BASE", "EvalItem", "clip_masks", "item_from_origin",
           "synthetic_items"]

#: Seeds of generated evaluation clips start here: far from the training seeds of
#: ``scripts/train_bundled.py`` (10 000 000 + 100 000 000·k + i) and its held-out range.
SYNTHETIC_SEED_BASE = 700_000_000


@dataclass
class EvalItem:
    """One clip to evaluate.

    Attributes
    ----------
    clip_id
        Unique name in the run (file stem, or ``synthetic-<seed>``).
    source
        A video path, a frame folder, or uint8 RGB frames (N, H, W, 3).
    masks
        Ground truth at the source's resolution and length: ``actor``/``context``
        (N, H, W) bool, ``segment`` (N,) bool; ``None`` when there is none.
    label
        True class (index, or name resolved against the model's classes), when known.
    meta
        Extra columns for the table (e.g. the synthetic context kind).
    start, stride
        First source frame of the clip and the step between its frames
        (:func:`xai_core.video.clip.load_clip`).
    origin
        How to rebuild the item elsewhere (a Ray worker, the dashboard reopening a run),
        JSON-able: ``{"kind": "synthetic", "seed", "context_rate", "size", "num_frames",
        "moving"}`` or ``{"kind": "file", "path"}``; ``None`` for frames given in memory.
        See :func:`item_from_origin`.
    """

    clip_id: str
    source: str | Path | np.ndarray
    masks: dict[str, np.ndarray] | None = None
    label: int | str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    start: int = 0
    stride: int = 1
    origin: dict[str, Any] | None = None

    def light(self) -> EvalItem:
        """The item without its frames and masks when :attr:`origin` can rebuild them.

        What travels to a Ray worker: a synthetic clip is re-rendered there
        (deterministically, from its seed) instead of shipping its frames.
        """
        if self.origin is None or self.origin.get("kind") != "synthetic":
            return self
        return dataclasses.replace(self, source="", masks=None)

    def rebuilt(self) -> EvalItem:
        """The item with frames and masks again (the inverse of :meth:`light`)."""
        if isinstance(self.source, np.ndarray) or self.source != "" or self.origin is None:
            return self
        return item_from_origin(self.clip_id, self.origin)


def synthetic_items(n: int, context_rate: float = 0.0, *, seed: int = SYNTHETIC_SEED_BASE,
                    size: int = 112, num_frames: int = 16, moving: float = 1.0
                    ) -> list[EvalItem]:
    """``n`` clips of the synthetic world with their actor and context masks.

    Parameters
    ----------
    n
        Number of clips; clip i is ``render_clip(seed + i)``.
    context_rate
        Probability that the context object is the class' own kind (0: independent of
        the class, 1: always the class' own context kind).
    seed
        Seed of the first clip.
    size, num_frames
        Frame side and length of the rendered clips.
    moving
        ``moving < 1`` makes the actor move during one segment of ``round(moving · T)``
        frames only (at a seeded random start) and stand still before and after it — the
        first and last frames of the segment are repeated, with fresh sensor noise of the
        world's σ in every frame — and adds that segment as the ``segment`` ground truth
        of the temporal pointing game.

    Returns
    -------
    list of EvalItem
        The clips, with masks, label and the context kind in ``meta``.
    """
    if n < 1:
        raise ParameterError("--synthetic needs at least one clip", hint="Use --synthetic 24.")
    if not 0.0 <= context_rate <= 1.0:
        raise ParameterError(f"context rate must be in [0, 1], got {context_rate}")
    if not 0.0 < moving <= 1.0:
        raise ParameterError(f"the moving fraction must be in (0, 1], got {moving}")
    config = WorldConfig(size=size, num_frames=num_frames, context_rate=context_rate)
    items = []
    for i in range(n):
        s = seed + i
        meta: dict[str, Any] = {"seed": s}
        if moving >= 1.0:
            c = render_clip(s, config=config)
            frames, actor, context = c.frames, c.actor_mask, c.context_mask
            masks = {"actor": actor, "context": context}
        else:
            # noise-free render (the noise is drawn last, so the scene is the same clip)
            c = render_clip(s, config=dataclasses.replace(config, noise=0.0))
            length = min(num_frames, max(2, round(moving * num_frames)))
            rng = np.random.default_rng([s, 1])
            a = int(rng.integers(0, num_frames - length + 1))
            idx = np.clip(np.arange(num_frames), a, a + length - 1)
            noise = rng.standard_normal(c.frames.shape, dtype=np.float32) * config.noise
            frames = np.clip(c.frames[idx].astype(np.float32) + noise, 0, 255).round()
            frames = frames.astype(np.uint8)
            segment = np.zeros(num_frames, bool)
            segment[a : a + length] = True
            masks = {"actor": c.actor_mask[idx], "context": c.context_mask[idx],
                     "segment": segment}
            meta["segment"] = f"{a}-{a + length - 1}"
        meta |= {"context": c.context, "context_name": CONTEXT_KINDS[c.context],
                 "context_agrees": c.context == c.label, "label_name": CLASSES[c.label]}
        origin = {"kind": "synthetic", "seed": s, "context_rate": float(context_rate),
                  "size": size, "num_frames": num_frames, "moving": float(moving)}
        items.append(EvalItem(clip_id=f"synthetic-{s}", source=frames, masks=masks,
                              label=c.label, meta=meta, origin=origin))
    return items


def item_from_origin(clip_id: str, origin: dict[str, Any], *, label: int | str | None = None,
                     start: int = 0, stride: int = 1) -> EvalItem:
    """Rebuild an item from its :attr:`EvalItem.origin` (frames, masks, label, meta).

    Parameters
    ----------
    clip_id
        The clip's name in the run.
    origin
        ``{"kind": "synthetic", ...}`` (re-rendered: the same frames and masks, bit for
        bit) or ``{"kind": "file", "path": ...}`` (ground truth read again from beside
        the file).
    label, start, stride
        For a file: its label and the clip's first frame and step (a synthetic clip
        brings its own label and starts at 0).

    Returns
    -------
    EvalItem
        The item, as the run evaluated it.

    Raises
    ------
    VideoError
        When the origin is unknown or its file no longer exists.
    """
    kind = origin.get("kind") if isinstance(origin, dict) else None
    if kind == "synthetic":
        item = synthetic_items(1, origin["context_rate"], seed=int(origin["seed"]),
                               size=int(origin["size"]), num_frames=int(origin["num_frames"]),
                               moving=float(origin["moving"]))[0]
        return dataclasses.replace(item, clip_id=clip_id)
    if kind == "file":
        from .datasets import file_item  # inputs ← datasets: imported on use, no cycle

        return file_item(Path(origin["path"]), clip_id, label=label, start=start,
                         stride=stride)
    raise VideoError(f"clip {clip_id!r} has no source that can be opened again ({origin!r})",
                     hint="Only clips read from files or generated synthetic clips can be "
                          "reopened.")


def clip_masks(masks: dict[str, np.ndarray] | None, indices: Sequence[int], spec: InputSpec
               ) -> dict[str, np.ndarray] | None:
    """Bring source-resolution masks onto the clip's grid.

    The clip's frame indices are picked first, then the same resize and centre crop as
    the frames get (:func:`xai_core.video.preprocess.resize_and_crop`).

    Parameters
    ----------
    masks
        ``actor`` / ``context`` (N, H, W) and ``segment`` (N,) over the whole source.
    indices
        Source frame index of every clip frame (``Clip.indices``).
    spec
        The model's input spec.

    Returns
    -------
    dict or None
        The masks on the clip's (T, H, W) grid (``segment``: (T,)); ``None`` without masks.

    Raises
    ------
    VideoError
        When a mask is not one entry per source frame, or is too short for the clip.
    """
    if not masks:
        return None
    idx = np.asarray(indices, int)
    out = {}
    for key, m in masks.items():
        m = np.asarray(m, bool)
        if key == "segment":
            if m.ndim != 1 or idx.max() >= m.shape[0]:
                raise VideoError(f"ground-truth segment has {m.shape} entries; the clip uses "
                                 f"frame {idx.max()}", hint="Give one bool per source frame.")
            out[key] = m[idx]
            continue
        if m.ndim != 3 or idx.max() >= m.shape[0]:
            raise VideoError(f"ground-truth mask {key!r} has shape {m.shape}; the clip uses "
                             f"frame {idx.max()}", hint="Give one (H, W) mask per source frame.")
        rgb = np.repeat((m[idx].astype(np.uint8) * 255)[..., None], 3, axis=3)
        out[key] = resize_and_crop(rgb, spec)[..., 0] > 127
    return out
