"""Fused LRP: zennit composites whose hooks compute each rule without re-running layers.

zennit applies a rule with hooks around a module: the module's own backward computes
the plain gradient, then the hook throws it away and re-runs the module once per
modifier to compute the relevance. The hooks here replace the module's output, in a
forward hook, by the output of :class:`_Relevance`, an autograd function whose backward
*is* the rule — the module's own gradient is never computed:

* :class:`FusedHook`: a rule on a convolution or linear layer
  (:func:`.lrp_rules.relevance`: about one modified forward and one transposed
  convolution per layer instead of zennit's two to five of each);
* :class:`FusedPass`: zennit's ``Pass`` on activations and merged BatchNorms (relevance
  passes unchanged), without zennit's copy of every input;
* :class:`FusedSumNorm`, :class:`FusedPairNorm`: zennit's ``Norm`` on residual sums
  (relevance split in proportion to the summands; Bach et al. 2015), on zennit's stacked
  ``Sum`` and on the canonizer's :class:`~.canonizers.PairSum` that needs no stack.

Modules these hooks do not cover get zennit's own hook, and the canonizers are zennit's
(:mod:`.canonizers`), so a fused composite computes zennit's relevance — equal to
rounding, as ``tests/test_lrp_fused.py`` checks on every registered CNN.

References
----------
Bach et al., "On pixel-wise explanations for non-linear classifier decisions by
layer-wise relevance propagation", PLoS ONE 10(7) (2015); Anders et al., "Software for
dataset-wide XAI: from local explanations to global insights with Zennit, CoRelAy, and
ViRelAy", arXiv:2106.13200 (2021).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from zennit.core import Hook, RemovableHandle, RemovableHandleList
from zennit.layer import Sum
from zennit.rules import Norm, Pass
from zennit.types import Activation, AvgPool, BatchNorm

from .canonizers import PairSum
from .lrp_rules import Rule, Scratch, input_grad, relevance, signed_eps, supported

__all__ = ["FusedHook", "FusedPairNorm", "FusedPass", "FusedSumNorm", "base_layer_map",
           "frozen_parameters"]

#: The stabiliser of zennit's ``Norm`` rule in ``layer_map_base()``.
NORM_STABILIZER = 1e-6


class _Relevance(torch.autograd.Function):
    """Identity on a module's output in the forward; the hook's relevance in the backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, output: list[torch.Tensor], hook: _FusedHook,
                module: nn.Module) -> torch.Tensor:
        # ``output`` holds the module's output, detached: in a list, so that autograd does
        # not take it for an input returned as is (a view no in-place op may change)
        (out,) = output
        ctx.save_for_backward(x)
        ctx.hook, ctx.module = hook, module
        # the output is kept by reference; an in-place change later is detected (version)
        ctx.out, ctx.version = out, out._version
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (x,) = ctx.saved_tensors
        hook, module, out = ctx.hook, ctx.module, ctx.out
        if not hook.active:  # zennit's Composite.inactive(): the plain gradient
            return hook.gradient(module, x, grad), None, None, None
        if out._version != ctx.version:
            with torch.no_grad():
                out = module.forward(x)
        return hook.relevance(module, x, out, grad), None, None, None


class _FusedHook(Hook):
    """A zennit hook that routes a module's output through :class:`_Relevance`.

    An in-place module (``inplace=True``) runs on a copy of its input, so that the tensor
    it was given stays as it was (as with zennit's hooks). A module :meth:`covers` does
    not accept gets :meth:`zennit`'s hook instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self._fallback: Hook | None = None
        self._x: torch.Tensor | None = None

    def copy(self) -> _FusedHook:
        return type(self)()

    @property
    def active(self) -> bool:
        return self._active

    @active.setter
    def active(self, value: bool) -> None:
        self._active = value
        fallback = getattr(self, "_fallback", None)
        if fallback is not None:
            fallback.active = value

    def remove(self) -> None:
        self._x = None
        super().remove()

    def covers(self, module: nn.Module) -> bool:
        return True

    def zennit(self) -> Hook:
        """zennit's hook for a module this one does not cover."""
        raise NotImplementedError

    def register(self, module: nn.Module) -> RemovableHandleList:
        if not self.covers(module):
            self._fallback = self.zennit()
            return self._fallback.register(module)
        return RemovableHandleList([RemovableHandle(self),
                                    module.register_forward_pre_hook(self._pre_hook),
                                    module.register_forward_hook(self._forward_hook)])

    def _pre_hook(self, module: nn.Module, inputs: tuple) -> tuple | None:
        x = inputs[0] if inputs else None
        self._x = None
        if isinstance(x, torch.Tensor) and torch.is_grad_enabled() and x.requires_grad:
            self._x = x
            if getattr(module, "inplace", False):
                return (x.clone(), *inputs[1:])
        return None

    def _forward_hook(self, module: nn.Module, inputs: tuple, output: Any) -> Any:
        x, self._x = self._x, None
        if x is None or not isinstance(output, torch.Tensor):
            return None
        # the module's own graph is dropped here: autograd never computes its gradient
        return _Relevance.apply(x, [output.detach()], self, module)

    def relevance(self, module: nn.Module, x: torch.Tensor, out: torch.Tensor,
                  grad: torch.Tensor) -> torch.Tensor:
        """Relevance at the module's input from the relevance ``grad`` at its output."""
        raise NotImplementedError

    def gradient(self, module: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The plain gradient (for ``Composite.inactive()``)."""
        with torch.enable_grad():
            xi = x.detach().requires_grad_(True)
            y = module.forward(xi.clone() if getattr(module, "inplace", False) else xi)
        return torch.autograd.grad(y, xi, grad)[0]


class FusedHook(_FusedHook):
    """A :class:`~.lrp_rules.Rule` on a convolution or linear layer; zennit's own hook
    for the rule on a layer :func:`~.lrp_rules.supported` rejects."""

    def __init__(self, rule: Rule, scratch: Scratch | None = None) -> None:
        super().__init__()
        self.rule = rule
        #: shared by the copies (one per layer): the layers' backwards run one by one
        self.scratch = Scratch() if scratch is None else scratch

    def copy(self) -> FusedHook:
        return FusedHook(self.rule, self.scratch)

    def covers(self, module: nn.Module) -> bool:
        return supported(module)

    def zennit(self) -> Hook:
        return self.rule.zennit()

    def relevance(self, module: nn.Module, x: torch.Tensor, out: torch.Tensor,
                  grad: torch.Tensor) -> torch.Tensor:
        return relevance(self.rule, module, x, out, grad, self.scratch)

    def gradient(self, module: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return input_grad(module, grad, x, module.weight.detach())


class FusedPass(_FusedHook):
    """zennit's ``Pass``: the relevance at the output passes to the input unchanged."""

    def covers(self, module: nn.Module) -> bool:
        return not isinstance(module, nn.MultiheadAttention)  # zennit files it as one

    def zennit(self) -> Hook:
        return Pass()

    def relevance(self, module: nn.Module, x: torch.Tensor, out: torch.Tensor,
                  grad: torch.Tensor) -> torch.Tensor:
        return grad


def _norm_ratio(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """zennit's ``Norm``: ``grad / stabilize(out)``."""
    return torch.div(grad, signed_eps(out, NORM_STABILIZER).add_(out))


class FusedSumNorm(_FusedHook):
    """zennit's ``Norm`` on a stacked :class:`zennit.layer.Sum`: ``x · R / stabilize(Σx)``."""

    def covers(self, module: nn.Module) -> bool:
        return type(module) is Sum

    def zennit(self) -> Hook:
        return Norm(stabilizer=NORM_STABILIZER)

    def relevance(self, module: nn.Module, x: torch.Tensor, out: torch.Tensor,
                  grad: torch.Tensor) -> torch.Tensor:
        return x * _norm_ratio(grad, out).unsqueeze(module.dim)


class _PairRelevance(torch.autograd.Function):
    """``a + b`` in the forward; each summand's share of the relevance in the backward."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, output: list[torch.Tensor],
                hook: FusedPairNorm) -> torch.Tensor:
        (out,) = output
        ctx.save_for_backward(a, b)
        ctx.hook, ctx.out, ctx.version = hook, out, out._version
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a, b = ctx.saved_tensors
        if not ctx.hook.active:
            return grad, grad, None, None
        out = ctx.out if ctx.out._version == ctx.version else a + b
        s = _norm_ratio(grad, out)
        return a * s, b * s, None, None


class FusedPairNorm(Hook):
    """zennit's ``Norm`` on :class:`~.canonizers.PairSum`: ``a · R / stabilize(a + b)`` and
    ``b · R / stabilize(a + b)``, what ``Norm`` gives the two rows of a stacked ``Sum``."""

    def copy(self) -> FusedPairNorm:
        return FusedPairNorm()

    def register(self, module: nn.Module) -> RemovableHandleList:
        return RemovableHandleList([RemovableHandle(self),
                                    module.register_forward_hook(self._forward_hook)])

    def _forward_hook(self, module: nn.Module, inputs: tuple, output: Any) -> Any:
        a, b = inputs
        if not (torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)):
            return None
        return _PairRelevance.apply(a, b, [output.detach()], self)


def base_layer_map() -> list[tuple[Any, Hook]]:
    """zennit's ``layer_map_base()``, fused: ``Pass`` on activations and BatchNorms,
    ``Norm`` on residual sums and on average pools (zennit's own hook there)."""
    return [(Activation, FusedPass()), (Sum, FusedSumNorm()), (PairSum, FusedPairNorm()),
            (AvgPool, Norm(stabilizer=NORM_STABILIZER)), (BatchNorm, FusedPass())]


@contextlib.contextmanager
def frozen_parameters(module: nn.Module) -> Iterator[None]:
    """No gradient to ``module``'s parameters for a while; every flag restored exactly."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
