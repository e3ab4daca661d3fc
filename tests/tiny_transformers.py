"""Tiny video transformers of every family, for tests (a few thousand weights, 4×32×32 clips).

* torchvision: Swin3D and MViT built from their classes with one or two small stages,
  wrapped with the zoo's specs (CAM layer, token grid) scaled to the tiny strides;
* Hugging Face: VideoMAE, TimeSformer and ViViT from tiny random configurations, saved
  with ``save_pretrained`` next to their processors and loaded back through
  ``load_model(hf=folder)`` (nothing is downloaded: ``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import torch

from xai_core.models.registry import LoadedModel, get_spec, load_model, wrap_module
from xai_core.models.spec import InputSpec

T, S, K = 4, 32, 3
LABELS = ["archery", "bowling", "juggling"]
TINY_INPUT = InputSpec(num_frames=T, height=S, width=S, mean=(0.45,) * 3, std=(0.225,) * 3)
HF_FAMILIES = ("videomae", "timesformer", "vivit")
TV_FAMILIES = ("swin3d", "mvit")


def swin3d(seed: int = 0) -> LoadedModel:
    """Swin3D, patch (2, 4, 4), two stages (one patch merging): tokens of 2×8×8 voxels."""
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    torch.manual_seed(seed)
    net = SwinTransformer3d(patch_size=[2, 4, 4], embed_dim=8, depths=[1, 1], num_heads=[1, 1],
                            window_size=[2, 2, 2], num_classes=K)
    base = get_spec("swin3d_t")
    spec = dataclasses.replace(base, name="tiny-swin3d", input=TINY_INPUT,
                               token_grid=dataclasses.replace(base.token_grid, stride=(2, 8, 8)))
    return wrap_module(net.eval(), spec, LABELS, name="tiny-swin3d", device="cpu")


def mvit(seed: int = 0) -> LoadedModel:
    """MViT-v2-like: three blocks, q-pooling in the second; CAM on the second block's output."""
    from torchvision.models.video.mvit import MSBlockConfig, MViT

    torch.manual_seed(seed)
    blocks = [
        MSBlockConfig(num_heads=1, input_channels=8, output_channels=8, kernel_q=[],
                      kernel_kv=[3, 3, 3], stride_q=[], stride_kv=[1, 2, 2]),
        MSBlockConfig(num_heads=1, input_channels=8, output_channels=16, kernel_q=[3, 3, 3],
                      kernel_kv=[3, 3, 3], stride_q=[1, 2, 2], stride_kv=[1, 1, 1]),
        MSBlockConfig(num_heads=2, input_channels=16, output_channels=16, kernel_q=[],
                      kernel_kv=[3, 3, 3], stride_q=[], stride_kv=[1, 1, 1]),
    ]
    net = MViT(spatial_size=(S, S), temporal_size=T, block_setting=blocks, residual_pool=True,
               residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True,
               num_classes=K)
    base = get_spec("mvit_v2_s")
    spec = dataclasses.replace(base, name="tiny-mvit", input=TINY_INPUT, cam_layer="blocks.1",
                               token_grid=dataclasses.replace(base.token_grid, stride=(2, 8, 8)))
    return wrap_module(net.eval(), spec, LABELS, name="tiny-mvit", device="cpu")


def hf_config(family: str, layers: int = 2):
    """A tiny random configuration of a Hugging Face video classifier."""
    import transformers as tf

    common = dict(hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                  intermediate_size=32, image_size=S, patch_size=8, num_frames=T, num_labels=K,
                  id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    if family == "videomae":
        return tf.VideoMAEConfig(tubelet_size=2, **common)
    if family == "timesformer":
        return tf.TimesformerConfig(**common)
    return tf.VivitConfig(tubelet_size=[2, 8, 8], **common)


def hf_processor(family: str):
    """Each family's processor, resizing the short side to 40 (and ViViT's offset rescale).
    TimeSformer's is the image processor (the class transformers maps it to), saved as
    ``preprocessor_config.json``; the others are video processors."""
    import transformers as tf

    crop = {"height": S, "width": S}
    if family == "videomae":
        return tf.VideoMAEVideoProcessor(size={"shortest_edge": 40}, crop_size=crop)
    if family == "timesformer":
        return tf.VideoMAEImageProcessor(size={"shortest_edge": 40}, crop_size=crop,
                                         image_mean=[0.45, 0.45, 0.45],
                                         image_std=[0.225, 0.225, 0.225])
    return tf.VivitVideoProcessor(size={"shortest_edge": 40}, crop_size=crop)


def save_hf(root: Path, family: str, seed: int = 0, layers: int = 2) -> Path:
    """A tiny random ``family`` model and its processor saved to ``root/family``."""
    import transformers as tf

    torch.manual_seed(seed)
    model = tf.AutoModelForVideoClassification.from_config(hf_config(family, layers)).eval()
    folder = root / family
    model.save_pretrained(folder)
    hf_processor(family).save_pretrained(folder)
    return folder


def hf(root: Path, family: str) -> LoadedModel:
    """The saved tiny ``family`` model, loaded through ``load_model(hf=...)``."""
    return load_model(hf=root / family, device="cpu")


def bias_free(model: LoadedModel) -> LoadedModel:
    """Zero every bias, position embedding and class token in place (a conservation test's
    network: nothing but the clip carries relevance)."""
    keys = ("cls_token", "class_token", "position_embeddings", "time_embeddings", "pos_encoding",
            "rel_pos", "relative_position_bias")
    with torch.no_grad():
        for name, p in model.module.named_parameters():
            if name.endswith("bias") or any(k in name for k in keys):
                p.zero_()
        for m in model.module.modules():  # VideoMAE: a fixed sinusoid table, not a parameter
            table = getattr(m, "position_embeddings", None)
            if isinstance(table, torch.Tensor) and not isinstance(table, torch.nn.Parameter):
                table.zero_()
    return model


def offline_hf_folder(factory, name: str = "hf") -> Iterator[Path]:
    """A folder with every Hugging Face family saved (tiny, random), with the hub offline
    (``HF_HUB_OFFLINE=1``) while it is in use: for a module-scoped fixture."""
    import pytest  # only test code calls this

    pytest.importorskip("transformers")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        # read once when huggingface_hub is imported (already, by transformers): patched too
        mp.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
        folder = factory.mktemp(name)
        for family in HF_FAMILIES:
            save_hf(folder, family)
        yield folder
