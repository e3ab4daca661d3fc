"""Registers every architecture the project knows (imported once by the registry)."""

from __future__ import annotations

from .bundled import bundled_specs, small_c3d_spec
from .registry import register_model

register_model(small_c3d_spec())
for _spec in bundled_specs():
    register_model(_spec)
