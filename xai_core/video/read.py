"""Reading videos: probe, sample a clip, slide windows — decoding only the frames needed.

decord is the primary decoder (index-based random access: a clip from the middle of a
long file costs a seek plus a few frames); OpenCV is the fallback for files decord
cannot open. Both return RGB with 3 channels whatever the source (grayscale is
expanded, alpha dropped). Everything a user can get wrong — not a video, a corrupt or
truncated file, no frames, an absurd size — becomes a :class:`~xai_core.errors.VideoError`
saying what is wrong and what to do; bad sampling parameters are a
:class:`~xai_core.errors.ParameterError`.

Clips shorter than the requested length are **loop-padded** (the sampled frames are
repeated from the first again), as the C3D / 3D-ResNet training code does; the caller is
told, because the jump back to the first frame is motion that is not in the video.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from ..errors import ParameterError, VideoError

log = logging.getLogger(__name__)

# OpenCV's FFmpeg prints every complaint about a damaged stream to stderr (read when its
# first capture opens); the problem reaches the user once, as a VideoError. A value the
# user set is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

#: Container extensions we expect; others are still tried (FFmpeg sniffs content).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v", ".mpg", ".mpeg", ".ogv")

# Signatures of still-image formats: FFmpeg would happily "decode" a PNG renamed .mp4 as a
# one-frame video, which then explains a freeze frame without anyone noticing.
_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"BM": "a BMP image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
}


_GIVE_VIDEO = "Give a video file (mp4, avi, mov, webm, mkv) or a folder of frames."


@dataclass(frozen=True)
class VideoLimits:
    """What ``xai_core`` agrees to read. Defaults allow anything a user plausibly has.

    Parameters
    ----------
    max_file_bytes
        Largest file (default 2 GiB). Only the frames needed are decoded, so the size
        limit guards the disk/upload, not memory.
    max_width, max_height
        Largest frame (default 4096 × 4096: 4K UHD 3840×2160 and DCI 4096×2160 pass;
        every model here works at ~112 px, so more is only decoding cost).
    min_width, min_height
        Smallest frame (default 8 px: a 17×9 video is fine; 1×1 is not a video to explain).
    max_frames
        Most frames in a file (default 216 000: two hours at 30 fps).
    min_frames
        Fewest frames (default 1; shorter clips are loop-padded).
    """

    max_file_bytes: int = 2 * 1024**3
    max_width: int = 4096
    max_height: int = 4096
    min_width: int = 8
    min_height: int = 8
    max_frames: int = 216_000
    min_frames: int = 1


DEFAULT_LIMITS = VideoLimits()


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
    reader: str  # "decord" or "opencv": the decoder that will read the frames


class FrameSample(NamedTuple):
    """A sampled clip: frames (T, H, W, 3) uint8 RGB and where they came from."""

    frames: np.ndarray
    indices: tuple[int, ...]
    padded: bool
    info: VideoInfo


# ----------------------------------------------------------------------------- sampling
def sample_indices(num_available: int, start: int, num_frames: int,
                   stride: int) -> tuple[list[int], bool]:
    """Source indices of a clip of ``num_frames`` from ``start`` every ``stride`` frames.

    When the video ends first, the indices read so far are repeated from the first
    again (loop padding) and ``padded`` is True.

    Returns
    -------
    indices, padded
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


# ----------------------------------------------------------------------------- checks
def _check_file(path: Path, limits: VideoLimits) -> None:
    if not path.exists():
        raise VideoError(f"video {str(path)!r} does not exist", hint="Check the path.")
    if not path.is_file():
        raise VideoError(f"{path.name!r} is not a file",
                         hint="For a folder of frame images use load_clip or load_frame_folder.")
    size = path.stat().st_size
    if size == 0:
        raise VideoError(f"{path.name} is empty (0 bytes)",
                         hint="Re-export or re-download the video.")
    if size > limits.max_file_bytes:
        raise VideoError(f"{path.name} is {size / 1024**2:.0f} MiB, above the limit of "
                         f"{limits.max_file_bytes / 1024**2:.0f} MiB",
                         hint="Cut the part of interest (ffmpeg -ss START -t SECONDS) or raise "
                              "VideoLimits.max_file_bytes.")
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, what in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            raise VideoError(f"{path.name} is {what}, not a video",
                             hint=_GIVE_VIDEO)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise VideoError(f"{path.name} is a WebP image, not a video", hint=_GIVE_VIDEO)


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _first_line(exc: BaseException, n: int = 100) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:n] if text else type(exc).__name__


def _looks_like_text(data: bytes) -> bool:
    if not data or b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_info(info: VideoInfo, limits: VideoLimits) -> None:
    name = Path(info.path).name
    if info.frames < 1:
        raise VideoError(f"{name} contains no frames",
                         hint="The file is empty or damaged; re-export it.")
    if info.frames < limits.min_frames:
        raise VideoError(f"{name} has {info.frames} frames, fewer than the minimum "
                         f"{limits.min_frames}", hint="Use a longer video or lower the minimum.")
    if info.frames > limits.max_frames:
        raise VideoError(f"{name} has {info.frames} frames, above the limit of {limits.max_frames}",
                         hint="Cut the part of interest or raise VideoLimits.max_frames.")
    if info.width > limits.max_width or info.height > limits.max_height:
        raise VideoError(f"{name} is {info.width}×{info.height}, above the limit of "
                         f"{limits.max_width}×{limits.max_height}",
                         hint="Downscale it (e.g. ffmpeg -vf scale=-2:480) or raise VideoLimits.")
    if info.width < limits.min_width or info.height < limits.min_height:
        raise VideoError(f"{name} is {info.width}×{info.height}, below the minimum of "
                         f"{limits.min_width}×{limits.min_height}",
                         hint="So small a frame shows no action; use the original video.")


# ----------------------------------------------------------------------------- decoders
class _Decoder:
    """Random access to frames of one file; subclasses wrap decord and OpenCV."""

    name = ""
    frames: int
    fps: float
    width: int
    height: int

    def get(self, indices: list[int]) -> np.ndarray:
        """Frames at sorted, unique ``indices`` as (n, H, W, 3) uint8 RGB."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class _DecordDecoder(_Decoder):
    name = "decord"

    def __init__(self, path: Path) -> None:
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


class _OpenCVDecoder(_Decoder):
    name = "opencv"

    def __init__(self, path: Path) -> None:
        self._cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise RuntimeError("OpenCV could not open the file")
        # CAP_PROP_FRAME_COUNT comes from the container; when it is missing (some
        # webm/mkv) the packets are counted instead, which demuxes but does not decode.
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frames = n if n > 0 else _count_packets(path)
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


class _PyAVDecoder(_Decoder):
    """Last resort: PyAV ships the newest FFmpeg (AV1 via dav1d, which decord lacks)."""

    name = "pyav"

    def __init__(self, path: Path) -> None:
        import av

        self._container = av.open(str(path))
        if not self._container.streams.video:
            self._container.close()
            raise RuntimeError("no video stream")
        self._stream = vs = self._container.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.width, self.height = int(vs.codec_context.width), int(vs.codec_context.height)
        self.frames = int(vs.frames) or _count_packets(path)
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


def _count_packets(path: Path) -> int:
    """Video packets (= frames) of the first video stream: demuxing only, no decoding."""
    try:
        import av

        with av.open(str(path)) as container:
            return sum(1 for pk in container.demux(video=0) if pk.size)
    except Exception:
        return 0


def _as_bgr(frame: np.ndarray) -> np.ndarray:
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


def _codec_name(path: Path) -> str:
    """Codec of the first video stream from the container header (PyAV; no decoding)."""
    try:
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                return "none"
            codec = container.streams.video[0].codec_context.codec
            return codec.canonical_name or codec.name or "unknown"  # "av1", not "libdav1d"
    except Exception:  # the header probe is informative only; decoding decides
        return "unknown"


def _codec_note(path: Path) -> str:
    codec = _codec_name(path)
    return "" if codec in ("unknown", "none") else f" ({codec})"


def _has_video_stream(path: Path) -> bool | None:
    """False when the container is readable but has no video stream (e.g. audio only).

    ``None`` when it cannot be parsed, or holds neither video nor audio: an mp4 cut
    before its index shows only a codec-less data stream, and is not "audio only".
    """
    try:
        import av

        with av.open(str(path)) as container:
            if container.streams.video:
                return True
            return False if container.streams.audio else None
    except Exception:
        return None


#: Tried in this order; the first that opens the file and finds frames reads it.
_DECODERS: tuple[type[_Decoder], ...] = (_DecordDecoder, _OpenCVDecoder, _PyAVDecoder)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV warns on stderr when it cannot open a file; the VideoError says it instead."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _open(path: Path, limits: VideoLimits) -> tuple[_Decoder, VideoInfo]:
    """Open ``path`` with decord, else OpenCV; check it against ``limits``."""
    _check_file(path, limits)
    errors = []
    dec: _Decoder | None = None
    header = _has_video_stream(path)
    for cls in _DECODERS:
        if header is None and cls is _DecordDecoder:
            # PyAV's (newer) FFmpeg cannot even parse the container: decord would fail
            # too, after printing errors to stderr it has no switch for.
            errors.append("decord: skipped, the container cannot be parsed")
            continue
        try:
            with _quiet_opencv():
                dec = cls(path)
        except Exception as exc:  # decord raises DECORDError, OpenCV RuntimeError/cv2.error
            errors.append(f"{cls.name}: {_first_line(exc)}")
            continue
        if dec.frames > 0 and dec.width > 0:
            try:  # some decoders open files they cannot decode (decord/OpenCV and AV1)
                dec.get([0])
                break
            except Exception as exc:
                errors.append(f"{cls.name}: {_first_line(exc)}")
        else:
            errors.append(f"{cls.name}: no frames")
        dec.close()
        dec = None
    if dec is None:
        if header is False:
            raise VideoError(f"{path.name} has no video stream (audio only?)",
                             hint="Give a file that contains video.")
        if any("no frames" in e for e in errors):
            raise VideoError(f"{path.name} contains no frames",
                             hint="The file is empty or damaged; re-export it.")
        if _looks_like_text(_head(path, 528)):
            raise VideoError(f"{path.name} is a text file, not a video",
                             hint="Give a video file (mp4, avi, mov, webm, mkv).")
        log.debug("%s: %s", path.name, "; ".join(errors))
        raise VideoError(f"{path.name} cannot be decoded: it is not a video, or it is corrupt, "
                         f"truncated or in an unsupported codec{_codec_note(path)}",
                         hint="Re-export it as H.264 mp4 (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4).")
    fps = dec.fps if dec.fps > 0 and math.isfinite(dec.fps) else 0.0
    info = VideoInfo(str(path), dec.frames, fps, dec.width, dec.height,
                     dec.frames / fps if fps else 0.0, _codec_name(path), dec.name)
    try:
        _check_info(info, limits)
    except VideoError:
        dec.close()
        raise
    return dec, info


def _decode(dec: _Decoder, path: Path, indices: list[int]) -> np.ndarray:
    """Decode sorted unique ``indices``; a decoding failure is a VideoError, not a crash.

    A decoder can open a file yet fail on its frames (decord and OpenCV open AV1 files
    they cannot decode; damaged streams); the decoders after it in :data:`_DECODERS`
    are then tried before giving up.
    """
    failures = []
    order = [type(dec)] + [c for c in _DECODERS if c is not type(dec)]
    for k, cls in enumerate(order):
        current = dec
        try:
            if k:
                with _quiet_opencv():
                    current = cls(path)
            frames = current.get(indices)
            if len(frames) == len(indices):
                return frames
            failures.append(f"{cls.name}: {len(frames)} of {len(indices)} frames")
        except Exception as exc:
            failures.append(f"{cls.name}: {_first_line(exc, 80)}")
        finally:
            if k and current is not dec:
                current.close()
    log.debug("%s: %s", path.name, "; ".join(failures))
    raise VideoError(f"{path.name}: frames {indices[0]}..{indices[-1]} cannot be decoded — the "
                     f"file is corrupt or truncated, or its codec{_codec_note(path)} is not "
                     "supported",
                     hint="Re-export it as H.264 mp4 (ffmpeg -i IN -c:v libx264 OUT.mp4), or pick "
                          "an earlier start frame.")


def _gather(dec: _Decoder, path: Path, indices: list[int]) -> np.ndarray:
    """Frames in the order of ``indices`` (which may repeat, after loop padding)."""
    unique = sorted(set(indices))
    frames = _decode(dec, path, unique)
    pos = {i: k for k, i in enumerate(unique)}
    return frames[[pos[i] for i in indices]]


# ----------------------------------------------------------------------------- public API
def probe(path: str | os.PathLike, limits: VideoLimits = DEFAULT_LIMITS) -> VideoInfo:
    """Frame count, fps, size, duration, codec and the decoder that will read ``path``.

    Raises
    ------
    VideoError
        Not a video, unreadable, no frames, or outside ``limits``.
    """
    dec, info = _open(Path(path), limits)
    dec.close()
    return info


def read_sample(path: str | os.PathLike, start: int = 0, num_frames: int = 16, stride: int = 1,
                limits: VideoLimits = DEFAULT_LIMITS) -> FrameSample:
    """Read one clip: ``num_frames`` frames from ``start`` every ``stride`` frames.

    Only the frames needed are decoded (a seek, then the clip), never the whole file.
    Short videos are loop-padded (see module docstring); ``padded`` says so.
    """
    path = Path(path)
    dec, info = _open(path, limits)
    try:
        indices, padded = sample_indices(info.frames, start, num_frames, stride)
        frames = _gather(dec, path, indices)
    finally:
        dec.close()
    if padded:
        log.info("%s: only %d frame(s) from %d with stride %d; loop-padded to %d",
                 path.name, len(set(indices)), start, stride, num_frames)
    return FrameSample(frames, tuple(indices), padded, info)


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
    """
    if isinstance(stride_between_windows, bool) or not isinstance(stride_between_windows, int) \
            or stride_between_windows < 1:
        raise ParameterError(f"the step between windows must be an integer ≥ 1, got "
                             f"{stride_between_windows!r}")
    path = Path(path)
    dec, info = _open(path, limits)
    try:
        span = (window - 1) * frame_stride + 1 if window >= 1 else 1
        last_start = max(0, info.frames - span)
        cache: dict[int, np.ndarray] = {}
        for start in range(0, last_start + 1, stride_between_windows):
            indices, _ = sample_indices(info.frames, start, window, frame_stride)
            missing = sorted(set(indices) - set(cache))
            if missing:
                for i, frame in zip(missing, _decode(dec, path, missing), strict=True):
                    cache[i] = frame
            for i in [i for i in cache if i < start]:  # keep only the current window
                del cache[i]
            yield start, np.stack([cache[i] for i in indices])
    finally:
        dec.close()
