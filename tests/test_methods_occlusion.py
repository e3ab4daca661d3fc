"""Occlusion: known drops on a toy model, overlap averaging against a brute-force loop."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from xai_core.errors import ParameterError
from xai_core.methods import get_method
from xai_core.models.registry import wrap_module
from xai_core.models.spec import InputSpec, ModelSpec

# the region the toy model looks at: frames 2-3, rows 4-7, columns 0-3
REGION = (slice(None), slice(None), slice(2, 4), slice(4, 8), slice(0, 4))


class RegionSum(nn.Module):
    """Class 0 = sum of the clip over REGION; class 1 = squared sum (non-linear)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x[REGION].sum((1, 2, 3, 4))
        return torch.stack([s, s**2], dim=1)


def model_of(net: nn.Module):
    s = ModelSpec(name="toy", build=lambda n: nn.Identity(),
                  input=InputSpec(num_frames=4, height=8, width=8), description="", cam_layer="")
    return wrap_module(net, s, ["sum", "square"])


def clips(b: int = 2) -> torch.Tensor:
    return torch.rand(b, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5


def test_relevance_is_the_known_drop_and_only_in_the_region():
    x = clips()
    out = get_method("occlusion", window=(2, 4, 4), stride=(2, 4, 4)).attribute(
        model_of(RegionSum()), x, 0)
    want = torch.zeros(2, 4, 8, 8)
    # windows tile the clip and REGION is exactly one of them: hiding it drops its sum
    want[REGION[0], REGION[2], REGION[3], REGION[4]] = x[REGION].sum((1, 2, 3, 4)).view(2, 1, 1, 1)
    assert out.raw is None
    torch.testing.assert_close(out.relevance, want)


def occlusion_by_brute_force(net, x, target, window, stride):
    """Every window position, one at a time; mean drop over the windows covering a voxel."""
    with torch.no_grad():
        base = net(x)[:, target]
        total = torch.zeros(x.shape[0], *x.shape[2:])
        count = torch.zeros(x.shape[2:])
        axes = zip(x.shape[2:], window, stride, strict=True)
        starts = [range(0, d - w + s, s) for d, w, s in axes]  # the last window is cut
        for t, h, w in itertools.product(*starts):
            box = (slice(t, t + window[0]), slice(h, h + window[1]), slice(w, w + window[2]))
            occluded = x.clone()
            occluded[(slice(None), slice(None), *box)] = 0
            total[(slice(None), *box)] += (base - net(occluded)[:, target]).view(-1, 1, 1, 1)
            count[box] += 1
    return total / count


@pytest.mark.parametrize("target", [0, 1])
def test_overlapping_windows_average_like_brute_force(target):
    x, window, stride = clips(), (2, 4, 4), (1, 3, 3)
    out = get_method("occlusion", window=window, stride=stride, batch=5).attribute(
        model_of(RegionSum()), x, target)
    want = occlusion_by_brute_force(RegionSum(), x, target, window, stride)
    torch.testing.assert_close(out.relevance, want, rtol=1e-5, atol=1e-5)


def test_progress_is_reported_to_the_end():
    seen = []
    get_method("occlusion", window=(2, 4, 4), stride=(1, 2, 2), batch=4).attribute(
        model_of(RegionSum()), clips(1), 0, progress=lambda d, t, s: seen.append((d, t)))
    done, totals = [d for d, _ in seen], {t for _, t in seen}
    assert len(totals) == 1 and done == sorted(done) and done[-1] == totals.pop()


def test_bad_window_or_stride_is_a_parameter_error():
    with pytest.raises(ParameterError, match="must not exceed the window"):
        get_method("occlusion", window=(2, 4, 4), stride=(2, 8, 4))
    with pytest.raises(ParameterError, match="3 values"):
        get_method("occlusion", window=(4, 4), stride=(2, 2))
