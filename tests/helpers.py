"""Plain helpers shared by the tests (fixtures built on them are in ``conftest.py``).

* tiny models, clips and test methods: nets of a few hundred weights on 8×32×32 clips
  whose explanations have known answers or run in milliseconds;
* the small C3D registered under a test name, with random weights and class names in a
  folder, and a "world" around it (models folder, private cache, a good clip);
* the CLI run in-process and the dashboard driven by ``streamlit.testing`` (AppTest);
* files: a good clip, random torchvision weights where its weights API looks, the
  records of an evaluation (odd video files and a full disk: :mod:`video_files`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from torch import nn

from xai_core import cache as cache_mod
from xai_core.cache import ResultCache
from xai_core.cli import main
from xai_core.methods.base import METHODS, Attribution, Method
from xai_core.models import registry
from xai_core.models.bundled import small_c3d_spec
from xai_core.models.registry import LoadedModel, wrap_module
from xai_core.models.spec import InputSpec, ModelSpec
from xai_core.synthetic.world import CLASSES, WorldConfig, render_clip
from xai_core.video import write_video

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
TIMEOUT = 240  # seconds per AppTest script run, generous for a loaded 2-core machine

T, H, W, K = 8, 32, 32, 4
#: 8×32×32 clips: every tiny net here, and the small C3D of the CLI and dashboard tests.
TINY_INPUT = InputSpec(num_frames=T, height=H, width=W, mean=(0.45,) * 3, std=(0.225,) * 3)


# --------------------------------------------------------------------------- tiny models
class TinyLinear(nn.Module):
    """logits = W · x + b: relevance x·W[target] is its exact (conservative) explanation."""

    def __init__(self, k: int = K) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * T * H * W, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class TinyC3D(nn.Module):
    """Two 3×3×3 convs, global average pool, linear head: a real (if tiny) 3D CNN."""

    def __init__(self, k: int = K, temporal_kernel: int = 3) -> None:
        super().__init__()
        kt = temporal_kernel
        self.features = nn.Sequential(
            nn.Conv3d(3, 4, (kt, 3, 3), padding=(kt // 2, 1, 1)), nn.ReLU(),
            nn.MaxPool3d((1, 2, 2)),
            nn.Conv3d(4, 6, (kt, 3, 3), padding=(kt // 2, 1, 1)), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(6, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.features(x))))


def tiny_spec(name: str = "tiny") -> ModelSpec:
    return ModelSpec(name=name, build=lambda n: TinyC3D(n), input=TINY_INPUT,
                     description="tiny test net", cam_layer="features.4", classifier="fc",
                     default_num_classes=K)


def tiny_model(seed: int = 0, temporal_kernel: int = 3) -> LoadedModel:
    torch.manual_seed(seed)
    return wrap_module(TinyC3D(K, temporal_kernel), tiny_spec(), device="cpu")


def linear_model(seed: int = 0) -> LoadedModel:
    torch.manual_seed(seed)
    spec = ModelSpec(name="tiny-linear", build=lambda n: TinyLinear(n), input=TINY_INPUT,
                     description="linear test net", cam_layer="fc", classifier="fc",
                     default_num_classes=K)
    return wrap_module(TinyLinear(K), spec, device="cpu")


def random_clip(seed: int = 1, t: int = T) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, t, H, W, generator=g)


def static_clip(seed: int = 1) -> torch.Tensor:
    return random_clip(seed)[:, :, :1].expand(-1, -1, T, -1, -1).contiguous()


# --------------------------------------------------------------------------- test methods
def stub_method(name: str, description: str, **attrs) -> Callable[[Callable], type[Method]]:
    """Make a test :class:`Method` (family "gradient") of ``attribute(model, x, target)``.

    The decorated function's name and docstring become the class's; ``attrs`` are further
    class attributes (``has_raw``, ``default_batch_size``).
    """

    def make(attribute: Callable) -> type[Method]:
        def _attribute(self, model, x, target, progress=None):
            return attribute(model, x, target)

        namespace = {"__doc__": attribute.__doc__, "__module__": attribute.__module__,
                     "name": name, "description": description, "family": "gradient",
                     "_attribute": _attribute, **attrs}
        return type(Method)(attribute.__name__, (Method,), namespace)

    return make


@stub_method("test-input-x-weight", "input × weight of a linear model (test)", has_raw=True)
def InputTimesWeight(model, x, target):
    """Exact relevance of a linear model: x · W[target] summed over colour channels."""
    w = model.module.fc.weight[target].view(x.shape)
    raw = (x * w).detach()
    return Attribution(raw.sum(1), raw)


@stub_method("test-gradient-x-input", "gradient × input (test)", default_batch_size=3)
def GradientTimesInput(model, x, target):
    """Plain autograd gradient × input (test stand-in for any gradient method)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = model.module(x)
        out.gather(1, target.view(-1, 1)).sum().backward()
    raw = (x.grad * x).detach()
    return Attribution(raw.sum(1), raw)


GXI_NAME = GradientTimesInput.name

#: Cheap settings so that every method runs in a second or two on the tiny net.
CHEAP_PARAMS = {
    "integrated-gradients": {"steps": 4},
    "smoothgrad": {"samples": 2},
    "occlusion": {"window": (4, 16, 16), "stride": (4, 16, 16)},
    "extremal-perturbation": {"iterations": 3, "areas": (0.1,)},
}


@contextlib.contextmanager
def methods_registered(*classes: type[Method]) -> Iterator[dict[str, type[Method]]]:
    """Register test methods for the duration of the block."""
    added = {cls.name: cls for cls in classes}
    METHODS.update(added)
    try:
        yield added
    finally:
        for name in added:
            METHODS.pop(name, None)


# --------------------------------------------------------------------------- small C3D
@contextlib.contextmanager
def registered_small_c3d(name: str) -> Iterator[ModelSpec]:
    """The small C3D on 8×32×32 clips (each forward ~20× cheaper), registered as ``name``."""
    spec = dataclasses.replace(small_c3d_spec(name), input=TINY_INPUT)
    registry.register_model(spec)
    try:
        yield spec
    finally:
        registry.MODELS.pop(name, None)


def write_model_files(d: Path, spec: ModelSpec, checkpoint: str = "net.pt",
                      logit_gain: float | None = None) -> tuple[Path, Path]:
    """Random weights (seed 0) for the synthetic classes and their ``classes.txt``, in ``d``.

    ``logit_gain`` multiplies the head's weights (spreads the logits: no near-tie).
    """
    torch.manual_seed(0)
    module = spec.build(len(CLASSES))
    if logit_gain is not None:
        with torch.no_grad():
            module.fc.weight.mul_(logit_gain)
    torch.save(module.state_dict(), d / checkpoint)
    (d / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return d / checkpoint, d / "classes.txt"


def write_cli_files(d: Path, spec: ModelSpec, logit_gain: float | None = None) -> dict[str, Path]:
    """The model files (:func:`write_model_files`) and a clip of class 0, in ``d``."""
    ckpt, classes = write_model_files(d, spec, logit_gain=logit_gain)
    video = write_video(d / "clip.mp4", render_clip(3, label=0).frames, fps=8)
    return {"ckpt": ckpt, "classes": classes, "video": video, "dir": d}


def good_clip(d: Path, name: str = "clip.mp4", frames: int = 12) -> Path:
    clip = render_clip(1, label=1, config=WorldConfig(size=48, num_frames=frames)).frames
    return write_video(d / name, clip, fps=8)


#: The architecture name of the ``world`` fixture's model.
WORLD_ARCH = "tiny-c3d-bad-input-test"
CHEAP = "gradient"  # the cheapest method: rows are about inputs, not about methods


@dataclasses.dataclass
class World:
    arch: str
    root: Path
    models: Path
    videos: Path
    cache: Path
    ckpt: Path
    classes: Path
    clip: Path

    def own(self) -> list[str]:
        return ["--arch", self.arch, "--checkpoint", str(self.ckpt), "--classes",
                str(self.classes), "--device", "cpu"]

    def cache_entries(self) -> list[Path]:
        return sorted(self.cache.rglob("*.val"))


@contextlib.contextmanager
def model_world(root: Path, arch: str, checkpoint: str = "net.pt") -> Iterator[World]:
    """The small C3D registered as ``arch``, its weights in ``root/models``, a good clip in
    ``root/videos``; models folder, cache folder and default cache point into ``root``."""
    models, videos = root / "models", root / "videos"
    models.mkdir()
    videos.mkdir()
    with registered_small_c3d(arch) as spec:
        ckpt, classes = write_model_files(models, spec, checkpoint)
        w = World(arch, root, models, videos, root / "cache", ckpt, classes, good_clip(videos))
        mp = pytest.MonkeyPatch()
        mp.setenv("XAI_MODELS_DIR", str(models))
        mp.setenv("XAI_CACHE_DIR", str(w.cache))
        mp.setattr(cache_mod, "_default", ResultCache(w.cache))  # the CLI's and the app's cache
        try:
            yield w
        finally:
            mp.undo()


# --------------------------------------------------------------------------- CLI
def run_cli(capture, argv: list) -> tuple[int, str, str]:
    """The CLI in-process: exit code, stdout, stderr (``capture``: capsys or capfd)."""
    code = main([str(a) for a in argv])
    out, err = capture.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, kind: str, says: str) -> str:
    """Exit 2, nothing on stdout, exactly one line on stderr: ``error (<kind>): ...``."""
    assert "Traceback" not in err, err
    lines = [ln for ln in re.split(r"[\r\n]+", err) if ln.strip()]
    assert code == 2 and out == "", (code, out, err)
    assert len(lines) == 1, err  # no decoder noise, no progress bar left behind
    assert lines[0].startswith(f"error ({kind}): "), lines[0]
    assert re.search(says, lines[0]), lines[0]
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []


# --------------------------------------------------------------------------- dashboard
def own_model_app(arch: str, methods: Iterable[str], checkpoint: str | None = None,
                  **state) -> AppTest:
    """The app on ``arch`` from the models folder, clip source "upload", nothing uploaded;
    ``state``: further widget values."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["s_model_source"] = "own"
    at.session_state["s_arch"] = arch
    if checkpoint is not None:
        at.session_state["s_checkpoint"] = checkpoint
    at.session_state["s_classes"] = "classes.txt"
    at.session_state["s_clip_source"] = "upload"
    at.session_state["s_methods"] = list(methods)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    return at


def own_app(*methods: str) -> AppTest:
    """The app on the ``world`` fixture's model, nothing uploaded."""
    return own_model_app(WORLD_ARCH, methods or (CHEAP,), checkpoint="net.pt")


def choose_upload(at: AppTest, name: str, data: bytes | None, key: str = "upload_video",
                  mime: str = "application/octet-stream") -> AppTest:
    """Put a file in (``data`` None: clear) an upload widget, without running the script."""
    at.sidebar.file_uploader(key=key).set_value(None if data is None else (name, data, mime))
    return at


def upload(at: AppTest, name: str, data: bytes | None, key: str = "upload_video",
           mime: str = "application/octet-stream") -> AppTest:
    return choose_upload(at, name, data, key, mime).run()


def errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def upload_files(at: AppTest) -> list[Path]:
    """Every file in the session's private upload folder (any depth)."""
    folder = at.session_state["_uploads"].path
    return sorted(p for p in folder.rglob("*") if p.is_file())


def assert_healthy(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, errors(at)


def assert_views(at: AppTest) -> None:
    """Healthy, with the explanation's main views."""
    assert_healthy(at)
    heads = {h.value for h in at.subheader}
    assert {"Side by side", "Relevance per frame", "Predictions"} <= heads, heads


def dashboard_env(factory: Any, folder: str, tiny: str, *, bad_video: bool = False
                  ) -> Iterator[Path]:
    """A models folder with a random small C3D for 8×32×32 clips registered as ``tiny``,
    and a test video (plus a file that is not a video): for a module-scoped fixture."""
    root = factory.mktemp(folder)
    with model_world(root, tiny, checkpoint="tiny.pt"):
        good_clip(root, frames=8)
        if bad_video:
            (root / "bad.mp4").write_bytes(b"definitely not a video " * 64)
        yield root


# --------------------------------------------------------------------------- files
def ids(rows) -> list[str]:
    """Test ids of catalogue rows: their labels."""
    return [r.label for r in rows]


def put_random_weights(arch: str, weights: str = "DEFAULT", seed: int = 0) -> Path:
    """Random weights of torchvision's ``arch`` where its weights API looks for the file of
    ``weights`` (under ``$TORCH_HOME/hub/checkpoints``, torchvision's exact file name):
    the offline stand-in for a download. Returns the file."""
    from xai_core.models.pretrained import resolve_weights, weights_file

    member = resolve_weights(arch, weights)
    torch.manual_seed(seed)
    state = registry.get_spec(arch).build(len(member.meta["categories"])).state_dict()
    path = weights_file(member)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def counting(method: Method) -> tuple[Method, list[int]]:
    """The method, recording the clips of every pass it runs (its ``_attribute`` spied)."""
    sizes: list[int] = []
    inner = method._attribute

    def spy(model: LoadedModel, x: torch.Tensor, target: torch.Tensor,
            progress: Any = None) -> Attribution:
        sizes.append(x.shape[0])
        return inner(model, x, target, progress)

    method._attribute = spy  # type: ignore[method-assign]
    return method, sizes


def evaluation_records(out: Path) -> dict[str, dict]:
    """The per-clip records of an evaluation folder, by clip id, without the fields that
    differ between two runs of the same work (time taken, traceback text)."""
    import json

    recs = {}
    for p in sorted((out / "records").glob("*.json")):
        r = json.loads(p.read_text())
        recs[r["clip_id"]] = {k: v for k, v in r.items() if k not in ("seconds", "traceback")}
    return recs

