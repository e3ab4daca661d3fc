"""Class probabilities of a clip: the top-k predictions a user sees first.

Always in eval mode and without gradients; a module a user handed over in training mode
is put back in training mode afterwards (the model is never mutated permanently).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import MethodError, ParameterError
from .methods.base import model_guard
from .models.registry import LoadedModel
from .video.clip import Clip


@dataclass(frozen=True)
class Prediction:
    """One class of the ranking: its name, index and softmax probability."""

    class_name: str
    index: int
    probability: float

    def to_dict(self) -> dict:
        """JSON form used by ``predict --json``: ``{"class", "index", "probability"}``."""
        return {"class": self.class_name, "index": self.index, "probability": self.probability}


#: Clips per forward pass when predicting (no gradients: cheap in memory).
PREDICTION_CHUNK = 8


def class_probabilities(model: LoadedModel, x: torch.Tensor,
                        chunk: int = PREDICTION_CHUNK) -> torch.Tensor:
    """Softmax probabilities (B, K) of normalised clips ``x`` (B, 3, T, H, W), on the CPU.

    The one batched softmax of ``xai_core``: in eval mode, without gradients, ``chunk``
    clips per forward pass.

    Raises
    ------
    MethodError
        When the network returns NaN/Inf or not one score per class.
    """
    if x.ndim != 5 or x.shape[1] != 3:
        raise ParameterError(f"clips must be (B, 3, T, H, W), got {tuple(x.shape)}")
    out = []
    with model_guard(model.module), torch.no_grad():
        for i in range(0, x.shape[0], max(1, chunk)):
            logits = model.module(x[i : i + chunk].to(model.device, torch.float32))
            if logits.ndim != 2 or logits.shape[1] != model.num_classes:
                raise MethodError(
                    f"{model.name} returned scores of shape {tuple(logits.shape)} for "
                    f"{model.num_classes} classes",
                    hint="Check that the class-names file belongs to this checkpoint.")
            if not torch.isfinite(logits).all():
                raise MethodError(f"{model.name} returned NaN/Inf scores for this clip",
                                  hint="The weights are probably broken; re-export the checkpoint.")
            out.append(logits.float().softmax(dim=1).cpu())
    return torch.cat(out)


def predict(model: LoadedModel, clip: Clip, top: int = 5) -> list[Prediction]:
    """The ``top`` most probable classes of ``clip``, most probable first.

    Parameters
    ----------
    model
        A loaded model.
    clip
        A clip prepared with this model's input spec (``load_clip(src, model.input)``).
    top
        How many classes to return (at most the number of classes).
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ParameterError(f"top must be a positive integer, got {top!r}")
    if clip.input_spec != model.input:
        raise ParameterError(f"the clip was prepared for another input spec than {model.name}'s",
                             hint="Load it with load_clip(source, model.input).")
    probs = class_probabilities(model, clip.tensor)[0]
    values, indices = probs.topk(min(top, model.num_classes))
    return [Prediction(model.class_names[i], int(i), float(p))
            for p, i in zip(values.tolist(), indices.tolist(), strict=True)]
