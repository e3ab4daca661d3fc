"""``timeline``: windows over a whole video — layout, seconds, order, files, cache, resuming,
a 10-minute 720p video (seek-based reading, bounded memory) and the CLI."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import re
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers import (
    assert_nothing_written,
    assert_one_line_error,
    write_model_files,
)
from helpers import run_cli as run
from video_files import GOP, write_long_video

import xai_core
from xai_core import cache as cache_module
from xai_core.cache import ResultCache
from xai_core.errors import ParameterError, VideoError
from xai_core.models.registry import load_model
from xai_core.timeline import FILES, Timeline, model_fps, timeline, window_starts
from xai_core.video import read as read_module
from xai_core.video import read_frames, read_sample, write_video

pytestmark = pytest.mark.usefixtures("one_thread", "small_c3d")

TINY = "tiny-c3d-timeline-test"  # the small C3D on 8×32×32 clips (conftest small_c3d)
FPS, N = 25, 100  # the short video: 4 s at 25 fps
#: the module (``xai_core.timeline`` is the function, exported by the package)
timeline_module = importlib.import_module("xai_core.timeline")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def files(tmp_path_factory, small_c3d) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("timeline")
    ckpt, classes = write_model_files(d, small_c3d)
    frames = np.full((N, 48, 64, 3), 40, np.uint8)
    for i in range(N):  # a square moving right, wrapping around
        x = (2 * i) % 54
        frames[i, 16:26, x:x + 10] = (250, 200, 60)
    return {"ckpt": ckpt, "classes": classes, "dir": d,
            "video": write_video(d / "short.mp4", frames, fps=FPS)}


@pytest.fixture(scope="module")
def model(files):
    return load_model(arch=TINY, checkpoint=files["ckpt"], classes=files["classes"],
                      device="cpu")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The default cache (CLI) in a folder of this test, never the user's."""
    monkeypatch.setenv("XAI_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.setattr(cache_module, "_default", None)


def frame_number(frame: np.ndarray) -> int:
    """The number (mod 256) a frame of :func:`write_long_video` carries."""
    return sum(1 << b for b in range(8) if frame[16, 32 * b + 16, 0] > 128)


# --------------------------------------------------------------------------- layout
def test_window_starts_tile_the_video_and_end_at_its_end():
    assert window_starts(100, 8, 1, 8) == [*range(0, 89, 8), 92]  # + one aligned to the end
    assert window_starts(96, 8, 1, 8) == list(range(0, 89, 8))  # the grid ends at the end
    assert window_starts(100, 8, 2, 16) == [0, 16, 32, 48, 64, 80, 85]  # span 15
    assert window_starts(5, 8, 1, 8) == [0]  # shorter than a window: one, loop-padded
    assert window_starts(100, 8, 1, 40) == [0, 40, 80, 92]


def test_model_frame_rate_from_input_spec_weights_or_default(model, files):
    assert model_fps(model) == 25.0  # the spec states none
    assert model_fps(SimpleNamespace(input=SimpleNamespace(fps=12.0),
                                     spec=SimpleNamespace(extra={}))) == 12.0
    slow = dataclasses.replace(model, spec=dataclasses.replace(model.spec,
                                                               extra={"frame_rate": 12.5}))
    assert model_fps(slow) == 12.5
    tl = timeline(slow, files["video"], max_windows=2, cache=None)
    assert (tl.sample_every, tl.window_step, tl.planned) == (2, 16, 7)  # 25 fps / 12.5
    assert [(w.start_frame, w.end_frame) for w in tl.windows] == [(0, 14), (16, 30)]
    assert tl.windows[1].start_s == pytest.approx(16 / FPS)
    assert tl.windows[1].end_s == pytest.approx(31 / FPS)


# --------------------------------------------------------------------------- results
def test_windows_seconds_order_and_files(model, files, tmp_path):
    out = tmp_path / "out"
    events = []
    tl = timeline(model, files["video"], cache=ResultCache(tmp_path / "cache"), out_dir=out,
                  progress=events.append)
    starts = [*range(0, 89, 8), 92]
    assert (tl.sample_every, tl.window_step, tl.clip_frames, tl.fps) == (1, 8, 8, FPS)
    assert tl.complete and tl.planned == len(tl.windows) == len(starts)
    assert [w.start_frame for w in tl.windows] == starts
    assert [w.index for w in tl.windows] == list(range(len(starts)))
    for w in tl.windows:
        assert w.end_frame == w.start_frame + 7
        assert w.start_s == pytest.approx(w.start_frame / FPS)
        assert w.end_s == pytest.approx((w.end_frame + 1) / FPS)
        assert len(w.top) == 5 and w.top1_prob == max(p for _, p in w.top)
        assert [p for _, p in w.top] == sorted((p for _, p in w.top), reverse=True)
        assert w.target == w.top1 and w.target_prob == w.top1_prob  # the prediction
        assert 0 <= w.motion_share <= 1 and 0 <= w.freeze_frame_prob <= 1
        assert not w.padded and not w.cached
    assert tl.windows[-1].end_s == pytest.approx(N / FPS)  # the end is on the timeline
    assert all(a.start_s < b.start_s for a, b in zip(tl.windows[:-1], tl.windows[1:],
                                                     strict=True))
    assert {e.stage for e in events} == {"windows"} and events[-1].fraction == 1.0
    assert [e.overall for e in events] == sorted(e.overall for e in events)

    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    table = pd.read_csv(out / "timeline.csv")
    for column in ("start_s", "end_s", "top1", "top1_prob", "top5_prob", "motion_share",
                   "freeze_frame_prob", "clip_hash"):
        assert column in table.columns
    assert len(table) == len(starts) and table["start_s"].is_monotonic_increasing
    pd.testing.assert_frame_equal(table, tl.to_frame(), check_dtype=False)
    html = (out / "timeline.html").read_text()
    assert "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js embedded:
    assert not re.search(r"<script[^>]*\bsrc=", html)  # nothing fetched, opens offline
    meta = json.loads((out / "timeline.json").read_text())
    assert meta["complete"] and meta["windows_done"] == len(starts)
    assert meta["method"] == "gradcam" and meta["duration_s"] == pytest.approx(N / FPS)
    back = Timeline.read(out)
    pd.testing.assert_frame_equal(back.to_frame(), tl.to_frame())
    assert back.meta() == tl.meta()


def test_second_run_computes_nothing_and_max_windows_resumes(model, files, tmp_path):
    out, folder = tmp_path / "out", tmp_path / "cache"
    first = timeline(model, files["video"], cache=ResultCache(folder), out_dir=out,
                     max_windows=4)
    assert not first.complete and len(first.windows) == 4 and first.planned == 13
    assert json.loads((out / "timeline.json").read_text())["complete"] is False
    assert len(pd.read_csv(out / "timeline.csv")) == 4

    cache = ResultCache(folder)  # a new process: served from disk
    rest = timeline(model, files["video"], cache=cache, out_dir=out)
    assert rest.complete and [w.cached for w in rest.windows] == [True] * 4 + [False] * 9
    assert rest.to_frame().drop(columns="cached").iloc[:4].equals(
        first.to_frame().drop(columns="cached"))
    assert cache.stats["computed"] == 2 * 9  # predictions + method, new windows only

    again = ResultCache(folder)
    third = timeline(model, files["video"], cache=again)
    assert all(w.cached for w in third.windows) and again.stats["computed"] == 0
    assert again.stats["disk_hits"] == 2 * 13


def test_rerun_in_its_folder_reuses_rows_without_the_cache(model, files, tmp_path,
                                                            monkeypatch):
    out, computed = tmp_path / "out", []
    first = timeline(model, files["video"], cache=None, out_dir=out, max_windows=4)
    real = timeline_module.run

    def counting_run(request, **kwargs):
        computed.append(request.clip.start)
        return real(request, **kwargs)

    monkeypatch.setattr(timeline_module, "run", counting_run)
    rest = timeline(model, files["video"], cache=None, out_dir=out)
    assert computed == [*range(32, 89, 8), 92]  # windows 4.. only: 0-3 come from the csv
    assert [w.cached for w in rest.windows] == [True] * 4 + [False] * 9
    pd.testing.assert_frame_equal(rest.to_frame().drop(columns="cached").iloc[:4],
                                  first.to_frame().drop(columns="cached"))
    computed.clear()  # another method (or model, layout, options): nothing is reused
    timeline(model, files["video"], cache=None, out_dir=out, method="gradient",
             max_windows=2)
    assert computed == [0, 8]


def test_no_video_file_is_open_while_the_model_computes(model, files, monkeypatch):
    """An open decord reader made torch's backward pass take ≈ 3× the memory (RESULTS.md)."""
    open_now, seen = [], []

    class Tracked(timeline_module._Video):
        def __enter__(self):
            open_now.append(self)
            return super().__enter__()

        def __exit__(self, *exc):
            open_now.remove(self)
            return super().__exit__(*exc)

    real = timeline_module.run

    def checking_run(request, **kwargs):
        seen.append(len(open_now))
        return real(request, **kwargs)

    monkeypatch.setattr(timeline_module, "_Video", Tracked)
    monkeypatch.setattr(timeline_module, "run", checking_run)
    timeline(model, files["video"], cache=None, max_windows=timeline_module.READ_CHUNK + 2)
    assert seen == [0] * (timeline_module.READ_CHUNK + 2) and open_now == []


def test_interrupted_run_leaves_a_valid_partial_timeline(model, files, tmp_path):
    out = tmp_path / "out"

    def stop_after_five(event):
        if event.done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        timeline(model, files["video"], cache=None, out_dir=out, write_every=2,
                 progress=stop_after_five)
    assert sorted(p.name for p in out.iterdir()) == ["timeline.csv", "timeline.json"]
    table = pd.read_csv(out / "timeline.csv")
    assert list(table["start_frame"]) == [0, 8, 16, 24, 32]
    meta = json.loads((out / "timeline.json").read_text())
    assert (meta["complete"], meta["windows_done"], meta["planned"]) == (False, 5, 13)
    assert len(Timeline.read(out).windows) == 5


def test_thumbnails_and_window_clips(model, files, tmp_path):
    tl = timeline(model, files["video"], window_step=24, cache=ResultCache(tmp_path / "c"))
    thumbs = list(tl.thumbnails(height=24))
    assert [i for i, _ in thumbs] == [w.index for w in tl.windows] == [0, 1, 2, 3, 4]
    for (_, img), w in zip(thumbs, tl.windows, strict=True):
        assert img.shape == (24, 32, 3) and img.dtype == np.uint8
        first = read_frames(files["video"], w.start_frame, 1)[0]
        assert np.abs(cv2.resize(first, (32, 24), interpolation=cv2.INTER_AREA).astype(int)
                      - img).max() == 0
    assert [i for i, _ in tl.thumbnails(height=24, every=3)] == [0, 3, 4]  # 4: the last
    assert all(np.array_equal(a, thumbs[i][1]) for i, a in tl.thumbnails(24, every=2))
    clip = tl.clip(4, model)  # the end-aligned window, as the timeline explained it
    assert clip.content_hash == tl.windows[4].clip_hash and clip.indices[0] == 92


def test_bad_input_is_refused_before_anything_is_written(model, files, tmp_path):
    out = tmp_path / "out"
    for kwargs in ({"window_step": 0}, {"sample_every": 1.5}, {"top": 0},
                   {"max_windows": 0}, {"write_every": True}, {"method": "nope"},
                   {"target": "no-such-class"}):
        with pytest.raises(ParameterError):
            timeline(model, files["video"], cache=None, out_dir=out, **kwargs)
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    with pytest.raises(VideoError):
        timeline(model, not_video, cache=None, out_dir=out)
    assert_nothing_written(out)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "thesis.txt").write_text("mine")
    with pytest.raises(ParameterError, match="not an earlier timeline"):
        timeline(model, files["video"], cache=None, out_dir=taken)
    assert [p.name for p in taken.iterdir()] == ["thesis.txt"]


def test_public_api_exports_timeline():
    assert xai_core.timeline is timeline and "timeline" in xai_core.__all__


# --------------------------------------------------------------------------- long video
class CountingPyAV(read_module.PyAVDecoder):
    """PyAV decoder counting every frame it decodes (``_index`` runs once per frame)."""

    decoded = 0

    def _index(self, frame) -> int:
        CountingPyAV.decoded += 1
        return super()._index(frame)


def _peak_rss_reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)
        return True
    except OSError:
        return False


def _status_kb(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines()
                if x.startswith(field + ":"))
    return int(line.split()[1])


def test_ten_minute_720p_video_is_read_by_seeking_in_bounded_memory(model, tmp_path,
                                                                      monkeypatch):
    tic = time.perf_counter()
    video = write_long_video(tmp_path / "long.mp4")
    generated = time.perf_counter() - tic
    assert generated < 30, f"generating the video took {generated:.0f} s"
    total = 600 * 25

    # frames decoded for a window at the end: a seek to its key frame, not from the start
    with monkeypatch.context() as mp:
        mp.setattr(read_module, "_DECODERS", (CountingPyAV,))
        counts = {}
        for start in (200, total - GOP + 200):  # the same place in the first and last GOP
            CountingPyAV.decoded = 0
            sample = read_sample(video, start, 16, 1)
            counts[start] = CountingPyAV.decoded
            assert sample.info.reader == "pyav"
            assert [frame_number(f) for f in sample.frames] == [(start + k) % GOP % 256
                                                                for k in range(16)]
    assert counts[total - GOP + 200] <= counts[200] + 8, counts
    assert counts[total - GOP + 200] < GOP + 32, counts

    # the default decoder: a window at the end costs what one at the start costs
    def seconds(start: int) -> float:
        best = math.inf
        for _ in range(2):
            t0 = time.perf_counter()
            frames = read_frames(video, start, 16, 1)
            best = min(best, time.perf_counter() - t0)
        assert [frame_number(f) for f in frames] == [(start + k) % GOP % 256
                                                     for k in range(16)]
        return best

    near_start, near_end = seconds(200), seconds(total - GOP + 200)
    assert near_end < 2 * near_start + 1.0, (near_start, near_end)

    # the timeline over the whole video: 6 windows, memory of a window, not of the video
    reset = _peak_rss_reset()  # Linux: the high-water mark of this process from now on
    rss_before = _status_kb("VmRSS")
    if not reset:  # elsewhere: numpy's allocations (decoded frames) are traced instead
        tracemalloc.start()
    try:
        tl = timeline(model, video, window_step=2999, cache=ResultCache(tmp_path / "cache"),
                      out_dir=tmp_path / "out")  # not a multiple of GOP: distinct clips
        peak = (_status_kb("VmHWM") - rss_before) * 1024 if reset \
            else tracemalloc.get_traced_memory()[1]
    finally:
        if not reset:
            tracemalloc.stop()
    assert [w.start_frame for w in tl.windows] == [0, 2999, 5998, 8997, 11996, total - 8]
    assert len({w.clip_hash for w in tl.windows}) == 6 and not any(w.cached for w in tl.windows)
    assert tl.windows[-1].end_s == pytest.approx(600.0) and tl.complete
    decoded_video = total * 1280 * 720 * 3  # 41 GB
    assert peak < min(800 * 2**20, decoded_video / 40), peak / 2**20  # 200-350 MB measured
    assert (tmp_path / "out" / "timeline.html").is_file()


# --------------------------------------------------------------------------- CLI
def cli_argv(files, out, *extra) -> list:
    return ["timeline", files["video"], "--arch", TINY, "--checkpoint", files["ckpt"],
            "--classes", files["classes"], "--device", "cpu", "--out", out, *extra]


def test_cli_writes_the_timeline(files, tmp_path, capsys):
    out = tmp_path / "tl"
    code, stdout, err = run(capsys, cli_argv(files, out, "--window-step", "16",
                                             "--method", "gradient"))
    assert code == 0, err
    assert "wrote" in stdout and "motion share (gradient)" in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    table = pd.read_csv(out / "timeline.csv")
    assert list(table["start_frame"]) == [0, 16, 32, 48, 64, 80, 92]
    assert list(table["end_s"]) == pytest.approx([(s + 8) / FPS for s in table["start_frame"]])

    code, stdout, err = run(capsys, cli_argv(files, out, "--window-step", "16",
                                             "--method", "gradient", "--max-windows", "3"))
    assert code == 0, err  # an earlier timeline output may be replaced
    assert "3 window(s) from cache" in stdout and "4 window(s) left" in err
    assert len(pd.read_csv(out / "timeline.csv")) == 3


def test_cli_bad_video_is_one_line_and_writes_nothing(files, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    out = tmp_path / "tl"
    code, stdout, err = run(capsys, ["timeline", bad, "--arch", TINY, "--checkpoint",
                                     files["ckpt"], "--classes", files["classes"],
                                     "--out", out])
    assert_one_line_error(code, stdout, err, "video", "broken.mp4")
    assert_nothing_written(out)
    code, stdout, err = run(capsys, cli_argv(files, out, "--window-step", "0"))
    assert_one_line_error(code, stdout, err, "parameter", "window_step")
    assert_nothing_written(out)
