"""Imports every method module so that their ``@register_method`` decorators run."""

from __future__ import annotations

import importlib

# One module per family; each registers its methods on import.
_FAMILIES = ("lrp", "gradients", "cam", "occlusion", "perturbation")

for _mod in _FAMILIES:
    try:
        importlib.import_module(f"{__package__}.{_mod}")
    except ModuleNotFoundError as exc:  # a family not written yet must not hide others
        if exc.name != f"{__package__}.{_mod}":
            raise
