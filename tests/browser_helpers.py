"""Shared set-up of the browser tests: the dashboard's own Streamlit server, Debian's
Chromium, and a :class:`Journey` that drives the page one user step at a time.

* :func:`requirements` says why a browser test cannot run here (or ``None``);
* :func:`dashboard_server` starts ``streamlit run streamlit_app.py`` on a free localhost
  port with a private result cache, its output captured in ``server.log``;
* :func:`player_frame` finds the frame player once its pictures have arrived.

The step-by-step driver of the journeys is :mod:`journey`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: First load computes the explanation: minutes on a busy 2-core machine.
LOAD_TIMEOUT_MS = 900_000
PLAYER = 'iframe[title*="frame_player"]'


def requirements() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    if not CHROMIUM.is_file():
        return "Chromium is not installed at /usr/bin/chromium (run `make browser`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    from dashboard.samples import sample_clips
    from xai_core.models.bundled import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "motion.pt").is_file():
        return "the bundled motion.pt weights are not trained yet (make train)"
    if not sample_clips():
        return "the sample clips are not generated yet (make samples)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    tmp: Path
    log: Path


@contextlib.contextmanager
def dashboard_server(tmp: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """The dashboard on a free port, its cache in ``tmp/cache``, stdout and stderr in
    ``tmp/server.log``; skips the test when :func:`requirements` are missing.

    ``env``: more environment (``XAI_MODELS_DIR`` is removed unless given here). No file
    watcher: a source file saved meanwhile would make Streamlit re-import its module
    under the running server (objects cached before it are then of another class).
    """
    missing = requirements()
    if missing:
        pytest.skip(missing)
    port = free_port()
    environ = dict(os.environ, XAI_CACHE_DIR=str(tmp / "cache"))
    environ.pop("XAI_MODELS_DIR", None)
    environ.update(env or {})
    log_path = tmp / "server.log"
    args = [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=environ, stdout=log,
                                stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the Streamlit server did not start:\n"
                                + log_path.read_text()[-2000:])
                time.sleep(0.5)
            yield Server(url, tmp, log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def idle(page) -> None:
    """Wait until the script run has finished (the 'running' status widget is gone)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=LOAD_TIMEOUT_MS, polling=250)


def player_frame(page, timeout_ms: int = LOAD_TIMEOUT_MS):
    """The frame player's iframe (the last on the page: the one that acts), once its
    pictures have arrived. A run may replace the iframe while we look (an upload does):
    then the new one is taken."""
    page.wait_for_selector(PLAYER, timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        with contextlib.suppress(Exception):  # detached meanwhile: look again
            handle = page.locator(PLAYER).last.element_handle(timeout=5_000)
            player = handle.content_frame() if handle else None
            if player is not None and player.evaluate(
                    "() => !!(window.__player && window.__player.data)"):
                return player
        if time.monotonic() > deadline:
            raise TimeoutError("the frame player did not show its pictures")
        page.wait_for_timeout(200)
