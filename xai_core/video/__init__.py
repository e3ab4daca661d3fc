"""Video in and out: reading, clips for a model, browser-playable H.264 writing.

:mod:`.read` probes and samples files through one fallback loop over the decoders of
:mod:`.decoders` (decord, OpenCV, PyAV), after the checks of :mod:`.checks` and one parse
of the container header (:mod:`.container`); :mod:`.sampling` picks the frames of a
clip; :mod:`.clip` turns frames into the :class:`Clip` a model consumes, through
:mod:`.preprocess`; :mod:`.write` writes H.264 mp4.
"""

from .clip import Clip, as_rgb_frames, list_frame_files, load_clip, load_frame_folder
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
    "list_frame_files", "load_clip", "load_frame_folder", "probe", "read_frames",
    "read_sample", "sample_indices", "sliding_windows", "write_video",
]
