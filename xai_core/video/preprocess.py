"""Frames → model tensor, per a model's :class:`~xai_core.models.spec.InputSpec`.

The one place where resizing, centre-cropping, colour order and normalisation happen,
so training, prediction and explanation all see the same tensor.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
import torch

from ..models.spec import InputSpec


class CropGeometry(NamedTuple):
    """How :func:`resize_and_crop` maps a source frame onto the model's input.

    ``resized`` is the ``(height, width)`` the frame is resized to and ``offset`` the
    ``(top, left)`` of the centre crop in those resized pixels; the crop is the spec's
    ``height × width``.
    """

    resized: tuple[int, int]
    offset: tuple[int, int]


def crop_geometry(frame_hw: tuple[int, int], spec: InputSpec) -> CropGeometry:
    """The resize and centre crop :func:`resize_and_crop` applies to frames of ``frame_hw``.

    With ``spec.resize = (h, w)`` frames are resized to exactly that size first (C3D:
    128×171); otherwise the short side is scaled to ``spec.short_side`` (torchvision's
    ``resize_size=[256]``) or, without one, to the crop size, keeping aspect.
    """
    h, w = (int(v) for v in frame_hw)
    if h < 1 or w < 1:
        raise ValueError(f"a frame must be at least 1×1 pixels, got {w}×{h}")
    if spec.resize is not None:
        rh, rw = spec.resize
    else:
        side = spec.short_side or max(spec.height, spec.width)
        scale = side / min(h, w)
        rh, rw = max(spec.height, round(h * scale)), max(spec.width, round(w * scale))
    return CropGeometry((int(rh), int(rw)), ((rh - spec.height) // 2, (rw - spec.width) // 2))


def crop_box(frame_hw: tuple[int, int], spec: InputSpec) -> tuple[float, float, float, float]:
    """The part of a source frame of ``frame_hw`` = ``(H, W)`` pixels the model sees.

    Returns ``(top, left, height, width)`` in source pixels (floats: the resize is not an
    integer factor in general): the centre crop of :func:`resize_and_crop`, mapped back
    through its resize. Both come from :func:`crop_geometry`, so they cannot drift apart.
    """
    h, w = (int(v) for v in frame_hw)
    geometry = crop_geometry((h, w), spec)
    (rh, rw), (y0, x0) = geometry.resized, geometry.offset
    sy, sx = h / rh, w / rw
    return (y0 * sy, x0 * sx, spec.height * sy, spec.width * sx)


def resize_and_crop(frames: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize (T, H, W, 3) uint8 RGB frames and centre-crop them to the spec's H×W
    (the geometry of :func:`crop_geometry`)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    t, h, w, _ = frames.shape
    (rh, rw), (y0, x0) = crop_geometry((h, w), spec)
    if (rh, rw) != (h, w):
        interp = cv2.INTER_AREA if rh < h else cv2.INTER_LINEAR
        frames = np.stack([cv2.resize(f, (rw, rh), interpolation=interp) for f in frames])
    return np.ascontiguousarray(frames[:, y0 : y0 + spec.height, x0 : x0 + spec.width])


def normalise(frames: np.ndarray | torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """uint8 RGB frames (..., T, H, W, 3) at the model's size → float (..., 3, T, H, W).

    Accepts one clip (T, H, W, 3) or a batch (N, T, H, W, 3); the channel order is
    swapped to BGR when the spec asks for it.
    """
    x = torch.as_tensor(np.asarray(frames)).float()
    if spec.channel_order == "BGR":
        x = x.flip(-1)
    x = x * spec.scale
    mean = torch.tensor(spec.mean, dtype=torch.float32)
    std = torch.tensor(spec.std, dtype=torch.float32)
    x = (x - mean) / std
    return x.movedim(-1, -4).contiguous()


def denormalise(x: torch.Tensor, spec: InputSpec) -> np.ndarray:
    """Inverse of :func:`normalise`: (3, T, H, W) → uint8 RGB (T, H, W, 3)."""
    mean = torch.tensor(spec.mean).view(3, 1, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1, 1)
    v = (x.detach().cpu().float() * std + mean) / spec.scale
    if spec.channel_order == "BGR":
        v = v.flip(0)
    return v.clamp(0, 255).round().byte().movedim(0, -1).numpy()


def preprocess(frames: np.ndarray, spec: InputSpec) -> tuple[torch.Tensor, np.ndarray]:
    """Resize, crop and normalise one clip.

    Returns
    -------
    tensor
        (1, 3, T, H, W) float32, what the model consumes.
    cropped
        (T, H, W, 3) uint8 RGB frames as the model sees them (for display).
    """
    cropped = resize_and_crop(frames, spec)
    return normalise(cropped, spec).unsqueeze(0), cropped
