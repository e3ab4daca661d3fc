"""xai_core: what a 3D-CNN video classifier looks at — motion or scene.

The public API is small::

    import xai_core as xc

    model = xc.load_model("motion")
    clip = xc.load_clip("video.mp4", model.input, start=0, stride=1)
    exp = xc.explain(model, clip, methods=["dtd", "gradcam"])
    exp["dtd"].temporal          # (T, H, W) signed motion relevance
    exp.summary()                # JSON-able prediction, motion share, timings

``python -m xai_core --help`` gives the same from the command line.
"""

__version__ = "0.1.0"  # first: cache keys and result files import it

from .decompose import DecompositionOptions  # noqa: E402
from .engine import explain  # noqa: E402
from .methods.base import get_method, list_methods  # noqa: E402
from .models.registry import list_models, load_model  # noqa: E402
from .results import Explanation, MethodResult  # noqa: E402

__all__ = [
    "DecompositionOptions",
    "Explanation",
    "MethodResult",
    "__version__",
    "explain",
    "get_method",
    "list_methods",
    "list_models",
    "load_clip",
    "load_model",
]


def __getattr__(name: str):
    # the video reader pulls in decord/OpenCV: imported on first use only
    if name == "load_clip":
        from .video.clip import load_clip

        return load_clip
    raise AttributeError(f"module 'xai_core' has no attribute {name!r}")
