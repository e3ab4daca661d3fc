"""Registers every architecture the project knows (imported once by the registry).

* ``small-c3d`` and the bundled ``motion`` / ``context-biased`` (see :mod:`.bundled`);
* ``c3d`` — Tran et al. (ICCV 2015), as in the widely used PyTorch port: OpenCV (BGR)
  frames resized to 128×171, centre-cropped to 112, minus the mean [90, 98, 102], no
  scaling; a flatten + fc6/fc7/fc8 head, so no CAM;
* torchvision's Kinetics video nets ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (Tran et al.,
  CVPR 2018) and ``s3d`` (Xie et al., ECCV 2018), with their Kinetics input spec;
* torchvision's video transformers ``mvit_v1_b`` (Fan et al., ICCV 2021), ``mvit_v2_s``
  (Li et al., CVPR 2022) and ``swin3d_t`` / ``swin3d_s`` / ``swin3d_b`` (Liu et al., CVPR
  2022), with the token grid their CAM layer lives on.

Every architecture here is built with random weights (``weights=None``); a user brings a
checkpoint (``load_model(arch=..., checkpoint=...)``), or asks for torchvision's
pretrained weights by name (``load_model(arch=..., weights=...)``, :mod:`.pretrained`),
whose own metadata then replaces the input spec below. The input specs here equal those
of the weights' ``transforms()`` and ``meta`` (``tests/test_pretrained.py`` checks it);
they are written out so that listing the zoo does not import torchvision.
"""

from __future__ import annotations

import importlib

from torch import nn

from .architectures import C3D
from .bundled import bundled_specs, small_c3d_spec
from .registry import register_model
from .spec import InputSpec, ModelSpec, TokenGrid

#: C3D port: BGR frames as OpenCV reads them, mean subtracted in BGR order, no scaling.
C3D_INPUT = InputSpec(num_frames=16, height=112, width=112, resize=(128, 171),
                      channel_order="BGR", scale=1.0, mean=(90.0, 98.0, 102.0),
                      std=(1.0, 1.0, 1.0))

#: torchvision's Kinetics-400 video transforms (VideoClassification preset), RGB.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
KINETICS_INPUT = InputSpec(num_frames=16, height=112, width=112, resize=(128, 171),
                           channel_order="RGB", scale=1.0 / 255.0, mean=KINETICS_MEAN,
                           std=KINETICS_STD)
#: S3D's feature map must be ≥ 7×7 for its (2, 7, 7) average pool: 224 px, resize 256.
S3D_INPUT = InputSpec(num_frames=16, height=224, width=224, resize=(256, 256),
                      channel_order="RGB", scale=1.0 / 255.0, mean=KINETICS_MEAN,
                      std=KINETICS_STD)

#: MViT (Kinetics-400 weights): 16 frames, short side 256, centre crop 224, mean/std 0.45/0.225.
MVIT_INPUT = InputSpec(num_frames=16, height=224, width=224, resize=None, short_side=256,
                       channel_order="RGB", scale=1.0 / 255.0, mean=(0.45, 0.45, 0.45),
                       std=(0.225, 0.225, 0.225))
#: Video Swin (Kinetics-400 weights): 32 frames, short side 256, crop 224, ImageNet mean/std.
SWIN3D_INPUT = InputSpec(num_frames=32, height=224, width=224, resize=None, short_side=256,
                         channel_order="RGB", scale=1.0 / 255.0, mean=(0.485, 0.456, 0.406),
                         std=(0.229, 0.224, 0.225))


def c3d_spec() -> ModelSpec:
    return ModelSpec(
        name="c3d",
        build=lambda n: C3D(num_classes=n),
        input=C3D_INPUT,
        description="C3D (Tran et al. 2015), 78 M parameters, flatten + fc head (no CAM)",
        cam_layer="relu5b",
        classifier=None,
        default_num_classes=101,  # UCF-101, what public C3D checkpoints are trained on
        architecture="c3d",
        extra={"head_keys": ["fc8"]},
    )


def _torchvision_builder(name: str):
    def build(num_classes: int) -> nn.Module:
        # Imported on first build: importing torchvision costs seconds (it pulls in sympy),
        # which `predict` with a bundled model, and every CLI start, should not pay.
        video = importlib.import_module("torchvision.models.video")
        return getattr(video, name)(weights=None, num_classes=num_classes)

    return build


def _torchvision_spec(name: str, title: str, *, input: InputSpec = KINETICS_INPUT,
                      head: str = "global-pool + fc head", cam_layer: str = "layer4",
                      classifier: str | None = "fc", **more: object) -> ModelSpec:
    """A torchvision video classifier (Kinetics-400 head): the ResNets as they are, the
    other families with their own input, CAM layer, head and token grid."""
    return ModelSpec(name=name, build=_torchvision_builder(name), input=input,
                     description=f"torchvision {title}, {head}", cam_layer=cam_layer,
                     classifier=classifier, default_num_classes=400,  # Kinetics-400
                     architecture=name, **more)


def s3d_spec() -> ModelSpec:
    # The head is avgpool (2, 7, 7) + dropout + 1×1×1 conv + mean over the rest: not an
    # nn.Linear, so CAM-style methods that need a linear classifier do not apply.
    return ModelSpec(
        name="s3d",
        build=_torchvision_builder("s3d"),
        input=S3D_INPUT,
        description="torchvision S3D (Xie et al. 2018), 224 px, 1×1×1 conv head (no CAM)",
        cam_layer="features",
        classifier=None,
        default_num_classes=400,
        architecture="s3d",
        extra={"head_keys": ["classifier.1"]},
    )


def mvit_spec(name: str, title: str) -> ModelSpec:
    """MViT: a class token read by the head, so no Saliency Tubes; Grad-CAM on the tokens
    entering the last block (the last block's output only reaches the head through its
    class token), whose (T', H', W') the block passes along with them."""
    return _torchvision_spec(
        name, title, input=MVIT_INPUT, head="class-token head (no Saliency Tubes)",
        cam_layer="blocks.14",  # input of the last of the 16 blocks (after the last pooling)
        classifier=None, extra={"head_keys": ["head.1"]},
        token_grid=TokenGrid(stride=(2, 32, 32), cls_tokens=1))


def swin3d_spec(name: str, title: str) -> ModelSpec:
    """Video Swin: channels-last (B, T', H', W', C) features, global pool + linear head."""
    return _torchvision_spec(
        name, title, input=SWIN3D_INPUT, head="global-pool + linear head", cam_layer="norm",
        classifier="head", token_grid=TokenGrid(stride=(2, 32, 32), layout="channels_last"))


register_model(small_c3d_spec())
register_model(c3d_spec())
for _name, _title in (("r3d_18", "R3D-18 (Tran et al. 2018)"),
                      ("mc3_18", "MC3-18 (Tran et al. 2018)"),
                      ("r2plus1d_18", "R(2+1)D-18 (Tran et al. 2018)")):
    register_model(_torchvision_spec(_name, _title))
register_model(s3d_spec())
register_model(mvit_spec("mvit_v1_b", "MViT-V1-B (Fan et al. 2021)"))
register_model(mvit_spec("mvit_v2_s", "MViT-V2-S (Li et al. 2022)"))
for _name, _title in (("swin3d_t", "Swin3D-T (Liu et al. 2022)"),
                      ("swin3d_s", "Swin3D-S (Liu et al. 2022)"),
                      ("swin3d_b", "Swin3D-B (Liu et al. 2022)")):
    register_model(swin3d_spec(_name, _title))
for _spec in bundled_specs():
    register_model(_spec)
