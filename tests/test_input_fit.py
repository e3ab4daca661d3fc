"""The crop a model sees (``crop_box``) and the notices when an input is out of its world."""

from __future__ import annotations

import numpy as np
import pytest

from xai_core.errors import ParameterError
from xai_core.input_fit import (
    CHANCE_FACTOR,
    aspect_name,
    input_notices,
    near_chance,
    seen_fractions,
    view_notices,
)
from xai_core.models.spec import InputSpec
from xai_core.video.preprocess import crop_box, crop_geometry, resize_and_crop

SQUARE = InputSpec(num_frames=2, height=112, width=112)
C3D = InputSpec(num_frames=2, height=112, width=112, resize=(128, 171))
TORCHVISION = InputSpec(num_frames=2, height=224, width=224, short_side=256)


@pytest.mark.parametrize("spec", [SQUARE, C3D, TORCHVISION])
@pytest.mark.parametrize("hw", [(1080, 1920), (480, 640), (112, 112), (640, 360), (37, 91)])
def test_crop_box_is_what_resize_and_crop_keeps(spec, hw):
    """A frame whose pixels encode their own coordinates: the model's input holds exactly
    the pixels inside the box (up to the resize's interpolation)."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.stack([yy * 255 // max(h - 1, 1), xx * 255 // max(w - 1, 1),
                      np.zeros_like(yy)], axis=-1).astype(np.uint8)[None]
    top, left, bh, bw = crop_box(hw, spec)
    assert 0 <= top and 0 <= left and top + bh <= h + 1e-6 and left + bw <= w + 1e-6
    seen = resize_and_crop(frame, spec)[0].astype(float)
    # first and last row / column of the crop, in source coordinates
    tol = 255 / min(h, w) * 2 + 2
    assert abs(seen[0, :, 0].mean() - top * 255 / max(h - 1, 1)) < tol + 255 * 1.5 / bh
    assert abs(seen[-1, :, 0].mean() - (top + bh - 1) * 255 / max(h - 1, 1)) < tol + 255 * 1.5 / bh
    assert abs(seen[:, 0, 1].mean() - left * 255 / max(w - 1, 1)) < tol + 255 * 1.5 / bw
    assert abs(seen[:, -1, 1].mean() - (left + bw - 1) * 255 / max(w - 1, 1)) < tol + 255 * 1.5 / bw


def test_crop_box_of_a_16_9_video_on_a_square_model_cuts_the_sides():
    top, left, bh, bw = crop_box((1080, 1920), SQUARE)
    assert top == 0 and bh == 1080  # the whole height
    assert bw == pytest.approx(112 * 1920 / 199)  # 112 of the 199 columns after the resize
    assert left == pytest.approx((1920 - bw) / 2, abs=10)
    assert seen_fractions((1080, 1920), SQUARE) == pytest.approx((0.5625, 1.0), abs=0.01)


def test_the_preprocessing_uses_the_same_geometry():
    (rh, rw), (y0, x0) = crop_geometry((1080, 1920), SQUARE)
    assert (rh, rw) == (112, 199) and (y0, x0) == (0, 43)
    assert crop_geometry((480, 640), C3D) == ((128, 171), (8, 29))
    with pytest.raises(ValueError):
        crop_geometry((0, 10), SQUARE)


def test_a_near_chance_prediction_is_a_notice_with_the_threshold():
    k = 8
    flat = np.full(k, 1 / k)
    assert near_chance(flat) is not None
    confident = np.array([0.9] + [0.1 / (k - 1)] * (k - 1))
    assert near_chance(confident) is None
    border = np.array([CHANCE_FACTOR / k] + [(1 - CHANCE_FACTOR / k) / (k - 1)] * (k - 1))
    assert near_chance(border) is None  # at the threshold: no notice
    notice = near_chance(np.array([0.2] + [0.8 / 7] * 7))
    assert notice.kind == "near-chance" and "20%" in notice.message and "2/8" in notice.message
    with pytest.raises(ParameterError):
        near_chance(np.array([1.0]))


def test_view_notices_say_what_preprocessing_does_to_the_video():
    kinds = {n.kind: n.message for n in view_notices((1080, 1920), SQUARE)}
    assert "a 16:9 video is centre-cropped to a square: the left and right sides are not seen" \
        in kinds["cropped"].lower()
    assert "downscaled" in kinds  # 1080 → 112: ~10×
    assert view_notices((112, 112), SQUARE) == []
    assert view_notices((120, 128), SQUARE) == []  # a little wider: 94 % of the width seen
    squashed = {n.kind for n in view_notices((1080, 1920), C3D)}
    assert "squashed" in squashed
    assert "upscaled" in {n.kind for n in view_notices((20, 20), SQUARE)}
    portrait = {n.kind: n.message for n in view_notices((640, 360), SQUARE)}
    assert "top and bottom" in portrait["cropped"] and "9:16" in portrait["cropped"]


def test_input_notices_combine_both_and_accept_an_unknown_size():
    probs = np.full(4, 0.25)
    assert [n.kind for n in input_notices(probs, None, SQUARE)] == ["near-chance"]
    kinds = [n.kind for n in input_notices(probs, (1080, 1920), SQUARE)]
    assert kinds[0] == "near-chance" and "cropped" in kinds


def test_aspect_names():
    assert aspect_name(1080, 1920) == "16:9"
    assert aspect_name(480, 640) == "4:3"
    assert aspect_name(100, 100) == "1:1"
    assert aspect_name(100, 185) == "1.85:1"
    assert aspect_name(100, 200) == "2:1"
