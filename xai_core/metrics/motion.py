"""Motion metrics of Hiley et al. (2020), "Explaining Motion Relevance for Activity
Recognition in Video Deep Learning Models": motion precision against optical flow,
selectivity, agreement between methods, overhead; and the motion share of a model.

Definitions (the paper's where it gives one, ours where it does not — stated here):

* **positively relevant voxels** ``R > 0`` (the paper centres explanations on zero so
  that negligible relevance is 0; signed relevance is kept signed, so negative evidence
  never counts as "relevant");
* **optical flow per frame**: flow is computed between consecutive frames in both
  directions, each in the coordinates of the frame it starts from; frame t's magnitude
  is the larger of its forward (t→t+1) and backward (t→t−1) flow, so every frame —
  the first and the T-th included — gets flow in its own pixel grid (the first frame
  has only forward, the last only backward flow). "Moving" means magnitude above a
  threshold in pixels per frame (default 0.5: on the synthetic world, measured in
  docs/evaluation.md, it keeps camera noise out and most of the actor in).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import ParameterError, VideoError
from .base import ClipEvidence, Metric, Param, register_metric

_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


# --------------------------------------------------------------------------- optical flow
def flow_magnitude(frames: np.ndarray, algorithm: str = "dis-medium") -> np.ndarray:
    """Per-frame dense optical-flow magnitude (T, H, W) float32, in pixels per frame.

    Parameters
    ----------
    frames
        uint8 RGB (T, H, W, 3) (or grey (T, H, W)), in temporal order, T ≥ 2.
    algorithm
        ``"dis-ultrafast"``, ``"dis-fast"``, ``"dis-medium"`` (OpenCV DIS, Kroeger et
        al. 2016) or ``"farneback"``.

    Frame t gets max(|flow t→t+1|, |flow t→t−1|); see the module docstring.
    """
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[-1] == 3:
        grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    elif frames.ndim == 3:
        grey = list(frames)
    else:
        raise VideoError(f"frames must be (T, H, W, 3) or (T, H, W), got {frames.shape}",
                         hint="Pass the clip's uint8 RGB frames.")
    if len(grey) < 2:
        raise VideoError("optical flow needs at least two frames", hint="Use a longer clip.")
    # DIS refuses non-contiguous input (a cropped view): copy once here.
    grey = [np.ascontiguousarray(g, dtype=np.uint8) for g in grey]
    calc = _flow_fn(algorithm)
    t = len(grey)
    mag = np.zeros((t, *grey[0].shape), np.float32)
    for i in range(t - 1):
        fwd = calc(grey[i], grey[i + 1])
        bwd = calc(grey[i + 1], grey[i])
        mag[i] = np.maximum(mag[i], np.hypot(fwd[..., 0], fwd[..., 1]))
        mag[i + 1] = np.maximum(mag[i + 1], np.hypot(bwd[..., 0], bwd[..., 1]))
    return mag


def _flow_fn(algorithm: str):
    if algorithm.startswith("dis-") and algorithm[4:] in _DIS_PRESETS:
        dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[algorithm[4:]])
        return lambda a, b: dis.calc(a, b, None)
    if algorithm == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise ParameterError(f"unknown optical-flow algorithm {algorithm!r}",
                         hint="Use dis-ultrafast, dis-fast, dis-medium or farneback.")


FLOW_ALGORITHMS = tuple(f"dis-{p}" for p in _DIS_PRESETS) + ("farneback",)


# --------------------------------------------------------------------------- functions
def positive(relevance: np.ndarray, min_relevance: float = 0.0) -> np.ndarray:
    """Voxels counted as relevant: ``R > min_relevance · max(R)`` (0: any positive value)."""
    rel = np.asarray(relevance, dtype=np.float64)
    top = float(rel.max()) if rel.size else 0.0
    return rel > max(min_relevance * top, 0.0)


def motion_precision(relevance: np.ndarray, flow: np.ndarray, flow_threshold: float = 0.5,
                     min_relevance: float = 0.0) -> float:
    """Share of positively relevant voxels that lie where the flow moves (Hiley 2020, §4.3.1).

    ``P = Σ (R > 0) ⊙ (|O| > threshold) / Σ (R > 0)``; NaN when no voxel is positive.
    """
    rel = positive(relevance, min_relevance)
    if rel.shape != np.shape(flow):
        raise ParameterError(f"relevance {rel.shape} and flow {np.shape(flow)} differ in shape")
    n = int(rel.sum())
    if n == 0:
        return float("nan")
    return float((rel & (np.asarray(flow) > flow_threshold)).sum() / n)


def motion_precision_top(relevance: np.ndarray, flow: np.ndarray, top: float = 0.05,
                         flow_threshold: float = 0.5) -> float:
    """Motion precision of a map's ``top`` fraction of voxels (by value, positive only).

    The paper's ``R > 0`` counts every voxel of a dense map (deep Taylor with z⁺ is
    positive almost everywhere), which makes its precision the share of moving voxels
    whatever the map says; a fixed area budget compares maps of any density on equal
    terms. Maps with fewer positive voxels than the budget use all of them; NaN if none.
    """
    rel = np.asarray(relevance, dtype=np.float64)
    if rel.shape != np.shape(flow):
        raise ParameterError(f"relevance {rel.shape} and flow {np.shape(flow)} differ in shape")
    chosen = _top_set(rel, top) & (rel > 0)
    n = int(chosen.sum())
    if n == 0:
        return float("nan")
    return float((chosen & (np.asarray(flow) > flow_threshold)).sum() / n)


def selectivity(selective: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """Area and relevance-mass ratio of a selective map to its baseline (Hiley 2020, §4.3.2).

    ``area_ratio = #(S > 0) / #(B > 0)``, ``mass_ratio = Σ S⁺ / Σ B⁺`` (positive parts,
    so that signed relevance cannot cancel). The ideal filter keeps most of the mass in
    a small part of the area (mass_ratio ≫ area_ratio). NaN when B has no positive voxel.
    """
    s = np.asarray(selective, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    area_b = int((b > 0).sum())
    mass_b = float(np.clip(b, 0, None).sum())
    if area_b == 0:
        return {"area_ratio": float("nan"), "mass_ratio": float("nan")}
    return {"area_ratio": float((s > 0).sum() / area_b),
            "mass_ratio": float(np.clip(s, 0, None).sum() / mass_b)}


def agreement(a: np.ndarray, b: np.ndarray, top: float | None = None) -> dict[str, float]:
    """Overlap of the relevant voxels of two maps: IoU and Dice.

    The paper reports a "percentage overlap between areas of relevance" without a
    formula; we report both symmetric overlaps of the sets A, B of relevant voxels:
    ``IoU = |A∩B| / |A∪B|`` and ``Dice = 2|A∩B| / (|A| + |B|)``.

    ``top=None`` takes the positive voxels (the paper's notion of relevant);
    ``top=f`` takes each map's top fraction f of voxels by value (positive ones only)
    instead, which does not reward a method for marking everything positive (Grad-CAM's
    upsampled maps, z⁺ deep Taylor). NaN when both sets are empty.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ParameterError(f"maps of shape {a.shape} and {b.shape} cannot be compared")
    if top is None:
        sa, sb = a > 0, b > 0
    else:
        sa, sb = _top_set(a, top) & (a > 0), _top_set(b, top) & (b > 0)
    inter = int((sa & sb).sum())
    union = int((sa | sb).sum())
    total = int(sa.sum() + sb.sum())
    if total == 0:
        return {"iou": float("nan"), "dice": float("nan")}
    return {"iou": inter / union, "dice": 2 * inter / total}


def _top_set(m: np.ndarray, fraction: float) -> np.ndarray:
    k = int(round(fraction * m.size))
    out = np.zeros(m.size, bool)
    if k > 0:
        # stable order: equal values are taken in index order, the same for both maps
        out[np.argsort(-m.ravel(), kind="stable")[:k]] = True
    return out.reshape(m.shape)


def summarise_motion_share(shares: np.ndarray | list[float]) -> dict[str, float]:
    """A model's motion share over a set of clips: mean, std, median, n, and the
    spatial-bias score ``1 − mean`` (the share of relevance that did not need motion).
    NaNs (clips without positive relevance) are left out and not counted in n."""
    v = np.asarray(shares, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "median": float("nan"), "n": 0,
                "spatial_bias": float("nan")}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "median": float(np.median(v)), "n": int(v.size), "spatial_bias": float(1 - v.mean())}


# --------------------------------------------------------------------------- metrics
@register_metric
class MotionPrecision(Metric):
    """Motion precision (Hiley et al. 2020, §4.3.1): relevant voxels where the flow moves.

    Reports the paper's ``R > 0`` form and, with ``top > 0``, the fixed-area-budget form
    of :func:`motion_precision_top`; the random baseline is the share of moving voxels.
    """

    name = "motion_precision"
    higher_is_better = True
    needs = ("frames",)
    quantities = ("motion_precision", "motion_precision_top")
    description = ("share of positively relevant voxels (and of the top voxels) where optical "
                   "flow moves")
    reference = "Hiley et al. 2020, Explaining Motion Relevance ..., §4.3.1, Table 1"
    params = {
        "flow_threshold": Param(0.5, "flow magnitude (px/frame) above which a pixel moves",
                                low=0.0),
        "algorithm": Param("dis-medium", "optical flow algorithm", choices=FLOW_ALGORITHMS),
        "min_relevance": Param(0.0, "relevant: R > this fraction of the map's max", low=0.0,
                               high=1.0),
        "top": Param(0.05, "area budget of motion_precision_top (0: not computed)", low=0.0,
                     high=1.0),
    }

    def flow(self, ev: ClipEvidence) -> np.ndarray:
        algo = self.config["algorithm"]
        return ev.cached(("flow", algo), lambda: flow_magnitude(ev.frames, algo))

    def score_map(self, ev: ClipEvidence, method: str, variant: str,
                  relevance: np.ndarray) -> dict[str, float]:
        flow = self.flow(ev)
        if flow.shape != relevance.shape:
            raise ParameterError(f"frames give flow of shape {flow.shape} but the {method} map "
                                 f"is {relevance.shape}",
                                 hint="Pass the frames the model saw (resized and cropped).")
        thr = self.config["flow_threshold"]
        out = {"motion_precision": motion_precision(relevance, flow, thr,
                                                    self.config["min_relevance"])}
        if self.config["top"] > 0:
            out["motion_precision_top"] = motion_precision_top(relevance, flow,
                                                               self.config["top"], thr)
        return out

    def baseline(self, ev: ClipEvidence) -> dict[str, float]:
        # A map positive everywhere, or a random choice of voxels, scores the share of
        # moving voxels: the chance level of both quantities.
        chance = float((self.flow(ev) > self.config["flow_threshold"]).mean())
        out = {"motion_precision": chance}
        if self.config["top"] > 0:
            out["motion_precision_top"] = chance
        return out


@register_metric
class Selectivity(Metric):
    """Selectivity (Hiley et al. 2020, §4.3.2): the selective map against its full map.

    Area and positive-mass ratios, see :func:`selectivity`; needs the full map beside.
    """

    name = "selectivity"
    higher_is_better = None
    variants = ("selective",)
    quantities = ("area_ratio", "mass_ratio")
    description = "area and relevance-mass ratio of the selective map to its full map"
    reference = "Hiley et al. 2020, §4.3.2, Table 3"

    def score_map(self, ev: ClipEvidence, method: str, variant: str,
                  relevance: np.ndarray) -> dict[str, float]:
        if "full" not in ev.maps[method]:
            return {}
        return selectivity(relevance, ev.maps[method]["full"])


@register_metric
class Agreement(Metric):
    """Agreement of two methods (Hiley et al. 2020, §5.2): IoU and Dice of relevant voxels.

    See :func:`agreement`; ``top > 0`` adds the overlap of each map's top voxels.
    """

    name = "agreement"
    higher_is_better = None
    needs = ("pair",)
    scope = "pair"
    variants = ("full",)
    quantities = ("iou", "dice", "iou_top", "dice_top")
    description = "overlap (IoU, Dice) of two methods' positive voxels and of their top voxels"
    reference = "Hiley et al. 2020, §5.2, Table 2"
    params = {"top": Param(0.05, "area budget of iou_top/dice_top (0: not computed)",
                           low=0.0, high=1.0)}

    def score_pair(self, ev: ClipEvidence, a: str, b: str, variant: str) -> dict[str, float]:
        ma, mb = ev.maps[a][variant], ev.maps[b][variant]
        out = agreement(ma, mb)
        if self.config["top"] > 0:
            top = agreement(ma, mb, top=self.config["top"])
            out |= {"iou_top": top["iou"], "dice_top": top["dice"]}
        return out


@register_metric
class Overhead(Metric):
    """Overhead (Hiley et al. 2020, §4.3.3): the time of each method and its stages."""

    name = "overhead"
    higher_is_better = False
    needs = ("timings",)
    scope = "method"
    quantities = ("time_<stage>_ms",)
    description = "time of each method and of its decomposition steps, in milliseconds"
    reference = "Hiley et al. 2020, §4.3.3, Table 4"

    def score_method(self, ev: ClipEvidence, method: str) -> dict[str, Any]:
        return {f"time_{stage}_ms": 1000.0 * float(sec)
                for stage, sec in ev.timings.get(method, {}).items() if sec is not None}


@register_metric
class MotionShare(Metric):
    """A method's motion share: the part of its positive relevance that needs motion.

    Discriminative (Hiley et al. 2019) or selective (Hiley et al. 2020); the
    definitions are in :mod:`xai_core.decompose`.
    """

    name = "motion_share"
    higher_is_better = None
    needs = ("motion_share",)
    scope = "method"
    quantities = ("motion_share_discriminative", "motion_share_selective")
    description = ("share of a method's positive relevance that needs motion: temporal over "
                   "spatial + temporal (discriminative), or kept by the selective mask; averaged "
                   "over clips it is the model's motion share, 1 − it its spatial bias")
    reference = ("Hiley et al. 2019 (discriminative relevance), Hiley et al. 2020 (selective); "
                 "definitions in xai_core.decompose")

    def score_method(self, ev: ClipEvidence, method: str) -> dict[str, float]:
        shares = ev.motion_share.get(method) or {}
        return {f"motion_share_{kind}": float(v) for kind, v in shares.items()
                if v is not None}
