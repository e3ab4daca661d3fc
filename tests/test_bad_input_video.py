"""The bad-input catalogue (issue 7): everything a user can get wrong, at every layer.

This file holds its videos; test_bad_input_models.py its checkpoints and class names,
test_bad_input_parameters.py its parameters, test_bad_input_numerics.py all-zero and NaN
relevance, test_bad_input_faults.py the faults (cache disk full, GPU out of memory).

Each row is a real file made in ``tmp_path`` (videos with PyAV, checkpoints with
``torch.save``) or a parameter value, driven through

* the API — the typed :class:`~xai_core.errors.XaiError` subclass, a message that names
  the problem and a hint that says what to do;
* the CLI — exit code 2, one line on stderr, no traceback, nothing written (no ``--out``
  folder, no temporary sibling, no cache entry);
* the dashboard (``streamlit.testing`` AppTest) — ``st.error`` with the same message, the
  page still renders afterwards, the private upload folder holds no half-written file.

Inputs that are odd but fine (17×9, grayscale, alpha, 1 or 3 frames, 4K, variable frame
rate, hours long, unicode names) must be *accepted*, with loop padding said out loud.
docs/reliability.md is the catalogue as a table; rows already tested at one layer
elsewhere are named there rather than repeated here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from helpers import (
    CHEAP,
    TINY_INPUT,
    assert_nothing_written,
    assert_one_line_error,
    assert_views,
    errors,
    good_clip,
    ids,
    own_app,
    run_cli,
    upload,
    upload_files,
)
from video_files import write_audio_only

from dashboard import sidebar
from xai_core.errors import VideoError
from xai_core.video import load_clip, probe, write_video
from xai_core.video import read as read_mod
from xai_core.video.read import DEFAULT_LIMITS, VideoLimits

pytest.importorskip("streamlit.testing.v1")

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE_LIMIT_MB = 1  # the lowered size limit of the "over the size limit" row


# --------------------------------------------------------------------------- files
def ramp(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame k is a flat colour encoding k (red = 6k): decoded frames identify themselves."""
    frames = np.empty((t, h, w, 3), np.uint8)
    for k in range(t):
        frames[k] = (6 * k % 252, 100, 200)
    return frames


def frame_ids(frames: np.ndarray) -> list[int]:
    return [int(round(float(f[..., 0].mean()) / 6)) for f in frames]


def encode(path: Path, frames: np.ndarray, *, fmt: str | None = None, codec: str = "libx264",
           pix_fmt: str = "yuv420p", in_fmt: str = "rgb24", fps: float | Fraction = 10,
           pts_ms: list[int] | None = None, gop: int | None = None) -> Path:
    """Write frames with PyAV: any codec / pixel format, optional explicit timestamps."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = pix_fmt
        if gop:
            s.codec_context.gop_size = gop
        if pts_ms is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        for k, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format=in_fmt)
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[k], Fraction(1, 1000)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _text(d: Path) -> Path:
    (d / "notes.mp4").write_text("this is not a video\n" * 50)
    return d / "notes.mp4"


def _noise(d: Path) -> Path:
    data = np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    (d / "noise.mp4").write_bytes(data)
    return d / "noise.mp4"


def _png(d: Path) -> Path:
    ok, png = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))
    assert ok
    (d / "photo.mp4").write_bytes(png.tobytes())
    return d / "photo.mp4"


def _empty(d: Path) -> Path:
    (d / "empty.mp4").write_bytes(b"")
    return d / "empty.mp4"


def _cut_index_first(d: Path) -> Path:
    """H.264 mp4 with its index first (as write_video makes), cut off at 90 %."""
    data = write_video(d / "whole-a.mp4", ramp(8), fps=8).read_bytes()
    (d / "cut-a.mp4").write_bytes(data[: len(data) * 9 // 10])
    return d / "cut-a.mp4"


def _cut_index_last(d: Path) -> Path:
    """H.264 mp4 with its index last (PyAV's default), cut before the index."""
    data = encode(d / "whole-b.mp4", ramp(8), fmt="mp4").read_bytes()
    (d / "cut-b.mp4").write_bytes(data[: len(data) * 2 // 3])
    return d / "cut-b.mp4"


def _zero_frames(d: Path) -> Path:
    # a valid YUV4MPEG2 header and no frame (FFmpeg sniffs the content, not the name)
    (d / "zero-frames.mp4").write_bytes(b"YUV4MPEG2 W32 H32 F10:1 Ip A1:1 C420jpeg\n")
    return d / "zero-frames.mp4"


def _audio_only(d: Path) -> Path:
    return write_audio_only(d / "audio.mp4")


def _tiny(d: Path) -> Path:
    return encode(d / "tiny-4x4.mp4", np.zeros((4, 4, 4, 3), np.uint8))


def _too_wide(d: Path) -> Path:
    return encode(d / "wide-5000x16.mp4", np.zeros((2, 16, 5000, 3), np.uint8))


def _over_size(d: Path) -> Path:
    """A playable clip followed by padding: twice SIZE_LIMIT_MB (the limit is lowered)."""
    data = good_clip(d, "big-src.mp4").read_bytes()
    (d / "big.mp4").write_bytes(data + bytes(2 * SIZE_LIMIT_MB * 2**20 - len(data)))
    return d / "big.mp4"


def _missing(d: Path) -> Path:
    return d / "no-such-video.mp4"


def _odd_17x9(d: Path) -> Path:
    frames = np.random.default_rng(1).integers(0, 256, (10, 9, 17, 3), dtype=np.uint8)
    return encode(d / "odd-17x9.mkv", frames, fmt="matroska", codec="ffv1", pix_fmt="bgr0")


def _gray(d: Path) -> Path:
    return encode(d / "gray.mkv", ramp(10)[..., 0], fmt="matroska", codec="ffv1", pix_fmt="gray",
                  in_fmt="gray")


def _rgba(d: Path) -> Path:
    rgba = np.concatenate([ramp(10), np.full((10, 48, 64, 1), 77, np.uint8)], axis=-1)
    return encode(d / "alpha.mov", rgba, fmt="mov", codec="png", pix_fmt="rgba", in_fmt="rgba")


def _one_frame(d: Path) -> Path:
    return good_clip(d, "one-frame.mp4", frames=1)


def _three_frames(d: Path) -> Path:
    return good_clip(d, "three-frames.mp4", frames=3)


def _uhd(d: Path) -> Path:
    return write_video(d / "uhd-3840x2160.mp4", np.full((2, 2160, 3840, 3), 90, np.uint8), fps=8,
                       preset="ultrafast")


#: Presentation times (ms) with gaps of 33 ms to 900 ms: a phone's variable frame rate.
VFR_PTS = [0, 33, 66, 200, 233, 500, 533, 1400, 1433, 1466]


def _vfr(d: Path) -> Path:
    return encode(d / "vfr.mp4", ramp(10), pts_ms=VFR_PTS, fps=30)


def _unicode(d: Path) -> Path:
    return good_clip(d, "vidéo ünïcødé 動画 clip.mp4")


@dataclasses.dataclass(frozen=True)
class Refused:
    """A video that must be refused: error class, what the message says (regex), layers."""

    label: str
    make: Callable[[Path], Path]
    says: str
    ui: bool = True  # can it be uploaded at all?
    limits: VideoLimits = DEFAULT_LIMITS


REFUSED = [
    Refused("text file renamed .mp4", _text, r"is a text file, not a video"),
    Refused("random bytes renamed .mp4", _noise, r"cannot be decoded: it is not a video"),
    Refused("PNG image renamed .mp4", _png, r"is a PNG image, not a video"),
    Refused("empty file", _empty, r"is empty \(0 bytes\)"),
    Refused("truncated mp4 (index first)", _cut_index_first,
            r"cannot be decoded.* corrupt.* truncated"),
    Refused("truncated mp4 (cut before its index)", _cut_index_last,
            r"cannot be decoded: .*corrupt, truncated"),
    Refused("zero frames", _zero_frames, r"contains no frames"),
    Refused("audio only", _audio_only, r"has no video stream"),
    Refused("4×4 frames", _tiny, r"is 4×4, below the minimum of 8×8"),
    Refused("5000×16 frames", _too_wide, r"is 5000×16, above the limit of 4096×4096"),
    Refused("file over the size limit", _over_size, r"is 2 MiB, above the limit of 1 MiB",
            limits=VideoLimits(max_file_bytes=SIZE_LIMIT_MB * 2**20)),
    Refused("missing file", _missing, r"does not exist", ui=False),
]


@dataclasses.dataclass(frozen=True)
class Accepted:
    """An odd video that must be read: whether the clip is padded, and a check of it."""

    label: str
    make: Callable[[Path], Path]
    padded: bool = False


ACCEPTED = [
    Accepted("17×9 odd size", _odd_17x9),
    Accepted("grayscale", _gray),
    Accepted("alpha channel (PNG in .mov)", _rgba),
    Accepted("a single frame", _one_frame, padded=True),
    Accepted("3 frames (< 8 of the clip)", _three_frames, padded=True),
    Accepted("4K 3840×2160 (2 frames)", _uhd, padded=True),
    Accepted("variable frame rate", _vfr),
    Accepted("unicode file name", _unicode),
]


@contextlib.contextmanager
def default_limits(limits: VideoLimits) -> Iterator[None]:
    """Temporarily give the process-wide DEFAULT_LIMITS other values (CLI rows).

    The CLI has no option for limits, and ``load_clip``'s default argument *is* this
    object, so its (frozen) fields are swapped in place and restored.
    """
    before = dataclasses.asdict(DEFAULT_LIMITS)
    for k, v in dataclasses.asdict(limits).items():
        object.__setattr__(DEFAULT_LIMITS, k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            object.__setattr__(DEFAULT_LIMITS, k, v)


@pytest.fixture(scope="module")
def made(world) -> dict[str, Path]:
    """Every catalogue file, made once."""
    return {row.label: row.make(world.videos) for row in [*REFUSED, *ACCEPTED]}


# --------------------------------------------------------------------------- API
@pytest.mark.parametrize("row", REFUSED, ids=ids(REFUSED))
def test_api_refuses_bad_videos_with_a_typed_error_naming_problem_and_remedy(made, row):
    path = made[row.label]
    with pytest.raises(VideoError) as info:
        load_clip(path, TINY_INPUT, limits=row.limits)
    err = info.value
    assert re.search(row.says, err.message), err.message
    assert path.name in err.message  # says which file
    assert err.hint and len(err.hint) > 10  # and what to do
    # two sentences, never run together ("… not a video. Give a video file …")
    assert err.user_message() == f"{err.message.rstrip('.')}. {err.hint}"


@pytest.mark.parametrize("row", ACCEPTED, ids=ids(ACCEPTED))
def test_api_accepts_odd_but_valid_videos(made, row):
    path = made[row.label]
    clip = load_clip(path, TINY_INPUT)
    assert clip.frames.shape == (8, 32, 32, 3) and clip.frames.dtype == np.uint8
    assert clip.tensor.shape == (1, 3, 8, 32, 32) and torch.isfinite(clip.tensor).all()
    assert clip.padded is row.padded
    assert list(clip.indices) == sorted(clip.indices) or row.padded  # time order kept
    assert clip.source == str(path)


def test_accepted_videos_keep_their_content(made):
    gray = load_clip(made["grayscale"], TINY_INPUT).frames
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    # one frame is repeated 8 times; three frames loop 0 1 2 0 1 2 0 1
    assert load_clip(made["a single frame"], TINY_INPUT).indices == (0,) * 8
    three = load_clip(made["3 frames (< 8 of the clip)"], TINY_INPUT)
    assert three.indices == (0, 1, 2, 0, 1, 2, 0, 1)
    # variable frame rate: frames come in presentation order, whatever the gaps
    assert frame_ids(read_mod.read_frames(made["variable frame rate"], 0, 10)) == list(range(10))
    info = probe(made["4K 3840×2160 (2 frames)"])
    assert (info.width, info.height, info.frames) == (3840, 2160, 2)


def test_hours_long_video_is_probed_from_its_header_and_only_the_clip_is_decoded(tmp_path,
                                                                                 monkeypatch):
    # 2400 frames at one frame every 2 s: 80 minutes, cheap to make at 16×16.
    path = encode(tmp_path / "long.mp4", np.repeat(ramp(40, 16, 16), 60, axis=0),
                  fps=Fraction(1, 2), gop=50)
    asked: list[list[int]] = []
    for cls in read_mod._DECODERS:
        real = cls.get
        monkeypatch.setattr(cls, "get", lambda self, idx, real=real: (asked.append(list(idx)),
                                                                      real(self, idx))[1])
    info = probe(path)
    assert info.frames == 2400 and info.duration >= 3600
    # probing decodes frame 0 (to check the decoder can; decord cannot at 0.5 fps, so
    # OpenCV is tried next), never the rest of the file
    assert asked and all(a == [0] for a in asked), asked
    clip = load_clip(path, TINY_INPUT, start=2390)
    assert clip.indices == tuple(range(2390, 2398)) and not clip.padded
    assert asked[-1] == list(range(2390, 2398))

    # Time-independent evidence that the reader seeks: through PyAV, count decoded frames.
    decoded: list[int] = []

    class CountingPyAV(read_mod._PyAVDecoder):
        def __init__(self, p: Path) -> None:
            super().__init__(p)
            self._container = CountingContainer(self._container, decoded)

    monkeypatch.setattr(read_mod, "_DECODERS", (CountingPyAV,))
    frames = read_mod.read_frames(path, start=2390, num_frames=8)
    assert frame_ids(frames) == [2390 // 60] * 8
    # frame 0 (the open check), then a seek to the key frame before 2390 (GOP ≤ 50) and
    # at most one GOP up to the clip's last frame — not 2398 frames
    assert 1 + 8 <= len(decoded) <= 1 + 50 + 8, len(decoded)


class CountingContainer:
    """A PyAV container whose ``decode()`` records every frame it yields."""

    def __init__(self, container, record: list) -> None:
        self._container, self._record = container, record

    def __getattr__(self, name: str):
        return getattr(self._container, name)

    def decode(self, *args, **kwargs):
        for frame in self._container.decode(*args, **kwargs):
            self._record.append(frame.pts)
            yield frame


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("row", REFUSED, ids=ids(REFUSED))
def test_cli_refuses_bad_videos_in_one_line_and_writes_nothing(world, made, row, capfd,
                                                              tmp_path):
    out = tmp_path / "out"
    before = world.cache_entries()
    with default_limits(row.limits):
        code, stdout, err = run_cli(capfd, ["explain", made[row.label], *world.own(), "--method",
                                            CHEAP, "--out", out, "--no-previews"])
    line = assert_one_line_error(code, stdout, err, "video", row.says)
    assert made[row.label].name in line
    assert_nothing_written(out)
    assert world.cache_entries() == before


@pytest.mark.parametrize("row", ACCEPTED, ids=ids(ACCEPTED))
def test_cli_accepts_odd_videos_and_says_when_it_padded(world, made, row, capfd):
    code, out, err = run_cli(capfd, ["predict", made[row.label], *world.own(), "--json"])
    assert code == 0, err
    assert ("loop-padded" in err) is row.padded, err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- dashboard
def test_ui_bad_videos_show_the_message_and_the_app_recovers(world, made, monkeypatch):
    # The over-size row: the app's own upload cap (browsers enforce the widget's, the
    # server only its global maxUploadSize), lowered like VideoLimits in the other layers.
    monkeypatch.setattr(sidebar, "MAX_VIDEO_MB", SIZE_LIMIT_MB)
    at = own_app()
    assert not at.exception and not at.error
    for row in REFUSED:
        if not row.ui:
            continue
        path = made[row.label]
        upload(at, path.name, path.read_bytes())
        assert not at.exception, (row.label, [e.value for e in at.exception])
        text = errors(at)
        assert "Could not read the clip" in text, (row.label, text)
        says = r"is 2 MB, above the upload limit of 1 MB" if row.limits is not DEFAULT_LIMITS \
            else row.says
        assert re.search(says, text), (row.label, text)
        assert path.name in text  # the user's own file name, not the temp copy's
        assert "Traceback" not in text and "Side by side" not in {h.value for h in at.subheader}
        assert upload_files(at) == []  # a file that cannot be used is not kept
    upload(at, "clip.mp4", world.clip.read_bytes())
    assert_views(at)


def test_ui_accepts_odd_videos_and_says_when_it_padded(world, made):
    at = own_app()
    for row in ACCEPTED:
        path = made[row.label]
        upload(at, path.name, path.read_bytes())
        assert_views(at)
        warned = any("shorter than the model's clip" in w.value for w in at.warning)
        assert warned is row.padded, row.label
        shown = " ".join(c.value for c in at.caption)
        assert path.name in shown, (row.label, shown)  # the clip caption names the upload
    upload(at, "", None)
    assert upload_files(at) == []  # a cleared upload is deleted at once


