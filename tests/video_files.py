"""Video files that exercise the readers and writers: an mp4 without a video stream, a
10-minute 720p H.264 video made in about a second, and a writer that runs out of disk."""

from __future__ import annotations

import errno
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def write_audio_only(p: Path) -> Path:
    """An mp4 with one AAC audio stream and no video stream."""
    with av.open(str(p), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 16000
        for pk in [*s.encode(frame), *s.encode()]:
            c.mux(pk)
    return p


class FullDiskWriter:
    """An open file that takes the first ``keep`` bytes of a write, then the disk is full."""

    def __init__(self, fh, keep: int) -> None:
        self.fh, self.keep = fh, keep

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()

    def write(self, data):
        self.fh.write(data[: self.keep])
        self.fh.flush()
        raise OSError(errno.ENOSPC, "No space left on device")


#: The long video's key-frame interval: one key frame every 10 s at 25 fps.
GOP = 250


def write_long_video(path: Path, seconds: float = 600, fps: int = 25, width: int = 1280,
                     height: int = 720) -> Path:
    """A 10-minute 720p H.264 mp4 in about a second: one GOP of ``GOP`` frames (a blurred
    texture panning 4 px a frame, frame number mod 256 as 8 bright/dark squares) is
    encoded once, then its packets are muxed again and again with shifted timestamps."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 4 * GOP), np.uint8),
                               (0, 0), 3)
    texture = cv2.normalize(texture, None, 30, 200, cv2.NORM_MINMAX)
    total = int(seconds * fps)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28", "g": str(GOP),
                          "sc_threshold": "0"}
        frame = av.VideoFrame.from_ndarray(np.full((height * 3 // 2, width), 128, np.uint8),
                                           format="yuv420p")
        luma = np.asarray(memoryview(frame.planes[0]).cast("B")).reshape(height, -1)
        packets = []
        for i in range(GOP):
            luma[:, :width] = texture[:, 4 * i:4 * i + width]
            for b in range(8):
                luma[:32, 32 * b:32 * b + 32] = 235 if (i >> b) & 1 else 16
            frame.pts = i
            packets += list(stream.encode(frame))
        packets += list(stream.encode())
        tb = packets[0].time_base
        per_gop = int(GOP / fps / tb)
        stored = [(bytes(p), p.pts, p.dts, p.is_keyframe) for p in packets]
        for k in range(-(-total // GOP)):
            for data, pts, dts, key in stored:
                if k * GOP + pts * fps * tb >= total:
                    continue
                packet = av.Packet(data)
                packet.stream, packet.time_base, packet.is_keyframe = stream, tb, key
                packet.pts, packet.dts = pts + k * per_gop, dts + k * per_gop
                out.mux(packet)
    return path
