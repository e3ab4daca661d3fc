"""The dataset view: an evaluation run opened in the dashboard, its table, plots and a clip.

A tiny in-process evaluation (3 synthetic 8×32×32 clips, the small C3D with random
weights registered under a test name, Grad-CAM and the gradient) is written to a
temporary folder with the model's reference, then opened on the page "Open an evaluation".
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import APP, TIMEOUT, assert_healthy, errors, model_world

from xai_core.evaluation import ModelRef, run_evaluation, synthetic_items

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

TINY = "tiny-small-c3d-dataset-test"
METRICS = ["motion_share", "ground_truth", "selectivity"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A finished evaluation run of three clips (private cache, models folder)."""
    root = tmp_path_factory.mktemp("dataset")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with model_world(root, TINY) as world:
        ref = ModelRef.of(arch=TINY, checkpoint=world.ckpt, classes=world.classes)
        items = synthetic_items(3, 0.5, size=32, num_frames=8)
        run_evaluation(ref.load(device="cpu"), items, ["gradcam", "gradient"], root / "run",
                       metrics=METRICS, show_progress=False, report=False, model_ref=ref)
        torch.set_num_threads(threads)
        yield root / "run"


def dataset_app(folder: Path | str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["s_page"] = "dataset"
    if folder is not None:
        at.session_state["ds_folder"] = str(folder)
    return at.run()


def test_the_run_opens_with_its_table_and_plots(run_folder):
    at = dataset_app()
    assert_healthy(at)
    assert any("Type the folder of an evaluation run" in i.value for i in at.info)
    at.sidebar.text_input(key="ds_folder").set_value(str(run_folder)).run()
    assert_healthy(at)
    assert any("3 of 3 clips done" in c.value for c in at.caption)
    (table,) = at.dataframe
    clips = table.value
    assert len(clips) == 3 and {"clip_id", "label_name", "correct"} <= set(clips.columns)
    assert "motion_share:gradcam" in clips.columns  # the method chosen …
    assert "motion_share:gradient" not in clips.columns  # … not the other one
    keys = [c.key for c in at.get("plotly_chart")]
    assert {"ds_share_plot", "ds_accuracy_plot", "ds_metric_plot"} <= set(keys)
    # filters: the other method's columns, one class, wrong clips only
    at.selectbox(key="ds_method").set_value("gradient").run()
    assert "motion_share:gradient" in at.dataframe[0].value.columns
    one = clips["label_name"].iloc[0]
    at.multiselect(key="ds_classes").set_value([one]).run()
    assert set(at.dataframe[0].value["label_name"]) == {one}
    at.multiselect(key="ds_classes").set_value([]).run()
    at.radio(key="ds_correct").set_value("wrong").run()
    wrong = at.dataframe[0].value
    assert not wrong["correct"].astype(bool).any()
    at.radio(key="ds_correct").set_value("all").run()
    # the metric distributions: any metric and quantity of the run
    at.selectbox(key="ds_metric").set_value("ground_truth").run()
    assert "actor_share" in at.selectbox(key="ds_quantity").options
    assert_healthy(at)


def test_open_a_clip_shows_it_with_the_runs_settings(run_folder):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["s_methods"] = ["gradcam"]  # the clip page, cheaper
    at.session_state["s_page"] = "dataset"
    at.run()
    at.sidebar.text_input(key="ds_folder").set_value(str(run_folder)).run()
    clip_id = at.dataframe[0].value["clip_id"].iloc[1]
    at.selectbox(key="ds_clip").set_value(clip_id).run()
    at.button(key="ds_open").click().run()
    assert_healthy(at)
    heads = [h.value for h in at.subheader]
    assert {"Side by side", "Relevance per frame", "Saliency tubes", "Predictions"} <= set(heads)
    assert any(f"Clip **{clip_id}**" in c.value and "the run's" in c.value for c in at.caption)
    (player,) = at.get("component_instance")
    assert "gradcam" in player.proto.json_args and "gradient" in player.proto.json_args
    # to the clip page and back: each page keeps what was chosen on it
    at.selectbox(key="ds_method").set_value("gradient").run()
    at.sidebar.radio(key="s_page").set_value("clip").run()
    assert not at.exception
    at.sidebar.slider(key="s_sigma").set_value(2.0).run()
    at.sidebar.radio(key="s_page").set_value("dataset").run()
    assert_healthy(at)
    assert at.sidebar.text_input(key="ds_folder").value == str(run_folder)
    assert at.selectbox(key="ds_method").value == "gradient"  # the filters too
    assert any(f"Clip **{clip_id}**" in c.value for c in at.caption)  # still open
    at.sidebar.radio(key="s_page").set_value("clip").run()
    assert not at.exception and at.sidebar.slider(key="s_sigma").value == 2.0


def test_a_folder_without_a_run_is_a_readable_error(tmp_path):
    at = dataset_app(tmp_path)
    assert not at.exception
    assert "holds no evaluation run" in errors(at)
    at = dataset_app(tmp_path / "missing")
    assert not at.exception and "is not a folder" in errors(at)
