"""The result cache: hits, misses on any changed input, corruption, versions, fallback, threads."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import GXI_NAME, random_clip, tiny_model

import xai_core as xc
from xai_core.cache import (
    CorruptEntry,
    ResultCache,
    decode_entry,
    default_directory,
    encode_entry,
)
from xai_core.decompose import DecompositionOptions
from xai_core.errors import CacheError

pytestmark = pytest.mark.usefixtures("one_thread")

GXI = GXI_NAME


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"full": rng.normal(size=(4, 6, 6)).astype(np.float32),
            "mask": rng.random((4, 6, 6)) > 0.5}


def value_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.val"))


# --------------------------------------------------------------------------- entries
def test_entry_round_trip_and_checks():
    a, meta = arrays(), {"method": "x", "share": 0.5}
    blob = encode_entry(a, meta, "v1")
    got, got_meta = decode_entry(blob, "v1")
    assert got_meta == meta and set(got) == set(a)
    for k in a:
        np.testing.assert_array_equal(got[k], a[k])
        assert got[k].dtype == a[k].dtype
    with pytest.raises(CorruptEntry):
        decode_entry(blob, "v2")  # another code version is never served
    with pytest.raises(CorruptEntry):
        decode_entry(blob[:-10], "v1")
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    with pytest.raises(CorruptEntry):
        decode_entry(bytes(flipped), "v1")


def test_second_call_is_a_hit_with_identical_arrays(tmp_path):
    cache = ResultCache(tmp_path)
    key = cache.make_key({"clip": "abc", "method": {"method": "m"}})
    calls = []

    def compute():
        calls.append(1)
        return arrays(), {"n": 1}

    first, _, hit1 = cache.get_or_compute(key, compute)
    # a new cache object on the same folder: served from disk, not memory
    again, meta, hit2 = ResultCache(tmp_path).get_or_compute(key, compute)
    assert (hit1, hit2) == (False, True) and len(calls) == 1 and meta == {"n": 1}
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])
    # callers get copies: mutating one does not poison the cache
    first["full"][:] = 0
    np.testing.assert_array_equal(cache.get(key)[0]["full"], arrays()["full"])


def test_keys_depend_on_every_part_and_on_the_version(tmp_path):
    cache = ResultCache(tmp_path)
    base = {"clip": "a", "weights": "w", "method": {"method": "m", "k": 1}, "target": 0}
    keys = {cache.make_key(base)}
    for part, value in (("clip", "b"), ("weights", "v"), ("method", {"method": "m", "k": 2}),
                        ("target", 1)):
        keys.add(cache.make_key(base | {part: value}))
    assert len(keys) == 5
    assert cache.make_key(base) == ResultCache(None).make_key(dict(reversed(base.items())))
    assert ResultCache(None, version="9.9+schema9").make_key(base) != cache.make_key(base)


def test_entry_of_an_older_code_version_is_a_miss(tmp_path):
    old = ResultCache(tmp_path, version="0.0.1+schema0")
    new = ResultCache(tmp_path)
    key = "same-key"  # even under the same key, another version's entry is not served
    old.put(key, arrays(), {"v": "old"})
    assert old.get(key) is not None
    assert new.get(key) is None
    assert new.stats["corrupt"] == 1 and value_files(tmp_path) == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_corrupt_entry_is_deleted_and_recomputed_never_served(tmp_path, damage):
    key = "k"
    ResultCache(tmp_path).put(key, arrays(1), {"v": 1})
    (path,) = value_files(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) // 3]
    else:
        data = bytearray()
    path.write_bytes(bytes(data))

    cache = ResultCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return arrays(1), {"v": 2}

    got, meta, hit = cache.get_or_compute(key, compute)
    assert not hit and calls == [1] and meta == {"v": 2}
    assert cache.stats["corrupt"] == 1
    np.testing.assert_array_equal(got["full"], arrays(1)["full"])
    # the recomputed entry replaced the bad one on disk
    assert ResultCache(tmp_path).get(key)[1] == {"v": 2}


def test_vanished_entry_file_is_a_miss(tmp_path):
    ResultCache(tmp_path).put("k", arrays(), {})
    for f in value_files(tmp_path):
        f.unlink()
    assert ResultCache(tmp_path).get("k") is None


def test_unwritable_folder_falls_back_to_memory_with_a_warning(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="xai_core.cache"):
        cache = ResultCache(blocker / "cache")  # cannot be created, even by root
    assert not cache.on_disk
    assert any("memory only" in r.getMessage() for r in caplog.records)
    key = cache.make_key({"x": 1})
    calls = []
    for _ in range(2):
        cache.get_or_compute(key, lambda: (calls.append(1), (arrays(), {}))[1])
    assert calls == [1]


def test_memory_lru_is_size_capped(tmp_path):
    cache = ResultCache(None, memory_mb=1)
    big = {"a": np.zeros(100_000, np.float32)}  # 0.4 MB each
    for i in range(5):
        cache.put(f"k{i}", big, {})
    assert cache.get("k0") is None and cache.get("k4") is not None
    assert cache._memory_bytes <= 2**20


def test_two_threads_asking_for_one_key_compute_it_once(tmp_path):
    cache = ResultCache(tmp_path)
    key = cache.make_key({"x": "concurrent"})
    calls, results = [], []
    barrier = threading.Barrier(2)

    def compute():
        calls.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the other thread to arrive and wait
        return arrays(3), {"by": "first"}

    def worker():
        barrier.wait()
        results.append(cache.get_or_compute(key, compute))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(hit for _, _, hit in results) == [False, True]
    for got, meta, _ in results:
        np.testing.assert_array_equal(got["full"], arrays(3)["full"])
        assert meta == {"by": "first"}
    assert cache._key_locks == {}  # no lock left behind


def test_bad_size_setting_is_a_cache_error(monkeypatch):
    from xai_core.cache import _env_mb

    monkeypatch.setenv("XAI_CACHE_SIZE_MB", "lots")
    with pytest.raises(CacheError, match="XAI_CACHE_SIZE_MB"):
        _env_mb("XAI_CACHE_SIZE_MB", 10)


def test_cache_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("XAI_CACHE_DIR", str(tmp_path / "here"))
    assert default_directory() == tmp_path / "here"
    monkeypatch.delenv("XAI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_directory() == tmp_path / "xdg" / "xai_core"


# --------------------------------------------------------------------------- via explain
def test_explain_misses_when_any_input_changes(tmp_path, registered):
    cache = ResultCache(tmp_path)
    model, x = tiny_model(), random_clip()
    other_weights = tiny_model(seed=5)

    def run(m=model, clip=x, **kw):
        before = cache.stats["computed"]
        exp = xc.explain(m, clip, [GXI], cache=cache, **kw)
        return exp, cache.stats["computed"] - before

    first, n = run(target=0)
    assert n == 2  # predictions + the method
    again, n = run(target=0)
    assert n == 0 and again.cache_hits == {GXI: True}
    assert again.predictions_cache_hit and not first.predictions_cache_hit
    for name in ("full", "spatial", "temporal", "selective", "selective_mask", "raw"):
        np.testing.assert_array_equal(getattr(again[GXI], name), getattr(first[GXI], name))
    assert again[GXI].timings == first[GXI].timings  # the original computation's

    assert run(target=1)[1] == 1  # target
    assert run(target=0, options=DecompositionOptions(sigma=2.0))[1] == 1  # option
    assert run(target=0, options=DecompositionOptions(chunk_size=2))[1] == 0  # not a result
    assert run(other_weights, target=0)[1] == 2  # weights: predictions and method
    moved = x.clone()
    moved[0, 0, 0, 0, 0] += 1e-3
    assert run(clip=moved, target=0)[1] == 2  # clip content


def test_explain_misses_when_a_method_parameter_changes(tmp_path):
    cache = ResultCache(tmp_path)
    model, x = tiny_model(), random_clip()
    xc.explain(model, x, "integrated-gradients", cache=cache,
               method_params={"integrated-gradients": {"steps": 4}})
    before = cache.stats["computed"]
    exp = xc.explain(model, x, "integrated-gradients", cache=cache,
                     method_params={"integrated-gradients": {"steps": 5}})
    assert cache.stats["computed"] == before + 1 and exp.cache_hits == {
        "integrated-gradients": False}
    assert exp["integrated-gradients"].params["steps"] == 5


def test_no_cache_computes_every_time(registered):
    model, x = tiny_model(), random_clip()
    a = xc.explain(model, x, GXI, cache=None)
    b = xc.explain(model, x, GXI, cache=None)
    assert a.cache_hits == b.cache_hits == {GXI: False}
    torch.testing.assert_close(torch.from_numpy(a[GXI].full), torch.from_numpy(b[GXI].full))
