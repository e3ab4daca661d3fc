"""What the page remembers: settings, loaded models and clips, uploads, computations.

* :class:`Settings` is every choice that defines the current view. Widgets store their
  values under ``"s_<field>"`` in ``st.session_state``, so a settings JSON can be
  written from them and loaded back into them.
* Models are loaded once per process (``st.cache_resource``) and shared by all
  browser sessions; explanations run through the shared :class:`~dashboard.jobs.JobRunner`
  (one at a time, identical requests merged) and go through ``xai_core``'s result cache.
* Uploads are written to a private temporary folder of the session, removed when
  replaced and when the session ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from xai_core.decompose import DecompositionOptions
from xai_core.errors import CheckpointError, ParameterError
from xai_core.models.registry import LoadedModel, list_models, load_model

from .jobs import JobRunner

#: Video containers accepted by the uploader.
VIDEO_TYPES = ("mp4", "avi", "mov", "webm", "mkv")

#: Largest video upload (MB) and largest checkpoint upload (MB).
MAX_VIDEO_MB = 200
MAX_CHECKPOINT_MB = 1024

#: Methods explained on first load (those that exist are used).
DEFAULT_METHODS = ("dtd", "gradcam")

#: Folder of the user's own checkpoints and class-name files (optional).
MODELS_DIR_ENV = "XAI_MODELS_DIR"

#: Version of the settings JSON.
SETTINGS_VERSION = 1


@dataclass
class Settings:
    """Everything that defines the current view (what a settings JSON holds).

    ``target`` ``None`` explains the predicted class. ``checkpoint``/``classes`` are file
    names in the models folder, or names of uploaded files. ``upload`` is the name of
    an uploaded clip (the file itself is not part of the settings).
    """

    # model
    model_source: str = "bundled"  # bundled | own
    model: str = "motion"
    arch: str = "small-c3d"
    checkpoint: str | None = None
    classes: str | None = None
    # clip
    clip_source: str = "sample"  # sample | upload
    sample: str | None = None
    upload: str | None = None
    start: int = 0
    stride: int = 1
    # explanation
    target: int | None = None
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: methods explained without the spatial / temporal split (full and selective only)
    full_only: list[str] = field(default_factory=list)
    slice: str = "same"
    normalise: str = "none"
    sigma: float = 4.0
    sobel_border: str = "replicate"
    # display
    shown_method: str | None = None
    panel: str = "overlay"  # overlay | heatmap
    cmap: str = "bwr"
    alpha: float = 0.8
    gamma: float = 0.5
    grey: bool = True
    normalisation: str = "per-clip"
    selective: bool = False
    frame: int = 0

    def decomposed(self) -> list[str]:
        """The chosen methods that get the freeze-frame split (``explain(decompose=)``)."""
        return [m for m in self.methods if m not in self.full_only]

    def options(self) -> DecompositionOptions:
        return DecompositionOptions(slice=self.slice, normalise=self.normalise,
                                    sigma=float(self.sigma), sobel_border=self.sobel_border)

    def to_json(self) -> str:
        return json.dumps({"xai_dashboard_settings": SETTINGS_VERSION, **dataclasses.asdict(self)},
                          indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> Settings:
        """Parse a settings JSON; unknown or mistyped fields are a :class:`ParameterError`."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParameterError("the settings file is not valid JSON",
                                 hint="Load a file saved with 'Settings (JSON)'.") from exc
        if not isinstance(data, dict) or "xai_dashboard_settings" not in data:
            raise ParameterError("this JSON file does not hold dashboard settings",
                                 hint="Load a file saved with 'Settings (JSON)'.")
        data.pop("xai_dashboard_settings")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ParameterError(f"the settings file has unknown fields {unknown}",
                                 hint="It was written by another version; remove those fields.")
        base = cls()
        for key, value in data.items():
            default = getattr(base, key)
            if default is not None and value is not None and not _same_kind(default, value):
                raise ParameterError(f"setting {key!r} should be like {default!r}, got {value!r}")
        settings = cls(**data)
        settings.check_widget_values()
        return settings

    def check_widget_values(self) -> None:
        """:class:`ParameterError` for a value no sidebar widget can hold.

        A widget handed a value outside its options or range stops the whole page, and
        the value would stay in the session: a settings file from another version, or
        edited by hand, must be refused as a whole instead.
        """
        for name, choices in widget_choices().items():
            value = getattr(self, name)
            if value not in choices:
                raise ParameterError(f"setting {name!r} must be one of {list(choices)}, got "
                                     f"{value!r}", hint="Fix or remove it in the settings file.")
        stray = sorted(set(self.full_only) - set(self.methods))
        if stray:
            raise ParameterError(f"setting 'full_only' names methods that are not chosen: {stray}",
                                 hint="List only methods that are in 'methods'.")
        for name, (low, high) in WIDGET_RANGES.items():
            value = getattr(self, name)
            if value is not None and (value < low or (high is not None and value > high)):
                span = f"{low}..{high}" if high is not None else f"at least {low}"
                raise ParameterError(f"setting {name!r} must be {span}, got {value!r}",
                                     hint="Fix or remove it in the settings file.")

    @classmethod
    def from_session(cls) -> Settings:
        """The settings the widgets currently hold (defaults where a widget is absent)."""
        base = cls()
        values = {}
        for f in dataclasses.fields(cls):
            values[f.name] = st.session_state.get(widget_key(f.name), getattr(base, f.name))
        values["method_params"] = dict(st.session_state.get("method_params", {}))
        return cls(**values)


#: Numeric ranges of the sidebar's widgets (``None``: no upper bound known in advance).
WIDGET_RANGES: dict[str, tuple[float, float | None]] = {
    "start": (0, None), "stride": (1, None), "target": (0, None), "frame": (0, None),
    "sigma": (0.5, 8.0), "alpha": (0.0, 1.0), "gamma": (0.2, 1.0),
}


def widget_choices() -> dict[str, tuple]:
    """The options of the sidebar's fixed-choice widgets, by setting name."""
    from xai_core import render
    from xai_core.decompose import NORMALISATIONS, SLICES, SOBEL_BORDERS

    return {"model_source": ("bundled", "own"), "clip_source": ("sample", "upload"),
            "arch": tuple(architectures()), "slice": SLICES, "normalise": NORMALISATIONS,
            "sobel_border": SOBEL_BORDERS, "panel": ("overlay", "heatmap"),
            "cmap": render.DIVERGING_CMAPS + render.SEQUENTIAL_CMAPS,
            "normalisation": render.NORMALISATIONS}


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def widget_key(name: str) -> str:
    """Session-state key of the widget holding setting ``name``."""
    return f"s_{name}"


def param_key(method: str, param: str) -> str:
    """Session-state key of the widget holding a method's parameter."""
    return f"p_{method}_{param}"


def param_widget_value(value: Any) -> Any:
    """A parameter value as its widget holds it (tuples as comma-separated text)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in value)
    return value


def request_settings(settings: Settings) -> None:
    """Ask for ``settings`` to be applied at the start of the next run (before widgets exist)."""
    st.session_state["_pending_settings"] = settings


def apply_pending_settings() -> Settings | None:
    """Copy requested settings into the widget keys; call before any widget is drawn."""
    pending = st.session_state.pop("_pending_settings", None)
    if pending is None:
        return None
    for f in dataclasses.fields(Settings):
        if f.name == "method_params":
            st.session_state["method_params"] = dict(pending.method_params)
            for key in [k for k in st.session_state if str(k).startswith("p_")]:
                del st.session_state[key]  # parameters not in the file go back to defaults
            for method, values in pending.method_params.items():
                for pname, value in values.items():
                    st.session_state[param_key(method, pname)] = param_widget_value(value)
        elif f.name == "full_only":
            st.session_state[widget_key("full_only")] = list(pending.full_only)
            # the file's choice stands: not re-defaulted as if these methods were new
            st.session_state["_known_methods"] = list(pending.methods)
        else:
            st.session_state[widget_key(f.name)] = getattr(pending, f.name)
    return pending


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


@st.cache_resource(show_spinner=False, max_entries=8)
def load_bundled(name: str) -> LoadedModel:
    """A bundled model, loaded once per process and shared by all sessions."""
    return load_model(name)


@st.cache_resource(show_spinner=False, max_entries=8)
def load_own(arch: str, checkpoint: str, classes: str | None, _fingerprint: str) -> LoadedModel:
    """A user's model from files; ``_fingerprint`` (content hash) is the cache identity."""
    return load_model(arch=arch, checkpoint=checkpoint, classes=classes)


def file_fingerprint(*paths: str | Path | None) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p is None:
            h.update(b"-")
            continue
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


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


# --------------------------------------------------------------------------- computations
@st.cache_resource(show_spinner=False)
def job_runner() -> JobRunner:
    """The one runner of long computations shared by every session of this server."""
    return JobRunner()
