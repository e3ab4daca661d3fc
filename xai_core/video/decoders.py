"""The decoder backends: random access to the frames of one file, as RGB.

:class:`Decoder` is the interface: constructed from a path (raising if it cannot open
it), it knows the frame count, rate and size, and :meth:`Decoder.get` returns the frames
at sorted, unique indices as (n, H, W, 3) uint8 RGB whatever the source (grayscale is
expanded, alpha dropped). Three backends implement it:

- :class:`DecordDecoder`, index-based random access (a clip from the middle of a long
  file costs a seek plus a few frames);
- :class:`OpenCVDecoder`, for files decord cannot open;
- :class:`PyAVDecoder`, the newest FFmpeg (AV1 through dav1d, which the others lack).

Which backend reads a file, and the fallback from one to the next, is decided in
:mod:`xai_core.video.read`.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .container import count_packets

# OpenCV's FFmpeg prints every complaint about a damaged stream to stderr (read when its
# first capture opens); the problem reaches the user once, as a VideoError. A value the
# user set is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


class Decoder(abc.ABC):
    """Random access to the frames of one file.

    Parameters
    ----------
    path
        The file; the constructor raises (any exception) when the backend cannot open it.

    Attributes
    ----------
    name
        The backend's name, reported as :attr:`~xai_core.video.read.VideoInfo.reader`.
    needs_parsable_header
        True when the backend is not worth trying on a container that PyAV cannot parse.
    frames, fps, width, height
        Frame count (0 when unknown), frame rate (0 when unknown) and frame size.
    """

    name = ""
    needs_parsable_header = False
    frames: int
    fps: float
    width: int
    height: int

    @abc.abstractmethod
    def __init__(self, path: Path) -> None: ...

    @abc.abstractmethod
    def get(self, indices: list[int]) -> np.ndarray:
        """Frames at sorted, unique ``indices`` as (n, H, W, 3) uint8 RGB."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the file (the decoder is not used afterwards)."""


class DecordDecoder(Decoder):
    """decord: index-based random access, the fastest to a clip in a long file."""

    name = "decord"
    # PyAV's (newer) FFmpeg cannot even parse the container: decord would fail too, after
    # printing errors to stderr it has no switch for.
    needs_parsable_header = True

    def __init__(self, path: Path) -> None:
        # decord is imported on use: ~50 ms that importing xai_core.video should not pay.
        import decord

        # decord's FFmpeg prints every complaint about a damaged file to stderr; the
        # problems reach the user once, as a VideoError.
        decord.logging.set_level(decord.logging.QUIET)
        self._vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        self.frames = len(self._vr)
        self.fps = float(self._vr.get_avg_fps() or 0.0)
        if self.frames > 0:
            h, w = self._vr[0].shape[:2]
            self._vr.seek(0)
        else:
            h = w = 0
        self.height, self.width = int(h), int(w)

    def get(self, indices: list[int]) -> np.ndarray:
        return _as_rgb(self._vr.get_batch(indices).asnumpy())

    def close(self) -> None:
        del self._vr


class OpenCVDecoder(Decoder):
    """OpenCV's FFmpeg capture: seeks to the first wanted frame, then grabs forward."""

    name = "opencv"

    def __init__(self, path: Path) -> None:
        self._cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise RuntimeError("OpenCV could not open the file")
        # CAP_PROP_FRAME_COUNT comes from the container; when it is missing (some
        # webm/mkv) the packets are counted instead, which demuxes but does not decode.
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frames = n if n > 0 else count_packets(path)
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._pos = 0

    def get(self, indices: list[int]) -> np.ndarray:
        out = []
        wanted = set(indices)
        first, last = indices[0], indices[-1]
        if first != self._pos:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, first)
            self._pos = first
        while self._pos <= last:
            if not self._cap.grab():
                raise RuntimeError(f"the stream ended at frame {self._pos}")
            if self._pos in wanted:
                ok, frame = self._cap.retrieve()
                if not ok:
                    raise RuntimeError(f"frame {self._pos} could not be decoded")
                out.append(cv2.cvtColor(_as_bgr(frame), cv2.COLOR_BGR2RGB))
            self._pos += 1
        return np.stack(out)

    def close(self) -> None:
        self._cap.release()


class PyAVDecoder(Decoder):
    """Last resort: PyAV ships the newest FFmpeg (AV1 via dav1d, which decord lacks)."""

    name = "pyav"

    def __init__(self, path: Path) -> None:
        import av  # imported on use, as in xai_core.video.container

        self._container = av.open(str(path))
        if not self._container.streams.video:
            self._container.close()
            raise RuntimeError("no video stream")
        self._stream = vs = self._container.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.width, self.height = int(vs.codec_context.width), int(vs.codec_context.height)
        self.frames = int(vs.frames) or count_packets(path)
        self._t0 = vs.start_time or 0

    def _index(self, frame) -> int:
        t = (frame.pts - self._t0) * self._stream.time_base
        return int(round(float(t) * self.fps))

    def get(self, indices: list[int]) -> np.ndarray:
        vs, first, last = self._stream, indices[0], indices[-1]
        # Seek to the key frame before the first wanted frame (time, assuming a constant
        # rate), then decode forward: only the stretch that holds the clip is decoded.
        self._container.seek(self._t0 + int(first / self.fps / vs.time_base) if self.fps else 0,
                             stream=vs, backward=True, any_frame=False)
        wanted, got = set(indices), {}
        for frame in self._container.decode(vs):
            k = self._index(frame) if frame.pts is not None else -1
            if k in wanted:
                got[k] = frame.to_ndarray(format="rgb24")
            if k >= last:
                break
        if len(got) != len(wanted):
            raise RuntimeError(f"the stream ended before frame {last}")
        return np.stack([got[i] for i in indices])

    def close(self) -> None:
        self._container.close()


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV warns on stderr when it cannot open a file; the VideoError says it instead."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    """One OpenCV frame (H, W[, C]) → (H, W, 3) BGR: grayscale expanded, alpha dropped."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def _as_rgb(frames: np.ndarray) -> np.ndarray:
    """(n, H, W[, C]) → (n, H, W, 3): grayscale repeated, alpha dropped."""
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    elif frames.shape[-1] == 4:
        frames = frames[..., :3]
    return np.ascontiguousarray(frames, dtype=np.uint8)
