"""What the page loads: models (once per process), clips, the models folder and uploads.

* Models are loaded once per process (``st.cache_resource``) and shared by all browser
  sessions, keyed by the *content* of the checkpoint and class-names files, so a class
  list uploaded after the checkpoint gives a model with those names.
* Uploads are written to a private temporary folder of the session, removed when
  replaced and when the session ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from xai_core.errors import CheckpointError
from xai_core.hashing import file_hash, json_hash
from xai_core.models.registry import LoadedModel, get_spec, list_models, load_model
from xai_core.models.spec import InputSpec
from xai_core.video.clip import Clip, load_clip

from . import real_models
from .samples import sample_masks

if TYPE_CHECKING:
    from .settings import Settings

#: Video containers accepted by the uploader.
VIDEO_TYPES = ("mp4", "avi", "mov", "webm", "mkv")

#: Largest video upload (MB) and largest checkpoint upload (MB).
MAX_VIDEO_MB = 200
MAX_CHECKPOINT_MB = 1024

#: Folder of the user's own checkpoints and class-name files (optional).
MODELS_DIR_ENV = "XAI_MODELS_DIR"

#: Model sources (bundled, own, pretrained, hf), for the settings' checks.
MODEL_SOURCES = tuple(real_models.SOURCES)


# --------------------------------------------------------------------------- models
def bundled_model_names() -> list[str]:
    """Bundled models (those whose spec names a weights file)."""
    return [s.name for s in list_models() if s.weights]


def architectures() -> list[str]:
    """Architectures a user's own checkpoint can be loaded into."""
    return [s.name for s in list_models() if not s.weights]


def models_dir() -> Path | None:
    """The configured folder of own checkpoints (``$XAI_MODELS_DIR``), if it exists."""
    value = os.environ.get(MODELS_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


def folder_files(suffixes: tuple[str, ...]) -> list[str]:
    """File names in the models folder with one of ``suffixes``, sorted."""
    folder = models_dir()
    if folder is None:
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def folder_path(name: str | None) -> Path | None:
    """A file of the models folder by name (never outside it)."""
    folder = models_dir()
    if folder is None or not name:
        return None
    path = (folder / name).resolve()
    if path.parent != folder.resolve() or not path.is_file():
        raise CheckpointError(f"{name!r} is not a file of the models folder",
                              hint=f"Put it in {folder}.")
    return path


@st.cache_resource(show_spinner=False, max_entries=8)
def load_bundled(name: str) -> LoadedModel:
    """A bundled model, loaded once per process and shared by all sessions."""
    return load_model(name)


@st.cache_resource(show_spinner=False, max_entries=8)
def load_own(arch: str, checkpoint: str, classes: str | None, fingerprint: str) -> LoadedModel:
    """A user's model from files, cached by ``fingerprint`` (:func:`file_fingerprint` of the
    checkpoint *and* the class names) as well as by the paths."""
    return load_model(arch=arch, checkpoint=checkpoint, classes=classes)


def file_fingerprint(*paths: str | Path | None) -> str:
    """Identity of files by content, each hashed on its own (``None``: no file)."""
    return json_hash([None if p is None else file_hash(p) for p in paths])


def model_chosen(settings: Settings) -> bool:
    """Whether there is a model to load (an own model needs a checkpoint, a Hugging Face
    model an id or folder)."""
    if settings.model_source in real_models.EXTERNAL:
        return real_models.chosen(settings.model_source)
    return settings.model_source == "bundled" or bool(settings.checkpoint)


def resolve_model(settings: Settings) -> LoadedModel:
    """The bundled model, the user's architecture + checkpoint (+ class names), or a
    pretrained torchvision or Hugging Face model (:mod:`dashboard.real_models`)."""
    if settings.model_source in real_models.EXTERNAL:
        return real_models.resolve(settings.model_source, settings.arch)
    if settings.model_source == "bundled":
        return load_bundled(settings.model)
    if not settings.checkpoint:
        raise CheckpointError("no checkpoint chosen",
                              hint="Upload a .pt/.pth state dict or pick one from the "
                                   "models folder.")
    ckpt = _own_file("checkpoint", settings.checkpoint)
    classes = _own_file("classes", settings.classes) if settings.classes else None
    return load_own(settings.arch, str(ckpt), None if classes is None else str(classes),
                    file_fingerprint(ckpt, classes))


def input_spec(settings: Settings) -> InputSpec:
    """The input format of the chosen model, known before (and without) loading it (a
    Hugging Face model's once it is loaded; the bundled default until then)."""
    if settings.model_source in real_models.EXTERNAL:
        return real_models.input_spec(settings.model_source, settings.arch,
                                      get_spec(settings.model).input)
    name = settings.model if settings.model_source == "bundled" else settings.arch
    return get_spec(name).input


def _own_file(slot: str, name: str) -> Path:
    if name.startswith("upload:"):
        path = uploads().get(slot)
        if path is None:
            raise CheckpointError(f"the uploaded {slot} file is gone", hint="Upload it again.")
        return path
    return folder_path(name)


# --------------------------------------------------------------------------- clips
@st.cache_resource(show_spinner=False, max_entries=16)
def _cached_clip(path: str, mtime_ns: int, size: int, start: int, stride: int, spec_key: str,
                 name: str, _spec: InputSpec) -> Clip:
    return load_clip(path, _spec, start=start, stride=stride, name=name)


def resolve_clip(path: Path, model: LoadedModel, settings: Settings) -> Clip:
    """The clip the model sees: the chosen window of the video, read once per process."""
    stat = path.stat()
    name = settings.upload if settings.clip_source == "upload" and settings.upload else path.name
    return _cached_clip(str(path), stat.st_mtime_ns, stat.st_size, int(settings.start),
                        int(settings.stride), json.dumps(model.input.to_dict()), name, model.input)


def clip_masks(settings: Settings, clip: Clip) -> dict[str, np.ndarray] | None:
    """Ground truth of a sample clip on the clip's frames (None for uploads)."""
    if settings.clip_source != "sample" or not settings.sample:
        return None
    return sample_masks(settings.sample, clip.indices, clip.frames.shape[1:3])


# --------------------------------------------------------------------------- uploads
class UploadFolder:
    """A private temporary folder of one browser session, deleted with the session."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="xai-dashboard-"))
        os.chmod(self.path, 0o700)
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)
        self._files: dict[str, Path] = {}  # slot (video, checkpoint, classes) → file

    def store(self, slot: str, name: str, data: bytes) -> Path:
        """Write ``data`` for ``slot`` (replacing and deleting its previous file).

        The file goes to ``<slot>-<content hash>/<safe name>``: of the uploaded ``name``
        only a cleaned last component is used (:func:`safe_file_name`), so no name can
        reach outside this folder, yet messages about the file show the user's name.
        Written to a temporary file and renamed: a failed write (disk full) never leaves
        a half file under the final name.
        """
        digest = hashlib.sha256(data).hexdigest()[:16]
        folder = self.path / f"{slot}-{digest}"
        path = folder / safe_file_name(name)
        old = self._files.get(slot)
        if old is not None and old != path:
            _remove(old)
        if not path.exists():
            folder.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        self._files[slot] = path
        return path

    def get(self, slot: str) -> Path | None:
        path = self._files.get(slot)
        return path if path is not None and path.exists() else None

    def discard(self, slot: str) -> None:
        path = self._files.pop(slot, None)
        if path is not None:
            _remove(path)

    def cleanup(self) -> None:
        self._finalizer()


def safe_file_name(name: str, max_chars: int = 60) -> str:
    """The last component of an uploaded file name, safe to create in a folder.

    Folders ("../", "C:\\", "/etc/") are dropped, characters other than letters, digits
    (any script), ``.``, ``-``, ``_`` and space become ``_``, leading dots go (no hidden
    files, never ``..``), and the length is capped (keeping the extension) so that even a
    name in a 4-byte script fits a file system's 255 bytes.
    """
    base = re.split(r"[\\/]", str(name))[-1]
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .")
    if len(base) > max_chars:
        stem, dot, ext = base.rpartition(".")
        ext = ext[:10] if dot and stem else ""
        base = base[: max_chars - len(ext) - 1] + "." + ext if ext else base[:max_chars]
    return base or "upload"


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # its content-hash folder, when now empty
        path.parent.rmdir()


def uploads() -> UploadFolder:
    """This session's upload folder (created on first use)."""
    folder = st.session_state.get("_uploads")
    if folder is None:
        folder = UploadFolder()
        st.session_state["_uploads"] = folder
    return folder
