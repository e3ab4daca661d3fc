"""The verdict in plain words (xai_core.verdict): every rule on hand-made explanations, and
what the two bundled models really do on the sample clips.

Hand-made explanations set the two measurements directly: each method's discriminative
motion share (Hiley et al. 2019) and the top class of each freeze-frame clip. The
bundled-model tests compute real explanations (DTD, into a private cache)
and are skipped, saying so, when the weights or the sample clips are missing.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xai_core import verdict as vmod
from xai_core.decompose import DecompositionOptions
from xai_core.errors import ParameterError
from xai_core.results import ClipInfo, Explanation, MethodResult
from xai_core.synthetic.world import CLASSES
from xai_core.verdict import verdict

T = 16
LEFT, RIGHT = CLASSES.index("move_left"), CLASSES.index("move_right")


def method_result(name: str, share: float | None) -> MethodResult:
    """A method's result whose discriminative motion share is ``share`` (None: not split)."""
    maps = np.zeros((T, 4, 4), np.float32)
    split = share is not None
    return MethodResult(method=name, params={}, full=maps, spatial=maps if split else None,
                        temporal=maps if split else None, selective=maps,
                        selective_mask=np.zeros((T, 4, 4), bool), raw=None,
                        motion_share={"discriminative": share if split else math.nan,
                                      "selective": 0.5})


def made(shares: dict[str, float | None], alone: int | list[int], *, target: int = LEFT,
         predicted: int | None = None, p: float = 0.9, static: bool = False) -> Explanation:
    """An explanation of class ``target`` whose single frames give ``target`` in ``alone``
    frames (or, given a list, the top class of each frame); the model predicts
    ``predicted`` (default: the target) with probability ``p``."""
    predicted = target if predicted is None else predicted
    probs = np.full(len(CLASSES), (1 - p) / (len(CLASSES) - 1), np.float32)
    probs[predicted] = p
    other = (target + 1) % len(CLASSES)
    tops = alone if isinstance(alone, list) else [target] * alone + [other] * (T - alone)
    ff = np.full((T, len(CLASSES)), 0.01, np.float32)
    ff[np.arange(T), tops] = 0.9
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (T, 8, 8, 3), dtype=np.uint8)
    if static:
        frames[:] = frames[0]
    return Explanation(
        model="hand-made", weights_hash="0", clip=ClipInfo("clip.mp4", 0, 1, list(range(T)),
                                                           False, "0"),
        frames=frames, class_names=list(CLASSES), target=target,
        target_name=CLASSES[target], probabilities=probs, freeze_frame_probabilities=ff,
        methods={n: method_result(n, s) for n, s in shares.items()},
        options=DecompositionOptions())


# --------------------------------------------------------------------------- the four verdicts
def test_needs_the_motion():
    v = verdict(made({"dtd": 0.97}, 0), truth="move_left")
    assert v.reliance == "motion" and v.headline == "It needs the motion"
    assert "97 % of the evidence for move_left is motion (dtd)." in v.text
    assert ("Shown any single frame alone, the model predicts move_left in 0 of 16 frames "
            "(alone, they look like move_right to it): it needs the motion — and that is "
            "right here (ground truth move_left).") in v.text
    assert (v.frames_alone, v.num_frames, v.correct, v.motion_share) == (0, 16, True, 0.97)


def test_the_scene_decides_and_is_wrong():
    v = verdict(made({"dtd": 0.03}, 14, target=RIGHT), truth="move_left")
    assert v.reliance == "scene" and v.headline == "The scene decides"
    assert "Only 3 % of the evidence for move_right is motion (dtd)" in v.text
    assert ("From a single frame it already predicts move_right in 14 of 16: the scene "
            "decides — and that is wrong here (ground truth move_left).") in v.text
    assert v.correct is False


def test_a_still_frame_suffices_although_the_evidence_is_motion():
    v = verdict(made({"dtd": 0.9}, 16))
    assert v.reliance == "mixed" and v.headline == "Motion and scene both count"
    assert "one still frame is enough for it, although most of the evidence" in v.text


def test_appearance_that_counts_only_with_the_motion():
    v = verdict(made({"dtd": 0.2}, 0))
    assert v.reliance == "mixed"
    assert "the appearance counts only together with the motion" in v.text


@pytest.mark.parametrize(("share", "reliance", "words"), [
    (0.9, "motion", "mostly, it needs the motion"),
    (0.1, "scene", "mostly, the scene decides"),
    (0.5, "mixed", "both the scene and the motion count"),
])
def test_between_the_frame_thresholds_the_share_decides(share, reliance, words):
    v = verdict(made({"dtd": share}, 5))  # 5 of 16: neither few nor most frames
    assert v.reliance == reliance
    assert f"in 5 of 16: {words}." in v.text


def test_thresholds_are_inclusive():
    few = round(vmod.NEEDS_MOTION * T)
    most = round(vmod.SCENE_SUFFICES * T)
    assert verdict(made({"dtd": 0.9}, few)).reliance == "motion"
    assert verdict(made({"dtd": 0.1}, most)).reliance == "scene"
    assert verdict(made({"dtd": vmod.SHARE_MAJORITY}, 0)).reliance == "motion"
    assert verdict(made({"dtd": vmod.SHARE_MAJORITY}, T)).reliance == "scene"


# --------------------------------------------------------------------------- what is known
def test_without_the_split_the_share_is_not_known_and_the_frames_decide():
    v = verdict(made({"extremal-perturbation": None}, 0))
    assert v.motion_share is None and v.method is None
    assert v.not_split == ("extremal-perturbation",)
    assert ("How much of the evidence for move_left is motion is not known: "
            "extremal-perturbation was explained without the spatial / temporal split") in v.text
    assert v.reliance == "motion"
    assert verdict(made({"a": None, "b": None}, T)).reliance == "scene"
    assert "a and b were explained" in verdict(made({"a": None, "b": None}, T)).text
    assert verdict(made({"a": None}, 5)).reliance == "mixed"


def test_a_shown_method_without_the_split_quotes_another():
    v = verdict(made({"extremal-perturbation": None, "dtd": 0.96}, 0),
                method="extremal-perturbation")
    assert v.method == "dtd" and v.motion_share == 0.96
    assert "(extremal-perturbation was explained without the split; the share is dtd's)" in v.text


def test_no_positive_evidence_gives_no_share():
    v = verdict(made({"dtd": math.nan}, T))
    assert "dtd finds no positive evidence for move_left, so it gives no motion share." in v.text
    assert v.reliance == "scene"
    json.dumps(v.to_dict(), allow_nan=False)  # nan becomes null


def test_no_method_at_all():
    v = verdict(made({}, 0))
    assert "No attribution method was run" in v.text and v.reliance == "motion"


def test_a_static_clip_has_no_motion():
    v = verdict(made({"dtd": 0.0, "gradcam": 0.0}, T, static=True), truth="move_down")
    assert v.static and v.reliance == "static" and v.headline == "No motion in this clip"
    assert "All 16 frames are identical, so there is no motion to see" in v.text
    assert "The clip is labelled move_down; the prediction does not match it" in v.text


# --------------------------------------------------------------------------- several methods
def test_methods_that_agree_are_quoted_together():
    v = verdict(made({"dtd": 0.97, "gradcam": 0.999}, 0))
    assert not v.methods_disagree
    assert "97 % of the evidence for move_left is motion (dtd; gradcam: >99 %)." in v.text


def test_methods_that_disagree_say_so():
    v = verdict(made({"dtd": 0.95, "gradcam": 0.2}, 0))
    assert v.methods_disagree
    assert "The methods disagree on the motion share (dtd 95 %, gradcam 20 %)" in v.text
    assert verdict(made({"dtd": 0.95, "gradcam": 0.2}, 0), method="gradcam").method == "gradcam"


# --------------------------------------------------------------------------- the class
def test_a_chosen_class_that_is_not_the_prediction():
    v = verdict(made({"dtd": 0.9}, 0, predicted=RIGHT, p=0.8), truth="move_left")
    assert ("The model itself predicts move_right (80 %); this verdict is about move_left, "
            "the class chosen to explain. Ground truth move_left: the prediction is wrong.") \
        in v.text
    assert "wrong here" not in v.text  # the right/wrong remark is about the prediction


def test_an_unsure_model_is_called_unsure():
    assert "The model is unsure: move_left gets only 30 %." in verdict(
        made({"dtd": 0.9}, 0, p=0.3)).text
    assert "unsure" not in verdict(made({"dtd": 0.9}, 0, p=0.8)).text


def test_truth_as_an_index_and_bad_arguments():
    assert verdict(made({"dtd": 0.9}, 0), truth=LEFT).truth == "move_left"
    with pytest.raises(ParameterError, match="not one of the model's 8 classes"):
        verdict(made({"dtd": 0.9}, 0), truth=99)
    with pytest.raises(ParameterError, match="class name or index"):
        verdict(made({"dtd": 0.9}, 0), truth=1.5)
    with pytest.raises(ParameterError, match="was not computed"):
        verdict(made({"dtd": 0.9}, 0), method="gradcam")


@pytest.mark.parametrize(("share", "text"), [
    (0.999, ">99 %"), (0.004, "<1 %"), (1.0, "100 %"), (0.0, "0 %"), (0.456, "46 %")])
def test_percentages_never_round_to_a_false_all_or_nothing(share, text):
    assert vmod._pct(share) == text


def test_the_dict_is_json_and_holds_the_numbers():
    d = verdict(made({"dtd": 0.97, "x": None}, 3), truth="move_left").to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["shares"] == {"dtd": 0.97} and d["not_split"] == ["x"]
    assert d["frames_alone"] == 3 and d["text"].startswith("97 %")


# --------------------------------------------------------------------------- bundled models
@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Explanations of sample clips by the bundled models (DTD, the README's method),
    memoised."""
    from xai_core import explain, load_clip, load_model
    from xai_core.cache import ResultCache
    from xai_core.models.bundled import WEIGHTS_DIR
    from xai_core.synthetic.samples import list_samples

    if not all((WEIGHTS_DIR / f"{m}.pt").is_file() for m in ("motion", "context-biased")):
        pytest.skip("bundled weights not trained yet (make train)")
    samples = {s.name: s for s in list_samples()}
    if not {"conflict_move_left", "static"} <= set(samples):
        pytest.skip("sample clips not generated yet (make samples)")
    cache = ResultCache(tmp_path_factory.mktemp("verdict-cache"))
    memo: dict = {}

    def get(model_name: str, sample: str):
        if (model_name, sample) not in memo:
            model = load_model(model_name, device="cpu")
            clip = load_clip(samples[sample].path, model.input)
            expl = explain(model, clip, methods=["dtd"], cache=cache)
            memo[(model_name, sample)] = (expl, samples[sample].label)
        return memo[(model_name, sample)]

    return get


@pytest.mark.slow
def test_conflict_clip_the_motion_model_needs_the_motion(real):
    expl, truth = real("motion", "conflict_move_left")
    v = verdict(expl, truth)
    assert v.reliance == "motion" and v.correct is True
    assert v.frames_alone == 0 and v.motion_share > vmod.MOSTLY_MOTION
    assert "in 0 of 16 frames" in v.text and "it needs the motion" in v.text
    assert "right here (ground truth move_left)" in v.text


@pytest.mark.slow
def test_conflict_clip_the_context_biased_model_follows_the_scene(real):
    expl, truth = real("context-biased", "conflict_move_left")
    v = verdict(expl, truth)
    assert v.reliance == "scene" and v.predicted_name == "move_right" and v.correct is False
    assert v.frames_alone >= vmod.SCENE_SUFFICES * T and v.motion_share < vmod.MOSTLY_SCENE
    assert "the scene decides — and that is wrong here (ground truth move_left)" in v.text


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["motion", "context-biased"])
def test_the_static_clip_has_no_motion_for_either_model(real, model_name):
    expl, truth = real(model_name, "static")
    v = verdict(expl, truth)
    assert v.static and v.reliance == "static"
    assert all(s == 0.0 for s in v.shares.values())
    assert "All 16 frames are identical" in v.text
