"""The model zoo and checkpoint loading: round trips, every refusal, input specs."""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest
import torch

from xai_core.errors import CheckpointError, ParameterError
from xai_core.models import registry
from xai_core.models.checkpoints import load_class_names
from xai_core.models.registry import get_spec, list_models, load_model, read_checkpoint
from xai_core.models.zoo import C3D_INPUT, KINETICS_INPUT
from xai_core.registry import Registry
from xai_core.video import load_clip

# Smallest input each architecture accepts (C3D's fc6 needs 16×112×112, S3D's pool 16×224).
ROUND_TRIP = {
    "small-c3d": (3, 8, 32, 32),
    "r3d_18": (3, 8, 32, 32),
    "mc3_18": (3, 8, 32, 32),
    "r2plus1d_18": (3, 8, 32, 32),
    "c3d": (3, 16, 112, 112),
    "s3d": (3, 16, 224, 224),
}


def save_random(arch: str, path, num_classes: int = 5, wrap=None) -> torch.nn.Module:
    torch.manual_seed(0)
    module = get_spec(arch).build(num_classes).eval()
    state = module.state_dict()
    torch.save(wrap(state) if wrap else state, path)
    return module


def test_zoo_lists_the_architectures():
    names = {m.name for m in list_models()}
    assert set(ROUND_TRIP) <= names and {"motion", "context-biased"} <= names


@pytest.mark.parametrize("arch", [
    pytest.param(a, marks=pytest.mark.slow) if a in ("c3d", "s3d") else a for a in ROUND_TRIP])
def test_checkpoint_round_trip_gives_identical_outputs(arch, tmp_path):
    ckpt = tmp_path / f"{arch}.pt"
    original = save_random(arch, ckpt)
    names = ["a", "b", "c", "d", "e"]
    loaded = load_model(arch=arch, checkpoint=ckpt, classes=names, device="cpu")
    assert loaded.class_names == names and loaded.num_classes == 5
    assert not loaded.module.training
    assert loaded.module is not original
    x = torch.randn(1, *ROUND_TRIP[arch], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(original(x), loaded.module(x))
    assert loaded.weights_hash == registry.state_dict_hash(original.state_dict())


def test_wrappers_and_module_prefix(tmp_path):
    for i, wrap in enumerate([
        lambda s: {"state_dict": s, "epoch": 3},
        lambda s: {"model": {f"module.{k}": v for k, v in s.items()}},
        lambda s: {f"module.{k}": v for k, v in s.items()},
    ]):
        ckpt = tmp_path / f"w{i}.pt"
        original = save_random("small-c3d", ckpt, wrap=wrap)
        loaded = load_model(arch="small-c3d", checkpoint=ckpt)
        assert loaded.weights_hash == registry.state_dict_hash(original.state_dict())
        assert loaded.class_names == [f"class {k}" for k in range(5)]  # from the head


def test_name_as_architecture_with_a_checkpoint(tmp_path):
    save_random("small-c3d", tmp_path / "s.pt", num_classes=3)
    assert load_model("small-c3d", checkpoint=tmp_path / "s.pt").num_classes == 3


def test_wrong_keys_are_named(tmp_path):
    save_random("small-c3d", tmp_path / "s.pt")
    with pytest.raises(CheckpointError, match=r"missing keys .*layer1.*unexpected keys .*features"):
        load_model(arch="r3d_18", checkpoint=tmp_path / "s.pt")


def test_wrong_shapes_are_named(tmp_path):
    save_random("r3d_18", tmp_path / "r.pt")  # MC3 has the same names, 2-D kernels in layer2+
    with pytest.raises(CheckpointError, match=r"wrong shapes layer2\.0\.conv1\.0\.weight"):
        load_model(arch="mc3_18", checkpoint=tmp_path / "r.pt")


def test_class_names_must_match_the_head(tmp_path):
    save_random("small-c3d", tmp_path / "s.pt", num_classes=5)
    classes = tmp_path / "classes.txt"
    classes.write_text("one\ntwo\nthree\n")
    with pytest.raises(CheckpointError, match="lists 3 classes but the checkpoint's head has 5"):
        load_model(arch="small-c3d", checkpoint=tmp_path / "s.pt", classes=classes)


def test_class_names_file_formats(tmp_path):
    f = tmp_path / "classInd.txt"
    f.write_text("# UCF style\n1 ApplyEyeMakeup\n2 Basketball\n\n3 Jump Rope\n")
    assert load_class_names(f) == ["ApplyEyeMakeup", "Basketball", "Jump Rope"]
    f.write_text("a\nb\na\n")
    with pytest.raises(CheckpointError, match="repeats"):
        load_class_names(f)
    f.write_text("\n# nothing\n")
    with pytest.raises(CheckpointError, match="empty"):
        load_class_names(f)
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_class_names(f)


@pytest.mark.parametrize("content", ["text", "random", "tensor", "empty-dict", "list", "missing"])
def test_not_a_checkpoint(tmp_path, content):
    p = tmp_path / "x.pt"
    if content == "text":
        p.write_text("hello")
    elif content == "random":
        p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif content == "tensor":
        torch.save(torch.zeros(3, 3), p)
    elif content == "empty-dict":
        torch.save({}, p)
    elif content == "list":
        torch.save([torch.zeros(2)], p)
    with pytest.raises(CheckpointError):
        read_checkpoint(p)


class _Payload:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    ckpt = tmp_path / "evil.pt"
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Payload(str(marker))}, ckpt)
    with pytest.raises(CheckpointError, match="could run code"):
        load_model(arch="small-c3d", checkpoint=ckpt)
    assert not marker.exists()
    # The payload is live: an unsafe load would have run it (proves the test has teeth).
    live = tmp_path / "live.pt"
    live_marker = tmp_path / "ran"
    torch.save(_Payload(str(live_marker)), live)
    torch.load(live, weights_only=False)
    assert live_marker.exists()


def test_whole_pickled_model_is_refused(tmp_path):
    torch.save(get_spec("small-c3d").build(3), tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="state_dict"):
        read_checkpoint(tmp_path / "m.pt")


def test_unknown_architecture_and_incomplete_arguments(tmp_path):
    with pytest.raises(ParameterError, match="unknown model 'nope'.*r3d_18"):
        load_model(arch="nope", checkpoint=tmp_path / "x.pt")
    with pytest.raises(ParameterError, match="needs both"):
        load_model(arch="r3d_18")
    with pytest.raises(ParameterError, match="no bundled weights"):
        load_model("r3d_18")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(arch="r3d_18", checkpoint=tmp_path / "missing.pt")


def test_missing_bundled_weights_say_how_to_get_them(tmp_path, monkeypatch):
    spec = dataclasses.replace(get_spec("motion"), name="ghost", weights=str(tmp_path / "g.pt"))
    monkeypatch.setitem(registry.MODELS, "ghost", spec)
    with pytest.raises(CheckpointError, match="make train"):
        load_model("ghost")


def test_registering_early_does_not_hide_the_zoo(monkeypatch):
    mine = dataclasses.replace(get_spec("small-c3d"), name="mine")
    # As in a fresh process: empty registry, zoo module not imported yet.
    monkeypatch.setattr(registry, "MODELS", Registry("model", modules=("xai_core.models.zoo",)))
    monkeypatch.delitem(sys.modules, "xai_core.models.zoo")
    monkeypatch.delattr(sys.modules["xai_core.models"], "zoo", raising=False)
    registry.register_model(mine)
    assert {"mine", "c3d", "r3d_18"} <= {m.name for m in registry.list_models()}


def test_half_precision_checkpoint_loads_as_float32(tmp_path):
    original = save_random("small-c3d", tmp_path / "h.pt",
                           wrap=lambda s: {k: v.half() if v.is_floating_point() else v
                                           for k, v in s.items()})
    loaded = load_model(arch="small-c3d", checkpoint=tmp_path / "h.pt")
    assert {p.dtype for p in loaded.module.parameters()} == {torch.float32}
    assert all(isinstance(p, torch.nn.Parameter) for p in loaded.module.parameters())
    w0, w1 = original.fc.weight, loaded.module.fc.weight
    assert torch.allclose(w0, w1, atol=1e-3) and not torch.equal(w0, w1)


def test_c3d_input_is_bgr_minus_mean_unscaled():
    low, high = C3D_INPUT.pixel_bounds()
    # channel 0 is blue (mean 90), channel 2 red (mean 102): the zβ box of the C3D port
    assert low.flatten().tolist() == [-90.0, -98.0, -102.0]
    assert high.flatten().tolist() == [165.0, 157.0, 153.0]
    red = np.zeros((16, 128, 171, 3), np.uint8)
    red[..., 0] = 255
    x = load_clip(red, C3D_INPUT).tensor
    assert x.shape == (1, 3, 16, 112, 112)
    assert torch.allclose(x[0, :, 0, 50, 50], torch.tensor([-90.0, -98.0, 153.0]))


def test_torchvision_input_spec():
    assert KINETICS_INPUT.resize == (128, 171) and KINETICS_INPUT.channel_order == "RGB"
    for name in ("r3d_18", "mc3_18", "r2plus1d_18"):
        spec = get_spec(name)
        assert spec.input is KINETICS_INPUT
        assert (spec.cam_layer, spec.classifier) == ("layer4", "fc")
        with torch.device("meta"):  # structure only: skip the random initialisation
            module = spec.build(4)
        assert isinstance(module.get_submodule("fc"), torch.nn.Linear)
        module.get_submodule("layer4")
