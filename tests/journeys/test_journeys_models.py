"""Journeys 4–5 in a real browser: one's own checkpoint with an uploaded clip and class
names uploaded afterwards; a pretrained torchvision and a Hugging Face model with an
uploaded clip (offline stand-ins in their ecosystems' caches)."""

from __future__ import annotations

import re

import pytest
from journey_steps import (
    START,
    explaining,
    says,
    small_video,
)

pytestmark = [pytest.mark.browser, pytest.mark.journey]


# --------------------------------------------------------------------------- 4: own model
def test_own_checkpoint_with_an_uploaded_clip_and_class_names_afterwards(journey, server,
                                                                         tmp_path):
    from helpers import write_model_files

    from xai_core.models.registry import get_spec
    from xai_core.synthetic.world import CLASSES

    j = journey
    ckpt, names = write_model_files(tmp_path, get_spec("small-c3d"))  # a real architecture
    video = small_video(tmp_path / "my_clip.mp4", frames=16, seed=11)
    j.open(server.url + START)
    j.radio("Clip", "Upload a video")
    j.upload("Video (", video)
    says(j, r"clip my_clip\.mp4")
    j.select("Bundled model", "context-biased")
    j.radio("Model", "My own checkpoint")
    # the clip stays: its file in the uploader and its caption
    assert j.sidebar.get_by_text("my_clip.mp4", exact=True).count() == 1
    assert j.sidebar.get_by_text("16 frames, 112×112").count() == 1
    says(j, r"Upload a checkpoint")
    j.upload("Checkpoint (state dict", ckpt)
    says(j, r"Model small-c3d:net\.pt · clip my_clip\.mp4")
    numbered = j.options("Class to explain")
    assert set(numbered[1:]) == {f"class {i}" for i in range(len(CLASSES))}, numbered
    j.upload("Class names (.txt", names)  # after the checkpoint: the names are used
    named = j.options("Class to explain")
    assert set(named[1:]) == set(CLASSES), named
    assert j.page.get_by_text(re.compile(r"\bclass \d\b")).count() == 0
    j.select("Class to explain", named[2])
    assert explaining(j) == named[2]
    j.radio("Colour scale", "per frame")
    j.radio("Model", "Bundled")  # the bundled model chosen before is still chosen
    assert j.sidebar.get_by_text("my_clip.mp4", exact=True).count() == 1
    assert j.value("Bundled model") == "context-biased"
    says(j, r"Model context-biased · clip my_clip\.mp4")


# --------------------------------------------------------------------------- 5: real models
def test_pretrained_and_hugging_face_models_with_an_uploaded_clip(journey, server, tmp_path):
    """A user's own video through torchvision's and Hugging Face's models (offline stand-ins
    in their ecosystems' caches), a mistyped model folder, and back to the bundled model."""
    from tiny_transformers import LABELS, save_hf
    from torchvision.models.video import R3D_18_Weights

    j = journey
    video = small_video(tmp_path / "holiday.mp4", frames=16, seed=3)
    folder = save_hf(tmp_path, "videomae")
    j.open(server.url + START)
    j.radio("Clip", "Upload a video")
    j.upload("Video (", video)
    j.radio("Model", "Pretrained (torchvision)")
    says(j, r"Model r3d_18.* · clip holiday\.mp4")
    assert j.value("Architecture").startswith("r3d_18")
    kinetics = R3D_18_Weights.KINETICS400_V1.meta["categories"]
    shown = j.options("Class to explain")[1:]  # the list draws the first few of 400
    assert len(shown) >= 5 and set(shown) <= set(kinetics), shown
    j.select("Weights", "KINETICS400_V1")  # the same file: served from the cache
    j.select("Class to explain", shown[2])
    assert explaining(j) == shown[2]
    j.radio("Model", "Hugging Face")
    says(j, r"Enter a Hugging Face hub id")
    j.text("Hugging Face model", str(tmp_path / "no-such-model"),
           errors=r"cannot load the Hugging Face model .*no such folder")
    assert j.sidebar.get_by_text("holiday.mp4", exact=True).count() == 1  # the clip stays
    j.text("Hugging Face model", str(folder))
    says(j, r"· clip holiday\.mp4")
    assert set(j.options("Class to explain")[1:]) == set(LABELS)
    assert j.value("Class to explain") == "The predicted class"  # not the Kinetics class
    j.radio("Colour scale", "per frame")
    j.radio("Model", "Bundled")
    says(j, r"Model motion · clip holiday\.mp4")


