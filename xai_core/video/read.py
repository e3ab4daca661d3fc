"""Reading videos: probe, sample a clip, slide windows — decoding only the frames needed.

A file is checked (:mod:`~xai_core.video.checks`), its container header parsed once
(:mod:`~xai_core.video.container`), then read by the first backend of :data:`_DECODERS`
(:mod:`~xai_core.video.decoders`: decord, OpenCV, PyAV) that opens it and decodes its
first frame. When a backend later fails on the frames asked for (damaged streams;
decord and OpenCV open AV1 files they cannot decode), the others are tried in the same
order by the same loop before giving up. Frames come back as (T, H, W, 3) uint8 RGB in
the order asked for.

Everything a user can get wrong — not a video, a corrupt or truncated file, no frames,
an absurd size — becomes a :class:`~xai_core.errors.VideoError` saying what is wrong and
what to do; bad sampling parameters are a :class:`~xai_core.errors.ParameterError`.
Short clips are loop-padded (see :mod:`~xai_core.video.sampling`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np

from ..errors import ParameterError, VideoError
from .checks import (
    DEFAULT_LIMITS,
    VIDEO_EXTENSIONS,
    VideoLimits,
    check_file,
    check_stream,
    undecodable,
    unreadable,
)
from .container import read_header
from .decoders import Decoder, DecordDecoder, OpenCVDecoder, PyAVDecoder, quiet_opencv
from .sampling import sample_indices

__all__ = ["DEFAULT_LIMITS", "VIDEO_EXTENSIONS", "FrameSample", "VideoInfo", "VideoLimits",
           "probe", "read_frames", "read_sample", "sample_indices", "sliding_windows"]

log = logging.getLogger(__name__)

#: The backends, tried in this order: the first that opens a file and decodes its first
#: frame reads it; when it fails on later frames the others are tried in this order.
_DECODERS: tuple[type[Decoder], ...] = (DecordDecoder, OpenCVDecoder, PyAVDecoder)
# The names the backends had when they were defined in this module.
_DecordDecoder, _OpenCVDecoder, _PyAVDecoder = DecordDecoder, OpenCVDecoder, PyAVDecoder

_T = TypeVar("_T")


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a file without decoding it all."""

    path: str
    frames: int
    fps: float
    width: int
    height: int
    duration: float  # seconds (frames / fps)
    codec: str
    reader: str  # "decord", "opencv" or "pyav": the decoder that will read the frames


class FrameSample(NamedTuple):
    """A sampled clip: frames (T, H, W, 3) uint8 RGB and where they came from."""

    frames: np.ndarray
    indices: tuple[int, ...]
    padded: bool
    info: VideoInfo


# ----------------------------------------------------------------------------- one file
class _Video:
    """One opened file: its header, the decoder reading it and what :func:`probe` says.

    Opening checks the file and ``limits`` and raises :class:`VideoError` when no backend
    can read it; use as a context manager so the decoder is closed.
    """

    def __init__(self, path: Path, limits: VideoLimits) -> None:
        check_file(path, limits)
        self.path = path
        self.header = read_header(path)
        failures: list[str] = []
        found = self._first_working(_can_read, failures)
        if found is None:
            raise unreadable(path, self.header.has_video, self.header.codec, failures)
        self.decoder = dec = found[0]
        fps = dec.fps if dec.fps > 0 and math.isfinite(dec.fps) else 0.0
        self.info = VideoInfo(str(path), dec.frames, fps, dec.width, dec.height,
                              dec.frames / fps if fps else 0.0, self.header.codec, dec.name)
        try:
            check_stream(path.name, dec.frames, dec.width, dec.height, limits)
        except VideoError:
            dec.close()
            raise

    def __enter__(self) -> _Video:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.decoder.close()

    def _first_working(self, task: Callable[[Decoder], _T], failures: list[str],
                       current: Decoder | None = None) -> tuple[Decoder, _T] | None:
        """The first backend for which ``task`` succeeds, and what it returned.

        Backends are tried in the order of :data:`_DECODERS`, ``current`` (already open,
        never closed here) first; each one opened here is closed if ``task`` fails on it.
        Every failure is appended to ``failures`` as ``"backend: reason"``; ``None`` when
        all fail.
        """
        order = list(_DECODERS)
        if current is not None:
            order = [type(current)] + [c for c in order if c is not type(current)]
        for cls in order:
            if cls.needs_parsable_header and self.header.has_video is None:
                failures.append(f"{cls.name}: skipped, the container cannot be parsed")
                continue
            dec = current if current is not None and type(current) is cls else None
            opened_here = dec is None
            try:
                if dec is None:
                    with quiet_opencv():
                        dec = cls(self.path)
                return dec, task(dec)
            except Exception as exc:  # DECORDError, RuntimeError, cv2.error, av.FFmpegError
                failures.append(f"{cls.name}: {_first_line(exc)}")
                if opened_here and dec is not None:
                    dec.close()
        log.debug("%s: %s", self.path.name, "; ".join(failures))
        return None

    def decode(self, indices: list[int]) -> np.ndarray:
        """Frames at sorted unique ``indices``; a failure is a VideoError, not a crash."""
        def task(dec: Decoder) -> np.ndarray:
            frames = dec.get(indices)
            if len(frames) != len(indices):
                raise RuntimeError(f"{len(frames)} of {len(indices)} frames")
            return frames

        found = self._first_working(task, [], current=self.decoder)
        if found is None:
            raise undecodable(self.path, self.header.codec, indices)
        dec, frames = found
        if dec is not self.decoder:
            dec.close()
        return frames

    def gather(self, indices: list[int]) -> np.ndarray:
        """Frames in the order of ``indices`` (which may repeat, after loop padding)."""
        unique = sorted(set(indices))
        frames = self.decode(unique)
        pos = {i: k for k, i in enumerate(unique)}
        return frames[[pos[i] for i in indices]]


def _can_read(dec: Decoder) -> np.ndarray:
    """Decode frame 0: some backends open files they cannot decode (decord/OpenCV and AV1)."""
    if not (dec.frames > 0 and dec.width > 0):
        raise RuntimeError("no frames")
    return dec.get([0])


def _first_line(exc: BaseException, n: int = 100) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:n] if text else type(exc).__name__


# ----------------------------------------------------------------------------- public API
def probe(path: str | os.PathLike, limits: VideoLimits = DEFAULT_LIMITS) -> VideoInfo:
    """Frame count, fps, size, duration, codec and the decoder that will read ``path``.

    Parameters
    ----------
    path
        A video file.
    limits
        Size and length caps.

    Returns
    -------
    VideoInfo

    Raises
    ------
    VideoError
        Not a video, unreadable, no frames, or outside ``limits``.
    """
    with _Video(Path(path), limits) as video:
        return video.info


def read_sample(path: str | os.PathLike, start: int = 0, num_frames: int = 16, stride: int = 1,
                limits: VideoLimits = DEFAULT_LIMITS) -> FrameSample:
    """Read one clip: ``num_frames`` frames from ``start`` every ``stride`` frames.

    Only the frames needed are decoded (a seek, then the clip), never the whole file.
    Short videos are loop-padded (see :func:`sample_indices`); ``padded`` says so.

    Raises
    ------
    VideoError
        As :func:`probe`, or when the clip's frames cannot be decoded.
    ParameterError
        Bad ``start``, ``num_frames`` or ``stride``.
    """
    path = Path(path)
    with _Video(path, limits) as video:
        indices, padded = sample_indices(video.info.frames, start, num_frames, stride)
        frames = video.gather(indices)
    if padded:
        log.info("%s: only %d frame(s) from %d with stride %d; loop-padded to %d",
                 path.name, len(set(indices)), start, stride, num_frames)
    return FrameSample(frames, tuple(indices), padded, video.info)


def read_frames(path: str | os.PathLike, start: int = 0, num_frames: int = 16, stride: int = 1,
                limits: VideoLimits = DEFAULT_LIMITS) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames of one clip; see :func:`read_sample` for the details."""
    return read_sample(path, start, num_frames, stride, limits).frames


def sliding_windows(path: str | os.PathLike, window: int = 16, stride_between_windows: int = 8,
                    frame_stride: int = 1, limits: VideoLimits = DEFAULT_LIMITS,
                    ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, frames)`` for clips of ``window`` frames every ``stride_between_windows``.

    Frames shared by overlapping windows are decoded once and only the current window is
    kept in memory, so a long video streams through in bounded memory. A video shorter
    than one window yields a single loop-padded window at start 0.

    Raises
    ------
    ParameterError
        ``stride_between_windows`` is not an integer ≥ 1, or a bad ``window`` or
        ``frame_stride``.
    VideoError
        As :func:`read_sample`.
    """
    if isinstance(stride_between_windows, bool) or not isinstance(stride_between_windows, int) \
            or stride_between_windows < 1:
        raise ParameterError(f"the step between windows must be an integer ≥ 1, got "
                             f"{stride_between_windows!r}")
    with _Video(Path(path), limits) as video:
        total = video.info.frames
        span = (window - 1) * frame_stride + 1 if window >= 1 else 1
        cache: dict[int, np.ndarray] = {}
        for start in range(0, max(0, total - span) + 1, stride_between_windows):
            indices, _ = sample_indices(total, start, window, frame_stride)
            missing = sorted(set(indices) - set(cache))
            if missing:
                for i, frame in zip(missing, video.decode(missing), strict=True):
                    cache[i] = frame
            for i in [i for i in cache if i < start]:  # keep only the current window
                del cache[i]
            yield start, np.stack([cache[i] for i in indices])
