"""The dashboard's job runner: one job per request key, however often it is asked; cancel
and failure free the key for a new start; progress is the cost-weighted fraction the
engine reports (the whole-page test of an explanation's progress is in test_dashboard)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dashboard.jobs import JobCancelled, JobRunner
from xai_core.errors import ParameterError
from xai_core.progress import ProgressEvent


def test_job_runner_merges_identical_requests_and_keeps_the_result():
    runner = JobRunner()
    calls = []
    release = threading.Event()

    def work(progress):
        calls.append(1)
        release.wait(5)
        progress(ProgressEvent("step", 1, 1))
        return 42

    a = runner.submit("k", work)
    b = runner.submit("k", work)  # an impatient second click
    assert a is b
    release.set()
    assert a.wait(5) and a.result == 42 and a.status == "done"
    assert runner.submit("k", work) is a  # finished results are reused
    assert calls == [1]


def test_job_runner_cancel_and_failure_allow_a_new_start():
    runner = JobRunner()
    started = threading.Event()

    def slow(progress):
        started.set()
        for i in range(1000):
            progress(ProgressEvent("loop", i, 1000))
            time.sleep(0.005)
        return "finished"

    job = runner.submit("slow", slow)
    assert started.wait(5)
    job.cancel()
    assert job.wait(5) and job.status == "cancelled"
    with pytest.raises(JobCancelled):
        job.progress(ProgressEvent("loop", 1, 2))
    again = runner.submit("slow", lambda p: "second")
    assert again is not job and again.wait(5) and again.result == "second"

    def broken(progress):
        raise ParameterError("bad input", hint="fix it")

    failed = runner.submit("broken", broken)
    assert failed.wait(5) and failed.status == "failed"
    assert isinstance(failed.error, ParameterError)
    assert runner.submit("broken", lambda p: "ok") is not failed


def test_job_progress_is_the_events_fraction():
    runner = JobRunner()
    seen = []

    def work(progress):
        progress(ProgressEvent("freeze frames", 4, 8, "dtd", overall=0.3))
        seen.append(runner.get("p").fraction)
        progress(ProgressEvent("cached", 1, 1, "dtd", overall=1.0))
        seen.append(runner.get("p").fraction)
        progress(ProgressEvent("metrics", 1, 4, "insertion"))  # no cost known: of the stage
        seen.append((runner.get("p").fraction, runner.get("p").describe()))
        return None

    job = runner.submit("p", work, label="Work")
    assert job.wait(5)
    assert seen[0] == pytest.approx(0.3)  # the cost-weighted fraction, not 4/8
    assert seen[1] == pytest.approx(1.0)  # a cache hit is the whole cost done
    assert seen[2][0] == pytest.approx(0.25)
    assert seen[2][1] == "Work — insertion: metrics 1/4 (25%)"
    assert np.isclose(job.fraction, 1.0)
