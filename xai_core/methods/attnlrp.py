"""AttnLRP: layer-wise relevance propagation through attention, LayerNorm and GELU.

zennit's rules (:mod:`.lrp`) cover convolutions, linear layers and pooling. A transformer
also multiplies activations with each other, normalises every token (LayerNorm) and uses
smooth activations (GELU); a plain gradient through them does not conserve relevance.
AttnLRP (Achtibat et al. 2024) gives each a rule that, written as a modified gradient,
makes gradient × input the LRP relevance:

* **LayerNorm** — the identity rule on the normalisation: the standard deviation is a
  constant for the backward pass (mean-centring stays, it is linear);
* **element-wise activations** (GELU, SiLU) — the identity rule: relevance passes
  unchanged (the gradient becomes f(x)/x);
* **products of two activations** (``a @ b``) — the uniform rule: each factor gets half;
* linear layers and convolutions — gradient × input, i.e. LRP-ε with ε → 0;
* **attention weights** — held constant, so attention mixes the values linearly: the
  CP-LRP rule inside attention (Ali et al. 2022), as the ``lxt`` library (AttnLRP's
  authors) does for vision transformers. AttnLRP's own softmax rule (the softmax's
  gradient × input, with its bias term) was measured here *not* to conserve relevance on
  tiny bias-free video transformers — Σ R / logit between 0.43 and 1.02, and −0.61 on a
  TimeSformer — so it is not offered; with constant weights Σ R = logit on all five
  families (VideoMAE, TimeSformer, ViViT, Swin3D, MViT; ``tests/test_applicability.py``).

The rules are applied to *functions* (``F.layer_norm``, ``torch.matmul``, softmax,
``F.scaled_dot_product_attention``) by a :class:`~torch.overrides.TorchFunctionMode`, and
to activation modules by forward hooks, both active only during the explanation's forward
pass: no class or module is patched (``lxt`` patches transformers' classes globally and
has rules for language models and torchvision's image ViT, not for these video models).
Relevance starts at the target logit; Σ R equals it up to what biases, position
embeddings and class tokens absorb.

References
----------
Achtibat, Hatefi, Dreyer, Jain, Wiegand, Lapuschkin, Samek, "AttnLRP: attention-aware
layer-wise relevance propagation for transformers", ICML (2024).
Ali, Schnake, Eberle, Montavon, Müller, Wolf, "XAI for transformers: better explanations
through conservative propagation", ICML (2022).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import MethodError
from ..models.registry import LoadedModel
from .base import Attribution, Method, ProgressFn, register_method

__all__ = ["AttnLrp", "AttnLrpRules", "attnlrp_rules"]


class _Halve(torch.autograd.Function):
    """Identity forward; the gradient is halved (the uniform rule of a product)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad / 2


class _Identity(torch.autograd.Function):
    """Forward returns ``y = f(x)``; the gradient is f(x)/x, so gradient × input passes
    relevance unchanged (the identity rule)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        safe = torch.where(x.abs() < 1e-12, torch.full_like(x, 1e-12), x)
        ctx.save_for_backward(torch.where(x == 0, torch.zeros_like(y), y / safe))
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (ratio,) = ctx.saved_tensors
        return grad * ratio, None


_ELEMENTWISE = {F.gelu, F.silu, F.mish, F.elu}
_MATMUL = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm,
           torch.Tensor.bmm}
_SOFTMAX = {torch.softmax, F.softmax, torch.Tensor.softmax}


def _is_activation(t: object) -> bool:
    """A tensor computed from the clip (weights do not require gradients under the
    methods' model guard)."""
    return isinstance(t, torch.Tensor) and t.requires_grad and not isinstance(
        t, torch.nn.Parameter)


class AttnLrpRules(TorchFunctionMode):
    """The rules as modified gradients of torch functions (see the module doc).

    Counts what it rewrote in :attr:`applied` (rule → calls).
    """

    def __init__(self) -> None:
        super().__init__()
        self.applied: dict[str, int] = {}

    def _count(self, rule: str) -> None:
        self.applied[rule] = self.applied.get(rule, 0) + 1

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.layer_norm:
            self._count("layernorm")
            return _layer_norm(*args, **kwargs)
        if func in _ELEMENTWISE and args and _is_activation(args[0]):
            self._count("identity")
            with torch.no_grad():
                y = func(*args, **kwargs)
            return _Identity.apply(args[0], y)
        if func in _SOFTMAX:
            self._count("constant attention")
            return func(*args, **kwargs).detach()
        if func in _MATMUL and len(args) >= 2 and all(_is_activation(a) for a in args[:2]):
            self._count("uniform")
            return _Halve.apply(func(*args, **kwargs))
        if func is F.scaled_dot_product_attention:
            self._count("constant attention")
            return _attention(*args, **kwargs)
        return func(*args, **kwargs)


def _layer_norm(x: torch.Tensor, normalized_shape: Any, weight: torch.Tensor | None = None,
                bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    dims = tuple(range(-len(tuple(normalized_shape)), 0))
    mean = x.mean(dim=dims, keepdim=True)
    var = (x - mean).pow(2).mean(dim=dims, keepdim=True)
    y = (x - mean) / (var + eps).sqrt().detach()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
               is_causal: bool = False, scale: float | None = None,
               enable_gqa: bool = False) -> torch.Tensor:
    """``scaled_dot_product_attention`` written out, the attention weights held constant."""
    if is_causal or enable_gqa:
        raise MethodError("attn-lrp does not handle causal or grouped-query attention",
                          hint="Use a gradient-based method.")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if attn_mask is not None:
        scores = (scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool
                  else scores + attn_mask)
    return scores.softmax(dim=-1).detach() @ v


def _is_smooth_activation(m: torch.nn.Module) -> bool:
    name = type(m).__name__.lower()
    return isinstance(m, (torch.nn.GELU, torch.nn.SiLU, torch.nn.Mish, torch.nn.ELU)) or (
        "gelu" in name or "silu" in name or "swish" in name)


@contextlib.contextmanager
def attnlrp_rules(module: torch.nn.Module) -> Iterator[AttnLrpRules]:
    """The rules on ``module`` for the forward passes inside the block.

    Activation *modules* (``nn.GELU``, transformers' ``GELUActivation`` and
    ``FastGELUActivation``, which computes GELU from products and ``tanh``) get the
    identity rule as a whole through a forward hook; everything else is rewritten at the
    function level (:class:`AttnLrpRules`). The hooks are removed on exit.
    """
    def identity(m: torch.nn.Module, inputs: tuple, output: object) -> object:
        x = inputs[0] if inputs else None
        if (isinstance(x, torch.Tensor) and isinstance(output, torch.Tensor)
                and x.shape == output.shape and x.requires_grad):
            return _Identity.apply(x, output.detach())
        return output

    handles = [m.register_forward_hook(identity) for m in module.modules()
               if _is_smooth_activation(m)]
    try:
        with AttnLrpRules() as rules:
            yield rules
    finally:
        for h in handles:
            h.remove()


@register_method
class AttnLrp(Method):
    """AttnLRP (Achtibat et al. 2024) for video transformers; see the module doc.

    Refuses CNNs: without attention or LayerNorm the rules reduce to gradient × input
    (``input-x-gradient``), and ``dtd`` / ``lrp-epsilon`` are the LRP for them.
    """

    name = "attn-lrp"
    description = ("AttnLRP for transformers: LayerNorm, GELU and product rules, attention "
                   "weights constant")
    family: ClassVar[str] = "lrp"
    reference = "Achtibat et al. 2024, ICML (AttnLRP); Ali et al. 2022, ICML (CP-LRP)"
    has_raw: ClassVar[bool] = True

    def check(self, model: LoadedModel) -> None:
        if not model.spec.is_transformer:
            raise MethodError(
                f"attn-lrp is LRP for transformers; {model.name} has no attention, where its "
                "rules reduce to input × gradient",
                hint="Use dtd or lrp-epsilon (zennit's LRP rules for CNNs).")

    def _attribute(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor,
                   progress: ProgressFn | None = None) -> Attribution:
        x = x.detach().clone().requires_grad_(True)
        with attnlrp_rules(model.module):
            logits = model.module(x)
        seed = torch.zeros_like(logits)
        seed.scatter_(1, target.view(-1, 1).to(logits.device), 1.0)
        (grad,) = torch.autograd.grad(logits, x, grad_outputs=seed)
        relevance = (x * grad).detach()
        return Attribution(relevance.sum(1), relevance)
