"""A picklable reference to a model: what a Ray worker loads, and what a run folder records.

A :class:`~xai_core.models.registry.LoadedModel` holds the network itself; a worker in
another process (or on another machine) rebuilds it from a :class:`ModelRef` — the
arguments of :func:`~xai_core.models.registry.load_model` — once, when it starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.registry import MODELS, LoadedModel, get_spec, load_model, register_model
from ..models.spec import ModelSpec

__all__ = ["ModelRef"]


@dataclass(frozen=True)
class ModelRef:
    """The arguments of :func:`~xai_core.models.registry.load_model`, picklable.

    Attributes
    ----------
    name, arch, checkpoint, classes, weights, hf
        As for ``load_model`` (paths absolute, so that a worker started in another
        folder finds them).
    spec
        The architecture's (or bundled model's) :class:`~xai_core.models.spec.ModelSpec`:
        a worker registers it before loading when its own registry lacks that name — an
        architecture registered at run time (a test, a notebook, a plugin). The zoo's
        own are found in the worker's registry and the copy is not used.
    """

    name: str | None = None
    arch: str | None = None
    checkpoint: str | None = None
    classes: str | None = None
    weights: str | None = None
    hf: str | None = None
    spec: ModelSpec | None = None

    @classmethod
    def of(cls, name: str | None = None, *, arch: str | None = None,
           checkpoint: str | Path | None = None, classes: str | Path | None = None,
           weights: str | None = None, hf: str | Path | None = None) -> ModelRef:
        """A reference from ``load_model``'s arguments (files made absolute)."""

        def absolute(p: str | Path | None) -> str | None:
            return None if p is None else str(Path(p).expanduser().resolve())

        if name is None and arch is None and checkpoint is None and weights is None \
                and hf is None:
            name = "motion"  # load_model's default, named so that the run records it
        key = arch or name
        spec = (get_spec(key) if weights is None and hf is None and key is not None
                and key in MODELS else None)
        hf_ref = None if hf is None else (absolute(hf) if Path(hf).exists() else str(hf))
        return cls(name=name, arch=arch, checkpoint=absolute(checkpoint),
                   classes=absolute(classes), weights=weights, hf=hf_ref, spec=spec)

    def load(self, device: str | None = None) -> LoadedModel:
        """Load the model (registering :attr:`spec` first when this process lacks it).

        Parameters
        ----------
        device
            ``cpu``, ``cuda`` or ``None`` for automatic.

        Returns
        -------
        LoadedModel
            The model, in eval mode on ``device``.
        """
        if self.spec is not None and self.spec.name not in MODELS:
            register_model(self.spec)
        return load_model(self.name, arch=self.arch, checkpoint=self.checkpoint,
                          classes=self.classes, device=device, weights=self.weights,
                          hf=self.hf)

    def describe(self) -> dict[str, Any]:
        """The reference as JSON (without the spec), for a run's ``settings.json``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "spec" and getattr(self, f.name) is not None}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> ModelRef:
        """The inverse of :meth:`describe`."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"spec"}
        return cls(**{k: v for k, v in d.items() if k in fields})
