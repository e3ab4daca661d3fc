"""Class activation maps of a 3-D convolutional layer: Grad-CAM, Saliency Tubes, Guided Grad-CAM.

A CAM lives on the coarse (T', H', W') grid of a late layer and is upsampled trilinearly
(``align_corners=False``) to the clip. It has no per-colour-channel form, so ``raw`` is
``None`` for Grad-CAM and Saliency Tubes; Guided Grad-CAM multiplies the CAM into the
per-channel guided gradient, so it has one.

References
----------
Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra, "Grad-CAM: visual explanations from deep
networks via gradient-based localization", ICCV (2017): Grad-CAM and Guided Grad-CAM.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

from ..errors import MethodError, ParameterError
from ..models.registry import LoadedModel
from .base import Attribution, Param, register_method
from .gradients import GradientMethod, guided_backprop, refuse_non_relu


def resolve_layer(model: LoadedModel, dotted: str) -> nn.Module:
    """The layer at ``dotted`` (or the spec's CAM layer when empty), with a clear error."""
    dotted = dotted or model.spec.cam_layer
    try:
        return model.module.get_submodule(dotted)
    except AttributeError:
        names = [n for n, _ in model.module.named_modules() if n]
        raise ParameterError(f"model {model.name} has no layer {dotted!r}",
                             hint="Some of its layers: " + ", ".join(names[-12:]) + ".") from None


def upsample(cam: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """(B, T', H', W') → (B, T, H, W) by trilinear interpolation (align_corners=False)."""
    if cam.ndim != 4:
        raise MethodError(f"the CAM layer gives a map of {cam.ndim - 1} dimensions, expected "
                          "(T, H, W)",
                          hint="Pick a 3-D convolutional layer with the layer parameter.")
    return F.interpolate(cam[:, None], size=size, mode="trilinear", align_corners=False)[:, 0]


class CamMethod(GradientMethod):
    """Base of the CAM family: a subclass computes the coarse map (:meth:`coarse_map`).

    :meth:`finish` upsamples it to the clip; a CAM has no per-colour-channel form.
    """

    family: ClassVar[str] = "cam"
    has_raw: ClassVar[bool] = False

    @abstractmethod
    def coarse_map(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, T', H', W') map on the layer's grid."""

    def explain(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.coarse_map(model, x, target)

    def finish(self, out: torch.Tensor, x: torch.Tensor) -> Attribution:
        return Attribution(upsample(out.detach(), tuple(x.shape[2:])), None)


_LAYER = Param("", "dotted name of the layer (empty: the model's CAM layer)")


@register_method
class GradCam(CamMethod):
    """3-D Grad-CAM: channel weights = mean gradient over (T', H', W'), ReLU of Σ weight·map.

    The ReLU belongs to Selvaraju et al.'s definition and is on by default; turn it off
    (``relu=False``) to keep the signed map, e.g. to see evidence *against* the class.

    References
    ----------
    Selvaraju et al. (2017), ICCV: the full entry is in the module's references.
    """

    name = "gradcam"
    description = "3-D Grad-CAM of a late conv layer, upsampled to the clip"
    reference = "Selvaraju et al. 2017, ICCV (Grad-CAM)"
    params = {
        "layer": _LAYER,
        "relu": Param(True, "apply the ReLU of the paper's definition (off: signed map)"),
    }

    def coarse_map(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        layer = resolve_layer(model, self.config["layer"])
        if model.spec.token_grid is not None:  # a transformer: its tokens back on their grid
            return token_gradcam(model, layer, x, target, relu=self.config["relu"])
        cam = LayerGradCam(model.module, layer).attribute(
            x, target=target, relu_attributions=self.config["relu"])
        if not isinstance(cam, torch.Tensor) or cam.ndim != 5 or cam.shape[:2] != (x.shape[0], 1):
            got = tuple(cam.shape) if isinstance(cam, torch.Tensor) else type(cam).__name__
            raise MethodError(f"gradcam got a map of shape {got} from layer "
                              f"{self.config['layer'] or model.spec.cam_layer!r}",
                              hint="Pick a 3-D convolutional layer with the layer parameter.")
        return cam[:, 0]


@register_method
class SaliencyTubes(CamMethod):
    """Saliency Tubes: plain CAM, Σₖ w[class, k]·Aₖ over the last conv layer (signed).

    Needs a global-average-pool + linear head: ``A`` is the CAM layer's output and ``w`` the
    weight of the model's classifier. Then mean(CAM) + bias = logit (the CAM identity).

    References
    ----------
    Stergiou et al., "Saliency tubes: visual explanations for spatio-temporal
    convolutions", ICIP (2019); Zhou et al., "Learning deep features for discriminative
    localization", CVPR (2016).
    """

    name = "saliency-tubes"
    description = "Plain CAM with the final linear layer's weights (global-pool heads only)"
    reference = "Stergiou et al. 2019, ICIP (Saliency Tubes); Zhou et al. 2016, CVPR (CAM)"
    params = {"layer": _LAYER}

    def check(self, model: LoadedModel) -> None:
        try:
            head = model.spec.classifier and model.module.get_submodule(model.spec.classifier)
        except AttributeError:  # the spec names a layer this network does not have
            head = None
        if not isinstance(head, nn.Linear):
            raise MethodError(
                f"saliency-tubes needs a global-pool + linear head, which {model.name} lacks",
                hint="Use gradcam, which works with any head.")

    def coarse_map(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        layer = resolve_layer(model, self.config["layer"])
        head = model.module.get_submodule(model.spec.classifier)
        seen: dict[str, torch.Tensor] = {}
        handles = [
            layer.register_forward_hook(lambda m, i, o: seen.__setitem__("maps", o)),
            head.register_forward_pre_hook(lambda m, i: seen.__setitem__("features", i[0])),
        ]
        try:
            with torch.no_grad():
                model.module(x)
        finally:
            for h in handles:
                h.remove()
        maps, features = seen.get("maps"), seen.get("features")
        if model.spec.token_grid is not None and maps is not None:
            maps = _token_map(model, maps, tuple(x.shape[2:]))
        is_map = isinstance(maps, torch.Tensor) and maps.ndim == 5
        pooled = maps.mean(dim=(2, 3, 4)) if is_map else None
        # the CAM is only exact when the head sees exactly the global average of the maps
        if (pooled is None or features is None or features.shape != pooled.shape
                or not torch.allclose(features, pooled, rtol=1e-4,
                                      atol=1e-5 * (1 + float(pooled.abs().max())))):
            raise MethodError(
                "saliency-tubes needs the CAM layer to feed a global average pool and then the "
                "linear classifier directly",
                hint="Give the last conv layer with the layer parameter, or use gradcam.")
        weights = head.weight[target.to(head.weight.device)]  # (B, K)
        return torch.einsum("bkthw,bk->bthw", maps, weights)


@register_method
class GuidedGradCam(GradientMethod):
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backprop × the upsampled Grad-CAM.

    Per colour channel. Built from this package's guided backprop and Grad-CAM rather
    than captum's ``GuidedGradCam``, which returns an empty tensor when it cannot
    interpolate.
    """

    name = "guided-gradcam"
    description = "Guided backprop weighted by the upsampled Grad-CAM"
    family = "cam"
    reference = "Selvaraju et al. 2017, ICCV (Guided Grad-CAM)"
    params = dict(GradCam.params)

    def cost_passes(self, clip: tuple[int, ...] | None = None) -> int:
        return 2  # measured: Grad-CAM (half a pass) plus guided backprop

    def check(self, model: LoadedModel) -> None:
        refuse_non_relu(model, self.name)

    def explain(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cam = GradCam(**self.config)._attribute(model, x, target).relevance.to(x.device)
        return guided_backprop(model, x, target, self.name).detach() * cam[:, None]


# --------------------------------------------------------------------------- transformers
def _token_map(model: LoadedModel, output: object, clip: tuple[int, int, int]) -> torch.Tensor:
    """A transformer layer's output as a (B, C, T', H', W') map (the spec's token grid)."""
    try:
        return model.spec.token_grid.to_map(output, clip)
    except ValueError as exc:
        raise MethodError(f"the layer's output does not lie on {model.name}'s token grid: {exc}",
                          hint="Pick a transformer block (or the final norm) with the layer "
                               "parameter, or leave it empty for the model's CAM layer.") from None


def token_gradcam(model: LoadedModel, layer: nn.Module, x: torch.Tensor, target: torch.Tensor,
                  *, relu: bool = True) -> torch.Tensor:
    """Grad-CAM of a transformer layer on its token grid: (B, T', H', W').

    The layer's tokens (class tokens dropped) are reshaped to their (T', H', W') grid of
    tubelets / patches (:class:`~xai_core.models.spec.TokenGrid`: a reshape per family),
    then weighted as in Grad-CAM (Selvaraju et al. 2017): channel weights are the mean
    gradient of the target logit over the grid, the map is Σ weight · tokens, ReLU
    optional. ``x`` must require gradients (the CAM methods' contract).
    """
    seen: dict[str, object] = {}
    handle = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o))
    try:
        logits = model.module(x)
    finally:
        handle.remove()
    out = seen.get("out")
    if out is None:
        raise MethodError(f"gradcam: the layer did not run in {model.name}'s forward pass",
                          hint="Pick a layer the model uses with the layer parameter.")
    tensor = out[0] if isinstance(out, (tuple, list)) else out
    score = logits.gather(1, target.view(-1, 1).to(logits.device)).sum()
    (grad,) = torch.autograd.grad(score, tensor)
    clip = tuple(x.shape[2:])
    regrid = (lambda t: (t, *out[1:])) if isinstance(out, (tuple, list)) else (lambda t: t)
    maps = _token_map(model, out, clip)
    grads = _token_map(model, regrid(grad), clip)
    weights = grads.mean(dim=(2, 3, 4), keepdim=True)
    cam = (weights * maps).sum(dim=1)
    return torch.relu(cam) if relu else cam





