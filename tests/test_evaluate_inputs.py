"""Evaluation inputs (UCF-101 folders, CSV lists), failing clips, and a run opened again."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers import run_cli, tiny_model

from xai_core.errors import ParameterError, VideoError
from xai_core.evaluation import (
    EvalItem,
    csv_items,
    folder_items,
    item_from_origin,
    items_from_path,
    open_run,
    run_evaluation,
    synthetic_items,
)
from xai_core.evaluation.records import RecordFolder

pytestmark = pytest.mark.usefixtures("one_thread")
FEW = ["selectivity", "motion_share"]


def _frames(d, n=3):
    d.mkdir(parents=True)
    for t in range(n):
        cv2.imwrite(str(d / f"{t}.png"), np.full((16, 16, 3), 40 * t, np.uint8))
    return d


def test_ucf101_layout_labels_clips_by_their_class_folder(tmp_path):
    layout = {"ApplyEyeMakeup": ["v_A_g01_c02", "v_A_g01_c10"], "Archery": ["v_B"]}
    for cls, names in layout.items():
        for name in names:
            _frames(tmp_path / cls / name)
    (tmp_path / "Archery" / "v_B.json").write_text(json.dumps({"label": 7}))
    (tmp_path / "empty").mkdir()
    got = folder_items(tmp_path)
    assert [it.clip_id for it in got] == ["ApplyEyeMakeup/v_A_g01_c02",
                                          "ApplyEyeMakeup/v_A_g01_c10", "Archery/v_B"]
    assert [it.label for it in got] == ["ApplyEyeMakeup", "ApplyEyeMakeup", 7]
    assert got[0].source.is_absolute() and got[0].origin == {"kind": "file",
                                                             "path": str(got[0].source)}
    items, source = items_from_path(tmp_path)
    assert len(items) == 3 and source.startswith("folder ")


def test_csv_list_with_and_without_header(tmp_path):
    _frames(tmp_path / "clips" / "a")
    _frames(tmp_path / "clips" / "b", 6)
    (tmp_path / "plain.csv").write_text("# path,label\nclips/a,3\n\nclips/b,grow\n")
    got = csv_items(tmp_path / "plain.csv")
    assert [(it.clip_id, it.label) for it in got] == [("clips/a", 3), ("clips/b", "grow")]
    assert got[1].source == (tmp_path / "clips" / "b").resolve()
    (tmp_path / "kin.csv").write_text("label,path,start,youtube_id\n"
                                      "grow,clips/b,2,xyz\nshrink,clips/b,,abc\n")
    got, source = items_from_path(tmp_path / "kin.csv")
    assert [(it.clip_id, it.label, it.start) for it in got] == [("clips/b@2", "grow", 2),
                                                                ("clips/b", "shrink", 0)]
    assert got[0].meta == {"youtube_id": "xyz"} and source.startswith("list ")
    again = item_from_origin("clips/b@2", got[0].origin, label="grow", start=2)
    assert again.source == got[0].source and again.start == 2


@pytest.mark.parametrize("text, error, match", [
    ("clips/a,1\nmissing.mp4,2\ngone/x.avi,0\n", VideoError, "2 file.*missing.mp4"),
    ("path,start\nclips/a,-1\n", ParameterError, "line 2: start"),
    ("path,label\n", VideoError, "no clips"),
])
def test_csv_list_errors_are_clear(tmp_path, text, error, match):
    _frames(tmp_path / "clips" / "a")
    (tmp_path / "list.csv").write_text(text)
    with pytest.raises(error, match=match):
        csv_items(tmp_path / "list.csv")


def test_unknown_labels_are_refused_before_anything_runs(tmp_path):
    model = tiny_model()  # classes "0".."3"
    items = [EvalItem("a", np.zeros((8, 32, 32, 3), np.uint8), label="Archery"),
             EvalItem("b", np.zeros((8, 32, 32, 3), np.uint8), label=9)]
    with pytest.raises(ParameterError, match=r"2 clip\(s\) have labels .*'Archery' \(a\)"):
        run_evaluation(model, items, ["gradient"], tmp_path / "r", metrics=FEW,
                       show_progress=False)
    assert not (tmp_path / "r" / "records").exists() or not any(
        (tmp_path / "r" / "records").iterdir())


def test_a_failing_clip_is_recorded_and_retried_by_the_next_run(tmp_path):
    model = tiny_model()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 64)
    items = [EvalItem("ok", np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3),
                                                              dtype=np.uint8)),
             EvalItem("bad", bad, label=1)]
    out = tmp_path / "r"
    res = run_evaluation(model, items, ["gradient"], out, metrics=FEW, show_progress=False,
                         report=False)
    assert (res.computed, res.failed) == (2, 1) and set(res.table["clip_id"]) == {"ok"}
    folder = RecordFolder.existing(out)
    assert folder.has("ok") and folder.failed("bad")
    rec = folder.read("bad")
    assert rec["error"].startswith("VideoError") and "\n" not in rec["error"]
    assert rec["label_name"] == "1" and "Traceback" in rec["traceback"]
    assert pd.read_csv(out / "failed.csv")["clip_id"].tolist() == ["bad"]
    again = run_evaluation(model, items, ["gradient"], out, metrics=FEW, show_progress=False,
                           report=False)
    assert (again.computed, again.reused, again.failed) == (1, 1, 1)  # only the failed one
    # the clip is mended: the rerun evaluates it, its error record and failed.csv go
    items[1] = EvalItem("bad", np.zeros((8, 32, 32, 3), np.uint8), label=1)
    fixed = run_evaluation(model, items, ["gradient"], out, metrics=FEW, show_progress=False,
                           report=False)
    assert fixed.failed == 0 and not folder.failed("bad") and folder.has("bad")
    assert not (out / "failed.csv").exists()


def test_a_partial_run_opens_for_the_dashboard(tmp_path):
    model = tiny_model()
    items = synthetic_items(3, 0.5, size=32, num_frames=8)

    class Stop(Exception):
        pass

    def stop_after_two(clip_id: str) -> None:
        if clip_id == items[1].clip_id:
            raise Stop

    out = tmp_path / "r"
    with pytest.raises(Stop):
        run_evaluation(model, items, ["gradient", "gradcam"], out, metrics=FEW,
                       show_progress=False, on_record=stop_after_two,
                       method_params={"gradcam": {}})
    run = open_run(out)
    assert (run.done, run.total, run.complete) == (2, 3, False)
    assert list(run.clips["clip_id"]) == [it.clip_id for it in items[:2]]
    assert set(run.table["clip_id"]) == {it.clip_id for it in items[:2]}
    assert {"motion_share:gradient", "motion_share:gradcam"} <= set(run.clips.columns)
    it = run.item(items[1].clip_id)  # re-rendered from its seed: the same frames and masks
    assert np.array_equal(it.source, items[1].source)
    assert np.array_equal(it.masks["actor"], items[1].masks["actor"])
    kw = run.explain_kwargs()
    assert kw["methods"] == ["gradient", "gradcam"] and kw["options"].sigma == 4.0
    with pytest.raises(ParameterError, match="does not say how to load"):
        run.model_ref()  # a model passed from Python without model_ref
    with pytest.raises(ParameterError, match="no evaluation run"):
        open_run(tmp_path / "nothing")


def test_restart_discards_records_and_shards(tmp_path):
    model = tiny_model()
    items = synthetic_items(1, 0.0, size=32, num_frames=8)
    out = tmp_path / "r"
    run_evaluation(model, items, ["gradient"], out, metrics=FEW, show_progress=False,
                   report=False)
    assert list((out / "shards").glob("*.parquet"))
    RecordFolder(out, json.loads((out / "manifest.json").read_text()), restart=True)
    assert not (out / "shards").exists() and not list((out / "records").glob("*.json"))


def test_cli_names_a_path_that_is_neither_folder_nor_list(tmp_path, capsys):
    code, _, err = run_cli(capsys, ["evaluate", str(tmp_path / "none.csv"), "--methods",
                                    "gradient", "--out", str(tmp_path / "o")])
    assert code == 2 and "neither a folder nor a CSV list" in err and "Traceback" not in err
