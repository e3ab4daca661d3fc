"""Pictures to bytes and files: PNG / JPEG encoding, PNG files, the overlaid clip as mp4.

Files are written atomically (:mod:`xai_core.atomic`; the mp4 by
:func:`xai_core.video.write.write_video`), so a failure never leaves half a file behind.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import write_bytes
from ..errors import ParameterError
from ..video.write import write_video
from .figures import overlay_frames


def _encode(img: np.ndarray, image_format: str, **options: int) -> bytes:
    """``img`` (uint8 (H, W, 3) RGB) encoded by PIL as ``image_format``."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ParameterError(f"a {image_format} needs a uint8 (H, W, 3) image, "
                             f"got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=image_format, **options)
    return buf.getvalue()


def to_png(img: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image (downloads, exports)."""
    return _encode(img, "PNG")


def to_jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 image: ~10× faster to encode than PNG for big pictures."""
    return _encode(img, "JPEG", quality=int(quality))


def save_png(path: str | Path, img: np.ndarray) -> Path:
    """Write ``img`` as a PNG file (atomically: all or nothing) and return its path."""
    return write_bytes(path, to_png(img))


def overlay_video(path: str | Path, frames: np.ndarray, maps: np.ndarray, fps: float = 8.0, *,
                  cmap: str = "bwr", scale: float | np.ndarray | None = None, alpha: float = 0.6,
                  zoom: float = 2.0, gamma: float = 1.0, desaturate: float = 0.0) -> Path:
    """Write the overlaid clip as a browser-playable H.264 mp4 (yuv420p) and return its path."""
    if not np.isfinite(fps) or fps <= 0:
        raise ParameterError(f"fps must be > 0, got {fps}")
    video = overlay_frames(frames, maps, cmap=cmap, scale=scale, alpha=alpha, zoom=zoom,
                           gamma=gamma, desaturate=desaturate)
    return Path(write_video(path, video, fps))
