"""The bad-input catalogue (issue 7), checkpoints and class names: refused at the CLI
and in the dashboard, and a malicious pickle never runs (see test_bad_input_video.py)."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    WORLD_ARCH,
    assert_one_line_error,
    errors,
    ids,
    own_app,
    run_cli,
    upload,
    upload_files,
)

from xai_core.models.bundled import small_c3d_spec
from xai_core.synthetic.world import CLASSES

pytest.importorskip("streamlit.testing.v1")

pytestmark = pytest.mark.usefixtures("one_thread")


class Payload:
    """Unpickling this runs a shell command that creates a file (a real malicious pickle)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@dataclasses.dataclass(frozen=True)
class BadModel:
    label: str
    checkpoint: Callable[[Path], object] | None  # what torch.save writes (None: raw bytes)
    says: str
    raw: bytes | None = None
    classes: str | None = None  # a class-names file used with the good checkpoint


def _good_state(num_classes: int = len(CLASSES)) -> dict:
    torch.manual_seed(0)
    return small_c3d_spec().build(num_classes).state_dict()


BAD_MODELS = [
    BadModel("another architecture's weights",
             lambda d: torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3)).state_dict(),
             r"does not fit this architecture: missing keys .*unexpected keys 0\.bias"),
    BadModel("a missing key", lambda d: dict(list(_good_state().items())[1:]),
             r"does not fit this architecture: missing keys features\.0\.weight"),
    BadModel("an extra key", lambda d: {**_good_state(), "extra.weight": torch.zeros(2)},
             r"does not fit this architecture: unexpected keys extra\.weight"),
    BadModel("a pickle that would run code", lambda d: {"state_dict": _good_state(),
                                                        "x": Payload(d / "pwned")},
             r"refers to the Python object posix\.system; .*could run code"),
    BadModel("a whole pickled model", lambda d: small_c3d_spec().build(3),
             r"refused because unpickling it could run code.*state_dict\(\)"),
    BadModel("a text file", None, r"is not a PyTorch checkpoint", raw=b"hello\n" * 20),
    BadModel("random bytes", None, r"is not a PyTorch checkpoint",
             raw=np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
    BadModel("class names disagree with the head (3 names, 8 outputs)", None,
             r"lists 3 classes but the checkpoint's head has 8 outputs", classes="a\nb\nc\n"),
    BadModel("an empty class-names file", None, r"class-names file is empty", classes=""),
    BadModel("a class named twice", None, r"repeats a name",
             classes="\n".join(["a", "a", "b", "c", "d", "e", "f", "g"])),
]


def make_bad_model(row: BadModel, d: Path) -> tuple[Path, Path | None]:
    """(checkpoint, class-names file or None) for a row, written into ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    ckpt, classes = d / "model.pt", None
    if row.classes is not None:
        torch.save(_good_state(), ckpt)
        classes = d / "names.txt"
        classes.write_text(row.classes)
    elif row.raw is not None:
        ckpt.write_bytes(row.raw)
    else:
        torch.save(row.checkpoint(d), ckpt)
    return ckpt, classes


def test_the_malicious_pickle_is_live():
    """The payload does run when loaded unsafely: the refusals below prove something."""
    d = Path(tempfile.mkdtemp())
    try:
        torch.save(Payload(d / "ran"), d / "evil.pt")
        torch.load(d / "evil.pt", weights_only=False)
        assert (d / "ran").exists()
    finally:
        shutil.rmtree(d)


@pytest.mark.parametrize("row", BAD_MODELS, ids=ids(BAD_MODELS))
def test_cli_refuses_bad_checkpoints_in_one_line(world, row, capfd, tmp_path):
    ckpt, classes = make_bad_model(row, tmp_path / "m")
    argv = ["predict", world.clip, "--arch", WORLD_ARCH, "--checkpoint", ckpt, "--device", "cpu"]
    code, out, err = run_cli(capfd, argv + (["--classes", classes] if classes else []))
    line = assert_one_line_error(code, out, err, "checkpoint", row.says)
    assert ckpt.name in line if classes is None else "class-names file" in line
    assert not (tmp_path / "m" / "pwned").exists()  # the pickle's code never ran


def test_ui_bad_checkpoints_show_the_message_and_the_app_recovers(world, tmp_path):
    at = own_app()
    assert not at.error and not at.exception
    for k, row in enumerate(BAD_MODELS):
        ckpt, classes = make_bad_model(row, tmp_path / f"m{k}")
        if classes is None:
            upload(at, ckpt.name, ckpt.read_bytes(), key="upload_checkpoint")
        else:
            upload(at, classes.name, classes.read_bytes(), key="upload_classes")
        assert not at.exception, (row.label, [e.value for e in at.exception])
        text = errors(at)
        assert "Could not load the model" in text and re.search(row.says, text), (row.label, text)
        assert ckpt.name in text if classes is None else "class-names file" in text
        assert "Traceback" not in text
        upload(at, "", None, key="upload_classes" if classes else "upload_checkpoint")
        assert not errors(at), (row.label, errors(at))  # back on the folder's good model
    assert not list(tmp_path.rglob("pwned"))
    assert upload_files(at) == []  # the refused uploads are gone with their widgets


