"""A :class:`Clip`: the frames a model sees, its input tensor, and where they came from.

Everything downstream (prediction, methods, decompositions, the cache, the dashboard)
consumes a ``Clip``. It is built once by :func:`load_clip` from a video file, a folder
of frame images, or an in-memory array, through the model's
:class:`~xai_core.models.spec.InputSpec` (resize, centre crop, colour order,
normalisation — all in :mod:`xai_core.video.preprocess`). Its one identity,
``content_hash``, is the hash of the normalised tensor the model sees.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import ParameterError, VideoError
from ..hashing import tensor_hash
from ..models.spec import InputSpec
from .checks import DEFAULT_LIMITS, VideoLimits
from .preprocess import preprocess
from .read import read_sample
from .sampling import sample_indices

#: Image files accepted in a frame folder.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True, eq=False)
class Clip:
    """One clip prepared for one input spec.

    Attributes
    ----------
    frames
        (T, H, W, 3) uint8 RGB, resized and centre-cropped as the model sees them.
    tensor
        (1, 3, T, H, W) float32, normalised per the spec (what the model consumes).
    source
        The file or folder path, or a name for in-memory frames.
    start, stride
        First source frame and the step between sampled frames.
    indices
        Source frame index of every clip frame, in temporal order (repeats when padded).
    padded
        True when the source was too short and the clip was loop-padded.
    input_spec
        The spec the clip was prepared with.
    fps
        Source frame rate when known (for playback and export), else ``None``.
    content_hash
        :func:`~xai_core.hashing.tensor_hash` of ``tensor``, the clip's one identity:
        equal clips hash alike whatever their source (file, folder, array) or path.
        Computed from ``tensor`` on construction, never passed in.
    """

    frames: np.ndarray
    tensor: torch.Tensor
    source: str
    start: int
    stride: int
    indices: tuple[int, ...]
    padded: bool
    input_spec: InputSpec
    fps: float | None = None
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_hash", tensor_hash(self.tensor))

    @property
    def num_frames(self) -> int:
        """Frames in the clip (the spec's ``num_frames``)."""
        return int(self.frames.shape[0])

    def __repr__(self) -> str:
        pad = ", padded" if self.padded else ""
        return (f"Clip({self.source!r}, frames {min(self.indices)}..{max(self.indices)} step "
                f"{self.stride}{pad}, {tuple(self.frames.shape)}, {self.content_hash[:12]})")


def as_rgb_frames(frames: np.ndarray) -> np.ndarray:
    """Validate in-memory frames and bring them to (T, H, W, 3) uint8 RGB.

    Accepts (T, H, W) or (T, H, W, 1) grayscale (repeated to 3 channels) and
    (T, H, W, 4) RGBA (alpha dropped). Anything else is a :class:`ParameterError`.
    """
    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        raise ParameterError(f"frames must be uint8 (0..255), got {arr.dtype}",
                             hint="Convert with np.clip(x, 0, 255).astype(np.uint8).")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4) or min(arr.shape[:3]) < 1:
        raise ParameterError(f"frames must be (T, H, W, 3) RGB, got shape {arr.shape}",
                             hint="Stack the frames along a first, time axis.")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = arr[..., :3]
    return np.ascontiguousarray(arr)


# ----------------------------------------------------------------------------- folders
def _natural_key(name: str) -> list:
    """``frame_2`` before ``frame_10``: digit runs compare as numbers."""
    return [(0, int(tok), "") if tok.isdigit() else (1, 0, tok.lower())
            for tok in re.split(r"(\d+)", name) if tok]


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder in temporal order (numeric, not lexicographic, sort).

    Lexicographic order puts ``frame_10`` before ``frame_2`` and silently scrambles time
    (a bug of several public frame loaders).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(f"{str(folder)!r} is not a folder", hint="Give a folder of frame images.")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise VideoError(f"folder {folder.name!r} contains no frame images",
                         hint=f"Put frames as {', '.join(IMAGE_EXTENSIONS)} files in it.")
    return sorted(files, key=lambda p: _natural_key(p.name))


def _read_image(path: Path) -> np.ndarray:
    # IMREAD_COLOR always gives 3 channels: grayscale expanded, alpha dropped.
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise VideoError(f"frame {path.name} cannot be read as an image",
                         hint="Remove or replace the damaged file.")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_images(files: list[Path], limits: VideoLimits) -> np.ndarray:
    frames = [_read_image(p) for p in files]
    shape = frames[0].shape
    for p, f in zip(files, frames, strict=True):
        if f.shape != shape:
            raise VideoError(f"frame {p.name} is {f.shape[1]}×{f.shape[0]} but {files[0].name} "
                             f"is {shape[1]}×{shape[0]}",
                             hint="All frames of a clip must have one size.")
    h, w = shape[:2]
    lim = limits
    if not (lim.min_width <= w <= lim.max_width and lim.min_height <= h <= lim.max_height):
        raise VideoError(f"frames are {w}×{h}, outside the limits {lim.min_width}×{lim.min_height}"
                         f"..{lim.max_width}×{lim.max_height}", hint="Resize the frames.")
    return np.stack(frames)


def load_frame_folder(folder: str | os.PathLike,
                      limits: VideoLimits = DEFAULT_LIMITS) -> np.ndarray:
    """All frames of a folder of images, (T, H, W, 3) uint8 RGB, in numeric file-name order."""
    files = list_frame_files(folder)
    if len(files) > limits.max_frames:
        raise VideoError(f"folder has {len(files)} frames, above the limit of {limits.max_frames}",
                         hint="Load a part with load_clip(folder, spec, start=...).")
    return _read_images(files, limits)


# ----------------------------------------------------------------------------- clips
def _input_spec(spec) -> InputSpec:
    # A LoadedModel (or anything with .input) is accepted for convenience.
    spec = getattr(spec, "input", spec)
    if not isinstance(spec, InputSpec):
        raise ParameterError(f"expected an InputSpec or a loaded model, got {type(spec).__name__}")
    return spec


def load_clip(source: str | os.PathLike | np.ndarray, input_spec, start: int = 0, stride: int = 1,
              *, limits: VideoLimits = DEFAULT_LIMITS, name: str | None = None) -> Clip:
    """Build the :class:`Clip` a model consumes.

    Parameters
    ----------
    source
        A video file, a folder of frame images (numeric order), or uint8 frames
        (T, H, W, 3) RGB (grayscale and RGBA are converted).
    input_spec
        The model's :class:`InputSpec` (or a ``LoadedModel``): clip length, crop size,
        normalisation.
    start, stride
        First source frame and step; shorter sources are loop-padded (``clip.padded``).
    limits
        Size and length caps for files (see :class:`~xai_core.video.checks.VideoLimits`).
    name
        Display name for in-memory frames (default ``"array"``).
    """
    spec = _input_spec(input_spec)
    fps: float | None = None
    if isinstance(source, np.ndarray):
        frames_all = as_rgb_frames(source)
        h, w = frames_all.shape[1:3]
        if not (limits.min_width <= w <= limits.max_width
                and limits.min_height <= h <= limits.max_height):
            raise VideoError(f"frames are {w}×{h}, outside the limits {limits.min_width}×"
                             f"{limits.min_height}..{limits.max_width}×{limits.max_height}",
                             hint="Resize the frames or change VideoLimits.")
        if frames_all.shape[0] > limits.max_frames:
            raise VideoError(f"{frames_all.shape[0]} frames, above the limit of "
                             f"{limits.max_frames}", hint="Pass fewer frames.")
        indices, padded = sample_indices(frames_all.shape[0], start, spec.num_frames, stride)
        frames = frames_all[indices]
        label = name or "array"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        if path.is_dir():
            files = list_frame_files(path)
            if len(files) > limits.max_frames:
                raise VideoError(f"folder has {len(files)} frames, above the limit of "
                                 f"{limits.max_frames}", hint="Raise VideoLimits.max_frames.")
            indices, padded = sample_indices(len(files), start, spec.num_frames, stride)
            unique = sorted(set(indices))  # read only the frames the clip uses
            images = _read_images([files[i] for i in unique], limits)
            pos = {i: k for k, i in enumerate(unique)}
            frames = images[[pos[i] for i in indices]]
        else:
            sample = read_sample(path, start, spec.num_frames, stride, limits)
            frames, indices, padded = sample.frames, list(sample.indices), sample.padded
            fps = sample.info.fps or None
    else:
        raise ParameterError(f"cannot load a clip from a {type(source).__name__}",
                             hint="Give a video path, a frame folder or (T, H, W, 3) uint8 frames.")
    tensor, cropped = preprocess(frames, spec)
    return Clip(frames=cropped, tensor=tensor, source=label, start=int(start), stride=int(stride),
                indices=tuple(int(i) for i in indices), padded=bool(padded), input_spec=spec,
                fps=fps)
