"""What a model expects as input and how it is built: the contract of the model zoo.

An :class:`InputSpec` says how raw RGB uint8 frames become the tensor a network was
trained on (size, colour order, scaling, mean/std). The zβ (ZBox) rule of deep Taylor
decomposition needs the lowest and highest value a *normalised* pixel can take; they are
derived here, per channel, from the same spec, never hard-coded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class InputSpec:
    """How frames are prepared for a model.

    Parameters
    ----------
    num_frames, height, width
        Clip shape the network consumes (T, H, W).
    resize
        ``(height, width)`` the frames are resized to before the centre crop, or
        ``None`` to resize the short side to ``max(height, width)`` keeping aspect.
    channel_order
        ``"RGB"`` or ``"BGR"`` (C3D ports trained on OpenCV frames expect BGR).
    scale
        Multiplier applied to 0..255 pixel values before mean/std (1/255 or 1).
    mean, std
        Per-channel statistics in the *scaled* units, in ``channel_order``.
    """

    num_frames: int = 16
    height: int = 112
    width: int = 112
    resize: tuple[int, int] | None = None
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, not {self.channel_order!r}")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of one normalised clip."""
        return (3, self.num_frames, self.height, self.width)

    def pixel_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest normalised value per channel, shaped (1, 3, 1, 1, 1).

        These are the box constraints of the zβ rule (Montavon et al. 2017): pixel 0
        and pixel 255 pushed through this spec's scaling and normalisation.
        """
        mean = torch.tensor(self.mean, dtype=torch.float32)
        std = torch.tensor(self.std, dtype=torch.float32)
        low = (0.0 * self.scale - mean) / std
        high = (255.0 * self.scale - mean) / std
        return low.view(1, 3, 1, 1, 1), high.view(1, 3, 1, 1, 1)

    def to_dict(self) -> dict:
        return {
            "num_frames": self.num_frames,
            "height": self.height,
            "width": self.width,
            "resize": list(self.resize) if self.resize else None,
            "channel_order": self.channel_order,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
        }


@dataclass
class ModelSpec:
    """A registered architecture: how to build it and how to explain it.

    Parameters
    ----------
    name
        Registry key (``small-c3d``, ``c3d``, ``r3d_18`` ...).
    build
        ``build(num_classes) -> nn.Module`` with random weights.
    input
        The :class:`InputSpec` of the network.
    description
        One line for ``python -m xai_core models``.
    cam_layer
        Dotted module path of the layer Grad-CAM uses by default (the last conv block).
    classifier
        Dotted path of the final ``nn.Linear`` when the head is global-pool + linear
        (needed by Saliency Tubes / CAM), else ``None``.
    state_dict_adapter
        Optional function mapping a loaded state dict onto this module's key names
        (e.g. strip ``module.`` prefixes of DataParallel checkpoints).
    """

    name: str
    build: Callable[[int], nn.Module]
    input: InputSpec
    description: str
    cam_layer: str
    classifier: str | None = None
    default_num_classes: int = 8
    state_dict_adapter: Callable[[dict], dict] | None = None
    # filled for bundled models: weights file + manifest, class names
    weights: str | None = None
    class_names: Sequence[str] | None = None
    architecture: str | None = None
    extra: dict = field(default_factory=dict)


def get_submodule(model: nn.Module, dotted: str) -> nn.Module:
    """Return ``model.<dotted>``, with a clear error when the path does not exist."""
    try:
        return model.get_submodule(dotted)
    except AttributeError as exc:  # pragma: no cover - message only
        names = [n for n, _ in model.named_modules() if n][:40]
        raise ValueError(f"model has no layer {dotted!r}; some layers are: {names}") from exc
