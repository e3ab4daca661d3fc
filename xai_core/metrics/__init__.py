"""Metrics that judge explanations: one module per family, all behind :mod:`.base`'s contract.

* :mod:`.motion` — motion precision against optical flow, selectivity, agreement,
  overhead, motion share (Hiley et al. 2020);
* :mod:`.causal` — insertion / deletion AUC beside a random map, saliency metric
  (Li et al. 2021);
* :mod:`.localisation` — pointing game (spatial, temporal), ground-truth shares on the
  synthetic world;
* :mod:`.sanity` — cascading model randomisation (Adebayo et al. 2018).
"""

from .base import (
    METRICS,
    ClipEvidence,
    Metric,
    Score,
    get_metric,
    list_metrics,
    register_metric,
)

__all__ = ["METRICS", "ClipEvidence", "Metric", "Score", "get_metric",
           "list_metrics", "register_metric"]
