"""Localisation metrics: pointing game (spatial and temporal) and ground-truth shares.

* **Spatial pointing game** (Zhang et al. 2016, as used for video by Li et al. 2021):
  for every frame that has ground truth, take the location of the frame map's maximum;
  a hit when it lies within ``tolerance`` pixels of the ground-truth mask (Li et al.: a
  7-pixel circle around the maximum intersects the box). A frame whose map is flat has
  no maximum to point with and counts as a miss. The score is the share of hits.
* **Temporal pointing game** (Li et al. 2021): a hit when the frame holding the map's
  maximum (or, with ``reduce="sum"``, the frame with the most positive relevance) lies
  in the ground-truth segment.
* **Ground-truth localisation** on the synthetic world, which knows pixel-exactly where
  the motion evidence (the actor) and the static evidence (the context object) are:
  the share of a map's positive relevance on each mask, and its *lift* — the share
  divided by the mask's share of the volume, so 1 is what a uniform map gets and the
  small actor is not penalised for being small.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import ParameterError
from .base import ClipEvidence, Metric, Param, register_metric


def _check(rel: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rel = np.asarray(rel, np.float64)
    mask = np.asarray(mask, bool)
    if rel.shape != mask.shape:
        raise ParameterError(f"map {rel.shape} and mask {mask.shape} differ in shape",
                             hint="Masks must be on the model's (T, H, W) grid.")
    return rel, mask


def pointing_game_spatial(relevance: np.ndarray, mask: np.ndarray, tolerance: float = 7.0
                          ) -> dict[str, float]:
    """Per-frame pointing game; returns ``hit_rate``, ``hits`` and ``frames`` evaluated.

    Frames with an empty mask are skipped; a flat frame map is a miss; among equal
    maxima the first in raster order points (deterministic).
    """
    rel, mask = _check(relevance, mask)
    hits = frames = 0
    for r, m in zip(rel, mask, strict=True):
        if not m.any():
            continue
        frames += 1
        if r.max() == r.min():
            continue
        y, x = np.unravel_index(int(np.argmax(r)), r.shape)
        # distance of every pixel to the nearest mask pixel (0 inside the mask)
        dist = ndimage.distance_transform_edt(~m)
        hits += int(dist[y, x] <= tolerance)
    rate = hits / frames if frames else float("nan")
    return {"hit_rate": rate, "hits": hits, "frames": frames}


def pointing_game_temporal(relevance: np.ndarray, segment: np.ndarray, reduce: str = "max"
                           ) -> float:
    """1.0 when the most relevant frame lies in the segment, 0.0 when not, NaN if undefined.

    ``reduce="max"``: the frame holding the map's maximum voxel (Li et al.);
    ``"sum"``: the frame with the largest sum of positive relevance.
    """
    rel = np.asarray(relevance, np.float64)
    seg = np.asarray(segment, bool).reshape(-1)
    if seg.size != rel.shape[0]:
        raise ParameterError(f"segment has {seg.size} frames, the map {rel.shape[0]}")
    if reduce == "max":
        per_frame = rel.reshape(rel.shape[0], -1).max(1)
    elif reduce == "sum":
        per_frame = np.clip(rel, 0, None).reshape(rel.shape[0], -1).sum(1)
    else:
        raise ParameterError(f"unknown reduction {reduce!r}", hint="Use max or sum.")
    if not seg.any() or per_frame.max() == per_frame.min():
        return float("nan")
    return float(seg[int(np.argmax(per_frame))])


def ground_truth_shares(relevance: np.ndarray, actor: np.ndarray, context: np.ndarray
                        ) -> dict[str, float]:
    """Share and lift of positive relevance on the actor and on the context masks.

    ``actor_share = Σ R⁺[actor] / Σ R⁺``; ``actor_lift = actor_share / mean(actor)``.
    Shares are NaN when the map has no positive relevance, lifts also when a mask is
    empty.
    """
    rel, actor = _check(relevance, actor)
    _, context = _check(relevance, context)
    pos = np.clip(rel, 0, None)
    total = pos.sum()
    out: dict[str, float] = {}
    for name, m in (("actor", actor), ("context", context)):
        share = float(pos[m].sum() / total) if total > 0 else float("nan")
        area = float(m.mean())
        out[f"{name}_share"] = share
        out[f"{name}_lift"] = share / area if area > 0 else float("nan")
    return out


class _PointingGame(Metric):
    """Base of the pointing games: one hit (or hit rate) per map, higher is better.

    A subclass writes :meth:`point`, the score of one map, reported as its single
    quantity.
    """

    higher_is_better = True

    def point(self, ev: ClipEvidence, relevance: np.ndarray) -> float:
        """The pointing score of one (T, H, W) map on the clip of ``ev``."""
        raise NotImplementedError

    def score_map(self, ev: ClipEvidence, method: str, variant: str,
                  relevance: np.ndarray) -> dict[str, float]:
        return {self.quantities[0]: self.point(ev, relevance)}


@register_metric
class PointingGame(_PointingGame):
    """Spatial pointing game (Zhang et al. 2016; for video, Li et al. 2021, §4.1: S-PT).

    The share of frames with ground truth whose map maximum lies within ``tolerance``
    pixels of the mask; see :func:`pointing_game_spatial`.
    """

    name = "pointing_game"
    needs = ("masks",)
    quantities = ("pointing_spatial",)
    description = "share of frames whose map maximum lies within a tolerance of the actor"
    reference = "Zhang et al. 2016 (pointing game); Li et al. 2021 §4.1 (S-PT, 7-pixel tolerance)"
    params = {"tolerance": Param(7.0, "hit radius in pixels", low=0.0),
              "mask": Param("actor", "ground-truth mask to point at", choices=("actor", "context"))}

    def point(self, ev: ClipEvidence, relevance: np.ndarray) -> float:
        return pointing_game_spatial(relevance, ev.masks[self.config["mask"]],
                                     self.config["tolerance"])["hit_rate"]


@register_metric
class TemporalPointingGame(_PointingGame):
    """Temporal pointing game (Li et al. 2021, §4.1: T-PT).

    1 when the most relevant frame lies in the ground-truth segment, 0 when not; see
    :func:`pointing_game_temporal`.
    """

    name = "temporal_pointing_game"
    needs = ("segment",)
    quantities = ("pointing_temporal",)
    description = "1 when the most relevant frame lies in the ground-truth segment"
    reference = "Li et al. 2021 §4.1 (T-PT)"
    params = {"reduce": Param("max", "frame score: its maximum or its positive sum",
                              choices=("max", "sum"))}

    def point(self, ev: ClipEvidence, relevance: np.ndarray) -> float:
        return pointing_game_temporal(relevance, ev.masks["segment"], self.config["reduce"])


@register_metric
class GroundTruthLocalisation(Metric):
    """Share and lift of positive relevance on the synthetic world's actor and context.

    This project's measure (no paper): the masks are pixel-exact, see
    :func:`ground_truth_shares`.
    """

    name = "ground_truth"
    higher_is_better = None  # on the actor: higher is better; on the context it depends
    needs = ("masks",)
    quantities = ("actor_share", "actor_lift", "context_share", "context_lift")
    description = ("share of positive relevance on the actor (motion evidence) and on the "
                   "context object (static evidence), and that share over the mask's area")
    reference = "this project's synthetic world (pixel-exact masks)"

    def score_map(self, ev: ClipEvidence, method: str, variant: str,
                  relevance: np.ndarray) -> dict[str, float]:
        return ground_truth_shares(relevance, ev.masks["actor"], ev.masks["context"])
