"""The Ray engine: same records as the in-process engine, resumable after a kill.

Each test starts a small local Ray (2 CPUs, 128 MB object store, no dashboard) and shuts
it down; the model is the small C3D on 8×32×32 clips, registered here at run time — the
workers get its spec through :class:`~xai_core.evaluation.ModelRef`. The clips: a small
folder in the UCF-101 layout (with a broken video) and generated ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import TINY_INPUT, evaluation_records, run_cli

from xai_core import explain
from xai_core.evaluation import (
    ModelRef,
    class_table,
    clip_seed,
    folder_items,
    open_run,
    read_shards,
    run_evaluation,
    run_evaluation_ray,
    synthetic_items,
)
from xai_core.metrics import Metric
from xai_core.models import registry
from xai_core.models.bundled import small_c3d_spec
from xai_core.synthetic.world import CLASSES, WorldConfig, render_clip
from xai_core.video import write_video

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread"),
              pytest.mark.timeout(240)]

ARCH = "small-c3d-ray-test"
METHODS = ["gradcam", "gradient"]
#: cheap metrics with a seeded random baseline (insertion) and ground truth
METRICS = ["selectivity", "ground_truth", "motion_share", "insertion:steps=2,grid=4"]
#: fields that differ between two runs of the same clip: wall time, and the traceback's
#: frames (the in-process one passes through the test's own frames)
@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """The small C3D (8×32×32) registered as ``ARCH``, its weights and class names."""
    registry.list_models()  # the zoo first: registering into an empty registry would hide it
    spec = dataclasses.replace(small_c3d_spec(ARCH), input=TINY_INPUT)
    registry.register_model(spec)
    d = tmp_path_factory.mktemp("ray-model")
    torch.manual_seed(0)
    torch.save(spec.build(len(CLASSES)).state_dict(), d / "net.pt")
    (d / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    yield d / "net.pt", d / "classes.txt"
    registry.MODELS.pop(ARCH, None)


def test_ray_engine_gives_the_in_processevaluation_records(model_files, tmp_path):
    ckpt, classes = model_files
    ref = ModelRef.of(arch=ARCH, checkpoint=ckpt, classes=classes)
    model = ref.load(device="cpu")
    # a small folder in the UCF-101 layout (one folder per class; one video is broken)
    # and generated clips
    ucf = tmp_path / "ucf"
    config = WorldConfig(size=40, num_frames=12)
    for seed, label in ((1, 0), (2, 0), (3, 6)):
        (ucf / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        write_video(ucf / CLASSES[label] / f"v_{seed}.mp4",
                    render_clip(seed, label=label, config=config).frames, fps=8)
    (ucf / CLASSES[6] / "v_broken.mp4").write_bytes(b"not a video at all")
    items = folder_items(ucf) + synthetic_items(2, 0.5, size=32, num_frames=8)
    broken = f"{CLASSES[6]}/v_broken"
    assert [it.clip_id for it in items][:4] == [f"{CLASSES[6]}/v_3", broken, "move_left/v_1",
                                                "move_left/v_2"]
    kw = {"metrics": METRICS, "show_progress": False, "report": False}
    local = run_evaluation(model, items, METHODS, tmp_path / "local", model_ref=ref, **kw)
    ray_run = run_evaluation_ray(ref, items, METHODS, tmp_path / "ray", workers=2,
                                 shard_clips=2, **kw)

    # the same records, clip by clip and number by number (failed clip included)
    assert (local.computed, local.failed) == (ray_run.computed, ray_run.failed) == (6, 1)
    a, b = evaluation_records(tmp_path / "local"), evaluation_records(tmp_path / "ray")
    assert a.keys() == b.keys() and len(a) == 6
    for clip_id in a:
        assert a[clip_id] == b[clip_id], clip_id
    assert "error" in b[broken] and b[broken]["label_name"] == CLASSES[6]
    assert b["synthetic-700000000"]["indices"] == list(range(8))
    assert b["move_left/v_1"]["origin"]["path"] == str(ucf.resolve() / "move_left" / "v_1.mp4")
    pd.testing.assert_frame_equal(local.table, ray_run.table)
    pd.testing.assert_frame_equal(local.summary, ray_run.summary)
    failed = pd.read_csv(tmp_path / "ray" / "failed.csv")
    assert failed["clip_id"].tolist() == [broken] and "video" in failed["error"][0].lower()

    # Parquet shards of the workers (2 clips each) hold exactly the table's rows
    shards = sorted((tmp_path / "ray" / "shards").glob("*.parquet"))
    assert any("-w0-" in p.name for p in shards) and any("-w1-" in p.name for p in shards)
    cols = list(ray_run.table.columns)
    key = ["clip_id", "method", "variant", "metric", "quantity"]
    got = read_shards(tmp_path / "ray")[cols].sort_values(key).reset_index(drop=True)
    want = ray_run.table.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)

    # the dashboard's entry: the run opened again, a clip reopened with the run's settings
    run = open_run(tmp_path / "ray")
    assert run.complete is False and run.done == 5 and run.failed == [broken]
    assert run.settings["engine"] == "ray" and run.methods == METHODS
    assert list(run.clips["clip_id"]) == [it.clip_id for it in items]
    assert {"motion_share:gradcam", "selective_share:gradient"} <= set(run.clips.columns)
    per_class = class_table(run.clips).set_index("label_name")
    assert per_class["clips"].sum() == 6 and "motion_share:gradcam" in per_class
    assert per_class.loc[CLASSES[6], "failed"] == 1 and per_class.loc["move_left", "clips"] == 2
    again = run.load_model(device="cpu")
    clip = run.load_clip("synthetic-700000001", again)
    assert clip.frames.shape == (8, 32, 32, 3)
    assert run.load_clip("move_left/v_2", again).indices == tuple(range(8))  # start 0, stride 1
    assert run.masks("synthetic-700000001", clip, again)["actor"].shape == (8, 32, 32)
    kwargs = run.explain_kwargs("synthetic-700000001")
    assert kwargs["methods"] == METHODS and kwargs["target"] is None
    # the reopened clip explained with the run's settings gives the run's numbers
    share = explain(again, clip, **kwargs, cache=None).methods["gradcam"].motion_share
    row = run.clips.set_index("clip_id").loc["synthetic-700000001"]
    assert share["discriminative"] == row["motion_share:gradcam"]


class CrashOn(Metric):
    """A metric that kills its process on one clip (as a segfault or the OOM killer would)."""

    name = "test-crash"
    scope = "method"

    def __init__(self, seed: int = 0, **kw) -> None:
        super().__init__(**kw)
        self.seed = seed

    def score_method(self, ev, method):
        if ev.seed == self.seed:
            os._exit(1)
        return {}


def test_a_dying_worker_fails_its_clip_and_the_run_goes_on(model_files, tmp_path):
    from ray import cloudpickle

    ckpt, classes = model_files
    ref = ModelRef.of(arch=ARCH, checkpoint=ckpt, classes=classes)
    items = synthetic_items(3, 0.0, size=32, num_frames=8)
    crash = CrashOn(seed=clip_seed(items[1].clip_id))
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # CrashOn travels to the worker by value
    try:
        res = run_evaluation_ray(ref, items, ["gradient"], tmp_path / "r", workers=1,
                                 metrics=["selectivity", crash], show_progress=False,
                                 report=False)
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    assert (res.computed, res.failed) == (3, 1)
    assert set(res.table["clip_id"]) == {items[0].clip_id, items[2].clip_id}
    error = json.loads(next((tmp_path / "r" / "records").glob("*.error.json")).read_text())
    assert error["clip_id"] == items[1].clip_id and "worker died" in error["error"]


DRIVER = """
import dataclasses, sys
from helpers import TINY_INPUT, run_cli
from xai_core.cli import main
from xai_core.models import registry
from xai_core.models.bundled import small_c3d_spec
registry.list_models()
registry.register_model(dataclasses.replace(small_c3d_spec({arch!r}), input=TINY_INPUT))
sys.exit(main(sys.argv[1:]))
"""


def _session_pids(sid: int) -> list[int]:
    """Processes of one session (the killed CLI and the Ray it started)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(d.name))
    return pids


def _cli(driver: Path, argv: list[str], **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent), RAY_USAGE_STATS_ENABLED="0")
    return subprocess.Popen([sys.executable, str(driver), *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_killed_ray_run_resumes_with_only_the_missing_clips(model_files, tmp_path, capfd):
    ckpt, classes = model_files
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER.format(arch=ARCH)))
    out = tmp_path / "run"
    n = 8
    argv = ["evaluate", "--synthetic", str(n), "--arch", ARCH, "--checkpoint", str(ckpt),
            "--classes", str(classes), "--methods", *METHODS, "--metrics", *METRICS,
            "--out", str(out), "--engine", "ray", "--workers", "2", "--no-progress"]

    # first run: killed (SIGKILL, the whole process group) once a few records exist
    first = _cli(driver, argv, start_new_session=True)
    deadline = time.monotonic() + 150
    records = out / "records"
    while time.monotonic() < deadline and first.poll() is None:
        if len(list(records.glob("*.json"))) >= 2:
            break
        time.sleep(0.02)
    assert first.poll() is None, first.communicate()[1][-2000:]
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    for pid in _session_pids(first.pid):  # Ray's workers leave their process group
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    done = {p.name for p in records.glob("*.json")}
    assert 2 <= len(done) < n, f"{len(done)} of {n} clips finished before the kill"
    assert not list(records.glob(".*"))  # atomic writes: no half-written record
    stamps = {p.name: p.stat().st_mtime_ns for p in records.glob("*.json")}

    # the rerun (the same command, here in-process) computes only the missing clips
    code, stdout, stderr = run_cli(capfd, argv)
    assert code == 0, stderr[-2000:]
    assert f"({n - len(done)} computed, {len(done)} reused" in stdout, stdout
    assert {p.name: p.stat().st_mtime_ns for p in records.glob("*.json") if p.name in stamps} \
        == stamps  # the records of the killed run were not written again
    assert len(list(records.glob("*.json"))) == n

    # and the table equals a clean in-process run's
    ref = ModelRef.of(arch=ARCH, checkpoint=ckpt, classes=classes)
    clean = run_evaluation(ref.load(device="cpu"), synthetic_items(n, 0.0, size=32,
                                                                   num_frames=8),
                           METHODS, tmp_path / "clean", metrics=METRICS, show_progress=False,
                           report=False)
    resumed = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(resumed, clean.table, check_dtype=False)
    assert (out / "summary.csv").is_file() and (out / "report.md").is_file()
    # shards: killed workers' unflushed clips were completed, no clip twice
    shard_rows = read_shards(out)
    assert set(shard_rows["clip_id"]) == set(clean.table["clip_id"])
    assert not shard_rows.duplicated(["clip_id", "method", "variant", "metric",
                                      "quantity"]).any()


def test_ray_engine_refuses_what_it_cannot_do(model_files, tmp_path, capsys):
    ckpt, classes = model_files
    base = ["evaluate", "--synthetic", "1", "--arch", ARCH, "--checkpoint", ckpt,
            "--classes", classes, "--methods", "gradcam", "--out", tmp_path / "x"]
    code, _, err = run_cli(capsys, [*base, "--workers", "2"])
    assert code == 2 and "--workers belong(s) to the Ray engine" in err
    code, _, err = run_cli(capsys, [*base, "--engine", "ray", "--device", "cuda"])
    assert code == 2 and "--gpus-per-worker" in err
    code, _, err = run_cli(capsys, [*base, "--engine", "ray", "--address", "127.0.0.1:1"])
    assert code == 2 and "nothing answers at the Ray address 127.0.0.1:1" in err
    if not torch.cuda.is_available():
        code, _, err = run_cli(capsys, [*base, "--engine", "ray", "--gpus-per-worker", "1"])
        assert code == 2 and "GPU" in err and "Traceback" not in err
