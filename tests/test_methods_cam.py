"""CAM methods: Grad-CAM by hand, the CAM identity of Saliency Tubes, Guided Grad-CAM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xai_core.errors import MethodError, ParameterError
from xai_core.methods import get_method
from xai_core.methods.cam import SaliencyTubes
from xai_core.models.registry import wrap_module
from xai_core.models.spec import InputSpec, ModelSpec

SPEC_INPUT = InputSpec(num_frames=8, height=16, width=16)


class GapNet(nn.Module):
    """conv → ReLU → pool → conv → ReLU → global average pool → linear (with bias)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
            nn.Conv3d(4, 6, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def model_of(net: nn.Module, cam_layer: str = "features.4", classifier: str | None = "fc"):
    s = ModelSpec(name="gap", build=lambda n: nn.Identity(), input=SPEC_INPUT,
                  description="test net", cam_layer=cam_layer, classifier=classifier)
    return wrap_module(net, s)


def clips(b: int = 2) -> torch.Tensor:
    return torch.randn(b, 3, 8, 16, 16, generator=torch.Generator().manual_seed(1))


TARGET = torch.tensor([1, 2])


def gradcam_by_hand(net: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor,
                    relu: bool) -> torch.Tensor:
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        logits = net(x)
    finally:
        handle.remove()
    a = store["a"]
    (g,) = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), a)
    weights = g.mean(dim=(2, 3, 4))  # one weight per channel
    cam = torch.einsum("bk,bkthw->bthw", weights, a)
    if relu:
        cam = cam.clamp(min=0)
    return F.interpolate(cam[:, None], size=x.shape[2:], mode="trilinear",
                         align_corners=False)[:, 0].detach()


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_equals_hand_written(relu):
    net, x = GapNet(), clips()
    out = get_method("gradcam", relu=relu).attribute(model_of(net), x, TARGET)
    want = gradcam_by_hand(net, net.features[4], x, TARGET, relu)
    assert out.raw is None
    torch.testing.assert_close(out.relevance, want, rtol=1e-4, atol=1e-6)
    if not relu:
        assert (want < 0).any()  # the signed variant really keeps negative evidence


def test_gradcam_layer_parameter_overrides_the_spec():
    net, x = GapNet(), clips()
    out = get_method("gradcam", layer="features.1").attribute(model_of(net), x, TARGET)
    want = gradcam_by_hand(net, net.features[1], x, TARGET, True)
    torch.testing.assert_close(out.relevance, want, rtol=1e-4, atol=1e-6)
    with pytest.raises(ParameterError, match="no layer"):
        get_method("gradcam", layer="features.99").attribute(model_of(net), x, TARGET)


def test_saliency_tubes_cam_identity():
    net, x = GapNet(), clips()
    model = model_of(net)
    cam = SaliencyTubes().coarse_map(model, x, TARGET)
    with torch.no_grad():
        logits = net(x).gather(1, TARGET.view(-1, 1))[:, 0]
    # mean over the un-upsampled (T', H', W') grid + bias = logit
    torch.testing.assert_close(cam.mean((1, 2, 3)) + net.fc.bias[TARGET].detach(), logits,
                               rtol=1e-5, atol=1e-6)
    out = get_method("saliency-tubes").attribute(model, x, TARGET)
    want = F.interpolate(cam[:, None], size=(8, 16, 16), mode="trilinear", align_corners=False)
    torch.testing.assert_close(out.relevance, want[:, 0])


def test_saliency_tubes_refuses_heads_without_global_pool():
    # C3D's spec has no classifier: its head is flatten + three linear layers
    model = model_of(GapNet(), classifier=None)
    with pytest.raises(MethodError, match="global-pool"):
        get_method("saliency-tubes").attribute(model, clips(), 0)
    # a linear head on *flattened* maps (C3D-style) is found out, not silently explained
    flat = nn.Sequential(nn.Conv3d(3, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 8 * 16 * 16, 3))
    with pytest.raises(MethodError, match="global average pool"):
        get_method("saliency-tubes").attribute(model_of(flat, "1", "3"), clips(), 0)
    # a layer that does not feed the pool directly is refused too, not silently wrong
    with pytest.raises(MethodError, match="global average pool"):
        get_method("saliency-tubes", layer="features.1").attribute(model_of(GapNet()), clips(), 0)


def test_guided_gradcam_is_guided_backprop_times_gradcam():
    net, x = GapNet(), clips()
    model = model_of(net)
    out = get_method("guided-gradcam").attribute(model, x, TARGET)
    guided = get_method("guided-backprop").attribute(model, x, TARGET).raw
    cam = get_method("gradcam").attribute(model, x, TARGET).relevance
    torch.testing.assert_close(out.raw, guided * cam[:, None])
    torch.testing.assert_close(out.relevance, out.raw.sum(1))
