"""Several users at once: threads on one model, one clip asked twice, shared model loading,
two dashboard sessions.

Methods attach hooks (zennit rule contexts, captum layer hooks) to the model and
``model_guard`` flips its flags; before ``module_lock`` two threads on one model saw each
other's hooks — wrong relevance, "layers that run more than once" errors — and left the
user's parameters with ``requires_grad`` switched off. The first test fails without it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    GradientTimesInput,
    assert_healthy,
    choose_upload,
    good_clip,
    model_world,
    own_model_app,
    random_clip,
    tiny_model,
)

from xai_core.cache import ResultCache
from xai_core.engine import explain
from xai_core.methods.base import METHODS, module_lock

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = "tiny-c3d-concurrency-test"


def run_threads(fn, args_list: list[tuple]) -> list:
    """Run ``fn(*args)`` for each args in threads started together; results in order."""
    barrier = threading.Barrier(len(args_list))
    results: list = [None] * len(args_list)
    failures: list[BaseException] = []

    def work(i: int, args: tuple) -> None:
        barrier.wait()
        try:
            results[i] = fn(*args)
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if failures:
        raise failures[0]
    return results


def hooks(module: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in module.modules())


# --------------------------------------------------------------------------- the engine
def test_threads_explaining_different_clips_with_one_model_get_their_own_answers():
    model = tiny_model()
    methods = ["dtd", "gradcam"]
    clips = [random_clip(seed) for seed in (1, 2, 3)]
    reference = [explain(model, x, methods, cache=None) for x in clips]
    flags = [p.requires_grad for p in model.module.parameters()]

    def work(i: int):
        return [explain(model, clips[i], methods, cache=None) for _ in range(2)]

    got = run_threads(work, [(i,) for i in range(len(clips))])
    for i, runs in enumerate(got):
        for exp in runs:
            for name in methods:
                for kind in ("full", "spatial", "temporal"):
                    np.testing.assert_allclose(getattr(exp[name], kind),
                                               getattr(reference[i][name], kind),
                                               rtol=1e-4, atol=1e-6)
    assert flags == [p.requires_grad for p in model.module.parameters()]  # restored
    assert hooks(model.module) == 0 and not model.module.training


class CountingGradient(GradientTimesInput):
    """Gradient × input that counts how many clips it explained."""

    name = "test-counting-gradient"
    description = "counting gradient × input (test)"
    default_batch_size = 8
    clips_explained = 0
    lock = threading.Lock()

    def _attribute(self, model, x, target, progress=None):
        with CountingGradient.lock:
            CountingGradient.clips_explained += x.shape[0]
        return super()._attribute(model, x, target, progress)


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(METHODS, CountingGradient.name, CountingGradient)
    monkeypatch.setattr(CountingGradient, "clips_explained", 0)
    return CountingGradient


def test_two_users_asking_for_the_same_clip_at_once_compute_it_once(counting, tmp_path):
    model, x = tiny_model(), random_clip(5)
    cache = ResultCache(tmp_path / "cache")
    first, second = run_threads(lambda: explain(model, x, counting.name, cache=cache), [(), ()])
    once = 1 + x.shape[2]  # the clip and its T freeze-frame clips
    assert counting.clips_explained == once
    assert sorted([first.cache_hits[counting.name], second.cache_hits[counting.name]]) == [
        False, True]
    for kind in ("full", "spatial", "temporal", "selective"):
        np.testing.assert_array_equal(getattr(first[counting.name], kind),
                                      getattr(second[counting.name], kind))
    # and a different clip at the same time is computed, not confused with it
    a, b = run_threads(lambda y: explain(model, y, counting.name, cache=cache),
                       [(x,), (random_clip(6),)])
    assert counting.clips_explained == 2 * once
    assert a.cache_hits[counting.name] and not b.cache_hits[counting.name]
    assert not np.array_equal(a[counting.name].full, b[counting.name].full)


def test_module_lock_is_per_module_and_reentrant():
    one, two = tiny_model(), tiny_model()
    assert module_lock(one.module) is module_lock(one.module)
    assert module_lock(one.module) is not module_lock(two.module)
    with module_lock(one.module), module_lock(one.module):  # nested guards do not deadlock
        pass
    held = threading.Event()
    release = threading.Event()

    def hold():
        with module_lock(one.module):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(10)
    assert not module_lock(one.module).acquire(timeout=0.05)  # another thread waits its turn
    assert module_lock(two.module).acquire(timeout=0.05)  # another model does not
    module_lock(two.module).release()
    release.set()
    t.join(10)


# --------------------------------------------------------------------------- the dashboard
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with model_world(tmp_path_factory.mktemp("concurrency"), TINY) as w:
        yield {"root": w.root, "models": w.models, "a": good_clip(w.root, "a.mp4"),
               "b": good_clip(w.root, "b.mp4", frames=9)}


def test_models_are_loaded_once_and_shared_by_concurrent_sessions(world, monkeypatch):
    from dashboard import resources

    calls = []
    real = resources.load_model

    def slow_load(*args, **kwargs):
        calls.append(threading.get_ident())
        threading.Event().wait(0.3)  # long enough for every thread to ask meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(resources, "load_model", slow_load)
    ckpt, classes = world["models"] / "net.pt", world["models"] / "classes.txt"
    fingerprint = resources.file_fingerprint(ckpt, classes) + "-concurrency-test"
    try:
        got = run_threads(lambda: resources.load_own(TINY, str(ckpt), str(classes), fingerprint),
                          [()] * 4)
    finally:
        resources.load_own.clear()
    assert len(calls) == 1  # one load ...
    assert all(m is got[0] for m in got)  # ... one shared object


def session(world, clip: Path, name: str) -> AppTest:
    at = own_model_app(TINY, [CountingGradient.name], checkpoint="net.pt")
    return choose_upload(at, name, clip.read_bytes(), mime="video/mp4")


def page_ok(at: AppTest) -> None:
    assert_healthy(at)
    assert "Side by side" in {h.value for h in at.subheader}


def cost(world, clip: Path) -> int:
    """Clips the counting method explains for one uncached explanation of ``clip``."""
    from xai_core.models.registry import load_model
    from xai_core.video import load_clip

    before = CountingGradient.clips_explained
    model = load_model(arch=TINY, checkpoint=world["models"] / "net.pt", device="cpu")
    explain(model, load_clip(clip, model.input), CountingGradient.name, cache=None)
    spent = CountingGradient.clips_explained - before
    CountingGradient.clips_explained = before
    return spent


def test_two_browser_sessions_at_once(world, counting):
    fresh = good_clip(world["root"], "fresh.mp4", frames=10)
    costs = {k: cost(world, path) for k, path in (("a", world["a"]), ("b", world["b"]),
                                                  ("fresh", fresh))}
    assert min(costs.values()) > 1
    # different clips at once: each session gets its own clip's explanation
    a, b = session(world, world["a"], "a.mp4"), session(world, world["b"], "b.mp4")
    run_threads(lambda at: at.run(), [(a,), (b,)])
    page_ok(a)
    page_ok(b)
    caption = lambda at: " ".join(c.value for c in at.caption)  # noqa: E731
    assert "a.mp4" in caption(a) and "b.mp4" in caption(b)
    assert a.session_state["_explanation"][1].clip.content_hash != \
        b.session_state["_explanation"][1].clip.content_hash
    done = counting.clips_explained
    assert done == costs["a"] + costs["b"]
    # the same clip in two new sessions at once: computed once (here: already cached), both served
    c, d = session(world, world["a"], "a.mp4"), session(world, world["a"], "a.mp4")
    run_threads(lambda at: at.run(), [(c,), (d,)])
    page_ok(c)
    page_ok(d)
    assert counting.clips_explained == done
    np.testing.assert_array_equal(c.session_state["_explanation"][1][CountingGradient.name].full,
                                  d.session_state["_explanation"][1][CountingGradient.name].full)
    # two sessions uploading a clip nobody has seen, at once: one computation
    e, f = session(world, fresh, "fresh.mp4"), session(world, fresh, "fresh.mp4")
    run_threads(lambda at: at.run(), [(e,), (f,)])
    page_ok(e)
    page_ok(f)
    assert counting.clips_explained == done + costs["fresh"]
