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
        ``None`` to resize the short side (to ``short_side``) keeping aspect.
    channel_order
        ``"RGB"`` or ``"BGR"`` (C3D ports trained on OpenCV frames expect BGR).
    scale
        Multiplier applied to 0..255 pixel values before mean/std (1/255 or 1).
    mean, std
        Per-channel statistics in the *scaled* units, in ``channel_order``.
    short_side
        With ``resize=None``: the length the short side is scaled to before the centre
        crop (torchvision's ``resize_size=[256]``, Hugging Face's ``shortest_edge``);
        ``None`` means ``max(height, width)``.
    """

    num_frames: int = 16
    height: int = 112
    width: int = 112
    resize: tuple[int, int] | None = None
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    short_side: int | None = None

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
            # only when set: the dict (a cache-key ingredient) of older specs is unchanged
            **({"short_side": self.short_side} if self.short_side is not None else {}),
        }


@dataclass(frozen=True)
class TokenGrid:
    """Where a transformer's tokens sit on the clip, for CAM methods (a reshape per family).

    A CNN layer's output is already a (B, C, T', H', W') map; a transformer's is a token
    sequence (B, N, C) — or, for Swin, a channels-last (B, T', H', W', C) map — that has
    to be put back on its spatio-temporal grid before Grad-CAM can weight it.

    Parameters
    ----------
    stride
        Clip voxels per token ``(t, h, w)`` at the CAM layer: the tubelet / patch size
        times any later pooling or patch merging. ``T' = T // t`` etc.
    cls_tokens
        Leading tokens not on the grid (a class token), dropped before the reshape.
    layout
        ``"tokens"``: (B, N, C) sequence; ``"channels_last"``: (B, T', H', W', C).
    order
        Axis order of the token sequence, outer to inner: ``"thw"`` (most models) or
        ``"hwt"`` (TimeSformer's divided space-time layout).
    """

    stride: tuple[int, int, int]
    cls_tokens: int = 0
    layout: str = "tokens"
    order: str = "thw"

    def __post_init__(self) -> None:
        if self.layout not in ("tokens", "channels_last"):
            raise ValueError(f"layout must be tokens or channels_last, not {self.layout!r}")
        if sorted(self.order) != ["h", "t", "w"]:
            raise ValueError(f"order must be a permutation of 'thw', not {self.order!r}")

    def grid(self, clip: tuple[int, int, int]) -> tuple[int, int, int]:
        """(T', H', W') of a clip of (T, H, W) voxels (at least 1 per axis)."""
        return tuple(max(1, -(-d // s)) for d, s in zip(clip, self.stride, strict=True))

    def to_map(self, output: object, clip: tuple[int, int, int]) -> torch.Tensor:
        """A layer's output as a (B, C, T', H', W') map on this grid.

        Parameters
        ----------
        output
            What the layer returned: a tensor, or a tuple whose first item is the tensor
            (Hugging Face blocks); MViT blocks return ``(tokens, (T', H', W'))``, and that
            grid is used as it is.
        clip
            (T, H, W) of the clip, for the grid when the layer does not give it.

        Raises
        ------
        ValueError
            When the number of tokens does not fit the grid.
        """
        thw = None
        if isinstance(output, (tuple, list)):
            if (len(output) > 1 and isinstance(output[1], (tuple, list)) and len(output[1]) == 3
                    and all(isinstance(v, int) for v in output[1])):
                thw = tuple(output[1])
            output = output[0]
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"the layer gives {type(output).__name__}, not a tensor")
        if self.layout == "channels_last":
            if output.ndim != 5:
                raise ValueError(f"expected (B, T', H', W', C) features, got {tuple(output.shape)}")
            return output.permute(0, 4, 1, 2, 3)
        if output.ndim != 3:
            raise ValueError(f"expected (B, N, C) tokens, got {tuple(output.shape)}")
        tokens = output[:, self.cls_tokens:]
        t, h, w = thw or self.grid(clip)
        if tokens.shape[1] != t * h * w:
            raise ValueError(f"{tokens.shape[1]} tokens do not fill a {t}×{h}×{w} grid")
        sizes = {"t": t, "h": h, "w": w}
        b, c = tokens.shape[0], tokens.shape[2]
        cube = tokens.reshape(b, *(sizes[a] for a in self.order), c)
        # to (B, C, T', H', W'): channel first, then the axes in t, h, w order
        return cube.permute(0, 4, *(1 + self.order.index(a) for a in "thw"))


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
    token_grid
        For transformers: how the CAM layer's tokens map onto the clip
        (:class:`TokenGrid`); ``None`` for CNNs, whose layers give (B, C, T', H', W').
    source
        Where the weights come from, for the model card (a URL, a folder, "bundled").
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
    token_grid: TokenGrid | None = None
    source: str | None = None

    @property
    def is_transformer(self) -> bool:
        """Whether the network is a video transformer (its layers give tokens)."""
        return self.token_grid is not None
