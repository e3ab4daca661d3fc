"""Model cards: what a model expects, where its weights come from, how big it is.

A card is built from a registered :class:`~xai_core.models.spec.ModelSpec` (bundled
models and architectures), from torchvision's pretrained weights (their own ``meta`` and
``transforms()``, through :mod:`.pretrained`), or from a Hugging Face model's config and
processor (:mod:`.huggingface`) — never from numbers typed here. ``python -m xai_core
models`` prints them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .spec import InputSpec, ModelSpec

__all__ = ["ModelCard", "hf_card", "pretrained_card", "pretrained_cards", "spec_card"]


@dataclass
class ModelCard:
    """The facts shown for one model.

    Attributes
    ----------
    name
        How to ask for it (``motion``, ``r3d_18 --weights KINETICS400_V1``, ``--hf ID``).
    frames, height, width
        The clip the network takes (T, H, W).
    resize
        What happens to a frame before the centre crop.
    sampling
        How frames are taken from a video (the frame rate the weights were evaluated at,
        when known; ``--stride`` thins a video's frames).
    normalisation
        Colour order, scaling, mean and std.
    classes
        Number of outputs (``None``: decided by a checkpoint's head).
    params
        Number of parameters.
    weights
        Where the weights come from (bundled file, URL and cache file, hub id, folder).
    status
        ``bundled``, ``cached``, ``downloaded on first use``, ``needs checkpoint`` ...
    explained_at
        CAM layer, and the token grid of a transformer.
    """

    name: str
    architecture: str
    frames: int
    height: int
    width: int
    resize: str
    sampling: str
    normalisation: str
    classes: int | None
    params: int | None
    weights: str
    status: str
    explained_at: str
    description: str = ""

    @property
    def input(self) -> str:
        return f"{self.frames}×{self.height}×{self.width}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "input": self.input}

    def text(self) -> str:
        """The card as indented lines."""
        params = f"{self.params / 1e6:.2f} M" if self.params else "unknown"
        rows = [("expects", f"{self.input} clips (T×H×W); {self.resize}; {self.sampling}"),
                ("normalisation", self.normalisation),
                ("classes", str(self.classes) if self.classes else "from the checkpoint"),
                ("parameters", params),
                ("weights", f"{self.weights} ({self.status})"),
                ("explained at", self.explained_at)]
        return "\n".join([f"{self.name} — {self.description}"]
                         + [f"  {k + ':':<15}{v}" for k, v in rows])


def _resize_text(inp: InputSpec) -> str:
    if inp.resize is not None:
        return f"resized to {inp.resize[0]}×{inp.resize[1]}, centre crop"
    side = inp.short_side or max(inp.height, inp.width)
    return f"short side to {side}, centre crop"


def _norm_text(inp: InputSpec) -> str:
    scale = "pixels/255" if abs(inp.scale - 1 / 255) < 1e-9 else f"pixels×{inp.scale:g}"
    mean = ", ".join(f"{v:g}" for v in inp.mean)
    std = ", ".join(f"{v:g}" for v in inp.std)
    return f"{inp.channel_order}, ({scale} − [{mean}]) / [{std}]"


def _sampling_text(inp: InputSpec, fps: float | None) -> str:
    if fps:
        return f"{inp.num_frames} consecutive frames at {fps:g} fps (the weights' evaluation)"
    return f"{inp.num_frames} consecutive frames (--stride N takes every N-th)"


def count_parameters(spec: ModelSpec, num_classes: int | None = None) -> int | None:
    """Parameters of ``spec``'s network, built on the ``meta`` device (no memory, no init)."""
    try:
        with torch.device("meta"):
            module = spec.build(num_classes or spec.default_num_classes)
    except Exception:  # a builder that computes on tensor values cannot run on meta
        return None
    return sum(p.numel() for p in module.parameters())


def _explained_at(spec: ModelSpec) -> str:
    grid = spec.token_grid
    if grid is None:
        return f"CAM layer {spec.cam_layer}"
    cls = f", {grid.cls_tokens} class token" if grid.cls_tokens else ""
    t, h, w = grid.stride
    return (f"CAM layer {spec.cam_layer}: tokens of {t}×{h}×{w} voxels ({grid.layout}, "
            f"{grid.order} order{cls})")


def spec_card(spec: ModelSpec) -> ModelCard:
    """The card of a registered model or architecture."""
    inp = spec.input
    if spec.weights:
        ready = Path(spec.weights).is_file()
        weights = f"bundled: {spec.weights}"
        status = "bundled" if ready else "bundled, weights missing (make train)"
    elif spec.source:
        weights, status = spec.source, "loaded"
    else:
        weights = "your checkpoint (--checkpoint FILE)"
        status = "needs checkpoint"
        if spec.architecture in _torchvision_video_archs():
            status += " or --weights (torchvision, see --pretrained)"
    classes = len(spec.class_names) if spec.class_names else None
    return ModelCard(
        name=spec.name, architecture=spec.architecture or spec.name, frames=inp.num_frames,
        height=inp.height, width=inp.width, resize=_resize_text(inp),
        sampling=_sampling_text(inp, spec.extra.get("frame_rate")),
        normalisation=_norm_text(inp), classes=classes,
        params=spec.extra.get("num_params") or count_parameters(spec, classes),
        weights=weights, status=status, explained_at=_explained_at(spec),
        description=spec.description)


def _torchvision_video_archs() -> set[str]:
    # names only, without importing torchvision (zoo.py registers exactly these)
    return {"r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t",
            "swin3d_s", "swin3d_b"}


def pretrained_card(arch: str, weights: Any) -> ModelCard:
    """The card of torchvision weights (a ``WeightsEnum`` member or its name)."""
    from .pretrained import pretrained_spec, resolve_weights, weights_file  # torchvision: lazy

    member = resolve_weights(arch, weights) if isinstance(weights, str) else weights
    spec = pretrained_spec(arch, member)
    card = spec_card(spec)
    path = weights_file(member)
    size = spec.extra.get("file_size_mb")
    card.name = f"{arch} --weights {member.name}"
    card.weights = f"{member.url} → {path}"
    card.status = "cached" if path.is_file() else (
        f"downloaded on first use, {size:.0f} MB" if size else "downloaded on first use")
    return card


def pretrained_cards() -> list[ModelCard]:
    """Cards of every pretrained video classifier torchvision ships."""
    import importlib

    from .pretrained import video_architectures

    tvm = importlib.import_module("torchvision.models")
    return [pretrained_card(arch, member) for arch in video_architectures()
            for member in tvm.get_model_weights(arch)]


def hf_card(source: str | Path, model: Any = None) -> ModelCard:
    """The card of a Hugging Face video classifier: ``model``, the
    :class:`~xai_core.models.registry.LoadedModel` of ``source`` when it is loaded already
    (the dashboard's), else loaded here (weights, config, processor)."""
    if model is None:
        from .huggingface import load_hf  # transformers: lazy

        model = load_hf(source, device="cpu")
    card = spec_card(model.spec)
    card.name = f"--hf {source}"
    card.classes = model.num_classes
    card.weights = str(model.spec.source)
    card.status = "folder" if Path(str(model.spec.source)).is_dir() else "Hugging Face cache"
    return card
