"""``explain`` and ``methods`` commands: files written, atomicity, parameters, cache, errors."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from helpers import run_cli as run
from helpers import write_cli_files

from xai_core import cache as cache_module
from xai_core.methods.base import list_methods
from xai_core.synthetic.world import CLASSES
from xai_core.video.read import probe

pytestmark = pytest.mark.usefixtures("one_thread", "small_c3d")

TINY = "tiny-c3d-explain-test"


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_c3d):
    return write_cli_files(tmp_path_factory.mktemp("cli-explain"), small_c3d)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test gets its own default cache folder (never the user's)."""
    monkeypatch.setenv("XAI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_module, "_default", None)


def explain_argv(files, out, *extra: str) -> list[str]:
    return ["explain", str(files["video"]), "--arch", TINY, "--checkpoint", str(files["ckpt"]),
            "--classes", str(files["classes"]), "--device", "cpu", "--out", str(out), *extra]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_explain_writes_maps_summary_and_previews(files, tmp_path, capsys):
    out = tmp_path / "result"
    code, stdout, err = run(capsys, explain_argv(
        files, out, "--method", "gradient", "--method", "input-x-gradient",
        "--start", "1", "--stride", "2", "--target", "move_up", "--sigma", "2",
        "--slice", "first", "--normalise", "max-abs"))
    assert code == 0, err
    assert "gradient: freeze frames" in err  # progress on stderr
    assert "wrote" in stdout and "motion share" in stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{m}.{ext}" for m in ("gradient", "input-x-gradient")
                           for ext in ("npz", "png", "mp4")) + ["summary.json"]
    with np.load(out / "gradient.npz") as npz:
        for m in ("full", "spatial", "temporal", "selective"):
            assert npz[m].dtype == np.float32 and npz[m].shape == (8, 32, 32)
        assert npz["frames"].dtype == np.uint8 and npz["frames"].shape == (8, 32, 32, 3)
        np.testing.assert_allclose(npz["spatial"] + npz["temporal"], npz["full"], rtol=1e-6,
                                   atol=1e-6 * np.abs(npz["full"]).max())
    s = json.loads((out / "summary.json").read_text())
    assert s["target"] == CLASSES.index("move_up") and s["target_name"] == "move_up"
    assert s["clip"]["indices"] == list(range(1, 17, 2)) and s["clip"]["stride"] == 2
    assert s["options"] | {"sigma": 2.0, "slice": "first", "normalise": "max-abs"} == s["options"]
    with np.load(out / "gradient.npz") as npz:  # the paper's scaling: full peaks at ±1
        assert np.abs(npz["full"]).max() == pytest.approx(1.0)
    assert len(s["freeze_frame_probabilities"]) == 8
    assert set(s["methods"]["gradient"]["motion_share"]) == {"discriminative", "selective"}
    assert s["cache_hits"] == {"gradient": False, "input-x-gradient": False}
    info = probe(out / "gradient.mp4")
    assert info.frames == 8 and info.codec in ("h264", "avc1")
    # the user's usual permissions (temporary files start private)
    assert (out.stat().st_mode & 0o777) == 0o777 & ~_umask()
    assert all((f.stat().st_mode & 0o777) == 0o666 & ~_umask() for f in out.iterdir())
    # nothing left behind next to the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "result"]


def test_full_only_methods_skip_the_split_in_files_and_previews(files, tmp_path, capsys):
    out = tmp_path / "f"
    code, stdout, err = run(capsys, explain_argv(
        files, out, "--method", "gradient", "input-x-gradient", "--full-only", "gradient"))
    assert code == 0, err
    assert not re.search(r"(^|[\r\n])gradient: freeze frames", err)
    assert "input-x-gradient: freeze frames" in err
    with np.load(out / "gradient.npz") as npz:
        assert {"full", "selective", "selective_mask"} <= set(npz.files)
        assert "spatial" not in npz.files and "temporal" not in npz.files
    with np.load(out / "input-x-gradient.npz") as npz:
        assert "temporal" in npz.files
    assert "discriminative not computed" in stdout
    assert probe(out / "gradient.mp4").frames == 8  # full | selective
    s = json.loads((out / "summary.json").read_text())
    assert set(s["methods"]["gradient"]["motion_share"]) == {"selective"}
    code, _, err = run(capsys, explain_argv(files, tmp_path / "g", "--method", "gradient",
                                            "--full-only", "dtd"))
    assert code != 0 and "not computed" in err and "Traceback" not in err
    assert not (tmp_path / "g").exists()


def test_estimate_prints_the_cost_and_computes_nothing(files, tmp_path, capsys):
    out = tmp_path / "e"
    code, stdout, err = run(capsys, explain_argv(
        files, out, "--method", "gradient", "extremal-perturbation", "--full-only",
        "extremal-perturbation", "--estimate"))
    assert code == 0, err
    assert "forward+backward pass of this clip" in stdout
    lines = {line.split(":")[0]: line for line in stdout.splitlines()}
    assert "model passes" in lines["gradient"]
    assert "at most" in lines["extremal-perturbation"]
    assert "2,400 model passes, full relevance only" in lines["extremal-perturbation"]
    assert stdout.strip().splitlines()[-1].startswith("total: at most")
    assert not out.exists()
    # after computing, the estimate says it is cached
    assert run(capsys, explain_argv(files, out, "--method", "gradient", "--no-previews"))[0] == 0
    code, stdout, _ = run(capsys, explain_argv(files, out, "--method", "gradient",
                                               "--estimate"))
    assert code == 0 and "gradient: cached" in stdout


def test_second_run_is_served_from_the_cache_and_replaces_the_output(files, tmp_path, capsys):
    out = tmp_path / "r"
    argv = explain_argv(files, out, "--method", "gradient", "--no-previews")
    assert run(capsys, argv)[0] == 0
    first = np.load(out / "gradient.npz")["temporal"]
    assert run(capsys, argv)[0] == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["cache_hits"] == {"gradient": True}
    np.testing.assert_array_equal(np.load(out / "gradient.npz")["temporal"], first)
    assert run(capsys, argv + ["--no-cache"])[0] == 0
    assert json.loads((out / "summary.json").read_text())["cache_hits"] == {"gradient": False}


def test_params_reach_the_method_and_are_validated(files, tmp_path, capsys):
    out = tmp_path / "p"
    code, _, err = run(capsys, explain_argv(
        files, out, "--method", "occlusion", "--param", "occlusion:window=4,16,16",
        "--param", "occlusion:stride=4,16,16", "--no-previews"))
    assert code == 0, err
    params = json.loads((out / "summary.json").read_text())["methods"]["occlusion"]["params"]
    assert params["window"] == [4, 16, 16] and params["stride"] == [4, 16, 16]
    # the same NAME:key=value syntax as evaluate --methods, directly on --method
    code, _, err = run(capsys, explain_argv(
        files, out, "--method", "occlusion:window=4,16,16,stride=4,16,16", "--no-previews"))
    assert code == 0, err
    params = json.loads((out / "summary.json").read_text())["methods"]["occlusion"]["params"]
    assert params["window"] == [4, 16, 16] and params["stride"] == [4, 16, 16]
    for bad in (["--param", "occlusion:window=4,16,16"],  # method not computed
                ["--method", "gradient", "--param", "gradient:steps=3"],  # no such parameter
                ["--method", "integrated-gradients", "--param", "integrated-gradients:steps=0"],
                ["--method", "gradient", "--param", "nonsense"],
                ["--method", "no-such-method"],
                ["--method", "gradient", "--target", "fly"],
                ["--method", "gradient", "--sigma", "-1"]):
        code, _, err = run(capsys, explain_argv(files, tmp_path / "bad", *bad))
        assert code == 2, bad
        assert err.startswith("error (parameter):") and err.count("\n") == 1, err
        assert not (tmp_path / "bad").exists()


def test_failure_while_writing_leaves_nothing_behind(files, tmp_path, capsys, monkeypatch):
    from xai_core import render

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(render, "save_png", broken)
    out = tmp_path / "never"
    code, _, err = run(capsys, explain_argv(files, out, "--method", "gradient"))
    assert code != 0 and "disk full" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_refuses_to_overwrite_a_folder_that_is_not_an_output(files, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    code, _, err = run(capsys, explain_argv(files, out, "--method", "gradient"))
    assert code == 2 and "not an earlier explain output" in err
    assert (out / "thesis.tex").read_text() == "precious"


def test_methods_lists_every_method_on_one_line(capsys):
    code, out, _ = run(capsys, ["methods"])
    assert code == 0
    lines = out.strip().splitlines()
    names = {c.name for c in list_methods()}
    assert len(lines) == len(names)
    assert {line.split()[0] for line in lines} == names
    assert any("steps=32" in line for line in lines if line.startswith("integrated-gradients"))
    code, out, _ = run(capsys, ["methods", "--json"])
    rows = json.loads(out)
    assert {r["name"] for r in rows} == names
    assert all({"family", "description", "params"} <= set(r) for r in rows)


def test_methods_can_be_listed_after_one_flag(files, tmp_path, capsys):
    out = tmp_path / "listed"
    code, _, err = run(capsys, explain_argv(files, out, "--method", "gradient", "input-x-gradient",
                                            "--no-previews"))
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.npz")) == ["gradient.npz", "input-x-gradient.npz"]
