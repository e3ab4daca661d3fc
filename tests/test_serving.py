"""Serving the dashboard safely: configuration, uploads, the models folder, exports.

The audit behind these tests (which dashboard code touches the file system, and with
what path) is in docs/reliability.md, "Serving safely".
"""

from __future__ import annotations

import gc
import json
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    WORLD_ARCH,
    assert_views,
    errors,
    own_app,
    upload,
    upload_files,
)
from video_files import FullDiskWriter

from dashboard import export, resources
from dashboard.resources import UploadFolder, folder_path, safe_file_name
from dashboard.settings import Settings
from xai_core.errors import CheckpointError

try:
    from tomllib import loads as toml_loads
except ModuleNotFoundError:  # Python 3.10: the toml package Streamlit depends on
    from toml import loads as toml_loads

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- configuration
@pytest.fixture(scope="module")
def config() -> dict:
    return toml_loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))


def test_server_listens_on_localhost_only_by_default(config):
    assert config["server"]["address"] == "127.0.0.1"
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^ADDRESS\s*\?=\s*127\.0\.0\.1\s*$", make, re.M)
    assert "--server.address $(ADDRESS)" in make


def test_upload_limits_are_set_and_consistent(config):
    limit = config["server"]["maxUploadSize"]
    # the server's limit is the only one a hand-made request cannot skip: it must cover
    # the largest legitimate upload (a checkpoint) and no more
    assert limit == resources.MAX_CHECKPOINT_MB >= resources.MAX_VIDEO_MB


def test_no_telemetry_no_tracebacks_in_the_browser_and_protections_left_on(config):
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"
    server = config["server"]
    assert server.get("enableXsrfProtection", True) is True
    assert server.get("enableCORS", True) is True
    assert server.get("enableStaticServing", False) is False
    assert server.get("runOnSave", False) is False


# --------------------------------------------------------------------------- upload names
CRAFTED = [
    ("../../etc/passwd.mp4", "passwd.mp4"),
    ("/etc/passwd", "passwd"),
    ("..\\..\\windows\\evil.mp4", "evil.mp4"),
    ("C:\\Users\\me\\clip.mp4", "clip.mp4"),
    ("..", "upload"),
    (".hidden.mp4", "hidden.mp4"),
    ("nul\x00byte.mp4", "nul_byte.mp4"),
    ("vidéo 動画.mp4", "vidéo 動画.mp4"),
    ("<b onclick=x>clip</b>.mp4", "b_.mp4"),  # "/" is a separator: only "b>.mp4" is left
    ("a<b>|c?*:.mp4", "a_b__c___.mp4"),
    ("動" * 200 + ".mp4", "動" * 56 + ".mp4"),  # 60 characters, 172 bytes
]


@pytest.mark.parametrize("name,expected", CRAFTED, ids=[repr(n[:24]) for n, _ in CRAFTED])
def test_crafted_upload_names_cannot_leave_the_private_folder(name, expected):
    folder = UploadFolder()
    try:
        path = folder.store("video", name, b"data")
        assert path.name == expected == safe_file_name(name)
        assert len(path.name.encode()) <= 255
        assert path.resolve().is_relative_to(folder.path.resolve())
        assert path.read_bytes() == b"data"
        assert [p for p in folder.path.rglob("*") if p.is_file()] == [path]
    finally:
        folder.cleanup()
    assert not folder.path.exists()


def test_absolute_upload_name_writes_nothing_there(tmp_path):
    target = tmp_path / f"escaped-{uuid.uuid4().hex}.mp4"
    folder = UploadFolder()
    try:
        folder.store("video", str(target), b"data")
        folder.store("checkpoint", f"../../../../../../{target}", b"data")
        assert not target.exists()
    finally:
        folder.cleanup()


def test_upload_private_folder_is_owner_only_and_files_are_removed_when_replaced():
    folder = UploadFolder()
    try:
        assert (folder.path.stat().st_mode & 0o777) == 0o700
        a = folder.store("video", "a.mp4", b"1")
        b = folder.store("video", "b.mp4", b"2")
        assert not a.exists() and not a.parent.exists()  # replaced: file and its folder gone
        folder.discard("video")
        assert not b.exists() and list(folder.path.iterdir()) == []
    finally:
        folder.cleanup()


def test_failed_upload_write_leaves_no_half_file(monkeypatch):
    folder = UploadFolder()
    real_fdopen = os.fdopen

    def full_disk(fd, mode="r", *args, **kwargs):
        fh = real_fdopen(fd, mode, *args, **kwargs)

        return FullDiskWriter(fh, keep=3)

    try:
        monkeypatch.setattr(resources.os, "fdopen", full_disk)
        with pytest.raises(OSError, match="No space"):
            folder.store("video", "clip.mp4", b"0123456789")
        monkeypatch.undo()
        assert [p for p in folder.path.rglob("*") if p.is_file()] == []
        assert folder.get("video") is None
        # the next attempt writes the whole file (a half file under the final name would
        # have been taken for the upload: the name is the content's hash)
        path = folder.store("video", "clip.mp4", b"0123456789")
        assert path.read_bytes() == b"0123456789"
    finally:
        folder.cleanup()


def test_upload_folder_is_removed_when_the_session_goes():
    folder = UploadFolder()
    folder.store("video", "a.mp4", b"1")
    path = folder.path
    del folder
    gc.collect()
    assert not path.exists()


def test_ui_crafted_upload_name_stays_inside_and_the_session_cleans_up(world):
    at = own_app()
    upload(at, "../../etc/passwd.mp4", world.clip.read_bytes())
    assert_views(at)
    folder = at.session_state["_uploads"].path
    (stored,) = upload_files(at)
    assert stored.name == "passwd.mp4" and stored.resolve().is_relative_to(folder.resolve())
    assert "passwd.mp4" in " ".join(c.value for c in at.caption)
    # a bad file under a crafted name: the message names the cleaned name, nothing else
    upload(at, "../../../tmp/evil.mp4", b"not a video at all " * 20)
    assert "evil.mp4 is a text file" in errors(at)
    assert upload_files(at) == []  # removed on error
    del at
    gc.collect()
    assert not folder.exists()  # the session's folder goes with the session


# --------------------------------------------------------------------------- models folder
def test_models_folder_names_cannot_point_outside(world, tmp_path):
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"secret")
    (world.models / "link.pt").symlink_to(outside)
    try:
        assert folder_path("net.pt") == (world.models / "net.pt").resolve()
        for name in ("../outside.pt", str(outside), "link.pt", "../" * 10 + "etc/passwd",
                     "nope.pt"):
            with pytest.raises(CheckpointError, match="is not a file of the models folder"):
                folder_path(name)
    finally:
        (world.models / "link.pt").unlink()


def test_ui_settings_pointing_outside_the_models_folder_read_nothing(world, tmp_path,
                                                                    monkeypatch):
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"secret")
    read: list[str] = []
    real = resources.load_model
    monkeypatch.setattr(resources, "load_model", lambda *a, **k: (read.append(str(k.get(
        "checkpoint"))), real(*a, **k))[1])
    resources.load_own.clear()
    at = own_app()
    for name in (str(outside), "../outside.pt", "/etc/passwd"):
        settings = json.loads(Settings(model_source="own", arch=WORLD_ARCH, checkpoint=name,
                                       classes="../classes.txt").to_json())
        at.sidebar.file_uploader(key="settings_upload").set_value(
            ("s.json", json.dumps(settings).encode(), "application/json"))
        at.run()
        assert not at.exception
        # the sidebar only offers the folder's own files: the name falls back to one of them
        assert at.sidebar.selectbox(key="s_checkpoint").value == "net.pt"
        assert "Could not load the model" not in errors(at)
    assert read and all(Path(p).resolve().parent == world.models.resolve() for p in read)


# --------------------------------------------------------------------------- exports
def test_exports_are_built_in_temporary_folders_that_are_removed(world, tmp_path,
                                                                 monkeypatch):
    at = own_app()
    upload(at, "clip.mp4", world.clip.read_bytes())
    expl = at.session_state["_explanation"][1]
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    settings = Settings(methods=list(expl.methods), shown_method=next(iter(expl.methods)))
    from dashboard.display import scales_for

    zipped = export.npz_zip(expl)
    video = export.overlay_mp4(expl, settings, scales_for(expl, settings))
    assert zipped[:2] == b"PK" and video[4:8] == b"ftyp"
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    assert np.asarray(expl.frames).dtype == np.uint8
