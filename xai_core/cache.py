"""Content-addressed result cache shared by the API, the CLI and the dashboard.

A key is the sha256 of everything a result depends on — clip content, model weights,
method and parameters, target, decomposition options — and of the code version
(``xai_core.__version__`` and :data:`CACHE_SCHEMA`), so results of older code are
simply misses. Entries live on disk in a size-capped :mod:`diskcache` store and in an
in-memory LRU in front of it.

An entry is ``MAGIC | sha256(body) | body`` with body = header length, a JSON header
(metadata, versions) and compressed npz bytes (``allow_pickle=False`` on reading). A
truncated or altered entry fails the checksum: it is deleted and recomputed, never
served. A write that fails half-way (disk full) leaves no file behind. When the cache
folder cannot be used the cache keeps working in memory only, logs a warning and says
so in :attr:`ResultCache.problem`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import diskcache
import numpy as np
from diskcache.core import UNKNOWN

from .errors import CacheError
from .version import __version__

log = logging.getLogger(__name__)

#: Bump when the stored arrays or their meaning change (old entries become misses).
CACHE_SCHEMA = 2  # 2: smoothgrad's noise per clip (maps changed); full-only results

MAGIC = b"XAIC1\n"
_DIGEST = 32

Arrays = dict[str, np.ndarray]
Meta = dict[str, Any]


def code_version() -> str:
    """The version every key and entry carries: package version + cache schema."""
    return f"{__version__}+schema{CACHE_SCHEMA}"


def default_directory() -> Path:
    """``$XAI_CACHE_DIR``, else ``$XDG_CACHE_HOME/xai_core``, else ``~/.cache/xai_core``."""
    if os.environ.get("XAI_CACHE_DIR"):
        return Path(os.environ["XAI_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "xai_core"


def _env_mb(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        mb = int(value)
        if mb < 0:
            raise ValueError
    except ValueError:
        raise CacheError(f"{name}={value!r} is not a size in megabytes",
                         hint=f"Set {name} to a whole number such as {default}, or unset it."
                         ) from None
    return mb


# --------------------------------------------------------------------------- encoding
def encode_entry(arrays: Arrays, meta: Meta, version: str) -> bytes:
    """Serialise arrays + metadata into a self-checking blob."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    header = json.dumps({"version": version, "meta": meta}, sort_keys=True,
                        allow_nan=True).encode()
    body = struct.pack("<I", len(header)) + header + buf.getvalue()
    return MAGIC + hashlib.sha256(body).digest() + body


class CorruptEntry(Exception):
    """A stored entry failed its checks (internal: the cache deletes and recomputes)."""


def decode_entry(blob: bytes, version: str) -> tuple[Arrays, Meta]:
    """Inverse of :func:`encode_entry`; :class:`CorruptEntry` on any inconsistency.

    An entry written by another code version is reported as corrupt too: it must not
    be served, and deleting it frees the space.
    """
    n = len(MAGIC)
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < n + _DIGEST + 4:
        raise CorruptEntry("too short")
    if blob[:n] != MAGIC:
        raise CorruptEntry("bad magic")
    digest, body = blob[n : n + _DIGEST], blob[n + _DIGEST :]
    if hashlib.sha256(body).digest() != digest:
        raise CorruptEntry("checksum mismatch")
    (hlen,) = struct.unpack("<I", body[:4])
    try:
        header = json.loads(body[4 : 4 + hlen])
        with np.load(io.BytesIO(body[4 + hlen :]), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # checksum passed, yet unreadable: treat as corrupt
        raise CorruptEntry(f"unreadable: {exc}") from exc
    if header.get("version") != version:
        raise CorruptEntry(f"written by {header.get('version')}, this is {version}")
    return arrays, header["meta"]


# --------------------------------------------------------------------------- the cache
class ResultCache:
    """Disk + memory cache of (arrays, metadata) entries, keyed by content.

    Parameters
    ----------
    directory
        Folder of the on-disk store (created if needed); ``None`` for memory only.
    size_limit_mb
        Cap of the disk store; least recently used entries are evicted beyond it.
    memory_mb
        Cap of the in-memory LRU (decoded arrays).
    version
        Code version stamped into keys and entries (default :func:`code_version`).

    Thread-safe: concurrent :meth:`get_or_compute` calls for one key compute it once
    (a per-key lock) and all receive the result.
    """

    def __init__(self, directory: str | Path | None = None, *, size_limit_mb: int = 2048,
                 memory_mb: int = 256, version: str | None = None) -> None:
        self.version = version or code_version()
        self.memory_limit = memory_mb * 2**20
        self._memory: OrderedDict[str, tuple[Arrays, Meta, int]] = OrderedDict()
        self._memory_bytes = 0
        self._guard = threading.Lock()
        self._key_locks: dict[str, list] = {}
        self.stats = {"memory_hits": 0, "disk_hits": 0, "misses": 0, "corrupt": 0, "computed": 0}
        self.directory: Path | None = None
        #: Why the disk store is not used (``None`` when it is, or was never asked for).
        self.problem: str | None = None
        self._disk = None
        if directory is not None:
            self._open_disk(Path(directory), size_limit_mb)

    def _open_disk(self, directory: Path, size_limit_mb: int) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / f".probe-{os.getpid()}-{threading.get_ident()}"
            probe.write_bytes(b"")
            probe.unlink()
            # every value in its own file: sqlite holds only the index
            self._disk = diskcache.Cache(str(directory), size_limit=size_limit_mb * 2**20,
                                         eviction_policy="least-recently-used",
                                         disk_min_file_size=0, disk=_tracked_disk())
            self.directory = directory
        except Exception as exc:  # OSError, sqlite3.Error ... : keep working in memory
            log.warning("result cache folder %s is not usable (%s); caching in memory only. "
                        "Set XAI_CACHE_DIR to a writable folder to keep results between runs.",
                        directory, exc)
            self.problem = (f"The result cache folder {directory} is not usable; results are "
                            "kept in memory only. Set XAI_CACHE_DIR to a writable folder.")
            self._disk = None

    @property
    def on_disk(self) -> bool:
        return self._disk is not None

    # ------------------------------------------------------------------ keys
    def make_key(self, parts: dict[str, Any]) -> str:
        """sha256 of the canonical JSON of ``parts`` and the code version."""
        text = json.dumps({"parts": parts, "version": self.version}, sort_keys=True,
                          separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    # ------------------------------------------------------------------ get / put
    def get(self, key: str) -> tuple[Arrays, Meta] | None:
        """The entry (copies of its arrays), or ``None``; a bad disk entry is deleted."""
        with self._guard:
            hit = self._memory.get(key)
            if hit is not None:
                self._memory.move_to_end(key)
                self.stats["memory_hits"] += 1
                return _copy(hit[0]), json.loads(json.dumps(hit[1]))
        if self._disk is not None:
            try:
                blob = self._disk.get(key, default=None)
            except Exception as exc:  # a vanished or unreadable file is a miss
                log.warning("result cache entry %s unreadable (%s); recomputing", key[:12], exc)
                blob = b""
            if blob is not None:
                try:
                    arrays, meta = decode_entry(blob, self.version)
                except CorruptEntry as exc:
                    log.warning("result cache entry %s is corrupt (%s); deleting and recomputing",
                                key[:12], exc)
                    self.stats["corrupt"] += 1
                    self._delete_disk(key)
                else:
                    self._remember(key, arrays, meta)
                    self.stats["disk_hits"] += 1
                    return _copy(arrays), meta
        self.stats["misses"] += 1
        return None

    def put(self, key: str, arrays: Arrays, meta: Meta) -> None:
        """Store an entry in memory and, when possible, on disk."""
        arrays = _copy(arrays)
        meta = json.loads(json.dumps(meta))  # detached, and proves it is JSON-able
        self._remember(key, arrays, meta)
        if self._disk is not None:
            disk = self._disk.disk
            disk.begin()
            try:
                self._disk.set(key, encode_entry(arrays, meta, self.version))
            except Exception as exc:  # disk full, folder removed ...: memory still serves
                disk.discard()  # the half-written, never indexed value file
                log.warning("could not write result cache entry to %s (%s)", self.directory, exc)

    def contains(self, key: str) -> bool:
        """Whether an entry is stored (without reading it; a corrupt one still counts)."""
        with self._guard:
            if key in self._memory:
                return True
        if self._disk is not None:
            try:
                return key in self._disk
            except Exception:  # an unreadable index is a miss, as in get()
                return False
        return False

    def get_or_compute(self, key: str, compute: Callable[[], tuple[Arrays, Meta]]
                       ) -> tuple[Arrays, Meta, bool]:
        """The cached entry, or ``compute()`` stored; returns (arrays, meta, was_hit)."""
        with self._key_lock(key):
            found = self.get(key)
            if found is not None:
                return found[0], found[1], True
            arrays, meta = compute()
            with self._guard:
                self.stats["computed"] += 1
            self.put(key, arrays, meta)
            return arrays, meta, False

    def delete(self, key: str) -> None:
        with self._guard:
            entry = self._memory.pop(key, None)
            if entry is not None:
                self._memory_bytes -= entry[2]
        self._delete_disk(key)

    def clear(self) -> None:
        """Remove every entry (memory and disk)."""
        with self._guard:
            self._memory.clear()
            self._memory_bytes = 0
        if self._disk is not None:
            self._disk.clear()

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()

    # ------------------------------------------------------------------ internals
    def _delete_disk(self, key: str) -> None:
        if self._disk is None:
            return
        try:
            self._disk.delete(key)
        except Exception as exc:
            log.warning("could not delete result cache entry %s (%s)", key[:12], exc)

    def _remember(self, key: str, arrays: Arrays, meta: Meta) -> None:
        size = sum(a.nbytes for a in arrays.values())
        if size > self.memory_limit:
            return
        with self._guard:
            old = self._memory.pop(key, None)
            if old is not None:
                self._memory_bytes -= old[2]
            self._memory[key] = (arrays, meta, size)
            self._memory_bytes += size
            while self._memory_bytes > self.memory_limit:
                _, (_, _, freed) = self._memory.popitem(last=False)
                self._memory_bytes -= freed

    @contextlib.contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        with self._guard:
            entry = self._key_locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    self._key_locks.pop(key, None)


@functools.cache
def _tracked_disk() -> type:
    """diskcache's ``Disk`` that can remove the value file of a write that failed.

    diskcache indexes a value file only after writing it, so a write cut short (disk full,
    database error) is never served — but its file would stay, unindexed, forever.
    """
    class TrackedDisk(diskcache.Disk):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._last = threading.local()

        def filename(self, key: Any = UNKNOWN, value: Any = UNKNOWN) -> tuple[str, str]:
            name, full_path = super().filename(key, value)
            self._last.name = name
            return name, full_path

        def begin(self) -> None:
            """Start tracking the files this thread creates."""
            self._last.name = None

        def discard(self) -> None:
            """Remove the file this thread created since :meth:`begin` (the write failed)."""
            name, self._last.name = getattr(self._last, "name", None), None
            if name is not None:
                self.remove(name)

    return TrackedDisk


def _copy(arrays: Arrays) -> Arrays:
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


_default: ResultCache | None = None
_default_lock = threading.Lock()

#: Default of every ``cache=`` argument: the process-wide :func:`default_cache`.
DEFAULT_CACHE: Any = object()


def resolve_cache(cache: ResultCache | None | Any) -> ResultCache | None:
    """``cache`` itself, or the process-wide cache for :data:`DEFAULT_CACHE` (``None``
    stays ``None``: compute without a cache)."""
    return default_cache() if cache is DEFAULT_CACHE else cache


def default_cache() -> ResultCache:
    """The process-wide cache: folder :func:`default_directory`, size ``$XAI_CACHE_SIZE_MB``
    (default 2048), memory ``$XAI_CACHE_MEMORY_MB`` (default 256)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ResultCache(default_directory(),
                                   size_limit_mb=_env_mb("XAI_CACHE_SIZE_MB", 2048),
                                   memory_mb=_env_mb("XAI_CACHE_MEMORY_MB", 256))
        return _default
