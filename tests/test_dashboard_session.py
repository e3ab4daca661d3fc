"""The dashboard survives a real session: stale widget values, switching models and clips,
uploads in any order (streamlit.testing AppTest).

The tests on the bundled models and sample clips are skipped, saying so, until they
exist; the others use a small C3D from a models folder and an uploaded synthetic clip.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import (
    APP,
    TIMEOUT,
    assert_healthy,
    dashboard_env,
    good_clip,
    own_model_app,
    upload,
)

from dashboard.settings import PREDICTED
from xai_core.synthetic.world import CLASSES

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

TINY = "tiny-small-c3d-session-test"

#: What Streamlit hands back for the class selectbox when the browser sends a label the
#: options no longer have (the label of another clip's prediction).
STALE_LABEL = "Predicted class: move_left (93%)"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A models folder with a random small C3D for 8×32×32 clips, and a test video."""
    yield from dashboard_env(tmp_path_factory, "dashboard-session", TINY)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def shows_views(at: AppTest) -> bool:
    return "Side by side" in {h.value for h in at.subheader}


def send_label(at: AppTest, key: str, label: str) -> None:
    """Make the next run send ``label`` as the select box's value, as a browser does that
    still shows an earlier run's options (AppTest itself only sends current options)."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    box = at.sidebar.selectbox(key=key)

    class Stale(type(box)):
        @property
        def _widget_state(self) -> WidgetState:
            return WidgetState(id=self.id, string_value=label)

    box.__class__ = Stale


def bundled_app(**state) -> AppTest:
    """The app on the bundled ``motion`` model and its first sample, Grad-CAM only (the
    cheapest method on the real model), computed (into the ``env`` fixture's cache)."""
    from dashboard.samples import sample_clips
    from xai_core.models.bundled import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "motion.pt").is_file() or not (WEIGHTS_DIR / "context-biased.pt"
                                                          ).is_file():
        pytest.skip("bundled weights not trained yet (make train)")
    if not sample_clips():
        pytest.skip("sample clips not generated yet (make samples)")
    at = AppTest.from_file(APP, default_timeout=1200)
    at.session_state["s_methods"] = ["gradcam"]
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


# --------------------------------------------------------------------------- B1: target
@pytest.mark.slow
def test_a_stale_class_label_after_another_sample_is_reset_not_a_crash(env):
    """Sample "grow", wait, colour scale "per frame": the browser sends back the class
    label of the previous prediction, which Streamlit hands over as a string."""
    at = bundled_app()
    at.sidebar.selectbox(key="s_sample").set_value("grow").run()
    assert_healthy(at)
    assert "grow" in captions(at)
    send_label(at, "s_target", STALE_LABEL)
    at.sidebar.radio(key="s_normalisation").set_value("per-frame").run()
    assert_healthy(at)
    assert shows_views(at)
    assert at.sidebar.selectbox(key="s_target").value == PREDICTED  # "The predicted class"
    assert f"reset to the predicted one: {STALE_LABEL!r} is not a class" in captions(at)
    assert metric(at, "Explaining the class") == metric(at, "Model predicts")


@pytest.mark.slow
def test_sample_colour_scale_model_and_target_in_turn_never_raise(env):
    at = bundled_app()
    at.sidebar.selectbox(key="s_sample").select_index(1).run()
    assert_healthy(at)
    assert f"clip **{at.sidebar.selectbox(key='s_sample').value}" in captions(at)
    predicted = metric(at, "Model predicts")
    other = next(i for i, n in enumerate(CLASSES) if n != predicted)
    at.sidebar.selectbox(key="s_target").set_value(other).run()
    assert_healthy(at)
    assert metric(at, "Explaining the class") == CLASSES[other]
    at.sidebar.radio(key="s_normalisation").set_value("per-frame").run()
    assert_healthy(at)
    assert metric(at, "Explaining the class") == CLASSES[other]  # same clip and model: kept
    at.sidebar.selectbox(key="s_model").set_value("context-biased").run()
    assert_healthy(at)
    # a class chosen for another model does not silently carry over, and the page says so
    assert at.sidebar.selectbox(key="s_target").value == PREDICTED  # "The predicted class"
    assert "reset to the predicted one: the clip or the model changed" in captions(at)
    assert metric(at, "Explaining the class") == metric(at, "Model predicts")
    at.sidebar.selectbox(key="s_target").set_value(other).run()
    assert_healthy(at)
    assert metric(at, "Explaining the class") == CLASSES[other]
    assert not at.exception


def test_class_labels_do_not_change_with_the_prediction_and_the_target_is_checked(env):
    at = own_model_app(TINY, ["gradcam"], checkpoint="tiny.pt")
    upload(at, "clip.mp4", (env / "clip.mp4").read_bytes(), mime="video/mp4")
    assert_healthy(at)
    box = at.sidebar.selectbox(key="s_target")
    assert box.options[0] == "The predicted class"
    # the predicted class is a value the box shows, not an empty choice ("Choose an option")
    assert box.value == PREDICTED and box.index == 0
    assert sorted(box.options[1:]) == sorted(CLASSES)  # names only: no probability in them
    assert not any(re.search(r"\d%", o) for o in box.options)
    assert re.search(r"Predicted: \*\*\w+\*\* (\d+%|\d\.\d%|<0\.1%)", captions(at))
    at.sidebar.selectbox(key="s_target").set_value(2).run()
    assert metric(at, "Explaining the class") == CLASSES[2]
    send_label(at, "s_target", STALE_LABEL)  # a label these options never had
    at.run()
    assert_healthy(at)
    assert at.sidebar.selectbox(key="s_target").value == PREDICTED  # "The predicted class"
    assert "is not a class of this model" in captions(at)
    assert metric(at, "Explaining the class") == metric(at, "Model predicts")
    # another window of a video is another clip: the chosen class is reset, and said so
    upload(at, "long.mp4", good_clip(env, "long.mp4", frames=12).read_bytes(), mime="video/mp4")
    at.sidebar.selectbox(key="s_target").set_value(3).run()
    assert metric(at, "Explaining the class") == CLASSES[3]
    at.sidebar.slider(key="s_start").set_value(2).run()
    assert_healthy(at)
    assert at.sidebar.selectbox(key="s_target").value == PREDICTED  # "The predicted class"
    assert "the clip or the model changed" in captions(at)


def test_only_a_class_index_of_the_model_is_a_target():
    from dashboard.sidebar import _is_class

    assert _is_class(0, 8) and _is_class(7, 8)
    for value in (8, -1, "2", STALE_LABEL, True, 2.0, None):
        assert not _is_class(value, 8), value


# --------------------------------------------------------------------------- B2: own model
def test_choosing_an_own_checkpoint_keeps_the_uploaded_video(env, tmp_path, monkeypatch):
    from dashboard import compute

    monkeypatch.setattr(compute, "CONFIRM_ABOVE_PASSES", 10**9)  # the real model, no pause
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["s_clip_source"] = "upload"
    at.session_state["s_methods"] = ["gradcam"]
    at.run()
    upload(at, "clip.mp4", (env / "clip.mp4").read_bytes(), mime="video/mp4")
    assert not at.exception
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("XAI_MODELS_DIR", str(empty))  # no checkpoint to fall back on
    at.sidebar.radio(key="s_model_source").set_value("own").run()
    assert_healthy(at)  # no error box: a question
    assert any("checkpoint" in i.value for i in at.info)
    assert at.sidebar.radio(key="s_clip_source").value == "upload"
    assert at.session_state["s_upload"] == "clip.mp4"
    assert at.session_state["_uploads"].get("video") is not None
    at.sidebar.selectbox(key="s_arch").set_value(TINY)
    upload(at, "tiny.pt", (env / "models" / "tiny.pt").read_bytes(), key="upload_checkpoint")
    assert_healthy(at)
    assert shows_views(at)
    assert "clip **clip.mp4**" in captions(at)


# --------------------------------------------------------------------------- B3: class names
def test_class_names_given_after_the_checkpoint_are_used(env):
    at = own_model_app(TINY, ["gradcam"], checkpoint="tiny.pt", s_classes=None)
    upload(at, "clip.mp4", (env / "clip.mp4").read_bytes(), mime="video/mp4")
    assert_healthy(at)
    named = [f"kind-{c}" for c in CLASSES]
    assert metric(at, "Model predicts") not in [*CLASSES, *named]  # numbered classes
    first = at.session_state["_explanation"][0]
    upload(at, "names.txt", "\n".join(named).encode(), key="upload_classes", mime="text/plain")
    assert_healthy(at)
    assert metric(at, "Model predicts") in named
    assert at.session_state["_explanation"][0] != first  # another request: another result
    assert set(at.sidebar.selectbox(key="s_target").options[1:]) == set(named)


def test_an_edited_class_names_file_of_the_folder_is_read_again(env):
    classes = env / "models" / "classes.txt"
    before = classes.read_text()
    try:
        at = own_model_app(TINY, ["gradcam"], checkpoint="tiny.pt")
        upload(at, "clip.mp4", (env / "clip.mp4").read_bytes(), mime="video/mp4")
        assert metric(at, "Model predicts") in CLASSES
        renamed = [c.upper() for c in CLASSES]
        classes.write_text("\n".join(renamed) + "\n")  # same file name, new content
        at.run()
        assert_healthy(at)
        assert metric(at, "Model predicts") in renamed
    finally:
        classes.write_text(before)


def test_no_message_runs_two_sentences_together(env, tmp_path, monkeypatch):
    empty = tmp_path / "none"
    empty.mkdir()
    monkeypatch.setenv("XAI_MODELS_DIR", str(empty))
    at = own_model_app(TINY, ["gradcam"], s_classes=None)
    upload(at, "clip.mp4", b"not a video at all " * 64, mime="video/mp4")
    texts = [e.value for e in at.error] + [i.value for i in at.info]
    assert texts and not at.exception
    for text in texts:
        assert not re.search(r"[a-z0-9)][A-Z][a-z]", text.replace("**", "")), text
        assert not re.search(r"\w\.[A-Z]", text), text
        assert ".." not in text, text
    assert Path(at.session_state["_uploads"].path).is_dir()
