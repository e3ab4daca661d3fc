"""Device choice: CUDA when present, else the CPU; an explicit request is honoured or refused."""

from __future__ import annotations

import torch

from .errors import ParameterError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    ``None`` or ``"auto"`` picks ``cuda`` when a GPU is available, otherwise ``cpu``.
    Asking for ``cuda`` on a machine without one is a :class:`ParameterError` (silently
    running on the CPU would make timings and memory figures lie).
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"unknown device {device!r}",
                             hint="Use cpu, cuda or cuda:N.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("CUDA was requested but no GPU is available.",
                             hint="Use --device cpu.")
    if dev.type not in ("cpu", "cuda"):
        raise ParameterError(f"device {dev.type!r} is not supported", hint="Use cpu or cuda.")
    return dev
