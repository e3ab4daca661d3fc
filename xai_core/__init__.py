"""xai_core: what a 3D-CNN video classifier looks at — motion or scene.

The public API is small::

    import xai_core as xc

    model = xc.load_model("motion")
    clip = xc.load_clip("video.mp4", model.input, start=0, stride=1)
    exp = xc.explain(model, clip, methods=["dtd", "gradcam"])
    exp["dtd"].temporal          # (T, H, W) signed motion relevance
    exp.summary()                # JSON-able prediction, motion share, timings

    # the same as one request, built and validated once, then priced and computed
    request = xc.ExplainRequest.build(model, clip, ["dtd", "gradcam"])
    print(xc.estimate(request).total())
    exp = xc.run(request)

``python -m xai_core --help`` gives the same from the command line.
"""

from .decompose import DecompositionOptions
from .engine import explain, run
from .estimate import estimate
from .methods.base import get_method, list_methods
from .models.registry import list_models, load_model
from .request import ExplainRequest
from .results import Explanation, MethodResult
from .timeline import timeline
from .version import __version__
from .video.clip import load_clip

__all__ = [
    "DecompositionOptions",
    "ExplainRequest",
    "Explanation",
    "MethodResult",
    "__version__",
    "estimate",
    "explain",
    "get_method",
    "list_methods",
    "list_models",
    "load_clip",
    "load_model",
    "run",
    "timeline",
]

