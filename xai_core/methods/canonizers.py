"""Canonizers that put 3-D video networks in a form LRP rules can be applied to.

zennit ships canonizers for 2-D torchvision ResNets only. On torchvision's *video*
ResNets (``r3d_18``, ``mc3_18``, ``r2plus1d_18``) the residual addition ``out += residual``
is invisible to module hooks, so the plain gradient copies the full relevance into both
summands: every block doubles it and ``r3d_18`` ends up 2⁸ = 256× the logit. The block
canonizer here routes the addition through a :class:`zennit.layer.Sum` module, which the
composites give the ``Norm`` rule: relevance is split in proportion to the two summands
(Bach et al. 2015; the pattern of zennit's ``ResNetBasicBlockCanonizer``).

BatchNorm is merged into the convolution that feeds it. Which conv feeds which BN is
*traced* on a clip (the BN's input must be the very tensor the conv produced), so it is
right for any module order, not only for ``nn.Sequential`` stacks; a BatchNorm that does
not directly follow a convolution cannot be merged and is refused with a clear error.
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass, field

import torch
from torch import nn
from torchvision.models.video.resnet import BasicBlock as VideoBasicBlock
from torchvision.models.video.resnet import Bottleneck as VideoBottleneck
from zennit.canonizers import (
    AttributeCanonizer,
    Canonizer,
    NamedMergeBatchNorm,
    SequentialMergeBatchNorm,
)
from zennit.layer import Sum
from zennit.types import AvgPool, BatchNorm, Linear

from ..errors import MethodError


class PairSum(nn.Module):
    """``a + b`` as a module of two inputs: the residual sum for the fused LRP rules,
    which split its relevance as zennit's ``Norm`` splits that of a stacked
    :class:`zennit.layer.Sum` (``Σ`` over two equals ``a + b``), without the stack."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class VideoResNetBlockCanonizer(AttributeCanonizer):
    """Make the residual sum of torchvision's video ``BasicBlock``/``Bottleneck`` a module.

    The block's ``forward`` is temporarily replaced by one computing the same value with
    ``Sum(stack([residual, out]))`` instead of the in-place ``out += residual``, so an LRP
    rule (``Norm``) can split relevance between the two summands; with ``stacked=False``
    (the fused rules) with ``PairSum(residual, out)``, which needs no stacked copy.
    """

    def __init__(self, stacked: bool = True) -> None:
        self.stacked = stacked
        super().__init__(self._attribute_map)

    def _attribute_map(self, name: str, module: nn.Module) -> dict | None:
        if isinstance(module, (VideoBasicBlock, VideoBottleneck)):
            if self.stacked:
                return {"forward": self.forward.__get__(module), "canonizer_sum": Sum()}
            return {"forward": self.forward.__get__(module), "canonizer_sum": PairSum()}
        return None

    @staticmethod
    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if isinstance(self, VideoBottleneck):
            out = self.conv3(out)
        residual = x if self.downsample is None else self.downsample(x)
        if isinstance(self.canonizer_sum, PairSum):
            out = self.canonizer_sum(residual, out)
        else:
            out = self.canonizer_sum(torch.stack([residual, out], dim=-1))
        return self.relu(out)

    def copy(self) -> VideoResNetBlockCanonizer:
        return VideoResNetBlockCanonizer(self.stacked)


@dataclass
class NetworkTrace:
    """What one forward pass reveals about a network's structure.

    Attributes
    ----------
    first_layer
        Name of the first convolution or linear layer to run (where the input rule goes).
    first_takes_input
        Whether that layer received the clip itself (needed for the zβ box bounds).
    batchnorm_merges
        ``(conv name, batch-norm name)`` pairs where the BN consumes the conv's output.
    unmerged_batchnorms
        Batch norms not fed directly by a convolution or linear layer.
    reused
        Layers with an LRP rule that run more than once per forward (zennit keeps one
        input per module, so such reuse would silently give wrong relevance).
    """

    first_layer: str | None = None
    first_takes_input: bool = False
    batchnorm_merges: list[tuple[str, str]] = field(default_factory=list)
    unmerged_batchnorms: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)


def trace_network(module: nn.Module, clip: torch.Tensor) -> NetworkTrace:
    """Run one clip through ``module`` (no gradients) and record its layer structure.

    The structure is traced on the ``meta`` device first (shapes only, no arithmetic: a
    few milliseconds instead of a forward pass); a network that cannot run there (it
    reads values, or makes tensors on another device) or whose first layer receives an
    equal copy of the clip rather than the clip itself (a value comparison) is traced on
    the clip itself. A meta trace is kept for the module's next clip of the same shape
    while its modules (and patched ``forward`` methods) stay the same objects.

    Parameters
    ----------
    module
        The network (left unchanged: every hook is removed before returning).
    clip
        An example input (B, 3, T, H, W); only its first clip is used.
    """
    x = clip[:1].detach()
    # the meta trace depends on the modules and the clip's shape only: kept per module
    key = (tuple(x.shape), x.dtype, tuple((name, type(m), id(m), id(vars(m).get("forward")))
                                          for name, m in module.named_modules()))
    cached = _META_TRACES.get(module, {}).get(key)
    if cached is not None:
        return copy.deepcopy(cached)
    try:
        state = {name: t.to("meta") for name, t in
                 [*module.named_parameters(), *module.named_buffers()]}
        x_meta = x.to("meta")
        trace = _trace(module, x_meta, lambda: torch.func.functional_call(
            module, state, (x_meta,)), compare_values=False)
    except Exception:  # anything the meta device cannot run
        trace = None
    if trace is None:
        return _trace(module, x, lambda: module(x), compare_values=True)
    _META_TRACES.setdefault(module, {})[key] = copy.deepcopy(trace)
    return trace


#: Meta-device traces per module, by clip shape and module structure (see trace_network).
_META_TRACES: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def _trace(module: nn.Module, x: torch.Tensor, run, *,
           compare_values: bool) -> NetworkTrace | None:
    """One traced forward (``run``); ``None`` when deciding needs the clip's values."""
    trace = NetworkTrace()
    names = {m: n for n, m in module.named_modules()}
    produced: dict[int, str] = {}  # id(output tensor) -> name of the linear layer that made it
    keep: list[torch.Tensor] = []  # hold outputs so their ids are not reused during the pass
    calls: dict[str, int] = {}
    merged: set[str] = set()
    undecided = False

    def pre_hook(mod: nn.Module, inputs: tuple) -> None:
        nonlocal undecided
        name = names[mod]
        calls[name] = calls.get(name, 0) + 1
        inp = inputs[0] if inputs else None
        if isinstance(mod, Linear) and trace.first_layer is None:
            trace.first_layer = name
            same_shape = isinstance(inp, torch.Tensor) and inp.shape == x.shape
            if inp is x:
                trace.first_takes_input = True
            elif same_shape and compare_values:
                trace.first_takes_input = torch.equal(inp, x)
            elif same_shape:
                undecided = True
        if isinstance(mod, BatchNorm):
            conv = produced.get(id(inp)) if isinstance(inp, torch.Tensor) else None
            if conv is None:
                trace.unmerged_batchnorms.append(name)
            else:
                trace.batchnorm_merges.append((conv, name))
                merged.add(name)

    def post_hook(mod: nn.Module, inputs: tuple, output: object) -> None:
        if isinstance(mod, Linear) and isinstance(output, torch.Tensor):
            produced[id(output)] = names[mod]
            keep.append(output)

    handles = []
    try:
        for mod in module.modules():
            if isinstance(mod, (Linear, BatchNorm, AvgPool)):
                handles.append(mod.register_forward_pre_hook(pre_hook))
                handles.append(mod.register_forward_hook(post_hook))
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    if undecided:
        return None
    trace.reused = sorted(n for n, c in calls.items() if c > 1)
    return trace


def batchnorm_canonizer(trace: NetworkTrace | None) -> Canonizer:
    """Canonizer merging each BatchNorm into the layer that feeds it.

    With a :class:`NetworkTrace` the pairs are the traced ones (any module order);
    without one, zennit's ``SequentialMergeBatchNorm`` (BN right after its conv in
    module-registration order) is used.

    Raises
    ------
    MethodError
        When the trace found a BatchNorm that no convolution feeds directly.
    """
    if trace is None:
        return SequentialMergeBatchNorm()
    if trace.unmerged_batchnorms:
        raise MethodError(
            f"LRP cannot merge the BatchNorm layer(s) {trace.unmerged_batchnorms[:4]} into a "
            "convolution: they are not applied directly to a convolution's output",
            hint="Use a gradient or CAM method for this model, or fuse those BatchNorms into "
                 "the preceding layer before explaining it.")
    return NamedMergeBatchNorm([((conv,), bn) for conv, bn in trace.batchnorm_merges])


def video_canonizers(model: nn.Module, trace: NetworkTrace | None = None) -> list[Canonizer]:
    """The canonizers LRP needs for ``model``.

    Parameters
    ----------
    model
        The network to explain.
    trace
        Its :func:`trace_network` on a clip, to merge each BatchNorm into the conv that
        really feeds it; without it, BatchNorms are merged when they follow their conv in
        an ``nn.Sequential``.

    Returns
    -------
    list of zennit canonizers
        A BatchNorm merge, plus :class:`VideoResNetBlockCanonizer` when the model has
        torchvision video ResNet blocks.
    """
    canonizers: list[Canonizer] = [batchnorm_canonizer(trace)]
    if any(isinstance(m, (VideoBasicBlock, VideoBottleneck)) for m in model.modules()):
        canonizers.append(VideoResNetBlockCanonizer())
    return canonizers


__all__ = [
    "NetworkTrace",
    "PairSum",
    "VideoResNetBlockCanonizer",
    "batchnorm_canonizer",
    "trace_network",
    "video_canonizers",
]
