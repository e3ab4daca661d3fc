"""What defines the current view: :class:`Settings`, its JSON file, its link, the widget keys.

Widgets store their values under ``"s_<field>"`` in ``st.session_state`` (the
decomposition options under ``"s_<option>"``, e.g. ``s_sigma``), so a settings JSON can
be written from them and loaded back into them. Method parameters live in one session
store, ``st.session_state["method_params"]``, validated by the methods themselves
(:func:`checked_params`).

The shareable link (:mod:`dashboard.link`) uses the JSON's mapping (:meth:`Settings.flat`)
and its checks (:func:`same_kind`, :func:`widget_choices`, :data:`WIDGET_RANGES`, the
core's own).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from xai_core import render
from xai_core.decompose import DEFAULT_OPTIONS, DecompositionOptions
from xai_core.errors import ParameterError
from xai_core.methods.base import METHODS, get_method

from .resources import MODEL_SOURCES, architectures

#: How the panels of one method share a colour scale (``scale_scope``):
#: one scale for full, spatial and temporal (the default: evidence 60× weaker looks 60×
#: weaker), or each panel its own (shows the pattern of a weak map).
SCALE_SCOPES = {"method": "same scale in all panels", "panel": "each panel its own scale"}

#: What gets full colour (``scale_statistic``): see
#: :data:`xai_core.render.SCALE_STATISTICS`. A high percentile of the non-zero |R| by
#: default, so that a few extreme voxels do not leave a gradient map almost invisible.
STATISTIC_LABELS = {"p99.5": "99.5th percentile of |R| (robust)", "max": "largest |R|",
                    "p99": "99th percentile of |R|", "p95": "95th percentile of |R|"}

DEFAULT_SCOPE, DEFAULT_STATISTIC = "method", "p99.5"

#: Which class a second model explains: the first model's, or its own prediction.
COMPARE_TARGETS = ("same", "own")

#: Methods explained on first load (those that exist are used).
DEFAULT_METHODS = ("dtd", "gradcam")

#: Version of the settings JSON: 2 nests the decomposition options under ``options``
#: (version 1 had them as flat keys, still read).
SETTINGS_VERSION = 2

#: Fields of the core's :class:`~xai_core.decompose.DecompositionOptions` (their widgets
#: are keyed ``s_<option>`` like the settings', so the names must never meet).
OPTION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(DecompositionOptions))

#: Settings files of version 1 held these options as flat keys, and the display toggle
#: ``show_selective`` as ``selective``.
V1_OPTIONS = ("slice", "normalise", "sigma", "sobel_border")
V1_RENAMED = {"selective": "show_selective"}

#: Session key of the one store of method parameters (``{method: {param: value}}``).
METHOD_PARAMS = "method_params"

#: "Class to explain" value for the predicted class (a selectbox holding None looks empty).
PREDICTED = -1

#: Session key of the model and clip the chosen target belongs to.
TARGET_FOR = "_target_for"


@dataclass
class Settings:
    """Everything that defines the current view (what a settings JSON holds).

    ``target`` ``None`` explains the predicted class. ``checkpoint``/``classes`` are file
    names in the models folder, or names of uploaded files. ``upload`` is the name of
    an uploaded clip (the file itself is not part of the settings). ``options`` are the
    core's decomposition options, as they are.
    """

    # model
    model_source: str = "bundled"  # bundled | own | pretrained | hf
    model: str = "motion"
    arch: str = "small-c3d"
    checkpoint: str | None = None
    classes: str | None = None
    #: torchvision weights of ``arch`` (source "pretrained"): DEFAULT or the enum member
    weights: str = "DEFAULT"
    #: Hugging Face hub id or save_pretrained folder (source "hf")
    hf: str = ""
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
    options: DecompositionOptions = DEFAULT_OPTIONS
    # display
    shown_method: str | None = None
    panel: str = "overlay"  # overlay | heatmap
    cmap: str = "bwr"
    alpha: float = 0.8
    gamma: float = 0.5
    grey: bool = True
    normalisation: str = "per-clip"
    #: one colour scale for a method's panels ("method") or each its own ("panel")
    scale_scope: str = DEFAULT_SCOPE
    #: the |relevance| drawn at full colour (a robust percentile, or the largest)
    scale_statistic: str = DEFAULT_STATISTIC
    #: the motion panel shows the selective map instead of the temporal one
    show_selective: bool = False
    frame: int = 0
    # a second model on the same clip (a bundled one), explaining the same class or its own
    compare: bool = False
    compare_model: str | None = None
    compare_target: str = "same"  # same | own

    def decomposed(self) -> list[str]:
        """The chosen methods that get the freeze-frame split (the request's ``decompose``)."""
        return [m for m in self.methods if m not in self.full_only]

    def params(self) -> dict[str, dict[str, Any]]:
        """Parameters of the chosen methods only (the request's ``method_params``)."""
        return {m: dict(p) for m, p in self.method_params.items() if m in self.methods and p}

    def to_json(self) -> str:
        return json.dumps({"xai_dashboard_settings": SETTINGS_VERSION,
                           **dataclasses.asdict(self)}, indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> Settings:
        """Parse a settings JSON (this version's or the flat one of version 1); unknown or
        mistyped fields are a :class:`ParameterError`."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParameterError("the settings file is not valid JSON",
                                 hint="Load a file saved with 'Settings (JSON)'.") from exc
        if not isinstance(data, dict) or "xai_dashboard_settings" not in data:
            raise ParameterError("this JSON file does not hold dashboard settings",
                                 hint="Load a file saved with 'Settings (JSON)'.")
        data.pop("xai_dashboard_settings")
        for old, new in V1_RENAMED.items():
            if old in data and new not in data:
                data[new] = data.pop(old)
        options = _options(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ParameterError(f"the settings file has unknown fields {unknown}",
                                 hint="It was written by another version; remove those fields.")
        base = cls()
        for key, value in data.items():
            if not same_kind(getattr(base, key), value, FIELD_TYPES.get(key)):
                raise ParameterError(f"setting {key!r} should be like {getattr(base, key)!r}, "
                                     f"got {value!r}")
        settings = cls(**data, options=options)
        settings.check_widget_values()
        for method, params in settings.method_params.items():
            if method not in METHODS or not isinstance(params, dict):
                raise ParameterError(f"setting 'method_params' must map known methods to their "
                                     f"parameters, got {method!r}: {params!r}",
                                     hint="Fix or remove it in the settings file.")
            get_method(method, **params)  # the method refuses what it cannot take
        return settings

    def check_widget_values(self) -> None:
        """:class:`ParameterError` for a value no sidebar widget can hold.

        A widget handed a value outside its options or range stops the whole page, and
        the value would stay in the session: a settings file from another version, or
        edited by hand, must be refused as a whole instead. (The decomposition options
        and method parameters are checked by the core.)
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

    def flat(self) -> dict[str, Any]:
        """Every setting by name, the decomposition options flat (the link's mapping)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("options", METHOD_PARAMS)}
        return out | {name: getattr(self.options, name) for name in OPTION_FIELDS}

    @classmethod
    def from_session(cls) -> Settings:
        """The settings the widgets currently hold (defaults where a widget is absent)."""
        base = cls()
        values = {f.name: st.session_state.get(widget_key(f.name), getattr(base, f.name))
                  for f in dataclasses.fields(cls) if f.name not in ("options", METHOD_PARAMS)}
        values["options"] = DecompositionOptions(**{
            name: st.session_state.get(widget_key(name), getattr(DEFAULT_OPTIONS, name))
            for name in OPTION_FIELDS})
        values[METHOD_PARAMS] = dict(st.session_state.get(METHOD_PARAMS, {}))
        if values["target"] == PREDICTED:
            values["target"] = None
        return cls(**values)


#: Numeric ranges of the sidebar's widgets that the core does not check (display and
#: clip window; ``None``: no upper bound known in advance). The decomposition options
#: and method parameters have their ranges in the core.
WIDGET_RANGES: dict[str, tuple[float, float | None]] = {
    "start": (0, None), "stride": (1, None), "target": (0, None), "frame": (0, None),
    "alpha": (0.0, 1.0), "gamma": (0.2, 1.0),
}

#: The selective threshold's slider (a convenient span; the core accepts (0, 100]).
SIGMA_SLIDER = (0.5, 8.0)

#: Fields whose default is ``None``: the type a value must have when it is not ``None``.
FIELD_TYPES: dict[str, type] = {"checkpoint": str, "classes": str, "sample": str,
                                  "upload": str, "target": int, "shown_method": str,
                                 "compare_model": str}


def widget_choices() -> dict[str, tuple]:
    """The options of the sidebar's fixed-choice widgets, by setting name."""
    return {"model_source": MODEL_SOURCES, "clip_source": ("sample", "upload"),
            "arch": tuple(architectures()), "panel": ("overlay", "heatmap"),
            "cmap": render.DIVERGING_CMAPS + render.SEQUENTIAL_CMAPS,
            "normalisation": render.NORMALISATIONS, "scale_scope": tuple(SCALE_SCOPES),
            "scale_statistic": tuple(STATISTIC_LABELS), "compare_target": COMPARE_TARGETS}


def _options(data: dict[str, Any]) -> DecompositionOptions:
    """The decomposition options of a settings file: nested under ``options``, and the
    flat keys of version 1 (:data:`V1_OPTIONS`, which win: written by hand)."""
    nested = data.pop("options", None)
    if nested is not None and not isinstance(nested, dict):
        raise ParameterError(f"setting 'options' should be an object, got {nested!r}")
    values = {**(nested or {}), **{k: data.pop(k) for k in V1_OPTIONS if k in data}}
    unknown = sorted(set(values) - set(OPTION_FIELDS))
    if unknown:
        raise ParameterError(f"the settings file has unknown options {unknown}",
                             hint=f"Known options: {', '.join(OPTION_FIELDS)}.")
    try:
        return DecompositionOptions(**values)  # the core checks its own options
    except ParameterError as exc:
        raise ParameterError(f"setting 'options': {exc.message}", hint=exc.hint) from exc


def same_kind(default: Any, value: Any, kind: type | None = None) -> bool:
    if value is None:
        return default is None
    if default is None:
        return kind is None or same_kind(kind(), value)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def widget_key(name: str) -> str:
    """Session-state key of the widget holding setting (or decomposition option) ``name``."""
    return f"s_{name}"


def param_key(method: str, param: str) -> str:
    """Session-state key of the widget holding a method's parameter."""
    return f"p_{method}_{param}"


def param_widget_value(value: Any) -> Any:
    """A parameter value as its widget holds it (tuples as comma-separated text)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in value)
    return value


def checked_params(method: str, values: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, ParameterError]]:
    """The values ``method`` accepts, as it converts them, and why it refused the others.

    The method (:func:`~xai_core.methods.base.get_method`) judges all values together;
    when it refuses them, each is offered with those accepted before it, so that only
    the values it cannot take fall back to their defaults. Returns the accepted values
    that differ from the default.
    """
    accepted: dict[str, Any] = {}
    refused: dict[str, ParameterError] = {}
    try:
        get_method(method, **values)
        accepted = dict(values)
    except ParameterError:
        for name, value in values.items():
            try:
                get_method(method, **accepted, **{name: value})
            except ParameterError as exc:
                refused[name] = exc
            else:
                accepted[name] = value
    config = get_method(method, **accepted).config
    defaults = METHODS[method].params
    return {k: config[k] for k in accepted if config[k] != defaults[k].default}, refused


def request_settings(settings: Settings) -> None:
    """Ask for ``settings`` to be applied at the start of the next run (before widgets exist)."""
    st.session_state["_pending_settings"] = settings


def apply_pending_settings() -> Settings | None:
    """Copy requested settings into the widget keys; call before any widget is drawn."""
    pending: Settings | None = st.session_state.pop("_pending_settings", None)
    if pending is None:
        return None
    for f in dataclasses.fields(Settings):
        if f.name == METHOD_PARAMS:
            st.session_state[METHOD_PARAMS] = dict(pending.method_params)
            for key in [k for k in st.session_state if str(k).startswith("p_")]:
                del st.session_state[key]  # parameters not in the file go back to defaults
            for method, values in pending.method_params.items():
                for pname, value in values.items():
                    st.session_state[param_key(method, pname)] = param_widget_value(value)
        elif f.name == "options":
            for name in OPTION_FIELDS:
                st.session_state[widget_key(name)] = getattr(pending.options, name)
        elif f.name == "full_only":
            st.session_state[widget_key("full_only")] = list(pending.full_only)
            # the file's choice stands: not re-defaulted as if these methods were new
            st.session_state["_known_methods"] = list(pending.methods)
        else:
            st.session_state[widget_key(f.name)] = getattr(pending, f.name)
    st.session_state.pop(TARGET_FOR, None)  # the file's target is meant for what it loads
    return pending
