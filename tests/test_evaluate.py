"""The evaluation run: resumability, tables, ground truth alignment, the dashboard entry."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import xai_core.evaluation.run as run_mod
from xai_core import explain
from xai_core.cache import ResultCache
from xai_core.cli import main
from xai_core.errors import ParameterError
from xai_core.evaluation import (
    EvalItem,
    clip_masks,
    evaluate_clip,
    folder_items,
    run_evaluation,
    synthetic_items,
)
from xai_core.models.registry import list_models, register_model, wrap_module
from xai_core.models.spec import InputSpec, ModelSpec
from xai_core.video.clip import load_clip

METRICS = ["motion_precision", "selectivity", "ground_truth", "pointing_game",
           "insertion:steps=4,grid=4", "deletion:steps=4,grid=4"]
#: cheaper set for the tests that run many clips (still with a seeded random baseline)
FEW = ["selectivity", "ground_truth", "insertion:steps=2,grid=2"]


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool3d(2), nn.Conv3d(4, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # On a busy 2-core machine two torch threads spin against each other: tiny convs
    # run ~8x faster on one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny_spec(name: str = "tiny") -> ModelSpec:
    return ModelSpec(name=name, build=lambda n: Tiny(),
                     input=InputSpec(8, 32, 32, mean=(0.45,) * 3, std=(0.225,) * 3),
                     description="tiny test net", cam_layer="features.4", classifier="fc")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return wrap_module(Tiny(), _tiny_spec(), device="cpu")


@pytest.fixture(scope="module")
def items():
    return synthetic_items(4, 0.5)  # 112-px world clips, resized to the tiny model's 32 px


class Stop(Exception):
    pass


def _key_cols(table: pd.DataFrame) -> list[str]:
    return ["clip_id", "method", "variant", "metric", "quantity"]


def test_interrupted_run_resumes_to_the_same_table(tiny, items, tmp_path, monkeypatch):
    items3 = items[:3]
    calls: list[str] = []
    real = run_mod.explain

    def counting(model, clip, *a, **kw):
        calls.append(clip.source)
        return real(model, clip, *a, **kw)

    monkeypatch.setattr(run_mod, "explain", counting)
    whole = run_evaluation(tiny, items3, ["gradient"], tmp_path / "whole", metrics=FEW,
                           show_progress=False, report=False)
    assert whole.computed == 3 and len(calls) == 3

    calls.clear()
    done: list[str] = []

    def stop_after_one(clip_id: str) -> None:
        done.append(clip_id)
        raise Stop  # the process "dies" right after the first record is written

    out = tmp_path / "resumed"
    with pytest.raises(Stop):
        run_evaluation(tiny, items3, ["gradient"], out, metrics=FEW, show_progress=False,
                       on_record=stop_after_one, report=False)
    assert len(list((out / "records").glob("*.json"))) == 1
    assert not list((out / "records").glob(".*"))  # no half-written files left behind

    calls.clear()
    again = run_evaluation(tiny, items3, ["gradient"], out, metrics=FEW,
                           show_progress=False, report=False)
    assert (again.computed, again.reused) == (2, 1)
    assert calls == [it.clip_id for it in items3[1:]]  # finished clips are not recomputed
    assert not again.table.duplicated(_key_cols(again.table)).any()
    pd.testing.assert_frame_equal(again.table, whole.table)

    calls.clear()
    third = run_evaluation(tiny, items3, ["gradient"], out, metrics=FEW,
                           show_progress=False, report=False)
    assert third.computed == 0 and calls == []
    pd.testing.assert_frame_equal(third.table, whole.table)
    assert (out / "results.csv").is_file() and (out / "summary.csv").is_file()


def test_table_and_summary_contents(tiny, items, tmp_path):
    res = run_evaluation(tiny, items[:2], ["gradient", "gradcam"], tmp_path / "r",
                         metrics=METRICS + ["agreement"], show_progress=False)
    t = res.table
    assert set(t["clip_id"]) == {items[0].clip_id, items[1].clip_id}
    assert {"gradient", "gradcam", "random", "gradcam|gradient"} <= set(t["method"])
    # every clip has exactly one random-baseline row per causal metric
    rnd = t[(t["method"] == "random") & (t["metric"] == "insertion")]
    assert len(rnd) == 2
    # synthetic metadata travels into the table
    assert {"meta_context", "meta_context_agrees"} <= set(t.columns)
    s = res.summary
    row = s[(s["method"] == "gradient") & (s["variant"] == "full")
            & (s["quantity"] == "actor_share")].iloc[0]
    vals = t[(t["method"] == "gradient") & (t["variant"] == "full")
             & (t["quantity"] == "actor_share")]["value"]
    assert row["n"] == 2 and row["mean"] == pytest.approx(vals.mean())
    assert row["std"] == pytest.approx(vals.std())
    assert bool(s[s["metric"] == "deletion"]["higher_is_better"].iloc[0]) is False
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Causal and saliency metrics" in md and "## Ground-truth localisation" in md
    causal = md.split("## Causal and saliency metrics")[1].split("##")[0]
    rows = [ln for ln in causal.splitlines() if ln.startswith("| ")]
    assert rows[-1].startswith("| random")  # the baseline row closes the table, as the papers
    assert "<script" in (tmp_path / "r" / "report.html").read_text()


def test_other_configuration_in_the_same_folder_is_refused(tiny, items, tmp_path):
    out = tmp_path / "r"
    run_evaluation(tiny, items[:1], ["gradient"], out, metrics=["ground_truth"],
                   show_progress=False, report=False)
    with pytest.raises(ParameterError, match="different run"):
        run_evaluation(tiny, items[:1], ["gradcam"], out, metrics=["ground_truth"],
                       show_progress=False, report=False)
    res = run_evaluation(tiny, items[:1], ["gradcam"], out, metrics=["ground_truth"],
                         show_progress=False, report=False, restart=True)
    assert res.computed == 1 and set(res.table["method"]) == {"gradcam"}


def test_limit_and_bad_inputs(tiny, items, tmp_path):
    res = run_evaluation(tiny, items, ["gradient"], tmp_path / "a", metrics=["ground_truth"],
                         limit=1, show_progress=False, report=False)
    assert res.table["clip_id"].nunique() == 1
    with pytest.raises(ParameterError, match="not unique"):
        run_evaluation(tiny, [items[0], items[0]], ["gradient"], tmp_path / "b",
                       show_progress=False)
    with pytest.raises(ParameterError, match="unknown metric"):
        run_evaluation(tiny, items, ["gradient"], tmp_path / "c", metrics=["nope"])
    with pytest.raises(ParameterError, match="no label"):
        unlabeled = [EvalItem("x", items[0].source)]
        run_evaluation(tiny, unlabeled, ["gradient"], tmp_path / "d", metrics=["ground_truth"],
                       target="label", show_progress=False)


def test_masks_follow_the_frames_through_resize_and_crop():
    spec = InputSpec(4, 32, 32)
    frames = np.zeros((6, 48, 80, 3), np.uint8)
    mask = np.zeros((6, 48, 80), bool)
    for t in range(6):  # a square that moves; the mask is where it is drawn
        frames[t, 10:30, 30 + 4 * t : 50 + 4 * t] = 255
        mask[t, 10:30, 30 + 4 * t : 50 + 4 * t] = True
    clip = load_clip(frames, spec, start=1, stride=1)
    got = clip_masks({"actor": mask, "segment": np.arange(6) >= 3}, clip.indices, spec)
    assert got["actor"].shape == (4, 32, 32)
    assert np.array_equal(got["actor"], clip.frames[..., 0] > 127)
    assert got["segment"].tolist() == [False, False, True, True]  # source frames 1..4


def test_folder_items_read_ground_truth_in_numeric_order(tmp_path):
    for name in ("clip_10", "clip_2"):
        d = tmp_path / name
        d.mkdir()
        for t in range(3):
            cv2.imwrite(str(d / f"{t}.png"), np.full((16, 16, 3), 40 * t, np.uint8))
    np.savez(tmp_path / "clip_2.npz", actor_mask=np.ones((3, 16, 16), bool),
             context=np.zeros((3, 16, 16), bool))
    (tmp_path / "clip_2.json").write_text(json.dumps({"label": 3}))
    got = folder_items(tmp_path)
    assert [it.clip_id for it in got] == ["clip_2", "clip_10"]
    assert got[0].label == 3 and set(got[0].masks) == {"actor", "context"}
    assert got[1].masks is None and got[1].label is None
    # a sample folder's manifest names the labels (resolved against the model's classes)
    (tmp_path / "manifest.json").write_text(json.dumps({"samples": [
        {"file": "clip_10", "label": "grow", "context": "yellow_star", "kind": "motion"}]}))
    got = folder_items(tmp_path)
    assert got[1].label == "grow" and got[1].meta == {"context": "yellow_star", "kind": "motion"}
    assert got[0].label == 3  # NAME.json wins over the manifest


def test_evaluate_clip_for_the_dashboard_is_cached(tiny, items):
    clip = load_clip(items[0].source, tiny.input)
    exp = explain(tiny, clip, ["gradient"], cache=None)
    masks = clip_masks(items[0].masks, clip.indices, tiny.input)
    cache = ResultCache(None)
    first = evaluate_clip(tiny, clip, exp, ["ground_truth", "selectivity"], masks, cache=cache)
    second = evaluate_clip(tiny, clip, exp, ["ground_truth", "selectivity"], masks, cache=cache)
    assert not first.cache_hit and second.cache_hit
    assert first.rows == second.rows and len(first.rows) == 4 * 4 + 2
    frame = first.to_frame()
    assert list(frame.columns) == ["method", "variant", "metric", "quantity", "value",
                                   "higher_is_better"]
    no_masks = evaluate_clip(tiny, clip, exp, ["ground_truth"], None, cache=None)
    assert no_masks.rows == [] and "ground_truth" in no_masks.skipped
    with pytest.raises(ParameterError, match="mask"):
        evaluate_clip(tiny, clip, exp, ["ground_truth"], {"actor": masks["actor"][:2],
                                                          "context": masks["context"]})


def test_cli_evaluate_synthetic_and_errors(tmp_path, capsys):
    list_models()  # the zoo first: registering into an empty registry would hide it
    register_model(_tiny_spec("test-tiny"))
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.pt"
    torch.save(Tiny().state_dict(), ckpt)
    out = tmp_path / "eval"
    argv = ["evaluate", "--synthetic", "2", "--arch", "test-tiny", "--checkpoint", str(ckpt),
            "--methods", "gradcam", "integrated-gradients:steps=2", "--metrics", "ground_truth",
            "insertion:steps=2,grid=2,variants=full", "--out", str(out), "--limit", "1",
            "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "1 clips (1 computed, 0 reused" in capsys.readouterr().out
    assert main(argv) == 0  # rerun: nothing recomputed
    assert "(0 computed, 1 reused" in capsys.readouterr().out
    table = pd.read_csv(out / "results.csv")
    assert set(table["metric"]) == {"ground_truth", "insertion"}
    assert set(table[table["metric"] == "insertion"]["variant"].dropna()) == {"full"}
    assert main(["evaluate", "--model", "motion", "--methods", "dtd", "--out",
                 str(tmp_path / "x")]) == 2
    assert "CLIPS_DIR or --synthetic" in capsys.readouterr().err


def test_synthetic_segments_freeze_the_actor_outside_the_segment():
    from xai_core.synthetic.world import render_clip

    whole = synthetic_items(1, 0.0, seed=123)[0]
    assert np.array_equal(whole.source, render_clip(123).frames)  # default: the world's clip
    assert "segment" not in whole.masks
    part = synthetic_items(1, 0.0, seed=123, moving=0.5)[0]
    seg = part.masks["segment"]
    a, b = (int(v) for v in part.meta["segment"].split("-"))
    assert seg.sum() == 8 and seg[a : b + 1].all()
    actor = part.masks["actor"]
    # the actor (mask) stands still outside the segment and moves inside it
    assert all(np.array_equal(actor[t], actor[a]) for t in range(a))
    assert all(np.array_equal(actor[t], actor[b]) for t in range(b, 16))
    assert not np.array_equal(actor[a], actor[b])
    # frozen frames differ only by fresh sensor noise (σ 2), not by motion
    diff = np.abs(part.source[0].astype(int) - part.source[a].astype(int))
    assert 0 < diff.mean() < 4
