"""The dashboard's real models: torchvision's pretrained video classifiers and Hugging Face.

Nothing is downloaded. ``TORCH_HOME`` points at a temporary folder holding random weights
under the exact file name torchvision expects (as ``test_pretrained.py`` does), and any
download attempt fails as it would offline; the Hugging Face model is a tiny random
VideoMAE saved with ``save_pretrained`` and read with ``HF_HUB_OFFLINE=1``. The explained
clips are short (r3d_18's own 16 frames at 112×112) and only Grad-CAM runs, full relevance
only: r3d_18 on a CPU is the slow part.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from helpers import APP, TIMEOUT, assert_healthy, errors, put_random_weights, upload
from tiny_transformers import LABELS, save_hf

from dashboard.settings import Settings
from xai_core import cache as cache_mod
from xai_core.cache import ResultCache
from xai_core.models.pretrained import resolve_weights, weights_file
from xai_core.synthetic.world import WorldConfig, render_clip
from xai_core.video import write_video

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache, no network for torch.hub or Hugging Face, a private
    result cache; returns the torch home."""
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)

    def no_network(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setenv("XAI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_mod, "_default", ResultCache(tmp_path / "cache"))
    return home


def clip_file(folder: Path, size: int, frames: int) -> Path:
    clip = render_clip(2, label=0, config=WorldConfig(size=size, num_frames=frames)).frames
    return write_video(folder / "clip.mp4", clip, fps=15)


def app(source: str, video: Path, **state) -> AppTest:
    """The app on ``source`` with Grad-CAM (full relevance only), ``video`` uploaded."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["s_model_source"] = source
    at.session_state["s_clip_source"] = "upload"
    at.session_state["s_methods"] = ["gradcam"]
    at.session_state["s_full_only"] = ["gradcam"]
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    return upload(at, video.name, video.read_bytes(), mime="video/mp4")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def card_text(at: AppTest) -> str:
    (card,) = [e for e in at.sidebar.expander if e.label == "Model card"]
    return " ".join(m.value for m in card.markdown).replace("\\", "")  # markdown escapes


def test_the_sidebar_offers_every_model_source():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["s_clip_source"] = "upload"
    at.run()
    radio = at.sidebar.radio(key="s_model_source")
    assert radio.options == ["Bundled", "My own checkpoint", "Pretrained (torchvision)",
                             "Hugging Face"]
    assert "Model card" in [e.label for e in at.sidebar.expander]  # the bundled model's too
    # a settings file may hold the new sources (not the weights name or the hub id)
    for source in ("pretrained", "hf"):
        loaded = Settings.from_json(Settings(model_source=source, arch="r3d_18").to_json())
        assert loaded.model_source == source


def test_pretrained_r3d_18_loads_with_kinetics_names(offline, tmp_path):
    path = put_random_weights("r3d_18", "KINETICS400_V1")
    at = app("pretrained", clip_file(tmp_path, 112, 16), s_arch="r3d_18",
             s_weights="KINETICS400_V1")
    assert_healthy(at)
    archs = at.sidebar.selectbox(key="s_arch").options  # torchvision's nine, described
    assert [a.split(" — ")[0] for a in archs] == sorted(
        ["r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t",
         "swin3d_s", "swin3d_b"])
    weights = at.sidebar.selectbox(key="s_weights")
    assert weights.value == "KINETICS400_V1" and weights.options[0] == "DEFAULT"
    kinetics = resolve_weights("r3d_18", "KINETICS400_V1").meta["categories"]
    assert metric(at, "Model predicts") in kinetics
    assert metric(at, "Explaining the class") in kinetics
    target = at.sidebar.selectbox(key="s_target")
    assert len(target.options) == 401  # the predicted class + Kinetics-400
    card = card_text(at)
    assert "16×112×112" in card and "33.37 M" in card and "15 fps" in card
    assert "cached" in card and path.name in card
    assert any(path.name in c.value for c in at.sidebar.caption)


def test_missing_weights_name_the_file_and_the_clip_stays(offline, tmp_path):
    at = app("pretrained", clip_file(tmp_path, 112, 16), s_arch="r3d_18",
             s_weights="KINETICS400_V1")
    assert not at.exception, [e.value for e in at.exception]
    expected = weights_file(resolve_weights("r3d_18", "KINETICS400_V1"))
    text = errors(at)
    assert "Could not load the model" in text
    assert expected.name in text and str(expected.parent) in text
    assert "Traceback" not in text
    # the rest of the sidebar is usable: the clip is still there, the card says why
    assert at.sidebar.file_uploader(key="upload_video").value is not None
    assert any("frames, 112×112" in c.value for c in at.sidebar.caption)
    assert "downloaded on first use" in card_text(at)
    # the file arrives: the same page loads it
    put_random_weights("r3d_18", "KINETICS400_V1")
    at.run()
    assert_healthy(at)


def test_hugging_face_folder_loads_through_the_text_field(offline, tmp_path):
    folder = save_hf(tmp_path, "videomae")
    at = app("hf", clip_file(tmp_path, 48, 8))
    assert not at.error and not at.exception
    assert any("Hugging Face hub id" in i.value for i in at.info)  # nothing entered yet
    at.sidebar.text_input(key="s_hf").set_value(str(folder)).run()
    assert_healthy(at)
    assert metric(at, "Model predicts") in LABELS
    card = card_text(at)
    assert "4×32×32" in card and "folder" in card
    # a folder that holds no model: the core's message, the page goes on
    at.sidebar.text_input(key="s_hf").set_value(str(tmp_path / "nothing")).run()
    assert not at.exception
    assert "nothing" in errors(at)
    assert at.sidebar.file_uploader(key="upload_video").value is not None


def test_each_model_source_keeps_its_choices_while_another_is_shown(offline, tmp_path):
    missing = str(tmp_path / "no-such-model")
    at = app("pretrained", clip_file(tmp_path, 112, 16), s_arch="mc3_18",
             s_weights="KINETICS400_V1")  # no weights file: its error box, nothing else
    assert not at.exception
    at.sidebar.radio(key="s_model_source").set_value("hf").run()
    at.sidebar.text_input(key="s_hf").set_value(missing).run()
    assert not at.exception and "no such folder" in errors(at)
    at.sidebar.radio(key="s_model_source").set_value("bundled").run()
    at.sidebar.selectbox(key="s_model").set_value("context-biased").run()
    assert_healthy(at)
    at.sidebar.radio(key="s_model_source").set_value("pretrained").run()
    assert at.sidebar.selectbox(key="s_arch").value == "mc3_18"
    assert at.sidebar.selectbox(key="s_weights").value == "KINETICS400_V1"
    at.sidebar.radio(key="s_model_source").set_value("hf").run()
    assert at.sidebar.text_input(key="s_hf").value == missing
    at.sidebar.radio(key="s_model_source").set_value("bundled").run()
    assert at.sidebar.selectbox(key="s_model").value == "context-biased"
    assert_healthy(at)
