"""The model zoo: registered architectures, and loading them into a :class:`LoadedModel`.

A :class:`LoadedModel` is what every other part of ``xai_core`` receives: the network in
eval mode on its device, its :class:`~xai_core.models.spec.ModelSpec`, its class names
and a hash of its weights (part of every cache key).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..device import resolve_device
from ..errors import CheckpointError, ParameterError
from ..hashing import state_dict_hash
from ..registry import Registry
from .checkpoints import load_class_names
from .spec import InputSpec, ModelSpec

#: Every architecture and bundled model by name; the zoo registers them when the
#: registry is first read, even when something (a test, a plugin) registered a model
#: before: a non-empty registry does not mean the zoo is in it.
MODELS: Registry[ModelSpec] = Registry("model", modules=("xai_core.models.zoo",))

def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a spec to the zoo (a later registration under the same name replaces it)."""
    return MODELS.register(spec)


def list_models() -> list[ModelSpec]:
    return list(MODELS.values())


def get_spec(name: str) -> ModelSpec:
    return MODELS[name]


@dataclass
class LoadedModel:
    """A network ready to be explained.

    Attributes
    ----------
    module
        The ``nn.Module`` in eval mode on ``device``.
    spec
        Its :class:`ModelSpec` (input spec, CAM layer, classifier ...).
    class_names
        One name per output.
    weights_hash
        sha256 of the weights (hex); part of every cache key.
    name
        Display name (bundled name, or ``arch:checkpoint-file``).
    """

    module: nn.Module
    spec: ModelSpec
    class_names: list[str]
    weights_hash: str
    name: str
    device: torch.device

    @property
    def input(self) -> InputSpec:
        return self.spec.input

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_index(self, target: int | str) -> int:
        """Resolve a class index or name; a clear error when it does not exist."""
        if isinstance(target, str) and not target.lstrip("-").isdigit():
            if target in self.class_names:
                return self.class_names.index(target)
            raise ParameterError(
                f"unknown class {target!r} for model {self.name}",
                hint="Use a class index or one of: " + ", ".join(self.class_names[:20]) + ".",
            )
        idx = int(target)
        if not 0 <= idx < self.num_classes:
            raise ParameterError(
                f"target class {idx} is out of range for model {self.name}",
                hint=f"Use 0..{self.num_classes - 1}.",
            )
        return idx


def wrap_module(module: nn.Module, spec: ModelSpec, class_names: list[str] | None = None, *,
                name: str | None = None, device: str | torch.device | None = None) -> LoadedModel:
    """Wrap an in-memory module (e.g. a user's own, or a tiny test net) as a LoadedModel."""
    dev = resolve_device(device)
    module = module.to(dev).eval()
    if class_names is None:
        n = _num_outputs(module, spec)
        class_names = [str(i) for i in range(n)]
    return LoadedModel(module, spec, list(class_names), state_dict_hash(module.state_dict()),
                       name or spec.name, dev)


def _num_outputs(module: nn.Module, spec: ModelSpec) -> int:
    if spec.classifier:
        head = module.get_submodule(spec.classifier)
        if isinstance(head, nn.Linear):
            return head.out_features
    last = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if last:
        return last[-1].out_features
    return spec.default_num_classes


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely (``weights_only=True``) and return its state dict.

    Accepts a bare state dict or the common wrappers ``{'state_dict': ...}`` and
    ``{'model': ...}``; strips DataParallel ``module.`` prefixes.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {str(path)!r} {what}",
                              hint="Check the path to the .pt/.pth file.")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it then refuses
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        msg = str(exc)
        # weights_only names the class or function a pickle wanted to import ("GLOBAL
        # posix.system", "GLOBAL mymodule.Net"): that is code, not weights.
        wanted = re.search(r"GLOBAL ([\w.]+)", msg)
        if wanted:
            raise CheckpointError(
                f"{path.name} refers to the Python object {wanted.group(1)}; it was refused "
                "because unpickling it could run code",
                hint="Save the model with torch.save(model.state_dict(), path) and use that file.",
            ) from exc
        raise CheckpointError(f"{path.name} is not a PyTorch checkpoint, or it is damaged",
                              hint="Use a file written by torch.save(model.state_dict(), path)."
                              ) from exc
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    tensors_only = isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values())
    if not tensors_only or not obj:
        raise CheckpointError(f"{path.name} does not hold a state dict of tensors",
                              hint="Save the model with torch.save(model.state_dict(), path).")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_state(module: nn.Module, state: dict[str, torch.Tensor], source: str, *,
               assign: bool = False) -> None:
    """Load ``state`` strictly; name every missing, unexpected and mis-shaped key."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state))
              if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if extra:
            parts.append(f"unexpected keys {_few(extra)}")
        if shapes:
            parts.append(f"wrong shapes {_few(shapes)}")
        raise CheckpointError(f"{source} does not fit this architecture: " + "; ".join(parts),
                              hint="Pick the architecture the checkpoint was trained with, and the "
                                   "matching number of classes.")
    module.load_state_dict(state, strict=True, assign=assign)


def build_with_state(spec: ModelSpec, num_classes: int, state: dict[str, torch.Tensor],
                      source: str) -> nn.Module:
    """Build ``spec``'s network holding ``state``'s weights.

    The network is first built on the ``meta`` device: random initialisation of weights
    that are overwritten at once costs seconds for C3D's 78 M parameters. Anything the
    checkpoint does not fill (a non-persistent buffer) falls back to a normal build.
    """
    try:
        with torch.device("meta"):
            module = spec.build(num_classes)
    except Exception:  # a builder that computes on tensor values cannot run on meta
        module = None
    if module is not None:
        own = module.state_dict()
        # assign=True adopts the tensors as they are: cast to the module's own dtypes
        # (a float16 checkpoint must not turn the network into float16).
        cast = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
        load_state(module, cast, source, assign=True)
        if not any(t.is_meta for t in (*module.parameters(), *module.buffers())):
            return module
    module = spec.build(num_classes)
    load_state(module, state, source)
    return module


def _few(items: list[str], n: int = 4) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_model(name: str | None = None, *, arch: str | None = None,
               checkpoint: str | Path | None = None, classes: str | Path | list[str] | None = None,
               device: str | torch.device | None = None, weights: str | None = None,
               hf: str | Path | None = None) -> LoadedModel:
    """Load a bundled model by name, an architecture with a user's checkpoint or with
    torchvision's pretrained weights, or a Hugging Face video classifier.

    Parameters
    ----------
    name
        A registered model with weights (``motion``, ``context-biased``); the default
        is ``motion``.
    arch, checkpoint, classes
        An architecture from the zoo, a checkpoint file, and a class-names file (one
        name per line) or list. Without ``classes``, classes are numbered.
    weights
        With ``arch``: torchvision's pretrained weights by name (``KINETICS400_V1``,
        ``R3D_18_Weights.KINETICS400_V1``, ``DEFAULT``), fetched on first use into the
        torch hub cache; classes and input spec come from the weights
        (:mod:`.pretrained`).
    hf
        A Hugging Face hub id or a local folder saved with ``save_pretrained``: a
        VideoMAE, TimeSformer or ViViT video classifier (:mod:`.huggingface`).
    device
        ``cpu``, ``cuda`` or ``None`` for automatic.
    """
    if weights is not None or hf is not None:
        return _load_external(name, arch=arch, checkpoint=checkpoint, classes=classes,
                              device=device, weights=weights, hf=hf)

    if arch is None and checkpoint is not None and name is not None:
        arch = name  # load_model("r3d_18", checkpoint=...) reads naturally
    if arch is None and checkpoint is None:
        spec = get_spec(name or "motion")
        if not spec.weights:
            raise ParameterError(f"model {spec.name!r} has no bundled weights",
                                 hint=f"Give a checkpoint: --arch {spec.name} --checkpoint FILE.")
        if not Path(spec.weights).is_file():
            raise CheckpointError(f"the weights of the bundled model {spec.name!r} are missing "
                                  f"({Path(spec.weights).name})",
                                  hint="Train them with `make train` (scripts/train_bundled.py).")
        arch_spec, checkpoint, display = spec, Path(spec.weights), spec.name
        names = list(spec.class_names) if spec.class_names else None
    else:
        if arch is None or checkpoint is None:
            raise ParameterError("an own model needs both an architecture and a checkpoint",
                                 hint="Pass --arch NAME --checkpoint FILE (and --classes FILE), "
                                      "or --arch NAME --weights NAME for torchvision's "
                                      "pretrained weights.")
        arch_spec = get_spec(arch)
        display = f"{arch}:{Path(checkpoint).name}"
        names = None
    state = read_checkpoint(checkpoint)
    if arch_spec.state_dict_adapter is not None:
        state = arch_spec.state_dict_adapter(state)
    if classes is not None:
        names = load_class_names(classes)
    n_out = _head_size(state, arch_spec)
    if names is not None and n_out is not None and len(names) != n_out:
        raise CheckpointError(
            f"the class-names file lists {len(names)} classes but the checkpoint's head has "
            f"{n_out} outputs", hint="Use the class list the model was trained with.")
    n = n_out or (len(names) if names else arch_spec.default_num_classes)
    module = build_with_state(arch_spec, n, state, Path(checkpoint).name)
    dev = resolve_device(device)
    module = module.to(dev).eval()
    if names is None:
        names = [f"class {i}" for i in range(n)]
    return LoadedModel(module, arch_spec, names, state_dict_hash(state), display, dev)


def _load_external(name: str | None, *, arch: str | None, checkpoint: str | Path | None,
                   classes: object, device: str | torch.device | None, weights: str | None,
                   hf: str | Path | None) -> LoadedModel:
    """``load_model`` with ``weights`` or ``hf``: refuse mixtures, then delegate."""
    if hf is not None:
        if any(v is not None for v in (name, arch, checkpoint, classes, weights)):
            raise ParameterError("a Hugging Face model (hf) is given alone",
                                 hint="Drop the model name, arch, checkpoint, classes and "
                                      "weights: the model folder or hub id brings them.")
        # imported on use: they import torchvision / transformers (seconds), and import this
        from .huggingface import load_hf
        return load_hf(hf, device=device)
    if arch is None and name is not None:
        arch = name  # load_model("r3d_18", weights="DEFAULT") reads naturally
    if arch is None or checkpoint is not None or classes is not None:
        raise ParameterError("pretrained weights need an architecture, and no checkpoint or "
                             "class names (the weights bring their own)",
                             hint="Pass e.g. --arch r3d_18 --weights KINETICS400_V1.")
    from .pretrained import load_pretrained
    return load_pretrained(arch, str(weights), device=device)


def _head_size(state: dict[str, torch.Tensor], spec: ModelSpec) -> int | None:
    """Number of outputs from the classifier's weight in the checkpoint, if identifiable."""
    candidates = [spec.classifier] if spec.classifier else []
    candidates += spec.extra.get("head_keys", [])
    for key in candidates:
        w = state.get(f"{key}.weight")
        # ndim 2: nn.Linear; ndim 5: a 1×1×1 Conv3d classifier (S3D)
        if w is not None and w.ndim in (2, 5):
            return int(w.shape[0])
    return None
