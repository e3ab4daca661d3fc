"""What a video file must be before and after it is opened, and what to say when it is not.

:class:`VideoLimits` caps what ``xai_core`` agrees to read. :func:`check_file` refuses,
before any decoder runs, what is missing, empty, too large or a still image in disguise;
:func:`check_stream` refuses a stream with no frames or an absurd size once the header
is known. When no decoder can read a file, :func:`unreadable` and :func:`undecodable`
turn the decoders' failures into one :class:`~xai_core.errors.VideoError` that says
what is wrong (audio only, no frames, a text file, an unsupported codec) and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import VideoError

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
_REEXPORT = "Re-export it as H.264 mp4 (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)."
_NO_FRAMES_HINT = "The file is empty or damaged; re-export it."


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


def check_file(path: Path, limits: VideoLimits) -> None:
    """Refuse a path that is no file, empty, above ``limits.max_file_bytes`` or an image.

    Raises
    ------
    VideoError
        Saying which, with a hint.
    """
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
    head = _head(path, 16)
    for magic, what in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            raise VideoError(f"{path.name} is {what}, not a video",
                             hint=_GIVE_VIDEO)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise VideoError(f"{path.name} is a WebP image, not a video", hint=_GIVE_VIDEO)


def check_stream(name: str, frames: int, width: int, height: int, limits: VideoLimits) -> None:
    """Refuse a stream with no frames, or a frame count or size outside ``limits``.

    Raises
    ------
    VideoError
        Saying which limit is crossed and how to get within it.
    """
    if frames < 1:
        raise VideoError(f"{name} contains no frames", hint=_NO_FRAMES_HINT)
    if frames < limits.min_frames:
        raise VideoError(f"{name} has {frames} frames, fewer than the minimum "
                         f"{limits.min_frames}", hint="Use a longer video or lower the minimum.")
    if frames > limits.max_frames:
        raise VideoError(f"{name} has {frames} frames, above the limit of {limits.max_frames}",
                         hint="Cut the part of interest or raise VideoLimits.max_frames.")
    if width > limits.max_width or height > limits.max_height:
        raise VideoError(f"{name} is {width}×{height}, above the limit of "
                         f"{limits.max_width}×{limits.max_height}",
                         hint="Downscale it (e.g. ffmpeg -vf scale=-2:480) or raise VideoLimits.")
    if width < limits.min_width or height < limits.min_height:
        raise VideoError(f"{name} is {width}×{height}, below the minimum of "
                         f"{limits.min_width}×{limits.min_height}",
                         hint="So small a frame shows no action; use the original video.")


def unreadable(path: Path, has_video: bool | None, codec: str,
               failures: Sequence[str]) -> VideoError:
    """The error for a file no decoder could open: the most specific reason known.

    Parameters
    ----------
    path
        The file.
    has_video
        From the container header: ``False`` when it holds audio but no video.
    codec
        Codec name from the header (``"unknown"``/``"none"`` add no note).
    failures
        One ``"decoder: reason"`` per decoder tried.
    """
    if has_video is False:
        return VideoError(f"{path.name} has no video stream (audio only?)",
                          hint="Give a file that contains video.")
    if any("no frames" in f for f in failures):
        return VideoError(f"{path.name} contains no frames", hint=_NO_FRAMES_HINT)
    if looks_like_text(_head(path, 528)):
        return VideoError(f"{path.name} is a text file, not a video",
                          hint="Give a video file (mp4, avi, mov, webm, mkv).")
    return VideoError(f"{path.name} cannot be decoded: it is not a video, or it is corrupt, "
                      f"truncated or in an unsupported codec{codec_note(codec)}", hint=_REEXPORT)


def undecodable(path: Path, codec: str, indices: Sequence[int]) -> VideoError:
    """The error for frames ``indices`` (sorted) that no decoder could decode."""
    return VideoError(f"{path.name}: frames {indices[0]}..{indices[-1]} cannot be decoded — the "
                      f"file is corrupt or truncated, or its codec{codec_note(codec)} is not "
                      "supported",
                      hint="Re-export it as H.264 mp4 (ffmpeg -i IN -c:v libx264 OUT.mp4), or pick "
                           "an earlier start frame.")


def codec_note(codec: str) -> str:
    """``" (h264)"`` for an error message, or ``""`` when the codec is not known."""
    return "" if codec in ("unknown", "none") else f" ({codec})"


def looks_like_text(data: bytes) -> bool:
    """True when ``data`` is non-empty UTF-8 without NUL bytes (a text file, not a video)."""
    if not data or b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)
