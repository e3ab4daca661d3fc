"""The synthetic world: determinism, masks that move as the class says, no single-frame
leakage, the context rate, still clips — and the committed sample clips."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import pytest
from scipy import stats

from xai_core.synthetic.samples import SAMPLES_DIR, get_sample, list_samples, load_masks
from xai_core.synthetic.world import (
    CLASSES,
    CONTEXT_KINDS,
    WorldConfig,
    render_clip,
    static_clip,
)
from xai_core.video import probe, read_frames

CLEAN = WorldConfig(noise=0.0)  # no pixel noise: marker detection below is exact


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def slope(values) -> float:
    return float(np.polyfit(np.arange(len(values)), values, 1)[0])


def marker_angle(frame: np.ndarray, actor: np.ndarray) -> float:
    """Angle (radians, anticlockwise as seen) of the marker stripe around the actor's centre.

    The marker is drawn in black-ish or white-ish (whichever contrasts with the actor); its
    pixels are the actor pixels far from the actor's own (median) colour.
    """
    inner = cv2.erode(actor.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    pix = frame[inner].astype(float)
    body = np.median(pix, axis=0)
    marker = np.abs(pix - body).sum(axis=1) > 80
    ys, xs = np.nonzero(inner)
    cx, cy = centroid(actor)
    mx, my = xs[marker].mean(), ys[marker].mean()
    return math.atan2(-(my - cy), mx - cx)  # image y points down


# ----------------------------------------------------------------------------- basics
def test_same_seed_same_clip_other_seed_other_clip():
    a, b, c = render_clip(11), render_clip(11), render_clip(12)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.actor_mask, b.actor_mask)
    np.testing.assert_array_equal(a.context_mask, b.context_mask)
    assert (a.label, a.context, a.params) == (b.label, b.context, b.params)
    assert not np.array_equal(a.frames, c.frames)


def test_shapes_and_types():
    clip = render_clip(3, config=WorldConfig(num_frames=10, size=96))
    assert clip.frames.shape == (10, 96, 96, 3) and clip.frames.dtype == np.uint8
    assert clip.actor_mask.shape == clip.context_mask.shape == (10, 96, 96)
    assert clip.actor_mask.dtype == clip.context_mask.dtype == bool
    assert not (clip.actor_mask & clip.context_mask).any()  # the actor is in front


@pytest.mark.parametrize("label", range(len(CLASSES)))
def test_masks_are_non_empty_on_every_frame(label):
    for seed in range(6):
        clip = render_clip(100 * label + seed, label=label)
        assert clip.actor_mask.sum(axis=(1, 2)).min() > 50, clip.params
        assert clip.context_mask.sum(axis=(1, 2)).min() > 50, clip.params


def test_bad_label_or_context():
    with pytest.raises(ValueError):
        render_clip(0, label=len(CLASSES))
    with pytest.raises(ValueError):
        render_clip(0, context=-1)


# ----------------------------------------------------------------------------- motion
@pytest.mark.parametrize("name,axis,sign", [
    ("move_left", 0, -1), ("move_right", 0, 1), ("move_up", 1, -1), ("move_down", 1, 1)])
def test_translation_moves_the_actor_mask_at_the_drawn_speed(name, axis, sign):
    for seed in range(4):
        clip = render_clip(seed, label=CLASSES.index(name), config=CLEAN)
        path = np.array([centroid(m) for m in clip.actor_mask])
        assert slope(path[:, axis]) == pytest.approx(sign * clip.params["rate"], abs=0.15)
        assert abs(slope(path[:, 1 - axis])) < 0.15  # and not along the other axis


@pytest.mark.parametrize("name,sign", [("grow", 1), ("shrink", -1)])
def test_grow_and_shrink_change_the_area_by_the_drawn_factor(name, sign):
    for seed in range(4):
        clip = render_clip(seed, label=CLASSES.index(name), config=CLEAN)
        area = clip.actor_mask.sum(axis=(1, 2)).astype(float)
        assert np.all(np.diff(area) * sign > 0)  # monotone
        # The radius follows r·exp(±rate·t): sqrt(area) is affine in it (anti-aliased
        # edges add a rim of about half a pixel, hence affine, not proportional).
        radius = np.exp(sign * clip.params["rate"] * np.arange(len(area)))
        assert np.corrcoef(np.sqrt(area), radius)[0, 1] > 0.995
        expected = math.exp(2 * sign * clip.params["rate"] * (len(area) - 1))
        assert area[-1] / area[0] == pytest.approx(expected, rel=0.25)
        x, y = zip(*[centroid(m) for m in clip.actor_mask], strict=True)
        assert np.ptp(x) < 1.5 and np.ptp(y) < 1.5  # growing in place


@pytest.mark.parametrize("name,sign", [("rotate_ccw", 1), ("rotate_cw", -1)])
def test_rotation_turns_the_marker_at_the_drawn_rate(name, sign):
    for seed in range(4):
        clip = render_clip(seed, label=CLASSES.index(name), config=CLEAN)
        angles = np.unwrap([marker_angle(f, m) for f, m in zip(clip.frames, clip.actor_mask,
                                                                strict=True)])
        assert slope(angles) == pytest.approx(sign * clip.params["rate"], abs=0.04)
        x, y = zip(*[centroid(m) for m in clip.actor_mask], strict=True)
        assert np.ptp(x) < 1.5 and np.ptp(y) < 1.5  # turning in place


def test_marker_angle_measure_sees_a_still_actor_as_still():
    clip = static_clip(4, config=CLEAN)
    angles = [marker_angle(f, m) for f, m in zip(clip.frames, clip.actor_mask, strict=True)]
    assert np.ptp(angles) == 0


# ----------------------------------------------------------------------------- leakage
@functools.lru_cache(maxsize=1)
def _actor_poses(per_class: int = 30) -> dict[str, dict[int, np.ndarray]]:
    """(x, y, sqrt(area)) of the actor per class at the first frame and mid-clip.

    Mid-clip is the mean over frames 7 and 8 (the drawn mid pose sits at t = 7.5).
    """
    config = WorldConfig(noise=0.0, max_distractors=0)
    out: dict[str, dict[int, np.ndarray]] = {"first": {}, "mid": {}}
    for label in range(len(CLASSES)):
        first, mid = [], []
        for seed in range(per_class):
            m = render_clip(7_000 + 100 * label + seed, label=label, config=config).actor_mask
            feats = [(*centroid(m[t]), math.sqrt(m[t].sum())) for t in (0, 7, 8)]
            first.append(feats[0])
            mid.append(np.mean(feats[1:], axis=0))
        out["first"][label], out["mid"][label] = np.array(first), np.array(mid)
    return out


def test_mid_clip_pose_does_not_depend_on_the_class():
    poses = _actor_poses()["mid"]
    pooled = np.concatenate(list(poses.values()))
    tests = 0
    for label, rows in poses.items():
        for j in range(3):  # x, y, size
            p = stats.ks_2samp(rows[:, j], pooled[:, j]).pvalue
            tests += 1
            assert p > 0.001, (CLASSES[label], ("x", "y", "size")[j], p)
    assert tests == 24


def test_first_frame_pose_does_depend_on_the_class():
    # The same check has the power to see leakage where it exists: at frame 0 left-movers
    # are right of centre and growers small.
    poses = _actor_poses()["first"]
    left, right = poses[CLASSES.index("move_left")], poses[CLASSES.index("move_right")]
    assert stats.ks_2samp(left[:, 0], right[:, 0]).pvalue < 1e-6
    grow, shrink = poses[CLASSES.index("grow")], poses[CLASSES.index("shrink")]
    assert stats.ks_2samp(grow[:, 2], shrink[:, 2]).pvalue < 1e-6


# ----------------------------------------------------------------------------- context
def _contexts(rate: float, n: int = 240) -> np.ndarray:
    config = WorldConfig(size=48, num_frames=2, context_rate=rate, max_distractors=0)
    clips = [render_clip(seed, config=config) for seed in range(n)]
    return np.array([(c.label, c.context) for c in clips])


def test_context_rate_one_always_gives_the_own_context():
    pairs = _contexts(1.0)
    np.testing.assert_array_equal(pairs[:, 0], pairs[:, 1])


def test_context_rate_zero_makes_context_independent_of_class():
    pairs = _contexts(0.0)
    agree = float(np.mean(pairs[:, 0] == pairs[:, 1]))
    assert 0.05 < agree < 0.22  # chance is 1/8
    table = np.zeros((len(CLASSES), len(CONTEXT_KINDS)))
    np.add.at(table, (pairs[:, 0], pairs[:, 1]), 1)
    assert stats.chi2_contingency(table).pvalue > 0.001  # no association


def test_explicit_context_wins_over_the_rate():
    clip = render_clip(5, label=2, context=6, config=WorldConfig(context_rate=1.0))
    assert (clip.label, clip.context) == (2, 6)


# ----------------------------------------------------------------------------- still clips
def test_static_clip_frames_are_identical_and_equal_the_mid_frame():
    still, moving = static_clip(9), render_clip(9)
    assert (still.frames == still.frames[:1]).all()
    assert (still.actor_mask == still.actor_mask[:1]).all()
    np.testing.assert_array_equal(still.frames[0], moving.frames[len(moving.frames) // 2])
    assert still.label == moving.label and still.params["static"]


# ----------------------------------------------------------------------------- samples
SAMPLES = list_samples(SAMPLES_DIR)
needs_samples = pytest.mark.skipif(not SAMPLES, reason="sample_videos/ not generated")


@needs_samples
def test_sample_manifest_covers_every_kind():
    kinds = [s.kind for s in SAMPLES]
    assert sorted({s.label for s in SAMPLES if s.kind == "motion"}) == sorted(CLASSES)
    assert kinds.count("conflict") == 3 and kinds.count("agree") == 3
    assert kinds.count("static") == 1 and kinds.count("long") == 1
    own = {c: CONTEXT_KINDS[i] for i, c in enumerate(CLASSES)}
    for s in SAMPLES:
        assert s.path.is_file() and s.masks_path.is_file()
        assert set(s.suits) <= {"motion", "context-biased"} and s.suits
        if s.kind == "agree":
            assert s.context == own[s.label]
        if s.kind in ("conflict", "motion"):
            assert s.context != own[s.label]
    assert sum(p.stat().st_size for p in SAMPLES_DIR.iterdir()) < 3 * 1024**2


@needs_samples
def test_sample_videos_are_h264_with_masks_of_their_length():
    for s in SAMPLES:
        info = probe(s.path)
        masks = load_masks(s)
        assert info.codec == "h264" and info.frames == s.frames
        assert masks["actor"].shape == masks["context"].shape == (s.frames, info.height,
                                                                   info.width)
        assert masks["actor"].any(axis=(1, 2)).all()
    assert get_sample("long_move_right").frames == 48


@needs_samples
def test_samples_render_again_from_their_seed():
    for s in SAMPLES:
        config = WorldConfig(num_frames=s.frames)
        if s.kind == "static":
            clip = static_clip(s.seed, config=config)
        else:
            clip = render_clip(s.seed, label=CLASSES.index(s.label),
                               context=CONTEXT_KINDS.index(s.context), config=config)
        masks = load_masks(s.name)
        np.testing.assert_array_equal(masks["actor"], clip.actor_mask)  # masks are exact
        np.testing.assert_array_equal(masks["context"], clip.context_mask)
        decoded = read_frames(s.path, 0, s.frames)  # frames went through lossy H.264
        assert np.abs(decoded.astype(int) - clip.frames).mean() < 4


@needs_samples
def test_static_sample_is_still_after_decoding():
    frames = read_frames(get_sample("static").path, 0, 16)
    assert np.abs(frames.astype(int) - frames[:1]).max() <= 6  # identical up to coding noise
