"""Hugging Face video classifiers (``transformers``): VideoMAE, TimeSformer, ViViT.

``load_model(hf="MCG-NJU/videomae-base-finetuned-kinetics")`` or
``load_model(hf="path/to/folder")`` (a folder written by ``save_pretrained``) loads the
model with ``AutoModelForVideoClassification`` and wraps it so that it behaves like every
other :class:`~xai_core.models.registry.LoadedModel`: (B, 3, T, H, W) clips in, logits
(B, K) out (:class:`HFVideoClassifier` permutes to the (B, T, 3, H, W) ``pixel_values``
transformers expects and returns ``.logits``).

What the model expects comes from its own files, never retyped:

* class names — ``config.id2label``; frames per clip — ``config.num_frames``;
* resize (``size``: ``shortest_edge`` or ``height``/``width``), centre crop
  (``crop_size``), scaling and mean/std — the model's video (or image) processor
  (``AutoVideoProcessor``, else ``AutoImageProcessor``). The scaling and normalisation
  are *measured*: the processor is run on an all-black and an all-white clip and the
  affine map it applies per channel is read off, so processors with an offset
  (ViViT rescales to [-1, 1] before normalising) come out right without special cases.

Nothing is downloaded unless the hub id is missing from the Hugging Face cache and a
network is there; with ``HF_HUB_OFFLINE=1`` only the cache and local folders are read.
Weights are read by transformers: ``safetensors`` files, or ``torch.load`` with
``weights_only=True``; ``trust_remote_code`` stays off, so no code from a model repository
runs.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..device import resolve_device
from ..errors import CheckpointError
from ..hashing import state_dict_hash
from .registry import LoadedModel
from .spec import InputSpec, ModelSpec, TokenGrid

__all__ = ["FAMILIES", "HFVideoClassifier", "hf_spec", "load_hf", "processor_input_spec"]


class HFVideoClassifier(nn.Module):
    """A transformers video classifier as a (B, 3, T, H, W) → logits (B, K) module.

    Parameters
    ----------
    model
        An ``AutoModelForVideoClassification`` model (kept as ``self.model``, so its layers
        are ``model.<name>`` here).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x.permute(0, 2, 1, 3, 4)).logits


@dataclass(frozen=True)
class Family:
    """Where a family's transformer blocks are and how its tokens lie on the clip.

    Attributes
    ----------
    base
        Attribute of the classifier holding the backbone (``videomae``).
    blocks
        Dotted path (inside the backbone) of the ``ModuleList`` of blocks.
    cls_tokens
        Leading class tokens in the hidden states.
    order
        Token order of the patch tokens (``thw``, or TimeSformer's ``hwt``).
    title
        Name and paper, for the model card.
    """

    base: str
    blocks: str
    cls_tokens: int
    order: str
    title: str

    def stride(self, config: Any) -> tuple[int, int, int]:
        tubelet = getattr(config, "tubelet_size", 1)
        if isinstance(tubelet, (list, tuple)):
            return tuple(int(v) for v in tubelet)
        p = config.patch_size
        return int(tubelet), int(p), int(p)


FAMILIES: dict[str, Family] = {
    "videomae": Family("videomae", "encoder.layer", 0, "thw",
                       "VideoMAE (Tong et al. 2022)"),
    "timesformer": Family("timesformer", "encoder.layer", 1, "hwt",
                          "TimeSformer (Bertasius et al. 2021)"),
    "vivit": Family("vivit", "layers", 1, "thw", "ViViT (Arnab et al. 2021)"),
}


def _transformers() -> Any:
    # Imported on use: transformers takes seconds to import.
    return importlib.import_module("transformers")


def _cache_folder() -> str:
    try:
        return str(importlib.import_module("huggingface_hub.constants").HF_HUB_CACHE)
    except Exception:  # pragma: no cover - the constant has been there since hub 0.14
        return "~/.cache/huggingface/hub"


def _reference(source: str | Path) -> str:
    """A local folder as an absolute path, or the hub id as given."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{str(source)!r} is a file; a Hugging Face model is a folder",
                                  hint="Give the folder written by save_pretrained, or a hub id.")
        return str(path.resolve())
    return str(source)


def _unavailable(source: str, exc: Exception) -> CheckpointError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CheckpointError(
        f"cannot load the Hugging Face model {source!r}: no such folder, and the hub id is not "
        f"in the Hugging Face cache or cannot be downloaded ({first})",
        hint=f"Give a folder written by save_pretrained, or download the model where there is "
             f"a network (`hf download {source}`) into the cache ({_cache_folder()}).")


def _load_processor(ref: str) -> Any:
    tf = _transformers()
    errors = []
    for cls in (tf.AutoVideoProcessor, tf.AutoImageProcessor):
        try:
            return cls.from_pretrained(ref, trust_remote_code=False)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            errors.append(exc)
    raise CheckpointError(
        f"the Hugging Face model {ref!r} has no video or image processor configuration",
        hint="Save the model's processor next to it (processor.save_pretrained(folder)): its "
             "resize, crop, mean and std are how the model must be fed.") from errors[-1]


def _size(obj: Any, key: str) -> int | None:
    if obj is None:
        return None
    value = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
    return int(value) if value else None


def _run_processor(processor: Any, frames: np.ndarray) -> torch.Tensor:
    try:
        out = processor(videos=[frames], return_tensors="pt")
    except TypeError:  # image processors take the videos positionally
        out = processor([list(frames)], return_tensors="pt")
    return torch.as_tensor(out["pixel_values"], dtype=torch.float64)


def processor_input_spec(processor: Any, num_frames: int, image_size: int) -> InputSpec:
    """The :class:`InputSpec` a transformers processor stands for.

    Sizes are read from ``size`` / ``crop_size``; scaling and mean/std are measured by
    running the processor on a black and a white clip (see the module doc).
    """
    do_resize = getattr(processor, "do_resize", True)
    size = getattr(processor, "size", None)
    crop = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop",
                                                            False) else None
    resize, short = None, None
    if do_resize and _size(size, "shortest_edge"):
        short = _size(size, "shortest_edge")
    elif do_resize and _size(size, "height") and _size(size, "width"):
        resize = (_size(size, "height"), _size(size, "width"))
    if crop is not None and _size(crop, "height") and _size(crop, "width"):
        height, width = _size(crop, "height"), _size(crop, "width")
    elif resize is not None:
        height, width = resize
    else:
        height = width = int(image_size)
    # one frame per probe value: 0 and 255 through the processor's rescale and normalise
    probe = np.zeros((num_frames, height, width, 3), np.uint8)
    low = _run_processor(processor, probe)[0, 0].mean(dim=(1, 2))
    high = _run_processor(processor, probe + 255)[0, 0].mean(dim=(1, 2))
    gain = (high - low) / 255.0  # per channel: normalised = gain · pixel + low
    if not torch.all(gain > 0):
        raise CheckpointError("the model's processor does not map brighter pixels to larger "
                              "values", hint="Check its rescale and normalisation settings.")
    scale = float(getattr(processor, "rescale_factor", 1.0)) if getattr(
        processor, "do_rescale", True) else 1.0
    std = scale / gain
    mean = -low * std
    return InputSpec(num_frames=int(num_frames), height=height, width=width, resize=resize,
                     short_side=short, channel_order="RGB", scale=scale,
                     mean=tuple(round(float(v), 6) for v in mean),
                     std=tuple(round(float(v), 6) for v in std))


def hf_spec(config: Any, input_spec: InputSpec, source: str, num_params: int) -> ModelSpec:
    """The :class:`ModelSpec` of a transformers video classifier of a known family.

    Grad-CAM runs on the tokens of a block: the last block's output when the head averages
    every token (VideoMAE's mean pooling), else the input of the last block (the head reads
    one token, so the last block's other outputs get no gradient). Saliency Tubes are
    refused: no head here is a global pool feeding the linear classifier directly
    (VideoMAE normalises the pooled features first).
    """
    family = FAMILIES[config.model_type]
    layers = int(config.num_hidden_layers)
    pooled = bool(getattr(config, "use_mean_pooling", False))
    index = layers - 1 if pooled else layers - 2
    prefix = f"model.{family.base}"
    cam = f"{prefix}.{family.blocks}.{index}" if index >= 0 else f"{prefix}.embeddings"
    cls = family.cls_tokens
    frozen = copy.deepcopy(config)

    def build(num_classes: int) -> nn.Module:
        cfg = copy.deepcopy(frozen)
        cfg.num_labels = num_classes
        model = _transformers().AutoModelForVideoClassification.from_config(cfg)
        return HFVideoClassifier(model)

    return ModelSpec(
        name=f"hf:{Path(source).name or source}",
        build=build,
        input=input_spec,
        description=f"Hugging Face {family.title}, "
                    + ("mean-pooled tokens" if pooled else "class-token" if cls else
                       "first-token") + " head (no Saliency Tubes)",
        cam_layer=cam,
        classifier=None,
        default_num_classes=int(config.num_labels),
        architecture=f"hf-{config.model_type}",
        source=source,
        token_grid=TokenGrid(stride=family.stride(config), cls_tokens=cls, order=family.order),
        extra={"num_params": num_params, "model_type": config.model_type},
    )


def load_hf(source: str | Path, *, device: str | torch.device | None = None) -> LoadedModel:
    """Load a Hugging Face video classifier from a hub id or a ``save_pretrained`` folder.

    Parameters
    ----------
    source
        Hub id (from the cache, or downloaded when a network is there) or local folder.
    device
        ``cpu``, ``cuda`` or ``None`` for automatic.

    Raises
    ------
    CheckpointError
        Missing offline, not a video classifier, a family this package cannot place on
        its token grid, or no processor configuration.
    """
    tf = _transformers()
    ref = _reference(source)
    try:
        config = tf.AutoConfig.from_pretrained(ref, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise _unavailable(str(source), exc) from exc
    if config.model_type not in FAMILIES:
        raise CheckpointError(
            f"Hugging Face model type {config.model_type!r} is not supported",
            hint="Supported video classifiers: " + ", ".join(
                f.title for f in FAMILIES.values()) + ".")
    try:
        model = tf.AutoModelForVideoClassification.from_pretrained(
            ref, trust_remote_code=False, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise _unavailable(str(source), exc) from exc
    processor = _load_processor(ref)
    spec_in = processor_input_spec(processor, int(config.num_frames), int(config.image_size))
    module = HFVideoClassifier(model)
    num_params = sum(p.numel() for p in module.parameters())
    spec = hf_spec(config, spec_in, ref, num_params)
    labels = config.id2label or {}
    names = [str(labels.get(i, labels.get(str(i), f"class {i}")))
             for i in range(int(config.num_labels))]
    dev = resolve_device(device)
    module = module.to(dev).eval()
    return LoadedModel(module, spec, names, state_dict_hash(module.state_dict()),
                       f"hf:{Path(ref).name if Path(ref).is_dir() else ref}", dev)
