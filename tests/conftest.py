"""Fixtures shared by the tests (plain helpers, imported by test modules, are in helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from helpers import (
    WORLD_ARCH,
    GradientTimesInput,
    InputTimesWeight,
    World,
    methods_registered,
    model_world,
    registered_small_c3d,
)

from xai_core.models.registry import LoadedModel, load_model
from xai_core.models.spec import ModelSpec


@pytest.fixture
def one_thread():
    """Tiny nets run fastest on one thread (and do not fight other jobs for the cores).

    Modules of tiny-net tests ask for it for every test:
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def registered():
    """Register the test methods (helpers.InputTimesWeight, GradientTimesInput) for one test."""
    with methods_registered(InputTimesWeight, GradientTimesInput) as added:
        yield added


@pytest.fixture(scope="module")
def small_c3d(request) -> Iterator[ModelSpec]:
    """The small C3D on 8×32×32 clips, registered under the test module's ``TINY`` name
    while its tests run."""
    with registered_small_c3d(request.module.TINY) as spec:
        yield spec


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    """A small C3D for 8×32×32 clips in a models folder, a private cache, a good clip."""
    with model_world(tmp_path_factory.mktemp("bad-input"), WORLD_ARCH) as w:
        yield w


@pytest.fixture(scope="module")
def tiny(world) -> LoadedModel:
    """The ``world`` fixture's model, loaded on the CPU."""
    return load_model(arch=WORLD_ARCH, checkpoint=world.ckpt, classes=world.classes,
                      device="cpu")


@pytest.fixture(scope="session")
def browser_server(tmp_path_factory):
    """The dashboard's own server for the browser tests (bundled models, sample clips, a
    private result cache; :func:`browser_helpers.dashboard_server`), one per session:
    ``(url, its folder)``. Skipped, saying why, without Chromium, Playwright, the bundled
    weights or the sample clips."""
    from browser_helpers import dashboard_server

    with dashboard_server(tmp_path_factory.mktemp("browser")) as s:
        yield s.url, s.tmp

