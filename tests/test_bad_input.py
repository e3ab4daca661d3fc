"""The bad-input catalogue (issue 7): everything a user can get wrong, at every layer.

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
Then numerics (all-zero and NaN relevance) and faults (cache disk full, GPU out of
memory). docs/reliability.md is this file as a table; rows already tested at one layer
elsewhere are named there rather than repeated here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from test_decompose import GradientTimesInput, one_thread
from test_video import write_audio_only

from dashboard import sidebar, state
from xai_core import cache as cache_mod
from xai_core import render
from xai_core.cache import ResultCache
from xai_core.cli import main
from xai_core.decompose import DecompositionOptions
from xai_core.engine import explain
from xai_core.errors import MethodError, ParameterError, VideoError
from xai_core.methods.base import METHODS, Attribution, Method, get_method
from xai_core.models import registry
from xai_core.models.bundled import small_c3d_spec
from xai_core.models.registry import load_model
from xai_core.models.spec import InputSpec
from xai_core.synthetic.world import CLASSES, WorldConfig, render_clip
from xai_core.video import load_clip, probe, write_video
from xai_core.video import read as read_mod
from xai_core.video.read import DEFAULT_LIMITS, VideoLimits

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
TINY = "tiny-c3d-bad-input-test"
TINY_INPUT = InputSpec(num_frames=8, height=32, width=32, scale=1 / 255, mean=(0.45,) * 3,
                       std=(0.225,) * 3)

__all__ = ["one_thread"]  # autouse fixture shared with test_decompose

CHEAP = "gradient"  # the cheapest method: rows are about inputs, not about methods
TIMEOUT = 240  # seconds per AppTest script run, generous for a loaded 2-core machine
SIZE_LIMIT_MB = 1  # the lowered size limit of the "over the size limit" row


# =========================================================================== files
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


def good_clip(d: Path, name: str = "clip.mp4", frames: int = 12) -> Path:
    clip = render_clip(1, label=1, config=WorldConfig(size=48, num_frames=frames)).frames
    return write_video(d / name, clip, fps=8)


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


def ids(rows) -> list[str]:
    return [r.label for r in rows]


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


# =========================================================================== fixtures
@dataclasses.dataclass
class World:
    root: Path
    models: Path
    videos: Path
    cache: Path
    ckpt: Path
    classes: Path
    clip: Path

    def own(self) -> list[str]:
        return ["--arch", TINY, "--checkpoint", str(self.ckpt), "--classes", str(self.classes),
                "--device", "cpu"]

    def cache_entries(self) -> list[Path]:
        return sorted(self.cache.rglob("*.val"))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    """A small C3D for 8×32×32 clips in a models folder, a private cache, a good clip."""
    root = tmp_path_factory.mktemp("bad-input")
    spec = dataclasses.replace(small_c3d_spec(TINY), input=TINY_INPUT)
    registry.register_model(spec)
    models, videos = root / "models", root / "videos"
    models.mkdir()
    videos.mkdir()
    torch.manual_seed(0)
    torch.save(spec.build(len(CLASSES)).state_dict(), models / "net.pt")
    (models / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    w = World(root, models, videos, root / "cache", models / "net.pt", models / "classes.txt",
              good_clip(videos))
    mp = pytest.MonkeyPatch()
    mp.setenv("XAI_MODELS_DIR", str(models))
    mp.setenv("XAI_CACHE_DIR", str(w.cache))
    mp.setattr(cache_mod, "_default", ResultCache(w.cache))  # the CLI's and the app's cache
    yield w
    mp.undo()
    registry._REGISTRY.pop(TINY, None)


@pytest.fixture(scope="module")
def made(world) -> dict[str, Path]:
    """Every catalogue file, made once."""
    return {row.label: row.make(world.videos) for row in [*REFUSED, *ACCEPTED]}


def cli(capfd, argv: list) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, kind: str, says: str) -> str:
    """Exit 2, nothing on stdout, exactly one line on stderr: ``error (<kind>): ...``."""
    assert "Traceback" not in err, err
    lines = [ln for ln in re.split(r"[\r\n]+", err) if ln.strip()]
    assert code == 2 and out == "", (code, out, err)
    assert len(lines) == 1, err  # no decoder noise, no progress bar left behind
    assert lines[0].startswith(f"error ({kind}): "), lines[0]
    assert re.search(says, lines[0]), lines[0]
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []


# =========================================================================== videos: API
@pytest.mark.parametrize("row", REFUSED, ids=ids(REFUSED))
def test_api_refuses_bad_videos_with_a_typed_error_naming_problem_and_remedy(made, row):
    path = made[row.label]
    with pytest.raises(VideoError) as info:
        load_clip(path, TINY_INPUT, limits=row.limits)
    err = info.value
    assert re.search(row.says, err.message), err.message
    assert path.name in err.message  # says which file
    assert err.hint and len(err.hint) > 10  # and what to do
    assert err.user_message() == f"{err.message} {err.hint}"


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


# =========================================================================== videos: CLI
@pytest.mark.parametrize("row", REFUSED, ids=ids(REFUSED))
def test_cli_refuses_bad_videos_in_one_line_and_writes_nothing(world, made, row, capfd,
                                                              tmp_path):
    out = tmp_path / "out"
    before = world.cache_entries()
    with default_limits(row.limits):
        code, stdout, err = cli(capfd, ["explain", made[row.label], *world.own(), "--method",
                                        CHEAP, "--out", out, "--no-previews"])
    line = assert_one_line_error(code, stdout, err, "video", row.says)
    assert made[row.label].name in line
    assert_nothing_written(out)
    assert world.cache_entries() == before


@pytest.mark.parametrize("row", ACCEPTED, ids=ids(ACCEPTED))
def test_cli_accepts_odd_videos_and_says_when_it_padded(world, made, row, capfd):
    code, out, err = cli(capfd, ["predict", made[row.label], *world.own(), "--json"])
    assert code == 0, err
    assert ("loop-padded" in err) is row.padded, err
    assert "Traceback" not in err


# =========================================================================== videos: UI
def own_app(*methods: str) -> AppTest:
    """The app on the test model (models folder), clip source "upload", nothing uploaded."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["s_model_source"] = "own"
    at.session_state["s_arch"] = TINY
    at.session_state["s_checkpoint"] = "net.pt"
    at.session_state["s_classes"] = "classes.txt"
    at.session_state["s_clip_source"] = "upload"
    at.session_state["s_methods"] = list(methods or (CHEAP,))
    at.run()
    return at


def upload(at: AppTest, name: str, data: bytes | None, key: str = "upload_video") -> AppTest:
    at.sidebar.file_uploader(key=key).set_value(
        None if data is None else (name, data, "application/octet-stream"))
    return at.run()


def errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def upload_files(at: AppTest) -> list[Path]:
    """Every file in the session's private upload folder (any depth)."""
    folder = at.session_state["_uploads"].path
    return sorted(p for p in folder.rglob("*") if p.is_file())


def assert_views(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, errors(at)
    heads = {h.value for h in at.subheader}
    assert {"Side by side", "Relevance per frame", "Predictions"} <= heads, heads


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


# =========================================================================== checkpoints
class Payload:
    """Unpickling this runs a shell command that creates a file (a real malicious pickle)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@dataclasses.dataclass(frozen=True)
class BadModel:
    label: str
    checkpoint: Callable[[Path], object] | None  # what torch.save writes (None: raw bytes)
    says: str
    raw: bytes | None = None
    classes: str | None = None  # a class-names file used with the good checkpoint


def _good_state(num_classes: int = len(CLASSES)) -> dict:
    torch.manual_seed(0)
    return small_c3d_spec().build(num_classes).state_dict()


BAD_MODELS = [
    BadModel("another architecture's weights",
             lambda d: torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3)).state_dict(),
             r"does not fit this architecture: missing keys .*unexpected keys 0\.bias"),
    BadModel("a missing key", lambda d: dict(list(_good_state().items())[1:]),
             r"does not fit this architecture: missing keys features\.0\.weight"),
    BadModel("an extra key", lambda d: {**_good_state(), "extra.weight": torch.zeros(2)},
             r"does not fit this architecture: unexpected keys extra\.weight"),
    BadModel("a pickle that would run code", lambda d: {"state_dict": _good_state(),
                                                        "x": Payload(d / "pwned")},
             r"refers to the Python object posix\.system; .*could run code"),
    BadModel("a whole pickled model", lambda d: small_c3d_spec().build(3),
             r"refused because unpickling it could run code.*state_dict\(\)"),
    BadModel("a text file", None, r"is not a PyTorch checkpoint", raw=b"hello\n" * 20),
    BadModel("random bytes", None, r"is not a PyTorch checkpoint",
             raw=np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
    BadModel("class names disagree with the head (3 names, 8 outputs)", None,
             r"lists 3 classes but the checkpoint's head has 8 outputs", classes="a\nb\nc\n"),
    BadModel("an empty class-names file", None, r"class-names file is empty", classes=""),
    BadModel("a class named twice", None, r"repeats a name",
             classes="\n".join(["a", "a", "b", "c", "d", "e", "f", "g"])),
]


def make_bad_model(row: BadModel, d: Path) -> tuple[Path, Path | None]:
    """(checkpoint, class-names file or None) for a row, written into ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    ckpt, classes = d / "model.pt", None
    if row.classes is not None:
        torch.save(_good_state(), ckpt)
        classes = d / "names.txt"
        classes.write_text(row.classes)
    elif row.raw is not None:
        ckpt.write_bytes(row.raw)
    else:
        torch.save(row.checkpoint(d), ckpt)
    return ckpt, classes


def test_the_malicious_pickle_is_live():
    """The payload does run when loaded unsafely: the refusals below prove something."""
    d = Path(tempfile.mkdtemp())
    try:
        torch.save(Payload(d / "ran"), d / "evil.pt")
        torch.load(d / "evil.pt", weights_only=False)
        assert (d / "ran").exists()
    finally:
        shutil.rmtree(d)


@pytest.mark.parametrize("row", BAD_MODELS, ids=ids(BAD_MODELS))
def test_cli_refuses_bad_checkpoints_in_one_line(world, row, capfd, tmp_path):
    ckpt, classes = make_bad_model(row, tmp_path / "m")
    argv = ["predict", world.clip, "--arch", TINY, "--checkpoint", ckpt, "--device", "cpu"]
    code, out, err = cli(capfd, argv + (["--classes", classes] if classes else []))
    line = assert_one_line_error(code, out, err, "checkpoint", row.says)
    assert ckpt.name in line if classes is None else "class-names file" in line
    assert not (tmp_path / "m" / "pwned").exists()  # the pickle's code never ran


def test_ui_bad_checkpoints_show_the_message_and_the_app_recovers(world, tmp_path):
    at = own_app()
    assert not at.error and not at.exception
    for k, row in enumerate(BAD_MODELS):
        ckpt, classes = make_bad_model(row, tmp_path / f"m{k}")
        if classes is None:
            upload(at, ckpt.name, ckpt.read_bytes(), key="upload_checkpoint")
        else:
            upload(at, classes.name, classes.read_bytes(), key="upload_classes")
        assert not at.exception, (row.label, [e.value for e in at.exception])
        text = errors(at)
        assert "Could not load the model" in text and re.search(row.says, text), (row.label, text)
        assert ckpt.name in text if classes is None else "class-names file" in text
        assert "Traceback" not in text
        upload(at, "", None, key="upload_classes" if classes else "upload_checkpoint")
        assert not errors(at), (row.label, errors(at))  # back on the folder's good model
    assert not list(tmp_path.rglob("pwned"))
    assert upload_files(at) == []  # the refused uploads are gone with their widgets


# =========================================================================== parameters
@pytest.fixture(scope="module")
def tiny(world):
    return load_model(arch=TINY, checkpoint=world.ckpt, classes=world.classes, device="cpu")


#: (label, call on (tiny model, clip path), message regex) — typed ParameterError in the API.
API_PARAMETERS = [
    ("start beyond the video", lambda m, v: load_clip(v, m.input, start=99),
     r"start frame 99 is outside the video \(frames 0\.\.11\)"),
    ("negative start", lambda m, v: load_clip(v, m.input, start=-1), r"outside the video"),
    ("stride 0", lambda m, v: load_clip(v, m.input, stride=0),
     r"frame stride must be at least 1, got 0"),
    ("σ = 0", lambda m, v: DecompositionOptions(sigma=0), r"sigma must be a number above 0"),
    ("σ < 0", lambda m, v: DecompositionOptions(sigma=-1.0), r"sigma must be a number above 0"),
    ("σ NaN", lambda m, v: DecompositionOptions(sigma=float("nan")), r"sigma must be"),
    ("target class out of range", lambda m, v: explain(m, v, CHEAP, target=99, cache=None),
     r"target class 99 is out of range .*"),
    ("negative target class", lambda m, v: explain(m, v, CHEAP, target=-1, cache=None),
     r"target class -1 is out of range"),
    ("unknown target class name", lambda m, v: explain(m, v, CHEAP, target="nope", cache=None),
     r"unknown class 'nope'"),
    ("unknown method", lambda m, v: explain(m, v, "nope", cache=None),
     r"unknown method 'nope'"),
    ("method parameter out of range", lambda m, v: get_method("integrated-gradients", steps=0),
     r"parameter 'steps' must be ≥"),
    ("unknown method parameter", lambda m, v: get_method("gradient", colour="red"),
     r"method 'gradient' has no parameter\(s\) \['colour'\]"),
    ("freeze-frame chunk 0", lambda m, v: DecompositionOptions(chunk_size=0),
     r"chunk_size must be a positive integer"),
]


@pytest.mark.parametrize("label,call,says", API_PARAMETERS, ids=[r[0] for r in API_PARAMETERS])
def test_api_refuses_bad_parameters_with_a_parameter_error(tiny, world, label, call, says):
    with pytest.raises(ParameterError) as info:
        call(tiny, world.clip)
    assert re.search(says, str(info.value)), str(info.value)
    assert isinstance(info.value, ValueError)  # also a ValueError, for generic callers


CLI_PARAMETERS = [
    ("start beyond the video", ["--start", "99"], r"outside the video"),
    ("stride 0", ["--stride", "0"], r"stride must be at least 1"),
    ("σ = 0", ["--sigma", "0"], r"sigma must be a number above 0"),
    ("σ < 0", ["--sigma", "-2"], r"sigma must be a number above 0"),
    ("target class out of range", ["--target", "99"], r"target class 99 is out of range"),
    ("unknown target class name", ["--target", "nope"], r"unknown class 'nope'"),
    ("unknown method", ["--method", "nope"], r"unknown method 'nope'.*Known methods"),
    ("method parameter out of range", ["--method", "integrated-gradients", "--param",
                                       "integrated-gradients.steps=0"], r"'steps' must be ≥"),
    ("malformed --param", ["--method", CHEAP, "--param", "steps"], r"is not METHOD\.KEY=VALUE"),
    ("freeze-frame chunk 0", ["--chunk-size", "0"], r"chunk_size must be a positive integer"),
]


@pytest.mark.parametrize("label,args,says", CLI_PARAMETERS, ids=[r[0] for r in CLI_PARAMETERS])
def test_cli_refuses_bad_parameters_in_one_line(world, label, args, says, capfd, tmp_path):
    out = tmp_path / "out"
    before = world.cache_entries()
    argv = ["explain", world.clip, *world.own(), "--out", out, "--no-previews"]
    if "--method" not in args:
        argv += ["--method", CHEAP]
    code, stdout, err = cli(capfd, argv + args)
    assert_one_line_error(code, stdout, err, "parameter", says)
    assert_nothing_written(out)
    assert world.cache_entries() == before


#: A settings file (Load settings) can hold what no widget allows; each is refused whole.
UI_SETTINGS = [
    ("σ < 0", {"sigma": -1.0}, r"setting 'sigma' must be 0\.5\.\.8\.0, got -1\.0"),
    ("opacity 5", {"alpha": 5.0}, r"setting 'alpha' must be 0\.0\.\.1\.0"),
    ("γ 0", {"gamma": 0.0}, r"setting 'gamma' must be 0\.2\.\.1\.0"),
    ("stride 0", {"stride": 0}, r"setting 'stride' must be at least 1"),
    ("negative start", {"start": -3}, r"setting 'start' must be at least 0"),
    ("negative target", {"target": -1}, r"setting 'target' must be at least 0"),
    ("unknown colour map", {"cmap": "rainbow"}, r"setting 'cmap' must be one of \['bwr'"),
    ("unknown architecture", {"arch": "nope"}, r"setting 'arch' must be one of"),
    ("unknown slice", {"slice": "middle"}, r"setting 'slice' must be one of"),
    ("not settings at all", None, r"does not hold dashboard settings"),
]


def test_ui_parameters_widgets_bound_them_and_bad_settings_files_are_refused(world):
    """Sliders, number inputs and select boxes cannot produce out-of-range values; the
    settings file and stale session values are the ways in, and must not stop the page."""
    at = own_app()
    upload(at, "clip.mp4", world.clip.read_bytes())
    assert_views(at)
    # the widgets' own bounds are the ones a settings file is checked against
    assert (at.sidebar.slider(key="s_sigma").min, at.sidebar.slider(key="s_sigma").max) == \
        state.WIDGET_RANGES["sigma"]
    assert (at.sidebar.slider(key="s_gamma").min, at.sidebar.slider(key="s_gamma").max) == \
        state.WIDGET_RANGES["gamma"]
    assert at.sidebar.number_input(key="s_stride").min == state.WIDGET_RANGES["stride"][0]
    good = json.loads(state.Settings(model_source="own", arch=TINY, checkpoint="net.pt",
                                     classes="classes.txt", clip_source="upload",
                                     methods=[CHEAP]).to_json())  # this page's settings
    for label, change, says in UI_SETTINGS:
        body = {"cmap": "bwr"} if change is None else {**good, **change}
        at.sidebar.file_uploader(key="settings_upload").set_value(
            ("settings.json", json.dumps(body).encode(), "application/json"))
        at.run()
        assert not at.exception, (label, [e.value for e in at.exception])
        assert re.search(says, errors(at)), (label, errors(at))
        assert "Side by side" in {h.value for h in at.subheader}, label  # still working
    # a target beyond this model's classes (settings of a bigger model) explains the prediction
    at.sidebar.file_uploader(key="settings_upload").set_value(
        ("settings.json", json.dumps({**good, "target": 99}).encode(), "application/json"))
    at.run()
    assert_views(at)
    assert next(m.value for m in at.metric if m.label == "Explaining the class") == \
        next(m.value for m in at.metric if m.label == "Model predicts")


# =========================================================================== numerics
class ZeroRelevance(Method):
    """Relevance exactly zero everywhere (e.g. a dead model or a blank clip)."""

    name = "test-all-zero"
    description = "all-zero relevance (test)"
    family = "gradient"
    has_raw = False

    def _attribute(self, model, x, target, progress=None):
        return Attribution(torch.zeros(x.shape[0], *x.shape[2:]), None)


class NaNRelevance(Method):
    """A numerically broken method: NaN in one voxel, Inf in another."""

    name = "test-nan"
    description = "NaN/Inf relevance (test)"
    family = "gradient"
    has_raw = False

    def _attribute(self, model, x, target, progress=None):
        rel = torch.ones(x.shape[0], *x.shape[2:])
        rel[:, 0, 0, 0], rel[:, -1, -1, -1] = float("nan"), float("inf")
        return Attribution(rel, None)


@pytest.fixture
def odd_methods():
    added = {cls.name: cls for cls in (ZeroRelevance, NaNRelevance)}
    METHODS.update(added)
    yield added
    for name in added:
        METHODS.pop(name, None)


def test_all_zero_relevance_is_explained_rendered_and_exported(tiny, world, odd_methods,
                                                               capfd, tmp_path):
    exp = explain(tiny, world.clip, ZeroRelevance.name, cache=None)
    result = exp[ZeroRelevance.name]
    for kind in ("full", "spatial", "temporal", "selective"):
        assert not getattr(result, kind).any()
    # no motion share of nothing: undefined, stored as null, never a division by zero
    assert all(np.isnan(v) for v in result.motion_share.values())
    json.dumps(exp.summary(), allow_nan=False)
    with np.errstate(all="raise"):
        values, scale = render.normalise(result.full, "per-frame")
        overlay = render.overlay(exp.frames, result.full, alpha=1.0)
        colours = render.colourise(result.temporal, "bwr")
    assert not values.any() and not np.any(scale)
    np.testing.assert_array_equal(overlay, exp.frames)  # nothing drawn over the frames
    assert (colours == np.array(render.neutral_colour("bwr"), np.uint8)).all()
    # the CLI writes its previews of an all-zero map
    out = tmp_path / "zero"
    code, _, err = cli(capfd, ["explain", world.clip, *world.own(), "--method",
                               ZeroRelevance.name, "--out", out, "--no-cache"])
    assert code == 0, err
    assert {p.name for p in out.iterdir()} >= {"summary.json", f"{ZeroRelevance.name}.png",
                                                f"{ZeroRelevance.name}.mp4"}
    assert json.loads((out / "summary.json").read_text())["methods"][ZeroRelevance.name][
        "motion_share"] == {"discriminative": None, "selective": None}


def test_nan_relevance_is_a_method_error_and_nothing_is_cached(tiny, world, odd_methods,
                                                               capfd, tmp_path):
    cache = ResultCache(tmp_path / "cache")
    with pytest.raises(MethodError, match=r"test-nan produced 2 NaN/Inf values") as info:
        explain(tiny, world.clip, NaNRelevance.name, cache=cache)
    assert info.value.hint and "another method" in info.value.hint
    assert cache.stats["computed"] == 1  # the prediction; the broken maps were not stored
    assert len(list((tmp_path / "cache").rglob("*.val"))) == 1
    # the CLI: one error line (progress bars are erased with \r on a terminal)
    out = tmp_path / "out"
    code, stdout, err = cli(capfd, ["explain", world.clip, *world.own(), "--method",
                                    NaNRelevance.name, "--out", out])
    lines = [ln for ln in re.split(r"[\r\n]+", err) if ln.strip() and "%|" not in ln]
    assert code == 2 and stdout == "" and "Traceback" not in err
    assert lines == [lines[-1]] and lines[-1].startswith("error (method): test-nan produced")
    assert_nothing_written(out)


def test_ui_nan_relevance_shows_an_error_and_another_method_works(world, odd_methods):
    at = own_app(NaNRelevance.name)
    upload(at, "clip.mp4", world.clip.read_bytes())
    assert not at.exception
    text = errors(at)
    assert "Could not explain the clip" in text and "NaN/Inf" in text, text
    assert not at.image  # nothing rendered from broken numbers
    at.sidebar.multiselect(key="s_methods").set_value([ZeroRelevance.name]).run()
    assert_views(at)  # an all-zero map renders too
    share = next(m.value for m in at.metric if m.label.startswith("Motion share"))
    assert share == "n/a"


# =========================================================================== faults
def test_cache_disk_full_leaves_no_file_and_memory_still_serves(tmp_path, monkeypatch, caplog):
    import diskcache.core

    cache = ResultCache(tmp_path / "cache")
    started: list[Path] = []
    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        if "x" not in mode:
            return fh
        started.append(Path(path))

        class HalfWriter:  # writes a little, then the disk is full
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                fh.close()

            def write(self, data):
                fh.write(data[:64])
                fh.flush()
                raise OSError(errno.ENOSPC, "No space left on device")

        return HalfWriter()

    monkeypatch.setattr(diskcache.core, "open", full_disk_open, raising=False)
    calls = []

    def compute():
        calls.append(1)
        return {"full": np.ones((2, 3, 3), np.float32)}, {"m": 1}

    key = cache.make_key({"x": "disk full"})
    with caplog.at_level("WARNING", logger="xai_core.cache"):
        arrays, _, hit = cache.get_or_compute(key, compute)
    assert not hit and started  # a value file was begun ...
    assert not any(p.exists() for p in started)  # ... and removed, not left half-written
    assert list((tmp_path / "cache").rglob("*.val")) == []
    assert any("No space left" in r.getMessage() for r in caplog.records)
    again, _, hit = cache.get_or_compute(key, compute)
    assert hit and calls == [1]  # memory still serves it
    np.testing.assert_array_equal(again["full"], arrays["full"])


def test_unusable_cache_folder_is_said_in_the_result_and_by_the_cli(tiny, world, capfd,
                                                                    tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache folder should be")  # even root cannot mkdir
    cache = ResultCache(blocker / "cache")
    assert not cache.on_disk
    exp = explain(tiny, world.clip, CHEAP, cache=cache)
    assert any("memory only" in w for w in exp.warnings)
    assert exp.summary()["warnings"] == exp.warnings
    monkeypatch.setattr(cache_mod, "_default", cache)
    code, _, err = cli(capfd, ["explain", world.clip, *world.own(), "--method", CHEAP,
                               "--out", tmp_path / "out", "--no-previews"])
    assert code == 0 and "warning: The result cache folder" in err and "memory only" in err


class OOMGradient(GradientTimesInput):
    """Gradient × input that runs out of "GPU" memory: above ``max_batch`` clips, and
    whenever the model is on CUDA when ``cuda_oom`` (no GPU here: simulated)."""

    name = "test-oom-gradient"
    description = "gradient × input that runs out of memory (test)"
    family = "gradient"
    default_batch_size = 4
    max_batch = 1
    cuda_oom = False
    seen: list = []

    def _attribute(self, model, x, target, progress=None):
        type(self).seen.append((model.device.type, x.shape[0]))
        if x.shape[0] > self.max_batch or (self.cuda_oom and model.device.type == "cuda"):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return super()._attribute(model, x, target, progress)


@pytest.fixture
def oom_method(monkeypatch):
    monkeypatch.setitem(METHODS, OOMGradient.name, OOMGradient)
    monkeypatch.setattr(OOMGradient, "seen", [])
    return OOMGradient


def test_out_of_memory_halves_the_batch_and_gives_the_same_answer(tiny, oom_method):
    x = load_clip(render_clip(2, label=3).frames, tiny.input).tensor.repeat(5, 1, 1, 1, 1)
    x = x + 0.01 * torch.randn_like(x)
    method = get_method(oom_method.name)
    got = method.attribute(tiny, x, 2).relevance
    sizes = [n for _, n in oom_method.seen]
    assert sizes[:3] == [4, 2, 1] and set(sizes[3:]) == {1}  # halved until it fits
    oom_method.max_batch = 5
    try:
        reference = get_method(oom_method.name).attribute(tiny, x, 2).relevance
    finally:
        oom_method.max_batch = 1
    torch.testing.assert_close(got, reference)
    assert method.notes == []  # stayed where it was: nothing to tell


@pytest.fixture
def fake_cuda(monkeypatch):
    """Tensors and modules sent to "cuda" stay on the CPU (this machine has no GPU)."""
    real_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        args = tuple("cpu" if _is_cuda(a) else a for a in args)
        kwargs = {k: "cpu" if _is_cuda(v) else v for k, v in kwargs.items()}
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)


def _is_cuda(a) -> bool:
    return (isinstance(a, str) and a.startswith("cuda")) or (
        isinstance(a, torch.device) and a.type == "cuda")


def test_out_of_memory_for_one_clip_falls_back_to_the_cpu_and_says_so(world, oom_method,
                                                                      fake_cuda):
    reference_model = load_model(arch=TINY, checkpoint=world.ckpt, classes=world.classes,
                                 device="cpu")
    reference = explain(reference_model, world.clip, oom_method.name, cache=None)
    module = reference_model.module
    gpu_model = dataclasses.replace(reference_model, device=torch.device("cuda"))
    moves = []
    real_move = module.to
    module.to = lambda device, *a, **k: (moves.append(str(device)), real_move(device, *a, **k))[1]
    flags = [p.requires_grad for p in module.parameters()]
    oom_method.cuda_oom = True
    try:
        exp = explain(gpu_model, world.clip, oom_method.name, cache=None)
    finally:
        oom_method.cuda_oom = False
        del module.to
    # moved to the CPU for the work and back afterwards, in each call that ran out (the
    # full explanation and the freeze frames)
    assert moves and moves == ["cpu", "cuda"] * (len(moves) // 2)
    assert gpu_model.device.type == "cuda" and flags == [p.requires_grad for p in
                                                         module.parameters()]
    assert {dev for dev, _ in oom_method.seen} == {"cpu", "cuda"}
    assert exp.warnings == [f"{oom_method.name} ran out of GPU memory even for one clip and "
                            "was computed on the CPU instead (slower)."]
    assert exp.summary()["warnings"] == exp.warnings
    for kind in ("full", "spatial", "temporal", "selective"):
        np.testing.assert_allclose(getattr(exp[oom_method.name], kind),
                                   getattr(reference[oom_method.name], kind), rtol=1e-5,
                                   atol=1e-7)
