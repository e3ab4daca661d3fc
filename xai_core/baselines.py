"""Baseline clips: the "nothing" an attribution method or a metric compares a clip with.

Integrated gradients integrates from a baseline to the clip (Sundararajan et al. 2017);
the causal metrics replace voxels by one (deletion) or reveal voxels into one
(insertion; Li et al. 2021, §4.1). Every baseline lives in the model's normalised input
space, where 0 is not black, nor grey, for every input spec.
"""

from __future__ import annotations

import torch

from .errors import ParameterError
from .filters import gaussian_blur
from .models.registry import LoadedModel

#: Kinds of :func:`baseline_clip`.
KINDS = ("blur", "grey", "mean", "zeros", "black")


def baseline_clip(model: LoadedModel, x: torch.Tensor, kind: str, sigma: float = 10.0
                  ) -> torch.Tensor:
    """The baseline clip of ``kind`` for clips ``x``, same shape, dtype and device.

    Parameters
    ----------
    model
        The model whose input spec defines pixel values in normalised space.
    x
        Normalised clips (B, 3, T, H, W).
    kind
        ``"blur"``: every frame blurred with ``sigma`` px (reflect padding, see
        :func:`xai_core.filters.gaussian_blur`); ``"grey"``: pixel value 127.5 pushed
        through the spec's scaling and normalisation; ``"mean"``: each clip's own
        per-channel mean; ``"zeros"``: all zeros, the normalisation's mean colour;
        ``"black"``: pixel value 0 pushed through the spec (the low end of
        :meth:`~xai_core.models.spec.InputSpec.pixel_bounds`).
    sigma
        Blur of ``"blur"`` in pixels; ignored by the other kinds.

    Raises
    ------
    ParameterError
        For an unknown ``kind``.
    """
    if kind == "blur":
        return gaussian_blur(x, sigma)
    if kind == "grey":
        spec = model.input
        mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device)
        std = torch.tensor(spec.std, dtype=x.dtype, device=x.device)
        grey = ((127.5 * spec.scale - mean) / std).view(1, 3, 1, 1, 1)
        return grey.expand_as(x).clone()
    if kind == "mean":
        return x.mean(dim=(2, 3, 4), keepdim=True).expand_as(x).clone()
    if kind == "zeros":
        return torch.zeros_like(x)
    if kind == "black":
        low, _ = model.input.pixel_bounds()
        return low.to(x).expand_as(x).contiguous()
    raise ParameterError(f"unknown baseline clip {kind!r}",
                         hint=f"Use one of: {', '.join(KINDS)}.")
