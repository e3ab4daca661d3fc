"""Long computations run off the page script: one at a time, shared, with progress and cancel.

Why not compute in the script itself? Streamlit interrupts a running script whenever the
user touches a widget, so an explanation computed inline would be thrown away (and
started again) by every impatient click. Here a computation is a :class:`Job` keyed by
its inputs and run by one worker thread shared by all browser sessions:

* the same inputs submitted again — by a rerun, a second click or another session —
  attach to the running job instead of starting a second one;
* jobs run one after another (two CPU cores; torch already uses both), so sessions
  never explain on the same model at the same time;
* the page only *waits* for a job (polling its progress), so an interrupted page
  resumes waiting on the next run;
* finished results are kept (a small LRU) so switching back to earlier settings is
  instant.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

#: progress(stage, done, total), the engine's signature.
Progress = Callable[[str, int, int], None]


class JobCancelled(Exception):
    """Raised inside a job's progress callback once the job has been cancelled."""


class Job:
    """One computation: status, current stage and progress, result or error.

    ``stages`` (optional) lists the stage names in order, so that :attr:`fraction` can
    say how far the whole job is; unknown stages count as the last known one.
    """

    def __init__(self, key: str, label: str, stages: list[str] | None = None) -> None:
        self.key = key
        self.label = label
        self.stages = list(stages or [])
        self.status = "queued"  # queued | running | done | failed | cancelled
        self.stage = "waiting for other computations"
        self.done = 0
        self.total = 0
        self.result: Any = None
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._stage_index = 0

    # ---------------------------------------------------------------- worker side
    def progress(self, stage: str, done: int, total: int) -> None:
        """The callback handed to the computation; raises :class:`JobCancelled` on cancel."""
        if self._cancel.is_set():
            raise JobCancelled(self.key)
        self.stage, self.done, self.total = stage, int(done), int(total)
        if stage in self.stages:
            self._stage_index = max(self._stage_index, self.stages.index(stage))
        elif stage.endswith(": cached"):
            # a cached method jumps to the end of that method's stages
            prefix = stage[: -len("cached")]
            idx = [i for i, s in enumerate(self.stages) if s.startswith(prefix)]
            if idx:
                self._stage_index = max(self._stage_index, idx[-1])
                self.done = self.total = 1

    def _run(self, fn: Callable[[Progress], Any]) -> None:
        if self._cancel.is_set():
            self.status = "cancelled"
            self._finished.set()
            return
        self.status = "running"
        try:
            self.result = fn(self.progress)
            self.status = "done"
        except JobCancelled:
            self.status = "cancelled"
        except BaseException as exc:  # handed to the page, which shows it readably
            self.error = exc
            self.status = "failed"
            log.info("job %s failed: %s", self.label, exc, exc_info=True)
        finally:
            self._finished.set()

    # ---------------------------------------------------------------- page side
    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def fraction(self) -> float:
        """0..1 over all stages (by stage position, then steps within the stage)."""
        if self.status == "done":
            return 1.0
        if not self.stages:
            return self.done / self.total if self.total else 0.0
        within = self.done / self.total if self.total else 0.0
        return min(1.0, (self._stage_index + within) / len(self.stages))

    def describe(self) -> str:
        """One line for the progress bar: stage, steps and percent."""
        steps = f" {self.done}/{self.total}" if self.total > 1 else ""
        return f"{self.label} — {self.stage}{steps} ({self.fraction:.0%})"

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)


class JobRunner:
    """Runs jobs on one worker thread; identical keys share a job; keeps recent results."""

    def __init__(self, keep: int = 12) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xai-job")
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._keep = keep

    def submit(self, key: str, fn: Callable[[Progress], Any], *, label: str = "computing",
               stages: list[str] | None = None) -> Job:
        """The job for ``key``: the running or finished one, else a new one queued."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.status in ("queued", "running", "done"):
                self._jobs.move_to_end(key)
                return job
            job = Job(key, label, stages)
            self._jobs[key] = job
            self._trim()
        self._pool.submit(job._run, fn)
        return job

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def pending(self) -> int:
        """Jobs queued or running (for "waiting for N other computations")."""
        with self._lock:
            return sum(j.status in ("queued", "running") for j in self._jobs.values())

    def forget(self, key: str) -> None:
        """Drop a finished job (so that the same inputs are computed again)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.finished:
                del self._jobs[key]

    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.finished]
        for k in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[k]
