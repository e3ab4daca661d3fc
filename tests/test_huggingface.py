"""Hugging Face video classifiers (VideoMAE, TimeSformer, ViViT) through ``load_model(hf=...)``.

Tiny random configurations are saved with ``save_pretrained`` (model and processor) to a
temporary folder and loaded back with ``HF_HUB_OFFLINE=1``: nothing is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli
from tiny_transformers import HF_FAMILIES, LABELS, S, T, hf, hf_config, offline_hf_folder

from xai_core.errors import CheckpointError, ParameterError
from xai_core.models.huggingface import HFVideoClassifier
from xai_core.models.registry import load_model
from xai_core.video import write_video
from xai_core.video.preprocess import preprocess

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Iterator[Path]:
    """One folder per family, saved offline; HF_HUB_OFFLINE=1 for the module's tests."""
    yield from offline_hf_folder(tmp_path_factory)


def clip_frames(seed: int = 0, size: tuple[int, int] = (40, 52)) -> np.ndarray:
    """T random frames whose short side is 40: the processors' resize leaves them alone."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (T, *size, 3), dtype=np.uint8)


@pytest.mark.parametrize("family", HF_FAMILIES)
def test_loads_with_its_own_classes_frames_and_logits(root, family):
    model = hf(root, family)
    assert isinstance(model.module, HFVideoClassifier) and not model.module.training
    assert model.class_names == LABELS  # config.id2label
    assert (model.input.num_frames, model.input.height, model.input.width) == (T, S, S)
    assert model.spec.is_transformer and model.spec.source == str((root / family).resolve())
    original = transformers.AutoModelForVideoClassification.from_pretrained(root / family).eval()
    x = torch.randn(2, 3, T, S, S, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model.module(x)  # (B, 3, T, H, W) in, (B, K) out
        expected = original(pixel_values=x.permute(0, 2, 1, 3, 4)).logits
    assert logits.shape == (2, len(LABELS)) and torch.allclose(logits, expected, atol=1e-5)


@pytest.mark.parametrize("family", HF_FAMILIES)
def test_preprocessing_is_the_models_own_processor(root, family):
    """Same tensor as the processor (resize to the short side, centre crop, rescale —
    ViViT's with its offset to [-1, 1] — and normalise)."""
    model = hf(root, family)
    frames = clip_frames()
    ours, _ = preprocess(frames, model.input)
    processor = (transformers.AutoImageProcessor if family == "timesformer"
                 else transformers.AutoVideoProcessor).from_pretrained(root / family)
    try:
        theirs = processor(videos=[frames], return_tensors="pt")["pixel_values"]
    except TypeError:
        theirs = processor([list(frames)], return_tensors="pt")["pixel_values"]
    assert model.input.short_side == 40
    assert torch.allclose(ours.permute(0, 2, 1, 3, 4), theirs.float(), atol=1e-5)


def test_vivit_offset_and_videomae_mean_std_are_read_off_the_processor(root):
    vivit, videomae = hf(root, "vivit"), hf(root, "videomae")
    # ViViT: pixel/127.5 − 1, then (· − 0.5)/0.5  ≡  (pixel/127.5 − 1.5)/0.5
    assert vivit.input.scale == pytest.approx(1 / 127.5)
    assert vivit.input.mean == pytest.approx((1.5,) * 3) and vivit.input.std == (0.5,) * 3
    assert videomae.input.scale == pytest.approx(1 / 255)
    assert videomae.input.mean == pytest.approx((0.5,) * 3)  # IMAGENET_STANDARD_MEAN


@pytest.mark.parametrize("family, cam, stride, cls, order", [
    ("videomae", "model.videomae.encoder.layer.1", (2, 8, 8), 0, "thw"),   # mean-pooled head
    ("timesformer", "model.timesformer.encoder.layer.0", (1, 8, 8), 1, "hwt"),  # class token
    ("vivit", "model.vivit.layers.0", (2, 8, 8), 1, "thw"),
])
def test_token_grid_per_family(root, family, cam, stride, cls, order):
    spec = hf(root, family).spec
    assert spec.cam_layer == cam and spec.classifier is None
    assert (spec.token_grid.stride, spec.token_grid.cls_tokens, spec.token_grid.order) == (
        stride, cls, order)


@pytest.mark.parametrize("family", HF_FAMILIES)
def test_token_layout_matches_the_patch_embedding(root, family):
    """The grid reshape puts every token where its patch is: with position embeddings and
    the class token zeroed, the embeddings' tokens on the grid equal the patch convolution
    applied to the clip directly."""
    model = hf(root, family)
    base = getattr(model.module.model, family)
    emb = base.embeddings
    with torch.no_grad():
        for name in ("position_embeddings", "time_embeddings", "cls_token"):
            if isinstance(getattr(emb, name, None), torch.Tensor):
                getattr(emb, name).zero_()
        x = torch.randn(1, 3, T, S, S)
        seen = {}
        emb.register_forward_hook(lambda m, i, o: seen.__setitem__("o", o))
        model.module(x)
        grid = model.spec.token_grid.to_map(seen["o"], (T, S, S))  # (1, C, T', H', W')
        conv = emb.patch_embeddings.projection
        if isinstance(conv, torch.nn.Conv3d):
            direct = conv(x)
        else:  # TimeSformer: a 2-D patch convolution per frame
            direct = torch.stack([conv(x[:, :, t]) for t in range(T)], dim=2)
    assert grid.shape == direct.shape and torch.allclose(grid, direct, atol=1e-5)


def test_offline_hub_id_says_where_to_put_it(root):
    with pytest.raises(CheckpointError) as err:
        load_model(hf="no-such-org/no-such-video-model", device="cpu")
    text = str(err.value)
    assert "no-such-org/no-such-video-model" in text and "save_pretrained" in text
    assert "cache" in text


def test_folder_without_a_processor_is_refused(root, tmp_path):
    torch.manual_seed(0)
    model = transformers.AutoModelForVideoClassification.from_config(hf_config("videomae"))
    model.save_pretrained(tmp_path / "bare")
    with pytest.raises(CheckpointError, match="no video or image processor"):
        load_model(hf=tmp_path / "bare", device="cpu")


def test_unsupported_model_type_is_refused(tmp_path):
    transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32).save_pretrained(tmp_path / "bert")
    with pytest.raises(CheckpointError, match="'bert' is not supported.*VideoMAE"):
        load_model(hf=tmp_path / "bert", device="cpu")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        load_model(hf=tmp_path / "file", device="cpu")


def test_hf_is_given_alone(root):
    with pytest.raises(ParameterError, match="given alone"):
        load_model(hf=root / "vivit", arch="r3d_18")


def test_random_build_for_the_spec(root):
    spec = hf(root, "videomae").spec
    net = spec.build(5)
    assert isinstance(net, HFVideoClassifier)
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, T, S, S)).shape == (1, 5)


def test_cli_predict_and_card(root, tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", clip_frames(size=(48, 64)), fps=8)
    code, out, err = run_cli(capsys, ["predict", video, "--hf", root / "vivit", "--json",
                                      "--device", "cpu"])
    assert code == 0, err
    assert {p["class"] for p in json.loads(out)} == set(LABELS)
    code, out, err = run_cli(capsys, ["models", "--hf", root / "videomae", "--json"])
    assert code == 0, err
    (card,) = json.loads(out)
    assert card["classes"] == 3 and card["input"] == f"{T}×{S}×{S}" and card["params"] > 0
    assert "short side to 40" in card["resize"] and "tokens of 2×8×8" in card["explained_at"]
    code, out, err = run_cli(capsys, ["predict", video, "--hf", "no-such-org/model"])
    assert code == 2 and out == "" and err.startswith("error (checkpoint)")


def test_transformers_is_pinned_to_the_installed_version():
    text = (Path(__file__).resolve().parents[1] / "requirements.txt").read_text()
    assert f"transformers=={transformers.__version__}" in text.splitlines()
