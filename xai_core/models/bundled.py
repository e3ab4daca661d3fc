"""The two bundled models: trained here by ``scripts/train_bundled.py`` on the synthetic world.

* ``motion`` — context independent of class: must use motion.
* ``context-biased`` — context always the class' own kind: free to use the scene.

Their weights and manifests live in ``xai_core/models/weights/``.
"""

from __future__ import annotations

from pathlib import Path

from ..synthetic.world import CLASSES
from .architectures import SmallC3D
from .spec import InputSpec, ModelSpec

WEIGHTS_DIR = Path(__file__).parent / "weights"

#: Input of the bundled nets: RGB in [0, 1], Kinetics-like mean/std.
SMALL_C3D_INPUT = InputSpec(
    num_frames=16,
    height=112,
    width=112,
    resize=None,
    channel_order="RGB",
    scale=1.0 / 255.0,
    mean=(0.45, 0.45, 0.45),
    std=(0.225, 0.225, 0.225),
)

#: Training context rate of each bundled model.
BUNDLED_CONTEXT_RATE = {"motion": 0.0, "context-biased": 1.0}


def small_c3d_spec(name: str = "small-c3d", **kw) -> ModelSpec:
    return ModelSpec(
        name=name,
        build=lambda n: SmallC3D(num_classes=n),
        input=SMALL_C3D_INPUT,
        description=kw.pop("description", "C3D layer pattern at 16/32/64/128 width, BatchNorm"),
        cam_layer="features.20",
        classifier="fc",
        default_num_classes=len(CLASSES),
        architecture="small-c3d",
        **kw,
    )


def bundled_specs() -> list[ModelSpec]:
    return [
        small_c3d_spec(
            "motion",
            description="bundled small C3D trained with context independent of class (uses motion)",
            weights=str(WEIGHTS_DIR / "motion.pt"),
            class_names=CLASSES,
        ),
        small_c3d_spec(
            "context-biased",
            description="bundled small C3D trained with context = class (spatial bias)",
            weights=str(WEIGHTS_DIR / "context-biased.pt"),
            class_names=CLASSES,
        ),
    ]
