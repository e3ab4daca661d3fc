"""Content hashes: the identities every cache key and record is built from.

One function per kind of thing hashed, so that one thing has one identity: a clip is
identified by :func:`tensor_hash` of the normalised tensor the model sees (equal clips
from different paths, or read again, hash alike); weights by :func:`state_dict_hash`;
files by :func:`file_hash`; anything JSON-able by :func:`json_hash`.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np
import torch

__all__ = ["array_hash", "file_hash", "json_hash", "state_dict_hash", "tensor_hash"]


def array_hash(a: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def tensor_hash(x: torch.Tensor) -> str:
    """sha256 of a tensor's shape, dtype and values: the clip part of every cache key."""
    t = x.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{tuple(t.shape)}{t.dtype}".encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()


def state_dict_hash(state: dict[str, torch.Tensor]) -> str:
    """Hash of a state dict's names, shapes and values (independent of file format)."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key]
        h.update(key.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
            # reshape: 0-dim tensors (BatchNorm's num_batches_tracked) cannot be viewed as bytes
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def file_hash(*paths: str | os.PathLike | None) -> str:
    """sha256 of the files' contents in order (``None`` stands for "no file")."""
    h = hashlib.sha256()
    for p in paths:
        if p is None:
            h.update(b"-")
            continue
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def json_hash(value: Any) -> str:
    """sha256 of the canonical JSON of ``value`` (keys sorted; other types by ``str``)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
