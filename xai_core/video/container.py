"""What a container says about itself, read with PyAV without decoding a frame.

:func:`read_header` parses the header once per opened file: whether it holds a video
stream and with which codec. The answer steers the decoders (decord is not tried on a
container FFmpeg cannot parse) and names the codec in :class:`~.read.VideoInfo` and in
error messages. :func:`count_packets` counts the frames of a stream whose header does
not give their number, by demuxing without decoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class ContainerHeader(NamedTuple):
    """The container header's answer about its first video stream.

    Attributes
    ----------
    has_video
        True with a video stream; False when readable with audio but no video;
        ``None`` when it cannot be parsed, or holds neither video nor audio (an mp4 cut
        before its index shows only a codec-less data stream, and is not "audio only").
    codec
        Codec of the first video stream (``"av1"``, not the decoder ``"libdav1d"``);
        ``"none"`` without a video stream, ``"unknown"`` when the header cannot tell.
    """

    has_video: bool | None
    codec: str


def read_header(path: Path) -> ContainerHeader:
    """Parse the container header of ``path`` (informative only: decoding decides)."""
    # PyAV is imported on use: ~40 ms that importing xai_core.video should not pay.
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return ContainerHeader(False if container.streams.audio else None, "none")
            try:
                codec = container.streams.video[0].codec_context.codec
                return ContainerHeader(True, codec.canonical_name or codec.name or "unknown")
            except Exception:  # a stream without a known codec is still a video stream
                return ContainerHeader(True, "unknown")
    except Exception:  # FFmpeg cannot parse it; the decoders say why
        return ContainerHeader(None, "unknown")


def count_packets(path: Path) -> int:
    """Video packets (= frames) of the first video stream: demuxing only, no decoding."""
    import av  # imported on use, as in read_header

    try:
        with av.open(str(path)) as container:
            return sum(1 for pk in container.demux(video=0) if pk.size)
    except Exception:
        return 0
