"""Occlusion: slide a 3-D window over the clip and record how much the target logit drops.

Each window position replaces a (t, h, w) block of all three channels by 0 in normalised
space (the mean clip). The drop logit(clip) − logit(occluded) is given to every voxel in
the block, and voxels covered by several windows get the mean of their windows' drops
(captum's ``Occlusion``, which batches many occluded clips per forward pass). Relevance is
in logit units per voxel; positive where hiding the voxel lowers the class score.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from captum.attr import Occlusion as CaptumOcclusion

from ..errors import ParameterError
from ..models.registry import LoadedModel
from .base import Attribution, Method, Param, ProgressFn, register_method
from .gradients import expect_shape

#: Clip shape (T, H, W) used to estimate the cost before a clip is known (the bundled nets').
_NOMINAL_CLIP = (16, 112, 112)


def window_positions(size: tuple[int, ...], window: tuple[int, ...],
                     stride: tuple[int, ...]) -> int:
    """Number of window positions captum visits (the last one is cut at the border)."""
    axes = zip(size, window, stride, strict=True)
    return math.prod(math.ceil((d - w) / s) + 1 for d, w, s in axes)


@register_method
class Occlusion(Method):
    """Sliding-window occlusion sensitivity in 3-D.

    A window larger than the clip along an axis covers the whole axis.

    References
    ----------
    Zeiler and Fergus, "Visualizing and understanding convolutional networks", ECCV (2014).
    """

    name = "occlusion"
    description = "Drop of the target logit when a 3-D block is replaced by the mean"
    family: ClassVar[str] = "occlusion"
    reference = "Zeiler & Fergus 2014, ECCV (occlusion sensitivity)"
    has_raw: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 1  # clips per call; occluded copies are batched inside
    params = {
        "window": Param((8, 28, 28), "occluded block size (frames, height, width)", low=1),
        "stride": Param((4, 14, 14), "step between blocks (frames, height, width); ≤ window",
                        low=1),
        "batch": Param(16, "occluded clips per forward pass", low=1, high=1024),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        window, stride = self.config["window"], self.config["stride"]
        if len(window) != 3 or len(stride) != 3:
            raise ParameterError("occlusion window and stride need 3 values each "
                                 "(frames, height, width)",
                                 hint="e.g. window=(8, 28, 28), stride=(4, 14, 14).")
        if any(s > w for s, w in zip(stride, window, strict=True)):
            raise ParameterError(f"occlusion stride {stride} must not exceed the window {window} "
                                 "(voxels between windows would get no relevance)",
                                 hint="Use a stride at most the window size on every axis.")

    def cost_passes(self, clip: tuple[int, ...] | None = None) -> int:
        # a batched forward-only pass costs about 2/3 of a batched forward+backward pass on
        # a CPU (measured, benchmarks/bench_estimate.py)
        size = tuple(clip) if clip is not None else _NOMINAL_CLIP
        window = tuple(min(w, d) for w, d in zip(self.config["window"], size, strict=True))
        return max(1, window_positions(size, window, self.config["stride"]) * 2 // 3)

    def _attribute(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor,
                   progress: ProgressFn | None = None) -> Attribution:
        size = tuple(x.shape[2:])
        window = tuple(min(w, d) for w, d in zip(self.config["window"], size, strict=True))
        stride = self.config["stride"]
        per_eval = self.config["batch"]
        total = 1 + math.ceil(window_positions(size, window, stride) / per_eval)
        done = 0

        def forward(clips: torch.Tensor) -> torch.Tensor:
            nonlocal done
            out = model.module(clips)
            done += 1
            if progress is not None:
                progress(min(done, total), total, self.name)
            return out

        with torch.no_grad():
            attr = CaptumOcclusion(forward).attribute(
                x, sliding_window_shapes=(3, *window), strides=(3, *stride), baselines=0.0,
                target=target, perturbations_per_eval=per_eval)
        attr = expect_shape(attr, x.shape, self.name)
        # the window spans all channels, so every channel holds the same drop
        return Attribution(attr[:, 0], None)
