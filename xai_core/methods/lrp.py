"""Layer-wise relevance propagation for 3-D CNNs, on zennit: deep Taylor and two presets.

Every LRP method here is a choice of three rules — for the first layer, for the other
convolutions, for the linear layers — on top of a shared set-up:

* relevance starts at the target logit (one-hot × logit), so Σ relevance = logit when
  every rule conserves it (bias-free layers); biases absorb their share otherwise;
* activations pass relevance unchanged, max-pool sends it to the winning input (the
  plain gradient, i.e. winner-take-all as in Hiley et al. (2019)), average pools and residual sums
  share it in proportion to their inputs (zennit's ``Norm`` rule);
* BatchNorm is merged into the conv that feeds it and torchvision's video ResNet blocks
  get their residual sum as a module (:mod:`.canonizers`); all of it is undone afterwards;
* the first layer is found by tracing the clip's shape (execution order, not module
  order), and box rules take their bounds from the model's input spec, never constants;
* the rules run fused (:mod:`.lrp_fused`, :mod:`.lrp_rules`): each layer's relevance is
  computed from its saved input in about one modified pass, where zennit re-runs the
  layer once per modifier — DTD costs 2.9–3.9× a forward instead of 6.5–8.7× on the
  bundled model, C3D and R3D-18 (``benchmarks/RESULTS.md``, "Fused LRP").
  ``method.impl = "zennit"`` runs zennit's own hooks, the reference the fused rules are
  tested against; the two agree to rounding (relative error ~1e-7), so ``impl`` is not
  part of the cache key.

Relevance comes back at the input, per colour channel (raw) and summed over channels.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch
from zennit.composites import NameLayerMapComposite, layer_map_base
from zennit.core import Composite, Hook
from zennit.types import Convolution

from ..errors import MethodError, ParameterError
from ..models.registry import LoadedModel
from .base import Attribution, Method, Param, ProgressFn, register_method
from .canonizers import VideoResNetBlockCanonizer, trace_network, video_canonizers
from .lrp_fused import FusedHook, base_layer_map, frozen_parameters
from .lrp_rules import Rule


def target_seed(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One-hot × logit: the relevance put on the output before propagating it back."""
    seed = torch.zeros_like(logits)
    index = target.view(-1, 1).to(logits.device)
    return seed.scatter_(1, index, logits.detach().gather(1, index))


class LrpMethod(Method):
    """Base of the LRP family: subclasses only choose their rules (:meth:`rules`)."""

    family: ClassVar[str] = "lrp"
    has_raw: ClassVar[bool] = True
    #: ``"fused"`` (:mod:`.lrp_fused`) or ``"zennit"`` (zennit's rules, the reference).
    impl: str = "fused"
    #: Cost of one explanation in gradient passes (one pass ≈ 2 forwards), fused and with
    #: zennit's hooks, measured on the bundled model, C3D and R3D-18 (CPU, one clip;
    #: ``benchmarks/bench_lrp.py``).
    relative_cost: ClassVar[int] = 2
    zennit_cost: ClassVar[int] = 4

    def cost_passes(self, clip: tuple[int, ...] | None = None) -> int:
        return self.zennit_cost if self.impl == "zennit" else self.relative_cost

    def check(self, model: LoadedModel) -> None:
        refuse_transformers(model, self.name)

    @abstractmethod
    def rules(self, low: torch.Tensor, high: torch.Tensor) -> tuple[Rule | None, Rule, Rule]:
        """Rules for (the first layer, or ``None`` for the conv rule; convolutions; linears).

        ``low`` and ``high`` are the lowest and highest normalised pixel value per channel,
        shaped (1, 3, 1, 1, 1), for box rules.
        """

    def hook(self, rule: Rule) -> Hook:
        """The hook computing ``rule``: fused, or zennit's own with ``impl="zennit"``."""
        if self.impl == "zennit":
            return rule.zennit()
        if self.impl != "fused":
            raise ParameterError(f"unknown LRP implementation {self.impl!r}",
                                 hint="Use 'fused' or 'zennit'.")
        return FusedHook(rule)

    def composite(self, model: LoadedModel, x: torch.Tensor) -> Composite:
        """The zennit composite (rules + canonizers) for ``model``, traced on clip ``x``."""
        trace = trace_network(model.module, x)
        if trace.first_layer is None:
            raise MethodError(f"{self.name} found no convolution or linear layer in the model",
                              hint="Use a gradient-based method.")
        if trace.reused:
            raise MethodError(
                f"{self.name} cannot explain layers that run more than once per forward pass "
                f"({trace.reused[:4]})", hint="Use a gradient-based or CAM method for this model.")
        canonizers = video_canonizers(model.module, trace)  # refuses unmergeable BatchNorms
        for c in canonizers:  # fused: residual sums of two tensors, not of a stacked copy
            if isinstance(c, VideoResNetBlockCanonizer):
                c.stacked = self.impl == "zennit"
        low, high = (b.to(x.device) for b in model.input.pixel_bounds())
        first, conv, linear = self.rules(low, high)
        if first is not None and not trace.first_takes_input:
            raise MethodError(
                f"{self.name} needs the first layer ({trace.first_layer}) to take the clip "
                "directly, to apply the input spec's pixel bounds",
                hint="Use lrp-epsilon, or move preprocessing out of the model into its input spec.")
        base = layer_map_base() if self.impl == "zennit" else base_layer_map()
        layer_map = base + [(Convolution, self.hook(conv)), (torch.nn.Linear, self.hook(linear))]
        name_map = [((trace.first_layer,), self.hook(first))] if first is not None else []
        return NameLayerMapComposite(name_map=name_map, layer_map=layer_map,
                                     canonizers=canonizers)

    def _attribute(self, model: LoadedModel, x: torch.Tensor, target: torch.Tensor,
                   progress: ProgressFn | None = None) -> Attribution:
        composite = self.composite(model, x)
        x = x.detach().clone().requires_grad_(True)
        with frozen_parameters(model.module), composite.context(model.module) as net:
            logits = net(x)
            (relevance,) = torch.autograd.grad(logits, x, grad_outputs=target_seed(logits, target))
        return Attribution(relevance.sum(1), relevance)


@register_method
class DeepTaylor(LrpMethod):
    """Deep Taylor decomposition as applied to 3-D CNNs in Hiley et al. (2019).

    zβ (ZBox) on the first convolution with the model's per-channel pixel bounds, αβ on
    every other convolution and linear layer (α=1, β=0 is the z⁺ rule), winner-take-all
    max-pooling, proportional average pooling.

    References
    ----------
    Montavon et al., "Explaining nonlinear classification decisions with deep Taylor
    decomposition", Pattern Recognition 65 (2017); Hiley et al., "Discriminating spatial
    and temporal relevance in deep Taylor decompositions for explainable activity
    recognition", IJCAI XAI workshop (2019).
    """

    name = "dtd"
    description = "Deep Taylor decomposition: zβ first layer, αβ (z⁺) elsewhere"
    reference = ("Montavon et al. 2017, Pattern Recognition 65; "
                 "Hiley et al. 2019, IJCAI XAI workshop (deep Taylor on C3D)")
    params = {
        "alpha": Param(1.0, "weight of positive contributions in the αβ rule (α − β = 1)",
                       low=1.0, high=10.0),
        "beta": Param(0.0, "weight of negative contributions in the αβ rule (0 = z⁺ rule)",
                      low=0.0, high=9.0),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        alpha, beta = self.config["alpha"], self.config["beta"]
        if abs(alpha - beta - 1.0) > 1e-9:
            raise ParameterError(f"dtd needs alpha − beta = 1 to conserve relevance, got "
                                 f"alpha={alpha}, beta={beta}",
                                 hint="Use e.g. alpha=1, beta=0 (z⁺) or alpha=2, beta=1.")

    def cost_passes(self, clip: tuple[int, ...] | None = None) -> int:
        if self.config["beta"] == 0:
            return super().cost_passes()
        return 6 if self.impl == "zennit" else 3  # αβ: two modified forwards per layer

    def rules(self, low: torch.Tensor, high: torch.Tensor) -> tuple[Rule, Rule, Rule]:
        alpha, beta = self.config["alpha"], self.config["beta"]
        # z⁺ is αβ with β = 0, computed in half the passes
        hidden = Rule("zplus") if beta == 0 else Rule("alphabeta", alpha=alpha, beta=beta)
        return Rule("zbox", low=low, high=high), hidden, hidden


@register_method
class LrpEpsilon(LrpMethod):
    """LRP-ε on every layer.

    References
    ----------
    Bach et al., "On pixel-wise explanations for non-linear classifier decisions by
    layer-wise relevance propagation", PLoS ONE 10(7) (2015).
    """

    name = "lrp-epsilon"
    description = "LRP-ε on all layers (small ε ≈ gradient × input)"
    reference = "Bach et al. 2015, PLoS ONE 10(7)"
    relative_cost, zennit_cost = 1, 3
    params = {
        "epsilon": Param(0.01, "stabiliser added to each denominator; larger absorbs weak, "
                               "contradictory contributions", low=1e-9, high=100.0),
    }

    def rules(self, low: torch.Tensor, high: torch.Tensor) -> tuple[None, Rule, Rule]:
        rule = Rule("epsilon", epsilon=self.config["epsilon"])
        return None, rule, rule


@register_method
class LrpEpsilonGammaBox(LrpMethod):
    """zennit's EpsilonGammaBox: zβ first layer, γ on convolutions, ε on linear layers.

    References
    ----------
    Montavon et al., "Layer-wise relevance propagation: an overview", in Explainable AI,
    LNCS 11700 (2019).
    """

    name = "lrp-epsilon-gamma-box"
    description = "LRP composite: zβ first layer, γ on convolutions, ε on linear layers"
    reference = "Montavon et al. 2019, Layer-wise relevance propagation: an overview (LNCS 11700)"
    relative_cost, zennit_cost = 3, 7
    params = {
        "epsilon": Param(1e-6, "stabiliser of the ε rule on linear layers", low=1e-9, high=100.0),
        "gamma": Param(0.25, "how much the γ rule favours positive contributions", low=0.0,
                       high=100.0),
    }

    def rules(self, low: torch.Tensor, high: torch.Tensor) -> tuple[Rule, Rule, Rule]:
        return (Rule("zbox", low=low, high=high), Rule("gamma", gamma=self.config["gamma"]),
                Rule("epsilon", epsilon=self.config["epsilon"]))


# --------------------------------------------------------------------------- transformers
def transformer_parts(model: LoadedModel) -> list[str]:
    """What in ``model`` zennit's CNN rules do not cover: LayerNorm, attention, GELU."""
    found = set()
    for m in model.module.modules():
        kind = type(m).__name__
        if isinstance(m, torch.nn.LayerNorm):
            found.add("LayerNorm")
        elif isinstance(m, torch.nn.MultiheadAttention) or "attention" in kind.lower():
            found.add("attention")
        elif isinstance(m, torch.nn.GELU) or "gelu" in kind.lower():
            found.add("GELU")
    if model.spec.is_transformer:
        found.add("attention")
    return sorted(found)


def refuse_transformers(model: LoadedModel, method: str) -> None:
    """Refuse zennit's LRP on transformers (called by every LRP method's ``check``).

    Its rules cover convolutions, linear layers and pooling; through LayerNorm, attention
    (softmax, products of two activations) and GELU relevance would flow as a plain
    gradient and not be conserved (a product alone passes each factor the whole product's
    relevance). AttnLRP (Achtibat et al. 2024, ``attn-lrp``) has rules for them.
    """
    parts = transformer_parts(model)
    if parts:
        raise MethodError(
            f"{method} applies zennit's LRP rules for CNNs; {model.name} has transformer "
            f"parts ({', '.join(parts)}) they have no rules for, so relevance would not be "
            "conserved",
            hint="Use attn-lrp (AttnLRP, Achtibat et al. 2024) or a gradient-based method.")


# AttnLRP lives in its own module; importing it here registers it with the LRP family.
from . import attnlrp  # noqa: E402, F401
