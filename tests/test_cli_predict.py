"""``predict`` (library and CLI) and ``models``, with a small random C3D and generated videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli as run
from helpers import write_cli_files

from xai_core.cli import main
from xai_core.errors import ParameterError
from xai_core.models import registry
from xai_core.models.bundled import small_c3d_spec
from xai_core.models.registry import get_spec, list_models, load_model, wrap_module
from xai_core.predict import class_probabilities, predict
from xai_core.synthetic.world import CLASSES, render_clip
from xai_core.video import load_clip, write_video

#: The small C3D at 8×32×32: the CLI path is the same, each forward ~20× cheaper.
TINY = "tiny-c3d-test"

pytestmark = pytest.mark.usefixtures("small_c3d")


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_c3d):
    # spread the logits so the ranking is not a near-tie
    files = write_cli_files(tmp_path_factory.mktemp("cli"), small_c3d, logit_gain=20)
    short = write_video(files["dir"] / "short.mp4", render_clip(4).frames[:5], fps=8)
    return files | {"short": short}  # short: < 8 frames


def own(files) -> list[str]:
    return ["--arch", TINY, "--checkpoint", str(files["ckpt"]),
            "--classes", str(files["classes"]), "--device", "cpu"]


# ----------------------------------------------------------------------------- library
def test_predict_matches_softmax_of_the_network(files):
    model = load_model(arch=TINY, checkpoint=files["ckpt"], classes=files["classes"])
    clip = load_clip(files["video"], model.input)
    preds = predict(model, clip, top=5)
    with torch.no_grad():
        probs = model.module(clip.tensor).softmax(1)[0]
    order = probs.argsort(descending=True)[:5].tolist()
    assert [p.index for p in preds] == order
    assert [p.class_name for p in preds] == [CLASSES[i] for i in order]
    np.testing.assert_allclose([p.probability for p in preds], probs[order].numpy(), rtol=1e-5)
    assert all(a.probability >= b.probability for a, b in zip(preds, preds[1:], strict=False))
    assert len(predict(model, clip, top=100)) == len(CLASSES)


def test_predict_uses_eval_mode_and_leaves_training_mode_alone():
    torch.manual_seed(0)
    module = small_c3d_spec().build(4)
    model = wrap_module(module, registry.get_spec(TINY), device="cpu")
    clip = load_clip(render_clip(1).frames, model.input)
    reference = predict(model, clip)
    module.train()  # e.g. a user's module mid-training: dropout and batch statistics live
    assert [p.probability for p in predict(model, clip)] == [p.probability for p in reference]
    assert module.training and all(m.training for m in module.modules())
    assert all(p.grad is None for p in module.parameters())


def test_class_probabilities_batched_and_sum_to_one():
    model = wrap_module(small_c3d_spec().build(4), small_c3d_spec(), device="cpu")
    x = torch.randn(3, 3, 8, 32, 32)
    probs = class_probabilities(model, x)
    assert probs.shape == (3, 4)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    torch.testing.assert_close(probs[1], class_probabilities(model, x[1:2])[0])


def test_predict_rejects_clip_for_another_spec_and_bad_top(files):
    model = load_model(arch=TINY, checkpoint=files["ckpt"])
    other = load_clip(render_clip(1).frames, get_spec("r3d_18").input)
    with pytest.raises(ParameterError, match="another input spec"):
        predict(model, other)
    with pytest.raises(ParameterError, match="top"):
        predict(model, load_clip(render_clip(1).frames, model.input), top=0)


# ----------------------------------------------------------------------------- CLI
def test_cli_prints_top5(files, capsys):
    code, out, err = run(capsys, ["predict", str(files["video"]), *own(files)])
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{TINY}:net.pt on") and "frames 0–7, stride 1" in lines[0]
    ranked = lines[1:]
    assert len(ranked) == 5
    probs = [float(line.rsplit(maxsplit=1)[1].rstrip("%")) for line in ranked]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 100.01
    assert all(line.split()[1] in CLASSES for line in ranked)


def test_cli_json_equals_library(files, capsys):
    code, out, _ = run(capsys, ["predict", str(files["video"]), *own(files), "--start", "2",
                                "--stride", "1", "--json"])
    assert code == 0
    got = json.loads(out)
    model = load_model(arch=TINY, checkpoint=files["ckpt"], classes=files["classes"])
    expected = predict(model, load_clip(files["video"], model.input, start=2))
    assert got == [p.to_dict() for p in expected]
    assert set(got[0]) == {"class", "index", "probability"}


def test_cli_reports_loop_padding(files, capsys):
    code, out, err = run(capsys, ["predict", str(files["short"]), *own(files)])
    assert code == 0 and "loop-padded" in err


def test_cli_frame_folder(files, capsys, tmp_path):
    import cv2

    for k, f in enumerate(render_clip(3, label=0).frames):
        cv2.imwrite(str(tmp_path / f"img{k}.png"), f[..., ::-1])
    code, out, _ = run(capsys, ["predict", str(tmp_path), *own(files), "--json"])
    assert code == 0 and len(json.loads(out)) == 5


@pytest.mark.parametrize("argv,kind,needle", [
    (["predict", "{dir}/missing.mp4", *"{own}".split()], "video", "does not exist"),
    (["predict", "{classes}", *"{own}".split()], "video", "text file"),
    (["predict", "{video}", *"{own}".split(), "--stride", "0"], "parameter", "stride"),
    (["predict", "{video}", *"{own}".split(), "--start", "99"], "parameter", "outside the video"),
    (["predict", "{video}", *"{own}".split(), "--top", "0"], "parameter", "top"),
    (["predict", "{video}", "--arch", TINY], "parameter", "needs both"),
    (["predict", "{video}", "--arch", "nope", "--checkpoint", "{ckpt}"], "parameter",
     "unknown model"),
    (["predict", "{video}", "--model", "nope"], "parameter", "unknown model"),
    (["predict", "{video}", "--model", "motion", "--arch", "c3d"], "parameter", "not both"),
    (["predict", "{video}", "--arch", "c3d", "--checkpoint", "{ckpt}"], "checkpoint",
     "does not fit"),
    (["predict", "{video}", "--arch", TINY, "--checkpoint", "{video}"], "checkpoint",
     "not a PyTorch checkpoint"),
    (["predict", "{video}", "--arch", TINY, "--checkpoint", "{ckpt}", "--classes",
      "{dir}/few.txt"], "checkpoint", "lists 2 classes"),
    (["predict", "{video}", "--device", "cuda", *"{own_nodev}".split()], "parameter", "CUDA"),
])
def test_cli_errors_are_one_line(files, capsys, argv, kind, needle):
    if needle == "CUDA" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    (files["dir"] / "few.txt").write_text("a\nb\n")
    own_args = " ".join(own(files))
    own_nodev = own_args.replace(" --device cpu", "")
    argv = [a.format(dir=files["dir"], own=own_args, own_nodev=own_nodev, classes=files["classes"],
                     video=files["video"], ckpt=files["ckpt"]) for a in argv]
    argv = [part for a in argv for part in (a.split() if a in (own_args, own_nodev) else [a])]
    code, out, err = run(capsys, argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error ({kind}):"), err
    assert needle in lines[0] and "Traceback" not in err


def test_cli_default_model_is_bundled_motion(files, capsys):
    if not Path(get_spec("motion").weights).is_file():
        pytest.skip("bundled weights not trained yet")
    code, out, err = run(capsys, ["predict", str(files["video"]), "--device", "cpu", "--json"])
    assert code == 0, err
    assert {p["class"] for p in json.loads(out)} <= set(CLASSES)


def test_models_lists_every_registered_model(capsys):
    code, out, _ = run(capsys, ["models"])
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["NAME", "ARCHITECTURE"]
    names = [line.split()[0] for line in lines[1:]]
    assert sorted(names) == sorted(m.name for m in list_models())
    row = {line.split()[0]: line for line in lines[1:]}
    assert "needs checkpoint" in row["r3d_18"] and "16×112×112 RGB" in row["r3d_18"]
    assert "BGR" in row["c3d"] and "bundled" in row["motion"]
    code, out, _ = run(capsys, ["models", "--json"])
    data = {r["name"]: r for r in json.loads(out)}
    assert data["motion"]["classes"] == len(CLASSES) and data["s3d"]["input"] == "16×224×224 RGB"


def test_cli_damaged_video_prints_one_line_and_no_decoder_noise(files, capfd, tmp_path):
    """capfd sees what C libraries (FFmpeg in decord/OpenCV) write to the real stderr."""
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 9000, dtype=np.uint8).tobytes())
    data = files["video"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    for path in (noise, cut):
        assert main(["predict", str(path), *own(files)]) == 2
        out, err = capfd.readouterr()
        lines = err.strip().splitlines()
        assert out == "" and len(lines) == 1 and lines[0].startswith("error (video):"), err
