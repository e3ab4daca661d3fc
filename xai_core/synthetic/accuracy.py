"""Accuracy of a classifier on freshly rendered synthetic clips.

Shared by the training script (held-out figures written to the manifests) and the test
that checks the committed weights still reach them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..models.spec import InputSpec
from ..video.preprocess import normalise
from .world import CLASSES, WorldConfig, render_clip

CONTEXT_MODES = ("config", "agree", "conflict")


@torch.no_grad()
def synthetic_accuracy(model: nn.Module, spec: InputSpec, seeds: Sequence[int],
                       config: WorldConfig | None = None, *, context_mode: str = "config",
                       still: bool = False, batch: int = 32) -> dict:
    """Accuracy on clips rendered from ``seeds`` (label = seed mod number of classes).

    Parameters
    ----------
    context_mode
        ``"config"`` draws the context as ``config.context_rate`` says; ``"agree"`` uses
        the class' own context kind; ``"conflict"`` another class' kind.
    still
        Feed the mid frame frozen (no motion): a motion-only model should be at chance.

    Returns
    -------
    dict
        ``accuracy``, ``predicted_context_class`` (share of predictions equal to the
        context's class), ``n`` and ``per_class`` accuracy.
    """
    if context_mode not in CONTEXT_MODES:
        raise ValueError(f"context_mode must be one of {CONTEXT_MODES}")
    config = config or WorldConfig()
    was_training = model.training
    model.eval()
    k = len(CLASSES)
    correct = ctx_hits = n = 0
    per_class = np.zeros((k, 2), int)
    try:
        for i in range(0, len(seeds), batch):
            frames, labels, contexts = [], [], []
            for s in seeds[i : i + batch]:
                label = int(s) % k
                context = None
                if context_mode == "agree":
                    context = label
                elif context_mode == "conflict":
                    rng = np.random.default_rng(int(s) + 7)
                    context = (label + 1 + int(rng.integers(k - 1))) % k
                clip = render_clip(int(s), label=label, context=context, config=config)
                f = clip.frames
                if still:
                    f = np.repeat(f[len(f) // 2][None], len(f), axis=0)
                frames.append(f)
                labels.append(clip.label)
                contexts.append(clip.context)
            device = next(model.parameters()).device
            x = normalise(np.stack(frames), spec).to(device)
            pred = model(x).argmax(1).cpu().numpy()
            labels_a, contexts_a = np.array(labels), np.array(contexts)
            correct += int((pred == labels_a).sum())
            ctx_hits += int((pred == contexts_a).sum())
            n += len(labels)
            for lab, p in zip(labels_a, pred, strict=True):
                per_class[lab, 0] += int(lab == p)
                per_class[lab, 1] += 1
    finally:
        model.train(was_training)
    return {
        "accuracy": correct / n,
        "predicted_context_class": ctx_hits / n,
        "n": n,
        "per_class": {CLASSES[c]: per_class[c, 0] / max(per_class[c, 1], 1) for c in range(k)},
    }
