"""Gradient-based attributions of the target logit, on captum.

All of them differentiate the *logit* of the target class (not its probability) with
respect to the normalised clip, and return signed values per colour channel (raw) and
summed over channels. captum does the work; this module chooses the settings, makes the
random ones reproducible, and refuses what captum would get silently wrong (empty
outputs, guided backprop through ReLUs that are not ``nn.ReLU`` modules).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop, InputXGradient, IntegratedGradients, Saliency
from torch import nn
from torch.overrides import TorchFunctionMode

from ..baselines import baseline_clip
from ..errors import MethodError
from ..models.registry import LoadedModel
from .base import Attribution, Method, Param, ProgressFn, register_method


def expect_shape(t: object, shape: torch.Size, method: str) -> torch.Tensor:
    """Guard against a library returning an empty or mis-shaped attribution."""
    if isinstance(t, tuple) and len(t) == 1:
        t = t[0]
    if not isinstance(t, torch.Tensor) or t.shape != shape:
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise MethodError(f"{method} returned an attribution of shape {got}, expected "
                          f"{tuple(shape)}", hint="This model's layers do not suit the method; "
                                                  "try another method.")
    return t


class GradientMethod(Method):
    """Base of the methods that differentiate the model: a subclass writes :meth:`explain`.

    :meth:`_attribute` hands :meth:`explain` a leaf copy of one chunk of clips that
    requires gradients, and :meth:`finish` turns its output into an
    :class:`~xai_core.methods.base.Attribution` (the pattern of pytorch-grad-cam's
    ``BaseCAM``, Gildenblat et al. 2021: a new method is one hook). Here the output is a
    signed (B, 3, T, H, W) attribution, kept as ``raw`` and summed over colour channels.
    """

    family: ClassVar[str] = "gradient"
    has_raw: ClassVar[bool] = True

    @abstractmethod
    def explain(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) signed attribution of the target logit for clips ``x``."""

    def finish(self, out: torch.Tensor, x: torch.Tensor) -> Attribution:
        """The attribution of clips ``x`` from the output ``out`` of :meth:`explain`."""
        raw = expect_shape(out, x.shape, self.name).detach()
        return Attribution(raw.sum(1), raw)

    def _attribute(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor,
                   progress: ProgressFn | None = None) -> Attribution:
        x = x.detach().clone().requires_grad_(True)
        return self.finish(self.explain(model, x, target), x)


@register_method
class Gradient(GradientMethod):
    """Plain gradient of the target logit (signed; not the absolute value).

    Simonyan et al. show |gradient|; here the sign is kept, as relevance is signed
    throughout xai_core: positive where brightening a voxel would raise the logit.

    References
    ----------
    Simonyan, Vedaldi, Zisserman, "Deep inside convolutional networks: visualising image
    classification models and saliency maps", ICLR workshop (2014).
    """

    name = "gradient"
    description = "Gradient of the target logit w.r.t. the clip (signed saliency)"
    reference = "Simonyan et al. 2014, ICLR workshop (saliency maps)"

    def explain(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return Saliency(model.module).attribute(x, target=target, abs=False)


@register_method
class InputXGrad(GradientMethod):
    """Input × gradient of the target logit.

    References
    ----------
    Shrikumar et al., "Not just a black box: learning important features through
    propagating activation differences", arXiv:1605.01713 (2016).
    """

    name = "input-x-gradient"
    description = "Clip × gradient of the target logit"
    reference = "Shrikumar et al. 2016, arXiv:1605.01713"

    def explain(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return InputXGradient(model.module).attribute(x, target=target)


#: Integrated gradients' ``baseline`` choices → kinds of :func:`~xai_core.baselines.baseline_clip`.
_IG_BASELINES = {"mean": "zeros", "black": "black"}


@register_method
class IntegratedGrad(GradientMethod):
    """Integrated gradients from a baseline clip to the clip (Gauss–Legendre quadrature).

    Completeness: the attributions sum to logit(clip) − logit(baseline), up to the
    quadrature error that shrinks with ``steps``.

    References
    ----------
    Sundararajan, Taly, Yan, "Axiomatic attribution for deep networks", ICML (2017).
    """

    name = "integrated-gradients"
    description = "Integrated gradients from a mean or black clip"
    reference = "Sundararajan et al. 2017, ICML (axiomatic attribution)"
    params = {
        "steps": Param(32, "points on the path from baseline to clip", low=2, high=1024),
        "baseline": Param("mean", "reference clip: mean (zeros after normalisation) or black",
                          choices=tuple(_IG_BASELINES)),
    }

    def cost_passes(self, clip: tuple[int, ...] | None = None) -> int:
        return int(self.config["steps"])

    def explain(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        reference = baseline_clip(model, x, _IG_BASELINES[self.config["baseline"]])
        return IntegratedGradients(model.module).attribute(
            x, baselines=reference, target=target, n_steps=self.config["steps"],
            internal_batch_size=self.default_batch_size)


@register_method
class SmoothGrad(GradientMethod):
    """Mean gradient over noisy copies of the clip (signed).

    The noise standard deviation is ``noise`` × the span of normalised pixel values
    (Smilkov et al. use 10–20 %). The noise is drawn from a fixed ``seed``, the same
    sequence for every clip, so the same clip always gives the same map, alone or in a
    batch.

    References
    ----------
    Smilkov et al., "SmoothGrad: removing noise by adding noise", ICML workshop (2017).
    """

    name = "smoothgrad"
    description = "Gradient averaged over noisy copies of the clip"
    reference = "Smilkov et al. 2017, arXiv:1706.03825 (SmoothGrad)"
    params = {
        "noise": Param(0.15, "noise std as a fraction of the pixel range", low=0.0, high=1.0),
        "samples": Param(16, "number of noisy copies", low=1, high=512),
        "seed": Param(0, "random seed of the noise (fixed: same clip, same map)", low=0),
    }

    def cost_passes(self, clip: tuple[int, ...] | None = None) -> int:
        return int(self.config["samples"])

    def explain(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        low, high = model.input.pixel_bounds()
        sigma = self.config["noise"] * float(high.max() - low.min())
        samples = int(self.config["samples"])
        per_pass = max(1, self.default_batch_size // x.shape[0])
        # One noise sequence from the seed, shared by every clip: a clip's map does not
        # depend on the batch it is in (freeze-frame clips are batched), and the full and
        # freeze-frame explanations see the same noise, so their difference is not noise.
        gen = torch.Generator().manual_seed(int(self.config["seed"]))
        saliency = Saliency(model.module)
        total = torch.zeros_like(x)
        b = x.shape[0]
        for first in range(0, samples, per_pass):
            k = min(per_pass, samples - first)
            # drawn one sample at a time: the sequence must not depend on the chunking
            noise = torch.stack([torch.randn(x.shape[1:], generator=gen) for _ in range(k)])
            noise = noise.to(x.device, x.dtype) * sigma
            noisy = (x.unsqueeze(1) + noise.unsqueeze(0)).reshape(b * k, *x.shape[1:])
            grads = saliency.attribute(noisy, target=target.repeat_interleave(k), abs=False)
            total += grads.reshape(b, k, *x.shape[1:]).sum(dim=1)
        return total / samples


_RELU_FUNCTIONS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu,
                   torch.Tensor.relu_}


class _CountReLUs(TorchFunctionMode):
    """Count every ReLU applied during a forward pass, module or functional."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func in _RELU_FUNCTIONS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def functional_relus(module: nn.Module, x: torch.Tensor) -> int:
    """Number of ReLUs a forward pass of ``x[:1]`` applies outside ``nn.ReLU`` modules.

    Guided backprop (captum) rewrites the backward of ``nn.ReLU`` modules only; a ReLU
    called as a function would silently stay a plain gradient.
    """
    module_calls = 0

    def count(*_: object) -> None:
        nonlocal module_calls
        module_calls += 1

    handles = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad(), _CountReLUs() as counter:
            module(x[:1].detach())
    finally:
        for h in handles:
            h.remove()
    return counter.count - module_calls


def guided_backprop(model: LoadedModel, x: torch.Tensor, target: torch.Tensor,
                    method: str = "guided-backprop") -> torch.Tensor:
    """Guided backprop of the target logit (captum), refusing functional ReLUs.

    A ReLU module used several times per forward pass (as in torchvision's 2-D ResNet
    blocks) is fine: captum masks the gradient at each use.
    """
    extra = functional_relus(model.module, x)
    if extra:
        raise MethodError(
            f"{method} needs every ReLU to be an nn.ReLU module, but this model applies "
            f"{extra} ReLU(s) as functions (F.relu / torch.relu)",
            hint="Replace functional ReLUs by nn.ReLU modules, or use another method.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        return GuidedBackprop(model.module).attribute(x, target=target)


@register_method
class GuidedBackpropagation(GradientMethod):
    """Guided backpropagation: at every ReLU only positive gradients pass back.

    References
    ----------
    Springenberg et al., "Striving for simplicity: the all convolutional net", ICLR
    workshop (2015).
    """

    name = "guided-backprop"
    description = "Gradient with negative signals zeroed at every ReLU"
    reference = "Springenberg et al. 2015, ICLR workshop (guided backpropagation)"

    def check(self, model: LoadedModel) -> None:
        refuse_non_relu(model, self.name)

    def cost_passes(self, clip: tuple[int, ...] | None = None) -> int:
        return 2  # measured: the hooked gradient plus a forward pass tracing the ReLUs

    def explain(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return guided_backprop(model, x, target, self.name)

#: Smooth activations of transformers (nn.GELU, nn.SiLU; transformers' GELUActivation).
_SMOOTH_ACTIVATIONS = (nn.GELU, nn.SiLU, nn.Mish, nn.ELU, nn.Tanh)


def smooth_activations(module: nn.Module) -> list[str]:
    """Names of the non-ReLU activation types a network uses (GELU, SiLU ...)."""
    return sorted({type(m).__name__ for m in module.modules()
                   if isinstance(m, _SMOOTH_ACTIVATIONS) or "gelu" in type(m).__name__.lower()})


def refuse_non_relu(model: LoadedModel, method: str) -> None:
    """Refuse guided backpropagation on networks whose activations are not ReLUs.

    Guided backprop (Springenberg et al. 2015) zeroes negative gradients *at ReLUs*; a
    network of GELUs has none, so it would silently be the plain gradient.
    """
    smooth = smooth_activations(model.module)
    if smooth:
        raise MethodError(
            f"{method} is defined for ReLU networks; {model.name} uses {', '.join(smooth)} "
            "activations, where guided backprop would silently be the plain gradient",
            hint="Use gradcam, gradient or integrated-gradients.")
