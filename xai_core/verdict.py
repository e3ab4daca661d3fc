"""A verdict in plain words: does the model need the motion, or does the scene decide?

Two measurements of one :class:`~xai_core.results.Explanation` answer the question, and
the verdict states both with their numbers before it concludes:

* the **motion share** of the evidence — the share of positive relevance that is
  temporal in the discriminative split (Hiley et al. 2019:
  :func:`~xai_core.decompose.motion_share_discriminative`); it says where an attribution
  method *puts* the evidence;
* the **single-frame test** — what the model predicts when shown one frame alone, frozen
  (the freeze-frame clips of Hiley et al. 2019); it says whether the appearance of a single
  frame *suffices* for the class, whatever the attributions say.

The thresholds are the named constants below; ``docs/verdict.md`` gives the rules, the
wording, and why. Nothing here changes a number: the verdict only reads the explanation.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import ParameterError
from .results import Explanation

#: A motion share at or above this is "mostly motion".
MOSTLY_MOTION = 0.75

#: A motion share at or below this is "mostly appearance".
MOSTLY_SCENE = 0.25

#: Above this share, most of the evidence is motion; below it, most is appearance.
SHARE_MAJORITY = 0.5

#: Single frames alone give the explained class in at least this fraction of the frames:
#: the appearance of one frame suffices — the scene decides.
SCENE_SUFFICES = 0.5

#: Single frames alone give the explained class in at most this fraction of the frames:
#: without the motion the class is not recognised — the model needs the motion. (1/8 is
#: chance for the eight bundled classes.)
NEEDS_MOTION = 0.125

#: Split methods whose motion shares differ by this much or more disagree.
METHODS_DISAGREE = 0.3

#: A predicted class with a lower probability than this is called unsure.
UNSURE_BELOW = 0.5

#: What the model relies on, and the verdict's headline for it.
HEADLINES = {
    "motion": "It needs the motion",
    "scene": "The scene decides",
    "mixed": "Motion and scene both count",
    "static": "No motion in this clip",
}


@dataclass(frozen=True)
class Verdict:
    """The verdict on one explanation: its numbers and its sentences.

    Attributes
    ----------
    reliance
        ``"motion"``, ``"scene"``, ``"mixed"`` or ``"static"`` (see :data:`HEADLINES`).
    headline, sentences
        A few words, then the full statement with its numbers.
    target_name, predicted_name, probability
        The explained class, the predicted class and its probability.
    method, motion_share
        The method whose motion share is quoted, and that share in [0, 1]; ``None`` when
        no method was split (or the quoted one found no positive evidence: ``nan``).
    shares
        Discriminative motion share of every split method (``nan``: no positive evidence).
    not_split
        Methods explained without the spatial / temporal split (full relevance only).
    frames_alone, num_frames
        Single (freeze-frame) clips whose top class is the explained one, out of how many.
    frames_top, frames_top_count
        The class single frames alone are most often given, and how often.
    truth, correct
        The ground-truth class when known, and whether the prediction matches it.
    static
        All frames are identical: there is no motion to use.
    methods_disagree
        The split methods' motion shares are :data:`METHODS_DISAGREE` or more apart.
    """

    reliance: str
    headline: str
    sentences: tuple[str, ...]
    target_name: str
    predicted_name: str
    probability: float
    method: str | None
    motion_share: float | None
    shares: dict[str, float]
    not_split: tuple[str, ...]
    frames_alone: int
    num_frames: int
    frames_top: str
    frames_top_count: int
    truth: str | None
    correct: bool | None
    static: bool
    methods_disagree: bool

    @property
    def text(self) -> str:
        """The sentences as one paragraph."""
        return " ".join(self.sentences)

    @property
    def frames_fraction(self) -> float:
        """Fraction of single frames that alone give the explained class."""
        return self.frames_alone / self.num_frames if self.num_frames else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (``nan`` shares become ``None``)."""
        out = asdict(self)
        out["sentences"] = list(self.sentences)
        out["not_split"] = list(self.not_split)
        out["shares"] = {k: _finite_or_none(v) for k, v in self.shares.items()}
        out["motion_share"] = _finite_or_none(self.motion_share)
        out["text"] = self.text
        return out


def verdict(expl: Explanation, truth: str | int | None = None,
            method: str | None = None) -> Verdict:
    """The verdict on ``expl``, in plain words with its numbers.

    Parameters
    ----------
    expl
        The explanation (its freeze-frame predictions and each method's discriminative
        motion share are read, Hiley et al. 2019).
    truth
        The ground-truth class (name or index) when known, e.g. for the sample clips.
    method
        The method whose motion share is quoted (default: the first split method). A
        method explained without the split cannot give a share; the first split method's
        is quoted instead, and the verdict says so.

    Returns
    -------
    Verdict
        Rules: a static clip is ``"static"``. Otherwise, when single frames alone give
        the class in at most :data:`NEEDS_MOTION` of the frames the model needs the
        motion, and when in at least :data:`SCENE_SUFFICES` the scene decides — unless
        the motion share says the opposite (most of the evidence appearance, resp.
        motion: :data:`SHARE_MAJORITY`): then both count. In between, the motion share
        decides (at least :data:`MOSTLY_MOTION`: motion, at most :data:`MOSTLY_SCENE`:
        scene), else both count.
    """
    truth_name = _truth_name(expl, truth)
    if method is not None:
        expl[method]  # noqa: B018 — an unknown method is a ParameterError naming those computed
    target = expl.target_name
    predicted = expl.class_names[expl.predicted]
    probability = float(expl.probabilities[expl.predicted])
    ff_top = expl.freeze_frame_top
    n = len(ff_top)
    alone = sum(1 for i in ff_top if i == expl.target)
    top_index, top_count = Counter(ff_top).most_common(1)[0] if ff_top else (expl.target, 0)
    shares = {name: float(r.motion_share.get("discriminative", math.nan))
              for name, r in expl.methods.items() if r.decomposed}
    not_split = tuple(name for name, r in expl.methods.items() if not r.decomposed)
    quoted = method if method in shares else next(iter(shares), None)
    share = shares.get(quoted) if quoted is not None else None
    known = share is not None and math.isfinite(share)
    finite = [v for v in shares.values() if math.isfinite(v)]
    disagree = len(finite) > 1 and max(finite) - min(finite) >= METHODS_DISAGREE
    static = _is_static(expl.frames)
    correct = None if truth_name is None else predicted == truth_name
    reliance = ("static" if static else
                _reliance(alone / n if n else 0.0, share if known else None))

    sentences: list[str] = []
    if static:
        sentences += _static_sentences(n, predicted, probability, truth_name, correct)
    else:
        sentences.append(_share_sentence(expl, quoted, shares, not_split, method, disagree))
        frames = _frames_sentence(reliance, target, alone, n, share if known else None,
                                  expl.class_names[top_index])
        if truth_name is not None and expl.target == expl.predicted:
            frames += (f" — and that is right here (ground truth {truth_name})" if correct
                       else f" — and that is wrong here (ground truth {truth_name})")
        sentences.append(frames + ".")
        if disagree:
            listed = ", ".join(f"{k} {_pct(v)}" for k, v in shares.items() if math.isfinite(v))
            sentences.append(f"The methods disagree on the motion share ({listed}): read the "
                             "split with care.")
    if expl.target != expl.predicted:
        line = (f"The model itself predicts {predicted} ({_pct(probability)}); this verdict is "
                f"about {target}, the class chosen to explain.")
        if truth_name is not None and not static:
            line += (f" Ground truth {truth_name}: the prediction is "
                     f"{'right' if correct else 'wrong'}.")
        sentences.append(line)
    elif probability < UNSURE_BELOW and not static:
        sentences.append(f"The model is unsure: {predicted} gets only {_pct(probability)}.")
    return Verdict(
        reliance=reliance, headline=HEADLINES[reliance], sentences=tuple(sentences),
        target_name=target, predicted_name=predicted, probability=probability,
        method=quoted, motion_share=share, shares=shares, not_split=not_split,
        frames_alone=alone, num_frames=n, frames_top=expl.class_names[top_index],
        frames_top_count=top_count, truth=truth_name, correct=correct, static=static,
        methods_disagree=disagree)


# --------------------------------------------------------------------------- rules
def _reliance(fraction: float, share: float | None) -> str:
    """What the model relies on, from the single-frame test and the motion share."""
    if fraction <= NEEDS_MOTION:
        return "mixed" if share is not None and share < SHARE_MAJORITY else "motion"
    if fraction >= SCENE_SUFFICES:
        return "mixed" if share is not None and share > SHARE_MAJORITY else "scene"
    if share is not None and share >= MOSTLY_MOTION:
        return "motion"
    if share is not None and share <= MOSTLY_SCENE:
        return "scene"
    return "mixed"


def _is_static(frames: np.ndarray) -> bool:
    """All frames identical (as the model sees them): there is no motion at all."""
    arr = np.asarray(frames)
    return arr.shape[0] > 1 and arr.size > 0 and bool((arr == arr[:1]).all())


def _truth_name(expl: Explanation, truth: str | int | None) -> str | None:
    if truth is None:
        return None
    if isinstance(truth, bool) or not isinstance(truth, (str, int, np.integer)):
        raise ParameterError(f"the ground truth must be a class name or index, got {truth!r}")
    if isinstance(truth, str):
        return truth
    if not 0 <= int(truth) < len(expl.class_names):
        raise ParameterError(f"ground-truth class {int(truth)} is not one of the model's "
                             f"{len(expl.class_names)} classes")
    return expl.class_names[int(truth)]


# --------------------------------------------------------------------------- wording
def _share_sentence(expl: Explanation, quoted: str | None, shares: dict[str, float],
                    not_split: tuple[str, ...], asked: str | None, disagree: bool) -> str:
    target = expl.target_name
    if quoted is None:
        if not not_split:
            return "No attribution method was run, so where the evidence lies is not known."
        return (f"How much of the evidence for {target} is motion is not known: "
                f"{_names(not_split)} {'was' if len(not_split) == 1 else 'were'} explained "
                "without the spatial / temporal split (full relevance only).")
    share = shares[quoted]
    note = ""
    if asked is not None and asked != quoted:
        note = f" ({asked} was explained without the split; the share is {quoted}'s)"
    if not math.isfinite(share):
        return (f"{quoted} finds no positive evidence for {target}, so it gives no motion "
                f"share{note}.")
    others = [f"{k}: {_pct(v)}" for k, v in shares.items()
              if k != quoted and math.isfinite(v)]
    source = quoted if disagree or not others else f"{quoted}; {', '.join(others)}"
    if share >= MOSTLY_MOTION:
        text = f"{_pct(share)} of the evidence for {target} is motion ({source})"
    elif share <= MOSTLY_SCENE:
        text = (f"Only {_pct(share)} of the evidence for {target} is motion ({source}): the "
                "rest is the appearance of single frames")
    else:
        text = (f"{_pct(share)} of the evidence for {target} is motion, the rest the "
                f"appearance of single frames ({source})")
    return text + note + "."


def _frames_sentence(reliance: str, target: str, alone: int, n: int, share: float | None,
                     top: str) -> str:
    """The single-frame test and the conclusion (no final full stop)."""
    count = f"{alone} of {n}"
    fraction = alone / n if n else 0.0
    if fraction <= NEEDS_MOTION:
        seen = f" (alone, they look like {top} to it)" if top != target else ""
        test = (f"Shown any single frame alone, the model predicts {target} in {count} "
                f"frames{seen}")
        return test + (": the appearance counts only together with the motion"
                       if reliance == "mixed" else ": it needs the motion")
    if fraction >= SCENE_SUFFICES:
        test = f"From a single frame it already predicts {target} in {count}"
        return test + (": one still frame is enough for it, although most of the evidence "
                       "it uses here is motion" if reliance == "mixed" else ": the scene decides")
    test = f"Shown single frames alone, it predicts {target} in {count}"
    if reliance == "motion":
        return test + ": mostly, it needs the motion"
    if reliance == "scene":
        return test + ": mostly, the scene decides"
    return test + ": both the scene and the motion count"


def _static_sentences(n: int, predicted: str, probability: float, truth: str | None,
                      correct: bool | None) -> list[str]:
    out = [f"All {n} frames are identical, so there is no motion to see: the prediction, "
           f"{predicted} ({_pct(probability)}), comes from the appearance alone and there "
           "is no motion evidence."]
    if truth is not None:
        out.append(f"The clip is labelled {truth}; the prediction "
                   f"{'matches' if correct else 'does not match'} it, but a still image "
                   "cannot show a motion.")
    return out


def _names(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _pct(v: float) -> str:
    """A share in words: ``97 %``; never a false ``0 %`` or ``100 %``."""
    p = 100.0 * v
    if 0 < p < 1:
        return "<1 %"
    if 99 < p < 100:
        return ">99 %"
    return f"{p:.0f} %"


def _finite_or_none(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)
