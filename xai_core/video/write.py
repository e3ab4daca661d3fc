"""Writing browser-playable video: H.264, yuv420p, mp4, written atomically.

OpenCV can only write ``mp4v`` (MPEG-4 part 2), which browsers do not play; PyAV's
``libx264`` gives the H.264 / yuv420p / mp4 combination every browser does. yuv420p
subsamples chroma 2×2, so odd frame sizes are padded by one edge row/column (replicated,
not black, so no artificial edge appears). The file is written beside its destination
and moved into place (:func:`xai_core.atomic.atomic_path`): a failure never leaves half
a video behind.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import ParameterError, VideoError


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Pad (T, H, W, 3) frames by replicating the last row/column to even H and W."""
    t, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if not ph and not pw:
        return frames
    return np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0, *,
                crf: int = 18, preset: str = "medium") -> Path:
    """Write uint8 RGB frames (T, H, W, 3) as an H.264 yuv420p mp4 any browser plays.

    Parameters
    ----------
    path
        Destination (``.mp4``); its folder must exist.
    frames
        uint8 (T, H, W, 3) RGB, or (T, H, W) grayscale.
    fps
        Frame rate (> 0).
    crf, preset
        x264 quality (0 = lossless luma, 18 ≈ visually lossless, 23 = x264's default) and
        speed/size trade-off.

    Returns
    -------
    Path
        The written file.
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ParameterError(f"frames must be (T, H, W, 3) with T ≥ 1, got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ParameterError(f"frames must be uint8, got {frames.dtype}",
                             hint="Convert with np.clip(x, 0, 255).astype(np.uint8).")
    if not (fps > 0 and np.isfinite(fps)):
        raise ParameterError(f"fps must be a positive number, got {fps!r}")
    path = Path(path)
    if not path.parent.is_dir():
        raise VideoError(f"folder {str(path.parent)!r} does not exist", hint="Create it first.")
    frames = pad_to_even(frames)
    try:
        with atomic_path(path) as tmp:
            _encode(tmp, frames, fps, crf, preset)
    except ImportError:  # no PyAV: an installation problem, not a failed write
        raise
    except Exception as exc:
        raise VideoError(f"could not write {path.name}: {exc}",
                         hint="Check the disk space and that the folder is writable.") from exc
    return path


def _encode(dest: Path, frames: np.ndarray, fps: float, crf: int, preset: str) -> None:
    """Encode even-sized uint8 RGB ``frames`` into the mp4 ``dest`` with libx264."""
    # PyAV is imported on use: ~40 ms that importing xai_core.video should not pay.
    import av

    _, h, w, _ = frames.shape
    # faststart puts the index first, so browsers start playing before the end arrives.
    with av.open(str(dest), mode="w", format="mp4",
                 options={"movflags": "+faststart"}) as container:
        # Fraction keeps e.g. 29.97 exact enough; the time base follows from it.
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
