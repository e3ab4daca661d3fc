"""Demo exports: the side-by-side movie (xai_core.render.movie), the one-page HTML report
(xai_core.render.report_page), and ``explain --report`` on the command line.

The explanations come from the tiny test C3D on an 8×32×32 synthetic clip (milliseconds);
the movie is decoded with PyAV, the report read as text.
"""

from __future__ import annotations

import html
import re

import av
import numpy as np
import pytest
from helpers import run_cli, tiny_model, write_cli_files

from xai_core import cache as cache_module
from xai_core import explain
from xai_core.errors import ParameterError, VideoError
from xai_core.render.movie import Display, movie_frames, write_side_by_side
from xai_core.render.report_page import key_frames, report_html, write_report
from xai_core.synthetic.world import WorldConfig, render_clip
from xai_core.verdict import verdict

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = "tiny-c3d-exports-test"


@pytest.fixture(scope="module")
def expl():
    """Gradient with the spatial / temporal split and Grad-CAM without it (full only)."""
    frames = render_clip(1, label=1, config=WorldConfig(size=48, num_frames=8)).frames
    return explain(tiny_model(), frames, methods=["gradient", "gradcam"],
                   decompose=["gradient"], cache=None)


@pytest.fixture(scope="module")
def still():
    frames = render_clip(2, label=0, config=WorldConfig(size=48, num_frames=8)).frames
    frames[:] = frames[0]
    return explain(tiny_model(), frames, methods=["gradient"], cache=None)


def decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# --------------------------------------------------------------------------- the movie
def test_the_movie_decodes_with_every_frame_at_its_size(expl, tmp_path):
    frames = movie_frames(expl)
    t, h, w, _ = frames.shape
    assert t == expl.frames.shape[0] == 8 and h % 2 == 0 and w % 2 == 0
    path = write_side_by_side(tmp_path / "movie.mp4", expl)
    got = decoded(path)
    assert len(got) == t
    assert got[0].shape == (h, w, 3)
    # H.264 is lossy, but each decoded frame is the rendered one, in order
    errors = [[np.abs(g.astype(int) - f.astype(int)).mean() for f in frames] for g in got]
    assert [int(np.argmin(row)) for row in errors] == list(range(t))
    assert [p.name for p in tmp_path.iterdir()] == ["movie.mp4"]  # nothing left beside it


def test_the_movie_has_a_row_per_chosen_method_and_a_frame_counter(expl):
    both = movie_frames(expl)
    one = movie_frames(expl, ["gradient"])
    assert one.shape[1] < both.shape[1]  # a row (and its colour bars) less
    assert not np.array_equal(both[0], both[1])  # the frame and its counter change
    # grad-cam was not split: its spatial and temporal tiles are grey placeholders
    assert movie_frames(expl, ["gradcam"]).shape[1] == one.shape[1]


def test_the_display_choices_change_the_picture_and_are_checked(expl):
    plain = movie_frames(expl, ["gradient"])
    other = movie_frames(expl, ["gradient"], Display(cmap="coolwarm", normalisation="per-frame",
                                                     panel="heatmap", motion="selective"))
    assert plain.shape == other.shape and not np.array_equal(plain, other)
    assert movie_frames(expl, ["gradient"], Display(zoom=6.0)).shape[1] > plain.shape[1]
    # a small input is enlarged until the colour bars under it are readable
    assert movie_frames(expl, ["gradient"], Display(zoom=1.0)).shape == plain.shape
    with pytest.raises(ParameterError, match="temporal or selective"):
        Display(motion="spatial")
    with pytest.raises(ParameterError, match="unknown colour scale"):
        Display(normalisation="global")
    with pytest.raises(ParameterError, match="unknown colour map"):
        movie_frames(expl, ["gradient"], Display(cmap="rainbow"))


def test_bad_movie_requests_are_clear_errors(expl, tmp_path):
    with pytest.raises(ParameterError, match="was not computed"):
        movie_frames(expl, ["dtd"])
    with pytest.raises(ParameterError, match="at least one method"):
        movie_frames(expl, [])
    with pytest.raises(VideoError, match="does not exist"):
        write_side_by_side(tmp_path / "missing" / "movie.mp4", expl)


# --------------------------------------------------------------------------- the report
def test_the_report_is_self_contained(expl):
    page = report_html(expl, truth="move_right", settings={"model": "tiny", "cmap": "bwr"})
    assert page.startswith("<!doctype html>") and page.endswith("</html>")
    # nothing is fetched: no external source, stylesheet or script
    assert not re.search(r"""src\s*=\s*["']?(https?:)?//""", page)
    assert not re.search(r"""<link[^>]+href\s*=\s*["']?(https?:)?//""", page)
    assert not re.search(r"<script[^>]+src", page)
    # pictures as data URIs, plotly.js inline (the bundle is megabytes), the figure drawn
    images = re.findall(r"<img [^>]*src='data:image/png;base64,[A-Za-z0-9+/=]+'", page)
    assert len(images) == len(key_frames(expl, "gradient")) == 3
    assert len(page) > 1_000_000 and "Plotly.newPlot" in page


def test_the_report_shows_the_verdict_settings_and_versions(expl):
    v = verdict(expl, "move_right")
    page = report_html(expl, truth="move_right", settings={"cmap": "bwr", "frame": 3})
    assert html.escape(v.headline) in page and html.escape(v.text) in page
    assert "ground truth <b>move_right</b>" in page
    assert "&quot;cmap&quot;: &quot;bwr&quot;" in page
    for name in expl.versions:
        assert f"&quot;{html.escape(name)}&quot;" in page
    assert "Each frame alone" in page and "Motion share by method" in page
    assert "not split (full relevance only)" in page  # grad-cam


def test_the_report_shows_the_chosen_method_and_escapes_names(expl):
    page = report_html(expl, method="gradcam", settings={"note": "<script>alert(1)</script>"})
    assert "The four views at the key frames (gradcam)" in page
    assert "<script>alert(1)</script>" not in page


def test_key_frames_have_the_most_motion_relevance(expl, still):
    pos = np.clip(expl["gradient"].temporal, 0, None).sum(axis=(1, 2))
    assert key_frames(expl, "gradient", 2) == sorted(np.argsort(-pos, kind="stable")[:2])
    assert key_frames(expl, "gradient", 99) == list(range(8))
    # no split: the selective map; a still clip has no motion: spread over the clip
    assert len(key_frames(expl, "gradcam")) == 3
    assert key_frames(still, "gradient", 3) == [0, 4, 7]


def test_write_report_is_atomic(expl, tmp_path):
    path = write_report(tmp_path / "report.html", expl)
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


# --------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def files(tmp_path_factory, small_c3d):
    return write_cli_files(tmp_path_factory.mktemp("cli-report"), small_c3d)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_module, "_default", None)


@pytest.mark.usefixtures("private_cache")
def test_explain_report_writes_the_page_and_the_movie(files, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, [
        "explain", files["video"], "--arch", TINY, "--checkpoint", files["ckpt"], "--classes",
        files["classes"], "--device", "cpu", "--method", "gradient", "--method", "gradcam",
        "--report", "--truth", "move_left", "--out", out])
    assert code == 0, err
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "side_by_side.mp4", "summary.json", "gradient.npz"} <= names
    frames = decoded(out / "side_by_side.mp4")
    assert len(frames) == 8
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "ground truth <b>move_left</b>" in page and "&quot;--report&quot;" not in page
    assert "&quot;command&quot;: &quot;explain&quot;" in page
    line = next(ln for ln in stdout.splitlines() if ln.startswith("verdict: "))
    assert html.escape(line.removeprefix("verdict: ")) in page


@pytest.mark.usefixtures("private_cache")
def test_explain_without_report_writes_neither(files, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, [
        "explain", files["video"], "--arch", TINY, "--checkpoint", files["ckpt"], "--classes",
        files["classes"], "--device", "cpu", "--method", "gradient", "--out", out])
    assert code == 0, err
    assert not {"report.html", "side_by_side.mp4"} & {p.name for p in out.iterdir()}
    assert "verdict:" not in stdout


def test_the_ground_truth_of_a_sample_clip_comes_from_its_manifest(tmp_path):
    from xai_core.commands.explain import sample_truth
    from xai_core.synthetic.samples import list_samples

    samples = list_samples()
    if not samples:
        pytest.skip("sample clips not generated yet (make samples)")
    assert sample_truth(str(samples[0].path)) == samples[0].label
    assert sample_truth(str(tmp_path / "nothing.mp4")) is None


# --------------------------------------------------------------------------- the dashboard
def test_the_dashboard_offers_both_with_the_sidebar_display(expl, tmp_path):
    import dataclasses

    from dashboard.export import display_of, report_page, side_by_side_mp4
    from dashboard.settings import Settings

    s = dataclasses.replace(Settings(), methods=["gradient", "gradcam"], shown_method="gradcam",
                            cmap="coolwarm", normalisation="per-frame", grey=False,
                            show_selective=True, clip_source="upload", upload="clip.mp4")
    d = display_of(s)
    assert (d.cmap, d.normalisation, d.desaturate, d.motion) == ("coolwarm", "per-frame", 0.0,
                                                                 "selective")
    page = report_page(expl, s).decode("utf-8")
    assert "The four views at the key frames (gradcam)" in page
    assert html.escape(verdict(expl, None, "gradcam").text) in page
    assert "&quot;cmap&quot;: &quot;coolwarm&quot;" in page
    (tmp_path / "movie.mp4").write_bytes(side_by_side_mp4(expl, s))
    assert len(decoded(tmp_path / "movie.mp4")) == 8
