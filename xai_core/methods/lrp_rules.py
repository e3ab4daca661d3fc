"""LRP rules for one convolution or linear layer, computed from its saved input.

zennit computes a rule by re-running the layer once per *modifier* (z⁺ needs two: the
positive inputs with the positive weights and the negative inputs with the negative
weights; αβ four; γ five; zβ three) and taking the gradient of each re-run.
:func:`relevance` computes the same numbers with less work:

* a modifier whose input is zero contributes exactly zero: when the input is
  non-negative (checked on the tensor, e.g. after a ReLU) the terms of the negative
  inputs are skipped — z⁺ becomes one forward with W⁺ and one transposed convolution
  (Montavon et al. 2017), αβ two of each (Bach et al. 2015);
* a modifier that *is* the layer (ε, the sign mask of γ, the x·W term of zβ) reuses the
  layer's output, so LRP-ε costs one transposed convolution per layer;
* zβ's box bounds are constant per channel, so their layer outputs are computed on a few
  voxels, and ``x·∇(W) − l·∇(W⁺) − h·∇(W⁻) = (x − l)·∇(W⁺) + (x − h)·∇(W⁻)`` needs two
  transposed convolutions instead of three.

Everything else is zennit's own arithmetic in zennit's order — the same modified weights,
its :func:`zennit.core.stabilize`, the same sums — so z⁺, αβ, ε and γ equal zennit's bit
for bit and zβ to rounding (``tests/test_lrp_fused.py`` holds them against zennit).
:mod:`.lrp_fused` puts these rules into a model.

References
----------
Bach et al., "On pixel-wise explanations for non-linear classifier decisions by
layer-wise relevance propagation", PLoS ONE 10(7) (2015); Montavon et al., "Explaining
nonlinear classification decisions with deep Taylor decomposition", Pattern Recognition
65 (2017); Montavon et al., "Layer-wise relevance propagation: an overview", LNCS 11700
(2019); Anders et al., "Software for dataset-wide XAI: from local explanations to global
insights with Zennit, CoRelAy, and ViRelAy", arXiv:2106.13200 (2021).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from zennit.core import Hook, expand
from zennit.rules import AlphaBeta, Epsilon, Gamma, ZBox, ZPlus

__all__ = ["Rule", "Scratch", "input_grad", "layer_forward", "relevance", "signed_eps", "supported"]

#: Layer types computed here; anything else (e.g. transposed convolutions) uses zennit.
_SIMPLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True, eq=False)
class Rule:
    """An LRP rule for convolutions and linear layers, with zennit's parameters.

    Attributes
    ----------
    kind
        ``"zplus"``, ``"alphabeta"``, ``"epsilon"``, ``"gamma"`` or ``"zbox"``.
    alpha, beta
        αβ weights (``alphabeta``).
    epsilon
        ε of the ε rule, and the stabiliser of every other rule (zennit's default 1e-6).
    gamma
        γ of the γ rule.
    low, high
        Lowest and highest input value per channel (``zbox``), broadcastable to the input.
    """

    kind: str
    alpha: float = 1.0
    beta: float = 0.0
    epsilon: float = 1e-6
    gamma: float = 0.25
    low: torch.Tensor | None = None
    high: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("zplus", "alphabeta", "epsilon", "gamma", "zbox"):
            raise ValueError(f"unknown LRP rule {self.kind!r}")
        if self.kind == "zbox" and (self.low is None or self.high is None):
            raise ValueError("the zbox rule needs low and high bounds")

    def zennit(self) -> Hook:
        """zennit's own hook for this rule (the reference implementation)."""
        if self.kind == "zplus":
            return ZPlus(stabilizer=self.epsilon)
        if self.kind == "alphabeta":
            return AlphaBeta(alpha=self.alpha, beta=self.beta, stabilizer=self.epsilon)
        if self.kind == "epsilon":
            return Epsilon(epsilon=self.epsilon)
        if self.kind == "gamma":
            return Gamma(gamma=self.gamma, stabilizer=self.epsilon)
        return ZBox(low=self.low, high=self.high, stabilizer=self.epsilon)


def supported(module: nn.Module) -> bool:
    """Whether :mod:`.lrp_fused` computes ``module``'s rule here (a plain conv or linear)."""
    for base in _SIMPLE:
        if isinstance(module, base):
            cls = type(module)
            return ("forward" not in vars(module) and cls.forward is base.forward
                    and getattr(cls, "_conv_forward", None) is getattr(base, "_conv_forward", None))
    return False


# --------------------------------------------------------------------------- one layer
def layer_forward(module: nn.Module, x: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None) -> torch.Tensor:
    """The layer with other parameters (what zennit's ``ParamMod`` + ``forward`` compute)."""
    if isinstance(module, nn.Linear):
        return F.linear(x, weight, bias)
    return module._conv_forward(x, weight, bias)


def _direct(module: nn.Module) -> bool:
    """Convolutions whose input gradient is one ``convolution_backward`` call."""
    return (not isinstance(module, nn.Linear) and module.padding_mode == "zeros"
            and not isinstance(module.padding, str))


def input_grad(module: nn.Module, s: torch.Tensor, x: torch.Tensor,
               weight: torch.Tensor) -> torch.Tensor:
    """∂(layer(x; weight))/∂x applied to ``s`` — the transposed layer, as autograd runs it."""
    if _direct(module):
        nd = x.ndim - 2
        return torch.ops.aten.convolution_backward(
            s, x, weight, None, module.stride, module.padding, module.dilation, False,
            (0,) * nd, module.groups, (True, False, False))[0]
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        z = layer_forward(module, xi, weight, None)
    return torch.autograd.grad(z, xi, s)[0]


@functools.lru_cache(maxsize=256)
def _reduced_axis(n: int, k: int, stride: int, pad: int, dil: int) -> tuple[int, tuple[int, ...]]:
    """A shorter input length with every border case of length ``n`` along one axis.

    Returns the length and, for each output position of the full length, an output
    position of the short one whose kernel taps fall inside the input alike — for an
    input constant along the axis the two outputs are the same sum.
    """

    def taps(length: int) -> list[tuple[bool, ...]]:
        n_out = (length + 2 * pad - dil * (k - 1) - 1) // stride + 1
        return [tuple(0 <= o * stride - pad + j * dil < length for j in range(k))
                for o in range(max(n_out, 0))]

    full = taps(n)
    for m in range(1, n + 1):
        where: dict[tuple[bool, ...], int] = {}
        for o, t in enumerate(taps(m)):
            where.setdefault(t, o)
        if all(t in where for t in full):
            return m, tuple(where[t] for t in full)
    raise AssertionError("unreachable: the full length has every case")


def _constant_forward(module: nn.Module, value: torch.Tensor, x: torch.Tensor,
                      weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The layer on an input shaped like ``x`` and constant per channel (``value``, e.g.
    (1, C, 1, 1, 1)), for one clip, on a few voxels per axis: (1, C_out, n_out...) and
    the index of each full output position per axis."""
    axes = [_reduced_axis(x.shape[2 + i], weight.shape[2 + i], module.stride[i],
                          module.padding[i], module.dilation[i]) for i in range(x.ndim - 2)]
    small = expand(value, (1, x.shape[1], *(m for m, _ in axes)), cut_batch_dim=True).to(x)
    return layer_forward(module, small.contiguous(), weight, bias), [index for _, index in axes]


class Scratch:
    """Memory for the modified weights W⁺ and W⁻, reused from layer to layer.

    A layer's modified weights are needed only in its own backward, and on the CPU a
    fresh large tensor costs more (page faults) than clamping into memory touched before
    (C3D's fc6: 134 MB). One :class:`Scratch` serves one explanation at a time.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def clamp(self, slot: str, p: torch.Tensor, **bounds: float) -> torch.Tensor:
        """``p.clamp(**bounds)`` in the buffer ``slot`` (valid until its next use)."""
        buf = self._buffers.get(slot)
        if buf is None or buf.numel() < p.numel() or buf.dtype != p.dtype or (
                buf.device != p.device):
            buf = self._buffers[slot] = torch.empty(p.numel(), dtype=p.dtype, device=p.device)
        return torch.clamp(p, **bounds, out=buf[: p.numel()].view(p.shape))


def _params(module: nn.Module, fn: Any, bias: bool = True,
            scratch: Scratch | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Modified (weight, bias), as zennit's ``ParamMod``: ``bias=False`` zeroes the bias."""
    w, b = module.weight.detach(), module.bias
    if b is not None:
        b = fn(b.detach()) if bias else torch.zeros_like(b)
    if scratch is not None and fn is _pos:
        return scratch.clamp("pos", w, min=0.0), b
    if scratch is not None and fn is _neg:
        return scratch.clamp("neg", w, max=0.0), b
    return fn(w), b


def _pos(p: torch.Tensor) -> torch.Tensor:
    return p.clamp(min=0.0)


def _neg(p: torch.Tensor) -> torch.Tensor:
    return p.clamp(max=0.0)


def signed_eps(z: torch.Tensor, eps: float) -> torch.Tensor:
    """zennit's ``sign·ε`` (+ε where ``z`` ≥ 0, −ε elsewhere), one tensor like ``z``."""
    return torch.where(z >= 0, z.new_tensor(eps), z.new_tensor(-eps))


def _ratio_(grad: torch.Tensor, z: torch.Tensor, eps: float,
            nonneg: bool = False) -> torch.Tensor:
    """``grad / stabilize(z, eps)`` (zennit's values), in place in ``z`` (made here).

    ``nonneg``: ``z`` is a sum of non-negative terms (z⁺ of non-negative inputs), where
    zennit's stabiliser is ``z + ε``. Fewer fresh tensors matter: on the CPU a fresh
    large tensor costs more (page faults) than the arithmetic on it.
    """
    z.add_(eps) if nonneg else z.add_(signed_eps(z, eps))
    return torch.div(grad, z, out=z)


def relevance(rule: Rule, module: nn.Module, x: torch.Tensor, out: torch.Tensor,
              grad: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    """Relevance at the input of ``module`` by ``rule``, given the relevance at its output.

    Parameters
    ----------
    rule
        The rule.
    module
        A plain convolution or linear layer (:func:`supported`).
    x, out
        The layer's input and its (unmodified) output.
    grad
        The relevance arriving at the output (zennit passes relevance as the gradient).
    scratch
        Memory to reuse for the modified weights.
    """
    eps, kind = rule.epsilon, rule.kind
    if kind == "epsilon":
        den = signed_eps(out, eps).add_(out)
        return input_grad(module, torch.div(grad, den, out=den), x,
                           module.weight.detach()).mul_(x)
    if kind == "zbox":
        return _zbox(rule, module, x, out, grad, scratch)

    # zplus, alphabeta, gamma: pairs (positive inputs, negative inputs) per group; the
    # negative-input term is exactly zero when the input is, and then skipped
    gamma = rule.gamma
    if kind == "gamma":
        fns = ((lambda p: p + gamma * _pos(p), lambda p: p + gamma * _neg(p)),
               (lambda p: p + gamma * _neg(p), lambda p: p + gamma * _pos(p)))
    else:
        fns = ((_pos, _neg), (_neg, _pos))
    groups = fns[:1] if kind == "zplus" else fns
    nonneg = bool(x.min() >= 0)  # False for NaN
    x_pos = x if nonneg else x.clamp(min=0)
    x_neg = None if nonneg else x.clamp(max=0)
    parts: list[list[torch.Tensor]] = []  # per group: x⁺·∇ and, if any, x⁻·∇
    for i, (fn_pos, fn_neg) in enumerate(groups):
        w_p, b_p = _params(module, fn_pos, scratch=scratch)
        z = layer_forward(module, x_pos, w_p, b_p)
        if x_neg is not None:
            w_n, b_n = _params(module, fn_neg, bias=False, scratch=scratch)
            z = z + layer_forward(module, x_neg, w_n, b_n)
        if kind == "gamma":  # zennit: (mask · grad) / stabilize(z)
            s = torch.mul(out > 0 if i == 0 else out < 0, grad)
            s.div_(z.add_(signed_eps(z, eps)))
        else:
            s = _ratio_(grad, z, eps, nonneg=nonneg and kind == "zplus")
        terms = [input_grad(module, s, x_pos, w_p).mul_(x_pos)]
        if x_neg is not None:
            terms.append(input_grad(module, s, x_neg, w_n).mul_(x_neg))
        parts.append(terms)
    if kind == "gamma":  # zennit sums the four products left to right
        terms = parts[0] + parts[1]
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total
    pos, *rest = parts[0]
    r_pos = pos + rest[0] if rest else pos
    if kind == "zplus":
        return r_pos
    neg, *rest = parts[1]
    return rule.alpha * r_pos - rule.beta * (neg + rest[0] if rest else neg)


def _zbox(rule: Rule, module: nn.Module, x: torch.Tensor, out: torch.Tensor,
          grad: torch.Tensor, scratch: Scratch | None) -> torch.Tensor:
    """The zβ rule (Montavon et al. 2017): ``x·∇(W) − l·∇(W⁺) − h·∇(W⁻)``, zennit's ZBox."""
    eps = rule.epsilon
    low = expand(rule.low, x.shape, cut_batch_dim=True).to(x)
    high = expand(rule.high, x.shape, cut_batch_dim=True).to(x)
    w_pos, b_pos = _params(module, _pos, scratch=scratch)
    w_neg, b_neg = _params(module, _neg, scratch=scratch)
    if not _direct(module):  # zennit's three terms as they are
        z_bounds = (layer_forward(module, low, w_pos, b_pos)
                    + layer_forward(module, high, w_neg, b_neg))
        s = _ratio_(grad, out - z_bounds, eps)
        return (input_grad(module, s, x, module.weight.detach()).mul_(x)
                - (input_grad(module, s, low, w_pos).mul_(low)
                   + input_grad(module, s, high, w_neg).mul_(high)))
    # the bounds are constant per channel: their layer outputs differ only at the borders,
    # so they are computed on a few voxels; and since W = W⁺ + W⁻,
    # x·∇(W) − l·∇(W⁺) − h·∇(W⁻) = (x − l)·∇(W⁺) + (x − h)·∇(W⁻): two transposed
    # convolutions instead of three
    z_low, index = _constant_forward(module, rule.low, x, w_pos, b_pos)
    z_high, _ = _constant_forward(module, rule.high, x, w_neg, b_neg)
    z_bounds = z_low + z_high
    grids = torch.meshgrid(*(torch.tensor(i, device=x.device) for i in index), indexing="ij")
    z = torch.sub(out, z_bounds[(slice(None), slice(None), *grids)])
    s = _ratio_(grad, z, eps)
    return (input_grad(module, s, x, w_pos).mul_(x - low)
            .add_(input_grad(module, s, x, w_neg).mul_(x - high)))


