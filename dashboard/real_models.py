"""Sidebar: real models — torchvision's pretrained video classifiers and Hugging Face ones.

Two more model sources beside the bundled models and an own checkpoint:

* **Pretrained (torchvision)** — an architecture (``r3d_18`` … ``swin3d_b``) and the name of
  its weights (``DEFAULT`` or a member of torchvision's enum), loaded by
  ``load_model(arch=..., weights=...)``: class names, resize, crop and clip length come
  from the weights (:mod:`xai_core.models.pretrained`); the file is read from (or fetched
  into) ``$TORCH_HOME/hub/checkpoints``.
* **Hugging Face** — a hub id or a ``save_pretrained`` folder, loaded by
  ``load_model(hf=...)`` (:mod:`xai_core.models.huggingface`).

Models are loaded once per process (``st.cache_resource``), keyed by the weights file (its
path and modification time: another ``TORCH_HOME`` or a replaced file loads again) or by
the folder's files. A model that cannot be loaded (offline, a missing file) raises the
core's :class:`~xai_core.errors.CheckpointError`, which names the file and the folder; the
page shows it and the rest of the sidebar, the clip included, stays as it is. The model
card (:mod:`xai_core.models.cards`) is shown in an expander under the choice.

Widget keys: ``s_model_source`` (``pretrained`` | ``hf``), ``s_arch`` (the architecture
is the one an own checkpoint uses), ``s_weights`` and ``s_hf`` hold the settings of those
names in :class:`~dashboard.settings.Settings`, so a settings file or link carries the
whole choice (a link to a local folder works where that folder exists). This module
imports neither ``settings`` nor ``resources`` (both import it).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import streamlit as st

from xai_core.hashing import json_hash
from xai_core.models.cards import ModelCard, hf_card, pretrained_card
from xai_core.models.registry import LoadedModel, get_spec, load_model
from xai_core.models.spec import InputSpec

#: Every model source, with its label in the sidebar.
SOURCES = {"bundled": "Bundled", "own": "My own checkpoint",
           "pretrained": "Pretrained (torchvision)", "hf": "Hugging Face"}
#: The sources of this module.
EXTERNAL = ("pretrained", "hf")
#: Widget keys (``s_<name>`` like the settings').
SOURCE, ARCH, WEIGHTS, HF = "s_model_source", "s_arch", "s_weights", "s_hf"
#: The widgets of each source, kept while another source is shown (the bundled model's
#: name, the own checkpoint's architecture and files: keys of the sidebar's widgets).
SOURCE_WIDGETS = {"bundled": ["s_model"], "own": [ARCH, "s_checkpoint", "s_classes"],
                  "pretrained": [ARCH, WEIGHTS], "hf": [HF]}
#: The weights chosen first: torchvision's own recommendation for the architecture.
DEFAULT_WEIGHTS = "DEFAULT"
#: What the page says while a source has no model chosen yet.
MISSING = {
    "own": "Upload a checkpoint (.pt/.pth state dict) in the sidebar, or pick one from the "
           "models folder, to explain the clip with your own model.",
    "hf": "Enter a Hugging Face hub id (e.g. MCG-NJU/videomae-base-finetuned-kinetics) or "
          "the folder of a model saved with save_pretrained, in the sidebar.",
}
#: Session key of this run's failed Hugging Face load (tried once per run).
_HF_FAILED = "_hf_failed"


# --------------------------------------------------------------------------- choices
@st.cache_resource(show_spinner=False)
def torchvision_archs() -> list[str]:
    """torchvision's video classifiers with pretrained weights."""
    from xai_core.models.pretrained import video_architectures  # torchvision: on use

    return video_architectures()


@st.cache_resource(show_spinner=False, max_entries=16)
def weight_names(arch: str) -> list[str]:
    """``DEFAULT`` and the members of torchvision's weights enum of ``arch``."""
    enum = importlib.import_module("torchvision.models").get_model_weights(arch)
    return [DEFAULT_WEIGHTS, *(member.name for member in enum)]


def chosen_weights() -> str:
    return str(st.session_state.get(WEIGHTS) or DEFAULT_WEIGHTS)


def hf_source() -> str:
    return str(st.session_state.get(HF) or "").strip()


def chosen(source: str) -> bool:
    """Whether ``source`` has a model to load (Hugging Face needs an id or a folder)."""
    return source != "hf" or bool(hf_source())


# --------------------------------------------------------------------------- sidebar
def model_inputs(source: str) -> None:
    """The choice of a pretrained or Hugging Face model, and its card."""
    if source == "pretrained":
        _pretrained_inputs()
    else:
        _hf_inputs()


def _pretrained_inputs() -> None:
    archs = torchvision_archs()
    if st.session_state.get(ARCH) not in archs:
        st.session_state[ARCH] = "r3d_18" if "r3d_18" in archs else archs[0]
    arch = st.selectbox("Architecture", archs, key=ARCH,
                        format_func=lambda a: f"{a} — {get_spec(a).description}")
    names = weight_names(arch)
    if st.session_state.get(WEIGHTS) not in names:
        st.session_state[WEIGHTS] = DEFAULT_WEIGHTS
    weights = st.selectbox("Weights", names, key=WEIGHTS,
                           help="torchvision's weights of this architecture; DEFAULT is "
                                "torchvision's recommended one. Class names, resize, crop and "
                                "clip length come from the weights.")
    path = pretrained_file(arch, weights)
    card = _pretrained_card(arch, weights, str(path), path.is_file())
    st.caption(f"Weights file: `{path}` ({card.status}).")
    show_card(card)


def _hf_inputs() -> None:
    st.text_input("Hugging Face model", key=HF, placeholder="hub id or folder",
                  help="A hub id (read from the Hugging Face cache; downloaded only when "
                       "online and HF_HUB_OFFLINE is not set) or a folder written by "
                       "save_pretrained. VideoMAE, TimeSformer and ViViT video classifiers.")
    st.session_state.pop(_HF_FAILED, None)  # one new attempt per run
    source = hf_source()
    if not source:
        return
    try:
        model = hf_model(source)
    except Exception:  # shown by the page, where the model is loaded
        st.caption("The model card appears once the model loads.")
        return
    show_card(hf_card(source, model))


def show_card(card: ModelCard) -> None:
    """The card in an expander: input, sampling, normalisation, classes, size, weights."""
    params = f"{card.params / 1e6:.2f} M" if card.params else "unknown"
    rows = [("Input", f"{card.input} (frames × height × width)"), ("Frames", card.sampling),
            ("Size", card.resize), ("Normalisation", card.normalisation),
            ("Classes", str(card.classes) if card.classes else "from the checkpoint"),
            ("Parameters", params), ("Weights", f"{card.weights} ({card.status})"),
            ("Explained at", card.explained_at)]
    with st.expander("Model card"):
        st.markdown(f"**{card.name}**" + (f" — {card.description}" if card.description else ""))
        st.markdown("\n".join(f"- **{k}:** {_plain(v)}" for k, v in rows))


def _plain(text: str) -> str:
    """Text shown as it is in markdown (no emphasis from ``*`` or ``_`` in paths and ids)."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")


@st.cache_resource(show_spinner=False, max_entries=32)
def _pretrained_card(arch: str, weights: str, file: str, cached: bool) -> ModelCard:
    return pretrained_card(arch, weights)


# --------------------------------------------------------------------------- loading
def pretrained_file(arch: str, weights: str) -> Path:
    """Where torchvision keeps the weights file (in the current ``$TORCH_HOME``)."""
    from xai_core.models.pretrained import resolve_weights, weights_file

    return weights_file(resolve_weights(arch, weights))


@st.cache_resource(show_spinner=False, max_entries=2)
def _load_pretrained(arch: str, weights: str, file: str, mtime_ns: int) -> LoadedModel:
    return load_model(arch=arch, weights=weights)


@st.cache_resource(show_spinner=False, max_entries=2)
def _load_hf(source: str, fingerprint: str) -> LoadedModel:
    return load_model(hf=source)


def _hf_fingerprint(source: str) -> str:
    """A folder by its files (names, sizes, times); a hub id by itself."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return source
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return json_hash([[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns]
                      for p in files])


def hf_model(source: str) -> LoadedModel:
    """The Hugging Face model of ``source``; a failed load is tried once per run (the
    sidebar's card, the clip's input spec and the page share the attempt)."""
    fingerprint = _hf_fingerprint(source)
    failed = st.session_state.get(_HF_FAILED)
    if failed is not None and failed[0] == (source, fingerprint):
        raise failed[1]
    try:
        with st.spinner(f"Loading {source}…"):
            return _load_hf(source, fingerprint)
    except Exception as exc:
        st.session_state[_HF_FAILED] = ((source, fingerprint), exc)
        raise


def resolve(source: str, arch: str) -> LoadedModel:
    """The chosen pretrained or Hugging Face model (raises the core's error when it cannot
    be loaded)."""
    if source == "hf":
        return hf_model(hf_source())
    weights = chosen_weights()
    path = pretrained_file(arch, weights)
    mtime = path.stat().st_mtime_ns if path.is_file() else 0
    what = "Loading" if mtime else "Downloading (first use) and loading"
    with st.spinner(f"{what} {arch} {weights}…"):
        return _load_pretrained(arch, weights, str(path), mtime)


@st.cache_resource(show_spinner=False, max_entries=32)
def _pretrained_input(arch: str, weights: str) -> InputSpec:
    from xai_core.models.pretrained import pretrained_spec, resolve_weights

    return pretrained_spec(arch, resolve_weights(arch, weights)).input


def input_spec(source: str, arch: str, fallback: InputSpec) -> InputSpec:
    """The chosen model's input, known without loading it for torchvision's weights; a
    Hugging Face model's once it loads (``fallback`` until then)."""
    if source == "pretrained":
        if arch not in torchvision_archs():
            return fallback
        return _pretrained_input(arch, chosen_weights())
    if not hf_source():
        return fallback
    try:
        return hf_model(hf_source()).input
    except Exception:  # the page shows why, where the model is loaded
        return fallback
