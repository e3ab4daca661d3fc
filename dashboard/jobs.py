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

A job's progress is the core's :class:`~xai_core.progress.ProgressEvent`: its fraction
is the event's own (weighted by the cost of each stage when the sender knows it), and
its words are the event's label. Nothing here knows the stages of a computation.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from xai_core.progress import Progress, ProgressEvent

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a job's progress callback once the job has been cancelled."""


class Job:
    """One computation: status, the last progress event, result or error."""

    def __init__(self, key: str, label: str) -> None:
        self.key = key
        self.label = label
        self.status = "queued"  # queued | running | done | failed | cancelled
        self.event: ProgressEvent | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._finished = threading.Event()

    # ---------------------------------------------------------------- worker side
    def progress(self, event: ProgressEvent) -> None:
        """The callback handed to the computation; raises :class:`JobCancelled` on cancel."""
        if self._cancel.is_set():
            raise JobCancelled(self.key)
        self.event = event

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
        """0..1 of the whole job: the events' fraction (cost-weighted by the engine)."""
        if self.status == "done":
            return 1.0
        return 0.0 if self.event is None else self.event.fraction

    def describe(self) -> str:
        """One line for the progress bar: what runs now and the percent done."""
        what = "waiting for other computations" if self.event is None else self.event.label()
        return f"{self.label} — {what} ({self.fraction:.0%})"

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

    def submit(self, key: str, fn: Callable[[Progress], Any], *, label: str = "computing"
               ) -> Job:
        """The job for ``key``: the running or finished one, else a new one queued."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.status in ("queued", "running", "done"):
                self._jobs.move_to_end(key)
                return job
            job = Job(key, label)
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
