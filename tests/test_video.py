"""Video reading, writing and clips, on real files generated in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import cv2
import decord
import numpy as np
import pytest
import torch
from video_files import write_audio_only

from xai_core.errors import ParameterError, VideoError
from xai_core.models.spec import InputSpec
from xai_core.video import (
    VideoLimits,
    as_rgb_frames,
    decoders,
    list_frame_files,
    load_clip,
    load_frame_folder,
    probe,
    read_frames,
    read_sample,
    sample_indices,
    sliding_windows,
    write_video,
)
from xai_core.video.preprocess import normalise, resize_and_crop

SPEC = InputSpec(num_frames=8, height=32, width=32, resize=None, scale=1 / 255,
                 mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225))


def ramp(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame k is a flat colour that encodes k (red = 6k): decoded frames identify themselves."""
    assert t <= 42  # red stays below 256
    frames = np.empty((t, h, w, 3), np.uint8)
    for k in range(t):
        frames[k] = (6 * k, 100, 200 - 4 * k)
    return frames


def frame_ids(frames: np.ndarray) -> list[int]:
    return [int(round(float(f[..., 0].mean()) / 6)) for f in frames]


def write_lossless(path: Path, frames: np.ndarray, fmt: str = "matroska", fps: int = 10,
                   codec: str = "ffv1", pix_fmt: str = "bgr0", in_fmt: str = "rgb24") -> Path:
    """A lossless file (exact pixels back), odd sizes allowed, via PyAV."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = pix_fmt
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format=in_fmt)):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("v") / "ramp.mp4", ramp(30), fps=10)


# ----------------------------------------------------------------------------- writing
def test_written_mp4_is_browser_h264_and_reads_back_everywhere(mp4):
    with av.open(str(mp4)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        assert s.codec_context.pix_fmt == "yuv420p"
        assert c.format.name.startswith("mov,mp4")
    vr = decord.VideoReader(str(mp4))
    assert len(vr) == 30
    cap = cv2.VideoCapture(str(mp4))
    n, bgr = 0, []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n += 1
        bgr.append(f)
    cap.release()
    assert n == 30
    src = ramp(30).astype(int)
    assert np.abs(vr.get_batch(list(range(30))).asnumpy().astype(int) - src).mean() < 3
    assert np.abs(np.stack(bgr)[..., ::-1].astype(int) - src).mean() < 3


def test_odd_size_is_padded_to_even(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (3, 9, 17, 3), dtype=np.uint8)
    info = probe(write_video(tmp_path / "odd.mp4", frames, fps=5))
    assert (info.width, info.height, info.frames) == (18, 10, 3)


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"previous content")
    calls = {"n": 0}
    real = av.VideoFrame.from_ndarray

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", failing)
    with pytest.raises(VideoError, match="could not write"):
        write_video(dest, ramp(8), fps=8)
    assert dest.read_bytes() == b"previous content"  # old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temp file left


def test_write_rejects_bad_frames(tmp_path):
    with pytest.raises(ParameterError):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ParameterError):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.uint8), fps=0)


# ----------------------------------------------------------------------------- reading
def test_probe(mp4):
    info = probe(mp4)
    assert (info.frames, info.width, info.height, info.codec, info.reader) == (30, 64, 48, "h264",
                                                                              "decord")
    assert info.fps == pytest.approx(10)
    assert info.duration == pytest.approx(3.0)


def test_sample_indices_known_answers():
    assert sample_indices(30, 5, 4, 3) == ([5, 8, 11, 14], False)
    assert sample_indices(5, 0, 8, 1) == ([0, 1, 2, 3, 4, 0, 1, 2], True)  # loop padding
    assert sample_indices(10, 6, 4, 2) == ([6, 8, 6, 8], True)


def test_read_frames_picks_the_right_frames(mp4):
    s = read_sample(mp4, start=5, num_frames=8, stride=3)
    assert s.frames.shape == (8, 48, 64, 3) and s.frames.dtype == np.uint8
    assert s.indices == (5, 8, 11, 14, 17, 20, 23, 26) and not s.padded
    assert frame_ids(s.frames) == list(s.indices)
    np.testing.assert_array_equal(read_frames(mp4, 5, 8, 3), s.frames)


def test_short_video_is_loop_padded(tmp_path):
    path = write_video(tmp_path / "short.mp4", ramp(5), fps=5)
    s = read_sample(path, 0, 12, 1)
    assert s.padded
    assert frame_ids(s.frames) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]


def test_only_the_needed_frames_are_decoded(mp4, monkeypatch):
    seen: list[list[int]] = []
    real = decoders.DecordDecoder.get

    def spy(self, indices):
        seen.append(list(indices))
        return real(self, indices)

    monkeypatch.setattr(decoders.DecordDecoder, "get", spy)
    read_frames(mp4, start=20, num_frames=4, stride=2)
    # opening checks frame 0 decodes; then exactly the clip's frames, nothing else.
    assert seen == [[0], [20, 22, 24, 26]]


def test_sliding_windows_match_read_frames_and_decode_each_frame_once(mp4, monkeypatch):
    decoded: list[int] = []
    real = decoders.DecordDecoder.get

    def spy(self, indices):
        decoded.extend(indices)
        return real(self, indices)

    monkeypatch.setattr(decoders.DecordDecoder, "get", spy)
    windows = list(sliding_windows(mp4, window=8, stride_between_windows=4, frame_stride=2))
    assert [s for s, _ in windows] == [0, 4, 8, 12]  # last start 12: frames 12..26
    for start, frames in windows:
        assert frame_ids(frames) == list(range(start, start + 16, 2))
    assert sorted(decoded[1:]) == sorted(set(decoded[1:]))  # no frame decoded twice


def test_sliding_windows_on_short_video_yields_one_padded_window(tmp_path):
    path = write_video(tmp_path / "s.mp4", ramp(3), fps=5)
    windows = list(sliding_windows(path, window=6, stride_between_windows=2))
    assert len(windows) == 1 and frame_ids(windows[0][1]) == [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize("fmt,ext,codec,pix", [
    ("mp4", "mp4", "libx264", "yuv420p"),
    ("avi", "avi", "mjpeg", "yuvj420p"),
    ("mov", "mov", "libx264", "yuv420p"),
    ("webm", "webm", "libvpx-vp9", "yuv420p"),
    ("matroska", "mkv", "ffv1", "bgr0"),
])
def test_common_containers(tmp_path, fmt, ext, codec, pix):
    path = write_lossless(tmp_path / f"c.{ext}", ramp(12), fmt=fmt, codec=codec, pix_fmt=pix)
    info = probe(path)
    assert info.frames == 12 and (info.width, info.height) == (64, 48)
    assert frame_ids(read_frames(path, 2, 4, 3)) == [2, 5, 8, 11]


def test_odd_sized_17x9_video(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (10, 9, 17, 3), dtype=np.uint8)
    path = write_lossless(tmp_path / "odd.mkv", frames)
    info = probe(path)
    assert (info.width, info.height) == (17, 9)
    np.testing.assert_array_equal(read_frames(path, 0, 10), frames)  # lossless: exact
    clip = load_clip(path, SPEC)
    assert clip.frames.shape == (8, 32, 32, 3)


def test_grayscale_video_becomes_three_equal_channels(tmp_path):
    gray = ramp(6)[..., 0]
    path = write_lossless(tmp_path / "g.mkv", gray, pix_fmt="gray", in_fmt="gray")
    frames = read_frames(path, 0, 6)
    assert frames.shape == (6, 48, 64, 3)
    np.testing.assert_array_equal(frames[..., 0], gray)
    np.testing.assert_array_equal(frames[..., 1], frames[..., 2])


def test_alpha_channel_is_dropped(tmp_path):
    rgba = np.concatenate([ramp(4), np.full((4, 48, 64, 1), 77, np.uint8)], axis=-1)
    path = write_lossless(tmp_path / "a.mov", rgba, fmt="mov", codec="png", pix_fmt="rgba",
                          in_fmt="rgba")
    frames = read_frames(path, 0, 4)
    assert frames.shape == (4, 48, 64, 3)
    np.testing.assert_array_equal(frames, ramp(4))


def test_av1_falls_back_to_a_decoder_that_can_read_it(tmp_path):
    if "libsvtav1" not in av.codecs_available:
        pytest.skip("no AV1 encoder in this PyAV build")
    path = write_lossless(tmp_path / "av1.mp4", ramp(8), fmt="mp4", codec="libsvtav1",
                          pix_fmt="yuv420p")
    info = probe(path)
    assert info.codec == "av1" and info.reader == "pyav"  # decord cannot decode AV1
    assert frame_ids(read_frames(path, 1, 3, 2)) == [1, 3, 5]


# ----------------------------------------------------------------------------- bad input
def test_missing_file():
    with pytest.raises(VideoError, match="does not exist"):
        probe("/nonexistent/clip.mp4")


def test_random_bytes_renamed_mp4(tmp_path):
    p = tmp_path / "noise.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="cannot be decoded"):
        read_frames(p)


def test_text_file(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="text file"):
        probe(p)


def test_png_renamed_mp4(tmp_path):
    png = tmp_path / "img.png"
    cv2.imwrite(str(png), np.zeros((32, 32, 3), np.uint8))
    p = tmp_path / "img.mp4"
    shutil.copy(png, p)
    with pytest.raises(VideoError, match="PNG image"):
        probe(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.touch()
    with pytest.raises(VideoError, match="empty"):
        probe(p)


def test_truncated_mp4(tmp_path, mp4):
    data = mp4.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError):
        read_frames(p, 0, 30)


def test_truncated_mp4_index_at_end(tmp_path):
    # Without faststart the index (moov) is written last: a cut file has none.
    p = write_lossless(tmp_path / "full.mp4", ramp(20), fmt="mp4", codec="libx264",
                       pix_fmt="yuv420p")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(p.read_bytes()[: p.stat().st_size * 2 // 3])
    with pytest.raises(VideoError, match="cannot be decoded|no video stream"):
        probe(cut)


def test_zero_frames(tmp_path):
    p = tmp_path / "zero.y4m"  # a valid YUV4MPEG2 header and no frame
    p.write_bytes(b"YUV4MPEG2 W32 H32 F10:1 Ip A1:1 C420jpeg\n")
    with pytest.raises(VideoError, match="no frames"):
        probe(p)


def test_audio_only(tmp_path):
    p = write_audio_only(tmp_path / "audio.mp4")
    with pytest.raises(VideoError, match="no video stream"):
        probe(p)


def test_unknown_codec(tmp_path):
    p = write_lossless(tmp_path / "m.avi", ramp(4), fmt="avi", codec="mjpeg", pix_fmt="yuvj420p")
    bad = tmp_path / "zz.avi"
    bad.write_bytes(p.read_bytes().replace(b"MJPG", b"ZZZZ"))  # a FourCC nobody decodes
    with pytest.raises(VideoError, match="cannot be decoded"):
        read_frames(bad, 0, 4)


def test_limits(mp4):
    with pytest.raises(VideoError, match="above the limit of 32×4096"):
        probe(mp4, VideoLimits(max_width=32))
    with pytest.raises(VideoError, match="30 frames, above the limit of 10"):
        probe(mp4, VideoLimits(max_frames=10))
    with pytest.raises(VideoError, match="MiB, above the limit"):
        probe(mp4, VideoLimits(max_file_bytes=100))
    with pytest.raises(VideoError, match="below the minimum"):
        probe(mp4, VideoLimits(min_width=100))


def test_bad_sampling_parameters(mp4):
    with pytest.raises(ParameterError, match="stride"):
        read_frames(mp4, 0, 8, 0)
    with pytest.raises(ParameterError, match="outside the video"):
        read_frames(mp4, 30, 8, 1)
    with pytest.raises(ParameterError, match="outside the video"):
        read_frames(mp4, -1, 8, 1)
    with pytest.raises(ParameterError):
        list(sliding_windows(mp4, 8, 0))


# ----------------------------------------------------------------------------- clips
def test_clip_from_file_and_from_the_same_frames_agree(tmp_path):
    frames = np.random.default_rng(2).integers(0, 256, (12, 40, 50, 3), dtype=np.uint8)
    path = write_lossless(tmp_path / "x.mkv", frames)
    a = load_clip(path, SPEC, start=1, stride=2)
    b = load_clip(frames, SPEC, start=1, stride=2)
    assert a.content_hash == b.content_hash
    assert a.indices == b.indices == (1, 3, 5, 7, 9, 11, 1, 3) and a.padded
    np.testing.assert_array_equal(a.frames, resize_and_crop(frames[list(a.indices)], SPEC))
    assert torch.equal(a.tensor, normalise(a.frames, SPEC).unsqueeze(0))
    assert a.tensor.shape == (1, 3, 8, 32, 32) and a.fps == pytest.approx(10)


def test_content_hash_sees_one_pixel(tmp_path):
    frames = ramp(8, 32, 32)
    other = frames.copy()
    other[3, 5, 5, 1] ^= 1
    assert load_clip(frames, SPEC).content_hash != load_clip(other, SPEC).content_hash
    assert load_clip(frames, SPEC).content_hash == load_clip(frames.copy(), SPEC).content_hash


def test_bgr_spec_flips_channels():
    bgr = InputSpec(num_frames=8, height=32, width=32, channel_order="BGR", scale=1.0,
                    mean=(0, 0, 0), std=(1, 1, 1))
    clip = load_clip(ramp(8, 32, 32), bgr)
    assert clip.tensor[0, 0, 2].mean() == pytest.approx(200 - 8)  # B first: 200 - 4*2
    assert clip.tensor[0, 2, 2].mean() == pytest.approx(12)  # R last: 6*2


def test_in_memory_gray_rgba_and_bad_arrays():
    assert as_rgb_frames(np.zeros((2, 4, 4), np.uint8)).shape == (2, 4, 4, 3)
    assert as_rgb_frames(np.zeros((2, 4, 4, 4), np.uint8)).shape == (2, 4, 4, 3)
    with pytest.raises(ParameterError, match="uint8"):
        load_clip(np.zeros((8, 32, 32, 3), np.float32), SPEC)
    with pytest.raises(ParameterError, match="shape"):
        load_clip(np.zeros((8, 32, 32, 2), np.uint8), SPEC)


def test_frame_folder_is_sorted_numerically(tmp_path):
    order = [7, 0, 11, 2, 10, 1, 3, 9, 4, 8, 5, 6]  # written scrambled: listing order is no help
    for k in order:
        cv2.imwrite(str(tmp_path / f"frame_{k}.png"), ramp(12, 16, 16)[k][..., ::-1])
    (tmp_path / "notes.txt").write_text("ignored")
    names = [p.name for p in list_frame_files(tmp_path)]
    assert names[:4] == ["frame_0.png", "frame_1.png", "frame_2.png", "frame_3.png"]
    assert names[-2:] == ["frame_10.png", "frame_11.png"]  # lexicographic would put them at 2, 3
    assert frame_ids(load_frame_folder(tmp_path)) == list(range(12))
    clip = load_clip(tmp_path, SPEC, start=2, stride=1)
    assert clip.indices == tuple(range(2, 10))
    assert frame_ids(clip.frames) == list(range(2, 10))


def test_frame_folder_errors(tmp_path):
    with pytest.raises(VideoError, match="no frame images"):
        load_frame_folder(tmp_path)
    cv2.imwrite(str(tmp_path / "1.png"), np.zeros((16, 16, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "2.png"), np.zeros((16, 20, 3), np.uint8))
    with pytest.raises(VideoError, match="one size"):
        load_frame_folder(tmp_path)
    (tmp_path / "3.png").write_bytes(b"garbage")
    with pytest.raises(VideoError, match="cannot be read"):
        load_clip(tmp_path, SPEC)


@pytest.mark.parametrize("broken", [("decord",), ("decord", "opencv")])
@pytest.mark.parametrize("ext", ["mp4", "webm"])
def test_fallback_decoders_read_the_same_frames(tmp_path, monkeypatch, broken, ext):
    frames = ramp(40)
    if ext == "mp4":
        path = write_video(tmp_path / "r.mp4", frames, fps=10)
    else:
        path = write_lossless(tmp_path / "r.webm", frames, fmt="webm", codec="libvpx-vp9",
                              pix_fmt="yuv420p")

    def refuse(self, path):
        raise RuntimeError("unavailable")

    for name in broken:
        cls = {"decord": decoders.DecordDecoder, "opencv": decoders.OpenCVDecoder}[name]
        monkeypatch.setattr(cls, "__init__", refuse)
    info = probe(path)
    assert info.reader == ("pyav" if "opencv" in broken else "opencv")
    assert info.frames == 40
    s = read_sample(path, start=21, num_frames=6, stride=3)  # from the middle: a real seek
    assert frame_ids(s.frames) == [21, 24, 27, 30, 33, 36] and s.indices[0] == 21
    windows = list(sliding_windows(path, window=4, stride_between_windows=10, frame_stride=2))
    assert [frame_ids(f) for _, f in windows] == [list(range(s, s + 8, 2)) for s in (0, 10, 20, 30)]
