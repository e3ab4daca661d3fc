"""torchvision's pretrained video classifiers, by the name of their weights.

``load_model(arch="r3d_18", weights="KINETICS400_V1")`` (or the full
``"R3D_18_Weights.KINETICS400_V1"``, or ``"DEFAULT"``) works for every video classifier
torchvision ships: ``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ``s3d``, ``mvit_v1_b``,
``mvit_v2_s``, ``swin3d_t``, ``swin3d_s``, ``swin3d_b``. What the network expects is read
from the weights, never retyped:

* class names — ``weights.meta["categories"]`` (Kinetics-400);
* resize, centre crop, mean and std — ``weights.transforms()`` (torchvision's
  ``VideoClassification`` preset: ``resize_size``, ``crop_size``, ``mean``, ``std``; pixels
  scaled to [0, 1] first);
* clip length — the ``meta`` has no field for it. The number is torchvision's stated
  evaluation setting, ``clip_len=N`` in ``meta["_docs"]`` (16 for the ResNets and MViT,
  32 for Swin3D, 128 for S3D), falling back to ``meta["min_temporal_size"]``; the frame
  rate the clips were sampled at (``frame_rate=``, 15 or 7.5 fps) comes from the same text.

The weights file is fetched on first use by torchvision's own mechanism
(``weights.get_state_dict`` → ``torch.hub.load_state_dict_from_url``, with a progress bar
and the sha256 prefix in the file name checked) into the torch hub cache,
``$TORCH_HOME/hub/checkpoints/`` (default ``~/.cache/torch``). It is read with
``weights_only=True``: ``load_state_dict_from_url`` defaults to ``weights_only=False``, so
this module always passes it. Without a network, one message names the file and the
folder to put it in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import re
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from ..device import resolve_device
from ..errors import CheckpointError, ParameterError
from ..hashing import state_dict_hash
from .registry import LoadedModel, build_with_state, get_spec
from .spec import InputSpec, ModelSpec

__all__ = ["clip_length", "input_spec", "load_pretrained", "pretrained_spec", "resolve_weights",
           "video_architectures", "weights_file"]


def _video_models() -> Any:
    # Imported on use: importing torchvision costs seconds (sympy), which listing the zoo or
    # running a bundled model should not pay.
    return importlib.import_module("torchvision.models")


def video_architectures() -> list[str]:
    """Names of torchvision's video classifiers (``torchvision.models.video``)."""
    tvm = _video_models()
    return sorted(tvm.list_models(module=importlib.import_module("torchvision.models.video")))


def resolve_weights(arch: str, weights: str) -> Any:
    """The ``WeightsEnum`` member ``weights`` of torchvision architecture ``arch``.

    Parameters
    ----------
    arch
        A torchvision video classifier (``r3d_18`` ...).
    weights
        A member name (``KINETICS400_V1``, ``DEFAULT``; any case) or the full form
        ``R3D_18_Weights.KINETICS400_V1``.

    Raises
    ------
    ParameterError
        Unknown architecture, unknown weights, or weights of another architecture; the
        message lists what exists.
    """
    archs = video_architectures()
    if arch not in archs:
        raise ParameterError(f"{arch!r} has no pretrained video weights in torchvision",
                             hint="Architectures with weights: " + ", ".join(archs) + ".")
    enum = _video_models().get_model_weights(arch)
    members = {name.upper(): member for name, member in enum.__members__.items()}
    text = str(weights).strip()
    owner, dot, member = text.rpartition(".")
    if dot and owner != enum.__name__:
        raise ParameterError(f"weights {text!r} do not belong to {arch} (its weights are "
                             f"{enum.__name__})",
                             hint=f"Use e.g. --weights {_names(enum)[0]} with --arch {arch}.")
    found = members.get((member if dot else text).upper())
    if found is None:
        raise ParameterError(f"{arch} has no weights {text!r}",
                             hint="Its weights: " + ", ".join(_names(enum)) + ", DEFAULT.")
    return found


def _names(enum: Any) -> list[str]:
    return [m.name for m in enum]


def clip_length(weights: Any) -> int:
    """Frames per clip of ``weights``: torchvision's stated ``clip_len`` (see module doc)."""
    found = re.search(r"clip_len=(\d+)", str(weights.meta.get("_docs", "")))
    if found:
        return int(found.group(1))
    if weights.meta.get("min_temporal_size"):
        return int(weights.meta["min_temporal_size"])
    raise CheckpointError(f"torchvision does not say how many frames {weights} take",
                          hint="Load the architecture with --checkpoint instead.")


def frame_rate(weights: Any) -> float | None:
    """Frame rate (fps) the clips were sampled at in torchvision's evaluation, if stated."""
    found = re.search(r"frame_rate=([\d.]+)", str(weights.meta.get("_docs", "")))
    return float(found.group(1)) if found else None


def input_spec(weights: Any) -> InputSpec:
    """The :class:`InputSpec` of ``weights``: its ``transforms()`` and its clip length.

    ``resize_size`` of two numbers is an exact resize (128×171); of one number, the short
    side (256, aspect kept). Pixels are scaled by 1/255 (``convert_image_dtype``) before
    the mean and std.
    """
    t = weights.transforms()
    resize = [int(v) for v in t.resize_size]
    crop = [int(v) for v in t.crop_size]
    return InputSpec(
        num_frames=clip_length(weights), height=crop[0], width=crop[-1],
        resize=(resize[0], resize[1]) if len(resize) == 2 else None,
        short_side=resize[0] if len(resize) == 1 else None,
        channel_order="RGB", scale=1.0 / 255.0,
        mean=tuple(float(v) for v in t.mean), std=tuple(float(v) for v in t.std))


def weights_file(weights: Any) -> Path:
    """Where torchvision keeps ``weights``: ``<torch hub dir>/checkpoints/<file of the URL>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def pretrained_spec(arch: str, weights: Any) -> ModelSpec:
    """The zoo's spec of ``arch`` with the input, classes and provenance of ``weights``."""
    base = get_spec(arch)
    meta = weights.meta
    fps = frame_rate(weights)
    return dataclasses.replace(
        base, input=input_spec(weights), class_names=list(meta["categories"]),
        default_num_classes=len(meta["categories"]), source=weights.url,
        description=f"{base.description}; torchvision weights {weights}",
        extra={**base.extra, "weights": str(weights), "frame_rate": fps,
               "num_params": meta.get("num_params"), "recipe": meta.get("recipe"),
               "metrics": meta.get("_metrics"), "file_size_mb": meta.get("_file_size")})


def fetch_state_dict(weights: Any) -> dict[str, torch.Tensor]:
    """The state dict of ``weights`` through torchvision's own loader (cached, or downloaded
    with a progress bar), read with ``weights_only=True``.

    Raises
    ------
    CheckpointError
        When it cannot be downloaded (no network, bad hash) or the cached file cannot be
        read; the message names the exact file and the folder to put it in.
    """
    path = weights_file(weights)
    cached = path.is_file()
    try:
        # torch.hub announces a download on stdout: keep stdout for results (--json)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            state = weights.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except Exception as exc:  # URLError, HTTPError, OSError, RuntimeError (hash), Unpickling...
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(
            ": ")
        if cached:
            raise CheckpointError(
                f"the cached weights {path} of {weights} cannot be read ({reason})",
                hint=f"Delete the file to download it again, or replace it by {weights.url}.",
            ) from exc
        raise CheckpointError(
            f"the weights {weights} could not be downloaded from {weights.url} ({reason})",
            hint=f"Without a network, fetch that file elsewhere and put it into {path.parent} "
                 f"as {path.name} (set TORCH_HOME to use another folder).") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors",
                              hint=f"Delete it to download {weights.url} again.")
    return state


def load_pretrained(arch: str, weights: str, *,
                    device: str | torch.device | None = None) -> LoadedModel:
    """torchvision architecture ``arch`` with its pretrained ``weights`` (see module doc).

    Parameters
    ----------
    arch
        ``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ``s3d``, ``mvit_v1_b``, ``mvit_v2_s``,
        ``swin3d_t``, ``swin3d_s`` or ``swin3d_b``.
    weights
        The weights' name, e.g. ``KINETICS400_V1`` or ``R3D_18_Weights.KINETICS400_V1``.
    device
        ``cpu``, ``cuda`` or ``None`` for automatic.
    """
    member = resolve_weights(arch, weights)
    spec = pretrained_spec(arch, member)
    state = fetch_state_dict(member)
    names = list(spec.class_names or [])
    module = build_with_state(spec, len(names), state, weights_file(member).name)
    dev = resolve_device(device)
    module = module.to(dev).eval()
    return LoadedModel(module, spec, names, state_dict_hash(state), f"{arch} ({member.name})",
                       dev)
