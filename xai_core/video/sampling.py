"""Which source frames make a clip: a start, a length and a stride, loop-padded.

Clips shorter than the requested length are **loop-padded** (the sampled frames are
repeated from the first again), as the C3D / 3D-ResNet training code does; the caller is
told, because the jump back to the first frame is motion that is not in the video. The
indices are always in temporal order before the padding starts.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError


def sample_indices(num_available: int, start: int, num_frames: int,
                   stride: int) -> tuple[list[int], bool]:
    """Source indices of a clip of ``num_frames`` from ``start`` every ``stride`` frames.

    When the video ends first, the indices read so far are repeated from the first
    again (loop padding) and ``padded`` is True.

    Parameters
    ----------
    num_available
        Frames in the source.
    start, num_frames, stride
        First frame, clip length and step between frames.

    Returns
    -------
    indices, padded

    Raises
    ------
    ParameterError
        A non-integer parameter, ``stride`` or ``num_frames`` below 1, or ``start``
        outside the source.
    """
    _check_sampling(num_available, start, num_frames, stride)
    avail = list(range(start, num_available, stride))[:num_frames]
    padded = len(avail) < num_frames
    indices = [avail[k % len(avail)] for k in range(num_frames)]
    return indices, padded


def _check_sampling(num_available: int, start: int, num_frames: int, stride: int) -> None:
    for name, v in (("start", start), ("num_frames", num_frames), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ParameterError(f"{name} must be an integer, got {v!r}")
    if stride < 1:
        raise ParameterError(f"frame stride must be at least 1, got {stride}",
                             hint="Use --stride 1 for consecutive frames.")
    if num_frames < 1:
        raise ParameterError(f"a clip needs at least one frame, got num_frames={num_frames}")
    if not 0 <= start < num_available:
        raise ParameterError(f"start frame {start} is outside the video "
                             f"(frames 0..{num_available - 1})",
                             hint=f"Use a start between 0 and {num_available - 1}.")
