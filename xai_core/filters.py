"""Image filters shared by the explanation methods and the metrics.

One Gaussian blur serves both users of a blurred clip: the causal metrics' "nothing"
baseline (Li et al. 2021, §4.1) and the blur pyramid of extremal perturbation (Fong et
al. 2019, §4). They differ only in how the frame border is padded, which the caller
chooses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Border modes of :func:`gaussian_blur`.
PADDINGS = ("reflect", "replicate")


def gaussian_blur(x: torch.Tensor, sigma: float, padding: str = "reflect") -> torch.Tensor:
    """Blur every frame of a clip spatially with a Gaussian of ``sigma`` pixels.

    A separable convolution (one horizontal, one vertical pass) with a kernel of radius
    ⌈3σ⌉ (at least 1), normalised to sum to one. Frames and channels are blurred
    independently, so blurring adds no motion.

    Parameters
    ----------
    x
        Clips (B, C, T, H, W).
    sigma
        Standard deviation in pixels; ``sigma <= 0`` returns an unblurred copy.
    padding
        ``"reflect"``: mirror the frame at its border, so no dark edge leaks in and a
        frame's mass is kept; reflection cannot reach further than the frame, so the
        radius is capped at ``min(H, W) − 1`` (the causal metrics' blur).
        ``"replicate"``: repeat the border pixels, any radius (the extremal-perturbation
        pyramid, whose σ = 20 blur is wider than small frames).

    Returns
    -------
    torch.Tensor
        A new contiguous tensor of the shape, dtype and device of ``x``.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if sigma <= 0:
        return x.clone()
    b, c, t, h, w = x.shape
    radius = max(1, math.ceil(3.0 * sigma))
    if padding == "reflect":
        radius = min(radius, h - 1, w - 1)
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    y = x.reshape(b * c * t, 1, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode=padding), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode=padding), k.view(1, 1, -1, 1))
    return y.reshape(b, c, t, h, w)
