"""Display of signed relevance: zero stays neutral, scaling is symmetric, shapes are known."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from xai_core import render as R
from xai_core.errors import ParameterError

RNG = np.random.default_rng(0)


def clip(t: int = 8, h: int = 32, w: int = 32) -> tuple[np.ndarray, np.ndarray]:
    frames = RNG.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    maps = RNG.normal(size=(t, h, w)).astype(np.float32)
    return frames, maps


# --------------------------------------------------------------------------- colour
@pytest.mark.parametrize("cmap", R.DIVERGING_CMAPS)
def test_zero_gets_the_neutral_colour_of_a_diverging_map(cmap):
    m = np.zeros((4, 5), np.float32)
    m[0, 0], m[1, 1] = 3.0, -3.0
    rgb = R.colourise(m, cmap, scale=3.0)
    assert tuple(rgb[2, 2]) == R.neutral_colour(cmap)
    # the neutral colour is the colour map's own value at its centre
    import matplotlib as mpl

    centre = np.rint(np.array(mpl.colormaps[cmap].resampled(257)(0.5)[:3]) * 255)
    assert tuple(rgb[2, 2]) == tuple(int(c) for c in centre)


def test_bwr_is_white_at_zero_red_for_positive_blue_for_negative():
    m = np.array([[1.0, 0.0, -1.0]], np.float32)
    rgb = R.colourise(m, "bwr", scale=1.0).astype(int)
    assert tuple(rgb[0, 1]) == (255, 255, 255)
    assert tuple(rgb[0, 0]) == (255, 0, 0)
    assert tuple(rgb[0, 2]) == (0, 0, 255)


def test_colour_is_antisymmetric_for_bwr():
    # bwr swaps red and blue under negation: -m must look like m with channels swapped
    m = RNG.normal(size=(16, 16)).astype(np.float32)
    pos = R.colourise(m, "bwr", scale=2.0)
    neg = R.colourise(-m, "bwr", scale=2.0)
    np.testing.assert_array_equal(neg, pos[..., ::-1])


def test_positive_only_map_ignores_negative_relevance():
    m = np.array([[-5.0, 0.0, 5.0]], np.float32)
    rgb = R.colourise(m, "inferno", scale=5.0)
    assert tuple(rgb[0, 0]) == tuple(rgb[0, 1]) == R.neutral_colour("inferno")
    assert tuple(rgb[0, 2]) != R.neutral_colour("inferno")


def test_unknown_colour_map_is_a_parameter_error():
    with pytest.raises(ParameterError, match="colour map"):
        R.colourise(np.zeros((2, 2)), "jet")


# --------------------------------------------------------------------------- normalise
def test_normalise_is_symmetric_and_keeps_sign():
    _, m = clip()
    values, scale = R.normalise(m, "per-clip")
    assert np.abs(values).max() == pytest.approx(1.0)
    assert np.all(np.sign(values) == np.sign(m))
    neg_values, neg_scale = R.normalise(-m, "per-clip")
    np.testing.assert_allclose(neg_values, -values)
    np.testing.assert_allclose(neg_scale, scale)
    np.testing.assert_allclose(scale, np.abs(m).max())


def test_normalise_divides_by_max_abs_not_by_range():
    # min-max scaling would send -1 to 0 and lose the sign; symmetric scaling keeps it
    m = np.array([[[-1.0, 0.0, 4.0]]], np.float32)
    values, scale = R.normalise(m, "per-clip")
    np.testing.assert_allclose(values, [[[-0.25, 0.0, 1.0]]])
    assert scale.tolist() == [4.0]


def test_per_frame_and_per_clip_scales_differ_as_they_should():
    _, m = clip(t=3)
    m[1] *= 10.0  # one loud frame
    pf_values, pf_scale = R.normalise(m, "per-frame")
    pc_values, pc_scale = R.normalise(m, "per-clip")
    assert pf_scale.shape == pc_scale.shape == (3,)
    np.testing.assert_allclose(np.abs(pf_values).max(axis=(1, 2)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(pf_scale, np.abs(m).max(axis=(1, 2)))
    assert np.all(pc_scale == pc_scale[0])
    # per clip, quiet frames stay quiet relative to the loud one
    assert np.abs(pc_values[0]).max() < 0.2
    np.testing.assert_allclose(pc_values * pc_scale[0], m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pf_values[0] * pf_scale[0], m[0], rtol=1e-5, atol=1e-6)


def test_shared_scale_clips_and_needs_a_reference():
    a = np.full((2, 2, 2), 2.0, np.float32)
    b = np.full((2, 2, 2), -8.0, np.float32)
    ref = R.max_abs(a, b)
    assert ref == 8.0
    va, sa = R.normalise(a, "shared", ref)
    np.testing.assert_allclose(va, 0.25)
    assert sa.tolist() == [8.0, 8.0]
    vc, _ = R.normalise(a * 10, "shared", ref)
    assert vc.max() == 1.0  # beyond the shared scale: clipped, not wrapped
    with pytest.raises(ParameterError, match="shared"):
        R.normalise(a, "shared")
    with pytest.raises(ParameterError, match="normalisation"):
        R.normalise(a, "min-max")


def test_all_zero_map_has_zero_scale_without_dividing_by_zero():
    frames = RNG.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    m = np.zeros((3, 8, 8), np.float32)
    with np.errstate(all="raise"):
        for mode in ("per-frame", "per-clip"):
            values, scale = R.normalise(m, mode)
            assert np.all(values == 0) and np.all(scale == 0)
        rgb = R.colourise(m, "bwr")
        out = R.overlay(frames, m, alpha=1.0)
        bar = R.colour_bar("bwr", 0.0)
    assert np.all(rgb == np.array(R.neutral_colour("bwr"), np.uint8))
    np.testing.assert_array_equal(out, frames)
    assert bar.shape == (64, 320, 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected_with_a_parameter_error(bad):
    frames, m = clip(t=2)
    m[1, 3, 3] = bad
    for call in (lambda: R.normalise(m, "per-clip"), lambda: R.colourise(m),
                 lambda: R.overlay(frames, m), lambda: R.strip(frames, m),
                 lambda: R.staggered_tubes(frames, m), lambda: R.max_abs(m)):
        with pytest.raises(ParameterError, match="NaN/Inf"):
            call()


def test_per_frame_scale_can_be_passed_to_colourise():
    _, m = clip(t=4)
    values, scale = R.normalise(m, "per-frame")
    np.testing.assert_array_equal(R.colourise(m, "bwr", scale), R.colourise(values, "bwr", 1.0))


# --------------------------------------------------------------------------- overlay
def test_overlay_leaves_zero_relevance_transparent_and_strongest_at_alpha():
    frame = np.full((4, 4, 3), 100, np.uint8)
    m = np.zeros((4, 4), np.float32)
    m[0, 0], m[1, 1], m[2, 2] = 1.0, 0.5, -1.0
    out = R.overlay(frame, m, alpha=1.0, cmap="bwr", scale=1.0).astype(int)
    assert tuple(out[3, 3]) == (100, 100, 100)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[2, 2]) == (0, 0, 255)
    half = R.overlay(frame, m, alpha=0.5, cmap="bwr", scale=1.0).astype(int)
    # half opacity: halfway between the frame and the colour
    assert tuple(half[0, 0]) == (178, 50, 50)
    # weaker relevance, less colour
    assert out[1, 1, 0] - out[1, 1, 2] < out[0, 0, 0] - out[0, 0, 2]


def test_overlay_resizes_maps_to_larger_frames_and_checks_counts():
    frames = np.zeros((3, 64, 48, 3), np.uint8)
    m = np.ones((3, 32, 24), np.float32)
    assert R.overlay(frames, m).shape == (3, 64, 48, 3)
    with pytest.raises(ParameterError, match="one relevance map per frame"):
        R.overlay(frames, np.ones((2, 32, 24), np.float32))
    with pytest.raises(ParameterError, match="opacity"):
        R.overlay(frames, m, alpha=1.5)


# --------------------------------------------------------------------------- figures
def test_strip_size_and_frame_order():
    frames, m = clip(t=8, h=32, w=24)
    out = R.strip(frames, m, every=2, gap=3)
    assert out.shape == (32 + 16, 4 * 24 + 3 * 3, 3)
    zoomed = R.strip(frames, m, indices=[7, 0], zoom=2, gap=0, label_frames=False)
    assert zoomed.shape == (64, 2 * 48, 3)
    # tiles appear in the requested order, each overlaid with the clip's scale
    picked = R.strip(frames, m, indices=[7, 0], gap=0, label_frames=False)
    scale = float(np.abs(m).max())
    np.testing.assert_array_equal(picked[:, :24], R.overlay(frames[7], m[7], 0.6, "bwr", scale))
    np.testing.assert_array_equal(picked[:, 24:], R.overlay(frames[0], m[0], 0.6, "bwr", scale))
    with pytest.raises(ParameterError, match="outside"):
        R.strip(frames, m, indices=[8])


def test_staggered_tubes_size_follows_its_geometry():
    frames, m = clip(t=8, h=32, w=32)
    out = R.staggered_tubes(frames, m, zoom=1, squeeze=0.5, shear=0.25, step=0.5, rise=0.0)
    # width: one card (16) + 7 steps of 8 + margins; height: 32 + lift 8 + margins + labels
    assert out.shape == (32 + 8 + 12 + 16, 16 + 7 * 8 + 12, 3)
    fewer = R.staggered_tubes(frames, m, zoom=1, squeeze=0.5, shear=0.25, step=0.5, rise=0.0,
                              every=2)
    assert fewer.shape == (out.shape[0], 16 + 3 * 8 + 12, 3)


def test_staggered_tubes_show_relevance_of_the_last_frame_where_its_card_is():
    frames = np.full((4, 32, 32, 3), 128, np.uint8)
    m = np.zeros((4, 32, 32), np.float32)
    quiet = R.staggered_tubes(frames, m, zoom=1, path=False, label_frames=False)
    red = (quiet[..., 0].astype(int) - quiet[..., 2]) > 60
    assert not red.any()
    m[3, 10:20, 10:20] = 1.0  # evidence for the class in the last (front, right-most) frame
    hot = R.staggered_tubes(frames, m, zoom=1, path=False, label_frames=False, alpha=1.0)
    red = (hot[..., 0].astype(int) - hot[..., 2]) > 60
    assert red.any()
    xs = np.nonzero(red)[1]
    assert xs.min() > hot.shape[1] // 2  # on the right-hand card, i.e. late in time


def test_colour_bar_runs_from_negative_to_positive_colour():
    bar = R.colour_bar("bwr", 2.5, width=300, height=60, label="relevance (per clip)")
    assert bar.shape == (60, 300, 3)
    row = bar[5]
    coloured = np.nonzero(np.any(row != 255, axis=-1))[0]
    left, right = row[coloured[0]].astype(int), row[coloured[-1]].astype(int)
    assert left[2] > left[0] and right[0] > right[2]  # blue on the left, red on the right


def test_grid_and_png_round_trip():
    tile = np.zeros((10, 12, 3), np.uint8)
    g = R.grid([[tile, tile, tile], [tile, tile, tile]], gap=2)
    assert g.shape == (2 * 10 + 2, 3 * 12 + 2 * 2, 3)
    titled = R.grid([[tile]], col_titles=["full"], row_titles=["dtd"])
    assert titled.shape[0] > 10 and titled.shape[1] > 12
    back = np.asarray(Image.open(io.BytesIO(R.to_png(g))))
    np.testing.assert_array_equal(back, g)


def test_overlay_video_is_readable_h264(tmp_path):
    pytest.importorskip("xai_core.video.write")
    import av

    frames, m = clip(t=6, h=32, w=32)
    path = R.overlay_video(tmp_path / "o.mp4", frames, m, fps=6, zoom=1.5)
    with av.open(str(path)) as box:
        stream = box.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="rgb24") for f in box.decode(stream)]
    assert len(decoded) == 6
    assert decoded[0].shape == (48, 48, 3)


def test_frame_panel_kinds_and_zoom():
    frame = np.full((8, 8, 3), 50, np.uint8)
    m = np.zeros((8, 8), np.float32)
    m[2, 2] = -4.0
    over = R.frame_panel(frame, m, kind="overlay", scale=4.0, alpha=1.0, zoom=2)
    heat = R.frame_panel(frame, m, kind="heatmap", scale=4.0, zoom=2)
    assert over.shape == heat.shape == (16, 16, 3)
    assert tuple(over[0, 15]) == (50, 50, 50)  # no relevance: the frame shows through
    assert tuple(heat[0, 15]) == R.neutral_colour("bwr")  # heatmap: neutral colour
    assert heat[5, 5, 2] > heat[5, 5, 0]  # the negative spot is blue
    with pytest.raises(ParameterError, match="panel kind"):
        R.frame_panel(frame, m, kind="contour")


def test_relevance_over_time_splits_signs_and_sums_to_net():
    _, m = clip(t=5)
    pos, neg = R.relevance_over_time(m)
    assert pos.shape == neg.shape == (5,)
    assert np.all(pos >= 0) and np.all(neg <= 0)
    np.testing.assert_allclose(pos + neg, m.sum(axis=(1, 2)), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(pos, np.where(m > 0, m, 0).sum(axis=(1, 2)), rtol=1e-5)


def test_contrast_gamma_lifts_weak_relevance_and_keeps_zero_sign_and_ends():
    m = np.array([[-1.0, -0.25, 0.0, 0.25, 1.0]], np.float32)
    lin = R.colourise(m, "bwr", scale=1.0).astype(int)
    bent = R.colourise(m, "bwr", scale=1.0, gamma=0.5).astype(int)
    np.testing.assert_array_equal(bent[0, [0, 2, 4]], lin[0, [0, 2, 4]])  # 0 and ±scale fixed
    # 0.25 is drawn where 0.5 is on the linear scale: sqrt(0.25)
    half = R.colourise(np.array([[0.5, -0.5]], np.float32), "bwr", scale=1.0).astype(int)
    np.testing.assert_array_equal(bent[0, [3, 1]], half[0])
    frame = np.full((1, 5, 3), 100, np.uint8)
    w_lin = np.abs(R.overlay(frame, m, 1.0, "bwr", 1.0).astype(int) - 100).sum(-1)
    w_bent = np.abs(R.overlay(frame, m, 1.0, "bwr", 1.0, gamma=0.5).astype(int) - 100).sum(-1)
    assert w_bent[0, 3] > w_lin[0, 3] and w_bent[0, 2] == w_lin[0, 2] == 0
    with pytest.raises(ParameterError, match="gamma"):
        R.colourise(m, "bwr", gamma=0.0)


def test_colour_bar_with_gamma_labels_real_values():
    # the half-way tick of a gamma-0.5 bar sits at 0.25·scale; drawing differs from linear
    lin = R.colour_bar("bwr", 4.0, gamma=1.0)
    bent = R.colour_bar("bwr", 4.0, gamma=0.5)
    assert lin.shape == bent.shape
    assert not np.array_equal(lin[20:40], bent[20:40])  # tick labels differ (2 vs 1)
    np.testing.assert_array_equal(lin[2:10], bent[2:10])  # the bar itself is the same


def test_jpeg_encoding_round_trips_closely():
    img = np.zeros((16, 24, 3), np.uint8)
    img[:, 12:] = (200, 30, 30)
    back = np.asarray(Image.open(io.BytesIO(R.to_jpeg(img, quality=95)))).astype(int)
    assert back.shape == img.shape
    assert np.abs(back - img).mean() < 4


def test_desaturated_overlay_is_grey_where_relevance_is_zero():
    frame = np.zeros((2, 2, 3), np.uint8)
    frame[...] = (200, 40, 40)  # a red frame: heat on it would be unreadable
    m = np.zeros((2, 2), np.float32)
    m[0, 0] = 1.0
    out = R.overlay(frame, m, alpha=0.5, cmap="bwr", scale=1.0, desaturate=1.0).astype(int)
    luma = round(0.299 * 200 + 0.587 * 40 + 0.114 * 40)
    assert tuple(out[1, 1]) == (luma, luma, luma)
    assert out[0, 0, 0] > out[0, 0, 2]  # the relevant pixel is red on grey
    np.testing.assert_array_equal(R.overlay(frame, m, desaturate=0.0),
                                  R.overlay(frame, m))


def test_grid_rows_may_differ_in_height_but_not_columns_in_width():
    tall = np.zeros((10, 8, 3), np.uint8)
    short = np.full((4, 8, 3), 7, np.uint8)
    g = R.grid([[tall, tall], [short, short]], gap=1)
    assert g.shape == (10 + 1 + 4, 8 + 1 + 8, 3)
    np.testing.assert_array_equal(g[11:15, :8], short)
    with pytest.raises(ParameterError, match="width"):
        R.grid([[tall, np.zeros((10, 9, 3), np.uint8)]])


@pytest.mark.parametrize("mode", ["per-frame", "per-clip", "shared"])
def test_scale_of_is_the_scale_normalise_uses(mode):
    _, m = clip(t=3)
    np.testing.assert_array_equal(R.scale_of(m, mode, ref=2.0), R.normalise(m, mode, 2.0).scale)


def test_enlarge_scales_both_sides():
    img = np.zeros((10, 20, 3), np.uint8)
    assert R.enlarge(img, 2).shape == (20, 40, 3)
    assert R.enlarge(img, 0.5).shape == (5, 10, 3)
    with pytest.raises(ParameterError, match="zoom"):
        R.enlarge(img, 0)


def test_save_png_writes_the_png_and_nothing_else(tmp_path):
    img = np.zeros((6, 9, 3), np.uint8)
    img[:, 4:] = (10, 200, 30)
    path = R.save_png(str(tmp_path / "view.png"), img)
    assert path == tmp_path / "view.png"
    assert path.read_bytes() == R.to_png(img)
    assert [p.name for p in tmp_path.iterdir()] == ["view.png"]  # no temporary file left
