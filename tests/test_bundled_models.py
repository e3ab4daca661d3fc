"""The committed weights are what their manifests say, and still reach the manifests' accuracy.

A freshly generated held-out set (seeds never used in training nor in the manifest's own
evaluation) must give accuracies within a few points of the recorded ones, and the
context-biased model must still show its spatial bias.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from xai_core.models.bundled import WEIGHTS_DIR
from xai_core.models.registry import load_model
from xai_core.synthetic.accuracy import synthetic_accuracy
from xai_core.synthetic.world import WorldConfig

# Disjoint from training (10_000_000 + …) and from the manifests' held-out set (900_000_000 + …).
FRESH_SEEDS = np.arange(950_000_000, 950_000_000 + 64)
# 64 clips: a binomial standard error of ~1–6 points; the margins below are ≥ 2 of them.
MARGIN = 0.08


def _manifest(name: str) -> dict:
    return json.loads((WEIGHTS_DIR / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["motion", "context-biased"])
def test_weights_match_their_manifest(name):
    manifest = _manifest(name)
    digest = hashlib.sha256((WEIGHTS_DIR / manifest["weights"]).read_bytes()).hexdigest()
    assert digest == manifest["sha256"]
    model = load_model(name, device="cpu")
    assert model.class_names == manifest["classes"]
    assert sum(p.numel() for p in model.module.parameters()) == manifest["parameters"]


def test_motion_model_reaches_its_accuracy_and_ignores_single_frames():
    acc = _manifest("motion")["accuracy"]
    model = load_model("motion", device="cpu")
    config = WorldConfig(context_rate=0.0)
    fresh = synthetic_accuracy(model.module, model.input, FRESH_SEEDS, config)
    assert fresh["accuracy"] >= acc["heldout"] - MARGIN
    assert fresh["accuracy"] >= 0.9
    # One frozen frame carries no class information in this world: near chance (1/8).
    still = synthetic_accuracy(model.module, model.input, FRESH_SEEDS, still=True)
    assert still["accuracy"] <= 0.35


def test_context_biased_model_keeps_its_spatial_bias():
    acc = _manifest("context-biased")["accuracy"]
    model = load_model("context-biased", device="cpu")
    config = WorldConfig(context_rate=1.0)
    agree = synthetic_accuracy(model.module, model.input, FRESH_SEEDS, config, context_mode="agree")
    conflict = synthetic_accuracy(model.module, model.input, FRESH_SEEDS, config,
                                  context_mode="conflict")
    assert agree["accuracy"] >= acc["heldout_context_agrees"] - MARGIN
    assert conflict["accuracy"] <= acc["heldout_context_conflicts"] + 2 * MARGIN
    # It follows the scene: most conflicting clips get the context's class.
    assert conflict["predicted_context_class"] >= 0.6
