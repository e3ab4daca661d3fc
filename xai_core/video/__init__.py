"""Video in and out: read (decord, OpenCV/PyAV fallbacks), clips for a model, H.264 writing."""

from .clip import Clip, as_rgb_frames, frames_hash, list_frame_files, load_clip, load_frame_folder
from .read import (
    DEFAULT_LIMITS,
    FrameSample,
    VideoInfo,
    VideoLimits,
    probe,
    read_frames,
    read_sample,
    sample_indices,
    sliding_windows,
)
from .write import write_video

__all__ = [
    "Clip", "DEFAULT_LIMITS", "FrameSample", "VideoInfo", "VideoLimits", "as_rgb_frames",
    "frames_hash", "list_frame_files", "load_clip", "load_frame_folder", "probe", "read_frames",
    "read_sample", "sample_indices", "sliding_windows", "write_video",
]
