"""torchvision's pretrained video classifiers by weight name, without a network.

``TORCH_HOME`` points at a temporary folder holding randomly initialised weights under the
exact file name torchvision expects (``<TORCH_HOME>/hub/checkpoints/<basename of url>``):
loading then goes through torchvision's own weights API, reads that file and gives the
Kinetics-400 class names and input spec of the weights' metadata.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from helpers import put_random_weights, run_cli
from torchvision.models._api import WeightsEnum

from xai_core.errors import CheckpointError, ParameterError
from xai_core.hashing import state_dict_hash
from xai_core.models import pretrained
from xai_core.models.pretrained import (
    clip_length,
    frame_rate,
    input_spec,
    resolve_weights,
    video_architectures,
    weights_file,
)
from xai_core.models.registry import get_spec, load_model
from xai_core.video import write_video

VIDEO_ARCHS = ["mc3_18", "mvit_v1_b", "mvit_v2_s", "r2plus1d_18", "r3d_18", "s3d", "swin3d_b",
               "swin3d_s", "swin3d_t"]


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache; any download attempt fails as it would offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch"


@pytest.fixture
def spy(monkeypatch) -> list[dict]:
    """Records every call of torchvision's ``WeightsEnum.get_state_dict``."""
    calls: list[dict] = []
    original = WeightsEnum.get_state_dict

    def recording(self, *args, **kwargs):
        calls.append({"weights": str(self), **kwargs})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(WeightsEnum, "get_state_dict", recording)
    return calls


def test_every_torchvision_video_classifier_is_known():
    assert video_architectures() == VIDEO_ARCHS
    for arch in VIDEO_ARCHS:
        assert get_spec(arch).architecture == arch  # a zoo spec for --checkpoint too


@pytest.mark.parametrize("text", ["KINETICS400_V1", "kinetics400_v1", "DEFAULT",
                                  "R3D_18_Weights.KINETICS400_V1"])
def test_weight_names_short_full_and_default(text):
    assert str(resolve_weights("r3d_18", text)) == "R3D_18_Weights.KINETICS400_V1"


def test_weight_name_errors_list_what_exists():
    with pytest.raises(ParameterError, match="do not belong to r3d_18.*R3D_18_Weights"):
        resolve_weights("r3d_18", "MC3_18_Weights.KINETICS400_V1")
    with pytest.raises(ParameterError, match="no weights 'IMAGENET'.*KINETICS400_V1"):
        resolve_weights("r3d_18", "IMAGENET")
    with pytest.raises(ParameterError, match="no pretrained video weights.*swin3d_t"):
        resolve_weights("c3d", "DEFAULT")
    with pytest.raises(ParameterError, match="no weights or checkpoint|no checkpoint"):
        load_model(arch="r3d_18", weights="DEFAULT", checkpoint="x.pt")


@pytest.mark.parametrize("arch", VIDEO_ARCHS)
def test_input_spec_comes_from_the_weights(arch):
    for member in torchvision.models.get_model_weights(arch):
        t, spec = member.transforms(), input_spec(member)
        assert (spec.height, spec.width) == tuple(t.crop_size)
        assert spec.mean == tuple(t.mean) and spec.std == tuple(t.std)
        if len(t.resize_size) == 2:
            assert spec.resize == tuple(t.resize_size) and spec.short_side is None
        else:
            assert spec.resize is None and spec.short_side == t.resize_size[0]
        assert spec.scale == 1 / 255 and spec.channel_order == "RGB"
        assert f"clip_len={spec.num_frames}" in member.meta["_docs"]
        assert spec.num_frames >= member.meta.get("min_temporal_size", 1)
        # the zoo's spec (used for own checkpoints; written out to keep imports light)
        # is the same, except S3D, which the zoo keeps at 16 frames (min_temporal_size 14)
        zoo = get_spec(arch).input
        if arch != "s3d":
            assert zoo == spec, arch
        else:
            assert dataclasses.replace(zoo, num_frames=spec.num_frames) == spec


def test_clip_length_and_frame_rate_as_torchvision_states_them():
    def of(arch: str) -> tuple[int, float | None]:
        member = resolve_weights(arch, "DEFAULT")
        return clip_length(member), frame_rate(member)

    assert of("r3d_18") == (16, 15.0) and of("mvit_v1_b") == (16, 7.5)
    assert of("swin3d_t") == (32, 15.0) and of("s3d") == (128, 15.0)


def test_loading_goes_through_torchvision_and_gives_kinetics(torch_home, spy):
    state = torch.load(put_random_weights("r3d_18"), weights_only=True)
    model = load_model(arch="r3d_18", weights="KINETICS400_V1", device="cpu")
    # torchvision's own loader, asked for a progress bar, the hash check and safe unpickling
    assert spy == [{"weights": "R3D_18_Weights.KINETICS400_V1", "progress": True,
                    "check_hash": True, "weights_only": True}]
    kinetics = torchvision.models.video.R3D_18_Weights.KINETICS400_V1.meta["categories"]
    assert model.class_names == list(kinetics) and model.num_classes == 400
    assert model.class_names[:2] == ["abseiling", "air drumming"]
    assert model.input == input_spec(resolve_weights("r3d_18", "DEFAULT"))
    assert model.spec.source.endswith("r3d_18-b3b3357e.pth")
    assert not model.module.training
    assert model.weights_hash == state_dict_hash(state)
    reference = get_spec("r3d_18").build(400).eval()
    reference.load_state_dict(state)
    x = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.module(x), reference(x))


def test_offline_names_the_file_and_the_folder(torch_home):
    path = torch_home / "hub" / "checkpoints" / "r3d_18-b3b3357e.pth"
    with pytest.raises(CheckpointError) as err:
        load_model(arch="r3d_18", weights="KINETICS400_V1", device="cpu")
    text = str(err.value)
    assert "https://download.pytorch.org/models/r3d_18-b3b3357e.pth" in text
    assert str(path.parent) in text and path.name in text and "no network" in text
    assert not path.exists()


def test_damaged_cached_file_says_to_delete_it(torch_home):
    member = resolve_weights("mc3_18", "DEFAULT")
    path = weights_file(member)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read.*Delete the file"):
        load_model(arch="mc3_18", weights="DEFAULT", device="cpu")


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(__file__).with_name(".pwned-by-pickle"),))


def test_code_in_a_cached_file_never_runs(torch_home):
    marker = Path(__file__).with_name(".pwned-by-pickle")
    path = weights_file(resolve_weights("mc3_18", "DEFAULT"))
    path.parent.mkdir(parents=True)
    torch.save({"fc.weight": torch.zeros(1), "x": _Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_model(arch="mc3_18", weights="DEFAULT", device="cpu")
    assert not marker.exists()


def test_cli_predict_with_weights_full_form(torch_home, tmp_path, capsys):
    put_random_weights("r3d_18")
    frames = np.random.default_rng(0).integers(0, 256, (16, 72, 96, 3), dtype=np.uint8)
    video = write_video(tmp_path / "clip.mp4", frames, fps=15)
    code, out, err = run_cli(capsys, ["predict", video, "--arch", "r3d_18", "--weights",
                                      "R3D_18_Weights.KINETICS400_V1", "--json", "--device",
                                      "cpu", "--top", "3"])
    assert code == 0, err
    kinetics = set(torchvision.models.video.R3D_18_Weights.KINETICS400_V1.meta["categories"])
    assert len(json.loads(out)) == 3 and {p["class"] for p in json.loads(out)} <= kinetics


def test_cli_offline_is_one_error_and_a_nonzero_exit(torch_home, tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", np.zeros((4, 32, 32, 3), np.uint8), fps=8)
    code, out, err = run_cli(capsys, ["predict", video, "--arch", "swin3d_t", "--weights",
                                      "KINETICS400_V1", "--device", "cpu"])
    assert code == 2 and out == ""
    last = err.strip().splitlines()[-1]  # after torchvision's own "Downloading: ..." line
    assert last.startswith("error (checkpoint): ") and "swin3d_t-7615ae03.pth" in last
    assert str(torch_home / "hub" / "checkpoints") in last


@pytest.mark.parametrize("argv, says", [
    (["--weights", "DEFAULT"], "needs --arch"),
    (["--arch", "r3d_18", "--weights", "DEFAULT", "--checkpoint", "x.pt"], "not both"),
    (["--model", "motion", "--weights", "DEFAULT", "--arch", "r3d_18"], "no --model"),
    (["--hf", "some/model", "--arch", "r3d_18"], "--hf is given alone"),
])
def test_cli_refuses_mixed_model_arguments(argv, says, tmp_path, capsys):
    code, out, err = run_cli(capsys, ["predict", tmp_path / "none.mp4", *argv])
    assert code == 2 and says in err and err.startswith("error (parameter)")


def test_model_cards(torch_home):
    put_random_weights("r3d_18")
    from xai_core.models.cards import pretrained_card, spec_card

    card = pretrained_card("r3d_18", "KINETICS400_V1")
    assert (card.frames, card.height, card.width, card.classes) == (16, 112, 112, 400)
    assert card.params == 33371472 and card.status == "cached" and "15 fps" in card.sampling
    assert "r3d_18-b3b3357e.pth" in card.weights and "128×171" in card.resize
    other = pretrained_card("mvit_v2_s", "DEFAULT")
    assert other.status.startswith("downloaded on first use") and "short side to 256" in (
        other.resize)
    assert "1 class token" in other.explained_at
    assert spec_card(get_spec("swin3d_b")).params == 88048984


def test_cli_models_pretrained_and_card(torch_home, capsys):
    code, out, _ = run_cli(capsys, ["models", "--pretrained", "--json"])
    cards = json.loads(out)
    assert code == 0 and len(cards) == 10  # swin3d_b has two sets of weights
    assert {c["name"].split()[0] for c in cards} == set(VIDEO_ARCHS)
    assert all(c["classes"] == 400 and c["params"] for c in cards)
    code, out, _ = run_cli(capsys, ["models", "--card", "s3d", "--weights", "DEFAULT"])
    assert code == 0 and "128×224×224" in out and "s3d-d76dad2f.pth" in out


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["swin3d_t", "mvit_v2_s"])
def test_pretrained_transformers_load_and_run(arch, torch_home, spy):
    put_random_weights(arch)
    model = load_model(arch=arch, weights="DEFAULT", device="cpu")
    assert model.spec.is_transformer and model.num_classes == 400 and len(spy) == 1
    t = model.input.num_frames if arch.startswith("mvit") else 4  # MViT's grid is fixed
    x = torch.randn(1, 3, t, model.input.height, model.input.width)
    with torch.no_grad():
        assert model.module(x).shape == (1, 400)


def test_pretrained_does_not_import_at_cli_start():
    # the module itself imports no torchvision (only on use): listing methods stays fast
    assert "torchvision" not in pretrained.__dict__
