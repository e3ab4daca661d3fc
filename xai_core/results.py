"""The result types of :func:`xai_core.explain` and their files (npz arrays + JSON summary).

An :class:`Explanation` holds everything about one clip explained by one model: the
prediction, the freeze-frame predictions, and per method a :class:`MethodResult` with
full / spatial / temporal / selective relevance. ``to_npz`` writes one ``<method>.npz``
per method plus ``summary.json``; ``from_npz`` reads them back unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .decompose import DecompositionOptions
from .errors import ParameterError

#: Arrays of a method written to ``<method>.npz`` (``raw`` only when the method has one).
MAP_NAMES = ("full", "spatial", "temporal", "selective")


@dataclass
class ClipInfo:
    """Where the explained clip came from and what the model saw.

    ``indices`` are the source frame numbers in temporal order; ``padded`` is True when
    the video was shorter than the clip and frames were repeated.
    """

    source: str
    start: int
    stride: int
    indices: list[int]
    padded: bool
    content_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "start": self.start, "stride": self.stride,
                "indices": list(self.indices), "padded": self.padded,
                "content_hash": self.content_hash}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipInfo:
        return cls(d["source"], int(d["start"]), int(d["stride"]), [int(i) for i in d["indices"]],
                   bool(d["padded"]), d["content_hash"])


@dataclass
class MethodResult:
    """One method's explanation of the clip, decomposed.

    Attributes
    ----------
    method
        Registry name.
    params
        The method's validated parameters (``Method.key()``).
    full, spatial, temporal
        Signed relevance (T, H, W) float32; ``full == spatial + temporal`` (Hiley et al.'s (2019)
        discriminative split; units per :class:`~xai_core.decompose.DecompositionOptions`).
        ``spatial`` and ``temporal`` are ``None`` when the freeze-frame decomposition was
        not asked for (``explain(decompose=...)``: it costs T more explanations).
    selective, selective_mask
        Selective relevance of ``full`` (Hiley et al. 2020) and its boolean mask (T, H, W).
    raw
        Per-channel relevance (C, T, H, W) in the method's own units, or ``None``.
    motion_share
        ``{"discriminative": ..., "selective": ...}``, see
        :func:`~xai_core.decompose.motion_share_discriminative` and
        :func:`~xai_core.decompose.motion_share_selective` (``nan`` when undefined).
    timings
        Seconds per stage of the computation that produced the arrays (``full``,
        ``freeze_frames``, ``selective``); on a cache hit, those of the original run.
    cache_hit
        Whether the arrays came from the cache.
    freeze_frame_passes
        Freeze-frame clips explained (fewer than T when frames repeat; 0 for a static clip).
    """

    method: str
    params: dict[str, Any]
    full: np.ndarray
    spatial: np.ndarray | None
    temporal: np.ndarray | None
    selective: np.ndarray
    selective_mask: np.ndarray
    raw: np.ndarray | None
    motion_share: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)
    cache_hit: bool = False
    freeze_frame_passes: int = 0

    @property
    def decomposed(self) -> bool:
        """Whether the spatial / temporal split was computed."""
        return self.spatial is not None and self.temporal is not None

    def maps(self) -> dict[str, np.ndarray]:
        """The (T, H, W) maps that exist, by name, in display order."""
        return {name: getattr(self, name) for name in MAP_NAMES
                if getattr(self, name) is not None}

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name (what the cache and the npz files store)."""
        out = self.maps()
        out["selective_mask"] = self.selective_mask
        if self.raw is not None:
            out["raw"] = self.raw
        return out

    def meta(self) -> dict[str, Any]:
        """Everything but the arrays, JSON-able."""
        return {"method": self.method, "params": self.params,
                "motion_share": {k: _json_float(v) for k, v in self.motion_share.items()},
                "timings": dict(self.timings), "cache_hit": self.cache_hit,
                "freeze_frame_passes": self.freeze_frame_passes}

    @classmethod
    def from_parts(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> MethodResult:
        return cls(
            method=meta["method"], params=dict(meta["params"]),
            full=arrays["full"].astype(np.float32, copy=False),
            spatial=_optional_map(arrays.get("spatial")),
            temporal=_optional_map(arrays.get("temporal")),
            selective=arrays["selective"].astype(np.float32, copy=False),
            selective_mask=arrays["selective_mask"].astype(bool, copy=False),
            raw=arrays.get("raw"),
            motion_share={k: _from_json_float(v) for k, v in meta["motion_share"].items()},
            timings={k: float(v) for k, v in meta.get("timings", {}).items()},
            cache_hit=bool(meta.get("cache_hit", False)),
            freeze_frame_passes=int(meta.get("freeze_frame_passes", 0)),
        )


@dataclass
class Explanation:
    """A clip explained by a model with one or more methods.

    Attributes
    ----------
    model, weights_hash
        Model display name and sha256 of its weights.
    clip
        :class:`ClipInfo`.
    frames
        (T, H, W, 3) uint8 RGB frames as cropped for the model (what the maps overlay).
    class_names
        The model's classes.
    target, target_name
        The explained class (the predicted one unless asked otherwise).
    probabilities
        Softmax of the model on the clip (K,).
    freeze_frame_probabilities
        Softmax on each freeze-frame clip (T, K): what the model predicts from one
        frame's appearance alone (Hiley et al. 2019 report these).
    methods
        Per method name, its :class:`MethodResult`.
    options
        The :class:`~xai_core.decompose.DecompositionOptions` used.
    timings
        Seconds per stage of this call (prediction, freeze-frame predictions, each
        method, total).
    versions
        Versions of xai_core, torch, zennit, captum and the cache schema.
    predictions_cache_hit
        Whether the prediction and freeze-frame predictions came from the cache.
    warnings
        What the user should know about how this result was computed (e.g. a method
        fell back to the CPU after running out of GPU memory, or the cache is in
        memory only); shown by the CLI and the dashboard.
    """

    model: str
    weights_hash: str
    clip: ClipInfo
    frames: np.ndarray
    class_names: list[str]
    target: int
    target_name: str
    probabilities: np.ndarray
    freeze_frame_probabilities: np.ndarray
    methods: dict[str, MethodResult]
    options: DecompositionOptions
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    predictions_cache_hit: bool = False
    warnings: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ derived views
    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    def top(self, k: int = 5) -> list[tuple[int, str, float]]:
        """The k most probable classes as (index, name, probability)."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(int(i), self.class_names[i], float(self.probabilities[i])) for i in order]

    @property
    def top5(self) -> list[tuple[int, str, float]]:
        return self.top(5)

    @property
    def freeze_frame_top(self) -> list[int]:
        """Top class of each freeze-frame clip, per frame."""
        return [int(i) for i in np.argmax(self.freeze_frame_probabilities, axis=1)]

    @property
    def cache_hits(self) -> dict[str, bool]:
        return {name: r.cache_hit for name, r in self.methods.items()}

    def __getitem__(self, method: str) -> MethodResult:
        try:
            return self.methods[method]
        except KeyError:
            raise ParameterError(f"method {method!r} was not computed in this explanation",
                                 hint=f"Computed: {', '.join(self.methods)}.") from None

    # ------------------------------------------------------------------ serialisation
    def summary(self) -> dict[str, Any]:
        """A JSON-able dict of everything but the maps (``nan`` becomes ``null``)."""
        ff_top = self.freeze_frame_top
        return {
            "model": self.model,
            "weights_hash": self.weights_hash,
            "clip": self.clip.to_dict(),
            "num_frames": int(self.frames.shape[0]),
            "class_names": list(self.class_names),
            "target": self.target,
            "target_name": self.target_name,
            "predicted": self.predicted,
            "predicted_name": self.class_names[self.predicted],
            "probabilities": [float(p) for p in self.probabilities],
            "top5": [{"index": i, "name": n, "probability": p} for i, n, p in self.top5],
            "freeze_frame_probabilities": [[float(p) for p in row]
                                           for row in self.freeze_frame_probabilities],
            "freeze_frame_top": [{"frame": t, "index": i, "name": self.class_names[i],
                                  "probability": float(self.freeze_frame_probabilities[t, i])}
                                 for t, i in enumerate(ff_top)],
            "options": self.options.key() | {"chunk_size": self.options.chunk_size,
                                             "reuse_identical": self.options.reuse_identical},
            "methods": {name: r.meta() for name, r in self.methods.items()},
            "cache_hits": self.cache_hits,
            "predictions_cache_hit": self.predictions_cache_hit,
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
            "versions": dict(self.versions),
        }

    def to_npz(self, directory: str | Path) -> Path:
        """Write ``<method>.npz`` per method and ``summary.json`` into ``directory``.

        Each npz holds float32 ``full``, ``spatial`` and ``temporal`` (when decomposed),
        ``selective``, bool ``selective_mask``, ``raw`` when the method has one, and uint8
        ``frames``.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name, result in self.methods.items():
            np.savez_compressed(out / f"{name}.npz", frames=self.frames, **result.arrays())
        (out / "summary.json").write_text(json.dumps(self.summary(), indent=2) + "\n",
                                          encoding="utf-8")
        return out

    @classmethod
    def from_npz(cls, directory: str | Path) -> Explanation:
        """Read what :meth:`to_npz` wrote."""
        src = Path(directory)
        try:
            s = json.loads((src / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ParameterError(f"{src} holds no readable summary.json",
                                 hint="Point to a folder written by `explain --out`.") from exc
        methods: dict[str, MethodResult] = {}
        frames = None
        for name, meta in s["methods"].items():
            with np.load(src / f"{name}.npz") as npz:
                arrays = {k: npz[k] for k in npz.files}
            frames = arrays.pop("frames")
            methods[name] = MethodResult.from_parts(arrays, meta)
        opts = s["options"]
        options = DecompositionOptions(slice=opts["slice"], normalise=opts["normalise"],
                                       sigma=opts["sigma"], sobel_border=opts["sobel_border"],
                                       chunk_size=opts.get("chunk_size"),
                                       reuse_identical=opts.get("reuse_identical", True),
                                       # results saved before the option: the paper's map
                                       selective=opts.get("selective", "hiley2020"))
        if frames is None:
            frames = np.zeros((s["num_frames"], 0, 0, 3), np.uint8)
        return cls(
            model=s["model"], weights_hash=s["weights_hash"], clip=ClipInfo.from_dict(s["clip"]),
            frames=frames, class_names=list(s["class_names"]), target=int(s["target"]),
            target_name=s["target_name"],
            probabilities=np.asarray(s["probabilities"], np.float32),
            freeze_frame_probabilities=np.asarray(s["freeze_frame_probabilities"], np.float32),
            methods=methods, options=options, timings=dict(s["timings"]),
            versions=dict(s["versions"]),
            predictions_cache_hit=bool(s.get("predictions_cache_hit", False)),
            warnings=[str(w) for w in s.get("warnings", [])],
        )


def _optional_map(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else a.astype(np.float32, copy=False)


def _json_float(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def _from_json_float(v: float | None) -> float:
    return float("nan") if v is None else float(v)
