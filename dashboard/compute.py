"""From the settings to a computed explanation: the request, its estimate, the shared jobs.

The page builds ONE :class:`~xai_core.request.ExplainRequest` per model shown
(:func:`build_request`); its :meth:`~xai_core.request.ExplainRequest.key` is the job and
session key of the explanation, :func:`xai_core.estimate.estimate` prices it, and
:func:`xai_core.engine.run` computes it on the shared :class:`~dashboard.jobs.JobRunner`
(one at a time, identical requests merged, through ``xai_core``'s result cache).

What the page shows while that happens (:func:`obtain`):

* the result, when it is stored in the session or finished;
* otherwise the previous result of the same slot stays on the page, with a banner and a
  progress bar above it, and the page waits for the job at its end (:func:`wait_pending`)
  before re-running with the new result — nothing blanks while a method is added;
* a request above :data:`CONFIRM_ABOVE_PASSES` waits for *Start* under an estimate of
  the methods that need it, while the methods that do not are shown (computed as a
  request of their own, usually from the cache);
* one method that fails (an invalid layer name, a method that refuses the model) is
  reported in its own place: the others are computed one by one
  (:func:`explain_tolerant`) and shown.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
import torch

from xai_core import engine
from xai_core.errors import XaiError
from xai_core.estimate import CostEstimate, estimate
from xai_core.models.registry import LoadedModel
from xai_core.progress import Progress, ProgressEvent
from xai_core.request import ExplainRequest
from xai_core.results import Explanation
from xai_core.video.clip import Clip

from .jobs import Job, JobCancelled, JobRunner
from .settings import Settings

log = logging.getLogger(__name__)

#: Explanations needing more model passes than this wait for a click on Start, with a
#: time estimate (DTD + Grad-CAM on a 16-frame clip need 85; one extremal perturbation
#: 2,400). A pass count, not seconds: the same request asks on any machine.
CONFIRM_ABOVE_PASSES = 400

#: Seconds between looks at a running job's progress.
POLL_SECONDS = 0.2


@st.cache_resource(show_spinner=False)
def job_runner() -> JobRunner:
    """The one runner of long computations shared by every session of this server."""
    return JobRunner()


def build_request(settings: Settings, model: LoadedModel, clip: Clip,
                  target: int | None | str = "settings") -> ExplainRequest:
    """The explanation request of one model on this page (validated by the core): the
    sidebar's methods, parameters and options; the settings' target unless given."""
    return ExplainRequest.build(model, clip, settings.methods,
                                target=settings.target if target == "settings" else target,
                                options=settings.options, method_params=settings.params(),
                                decompose=settings.decomposed())


def build_tolerant(settings: Settings, model: LoadedModel, clip: Clip,
                   target: int | None | str = "settings") -> tuple[ExplainRequest, dict[str, str]]:
    """:func:`build_request`, and when one method refuses the model or its parameters, the
    request of the others with that method's reason (shown in its place). Raises when
    every method is refused."""
    try:
        return build_request(settings, model, clip, target), {}
    except XaiError:
        if len(settings.methods) < 2:
            raise
    errors: dict[str, str] = {}
    for name in settings.methods:
        alone = dataclasses.replace(settings, methods=[name],
                                    full_only=[m for m in settings.full_only if m == name])
        try:
            build_request(alone, model, clip, target)
        except XaiError as exc:
            errors[name] = exc.user_message()
    kept = [m for m in settings.methods if m not in errors]
    if not kept:
        return build_request(settings, model, clip, target), errors  # raises the first
    return build_request(dataclasses.replace(
        settings, methods=kept, full_only=[m for m in settings.full_only if m in kept]),
        model, clip, target), errors


# --------------------------------------------------------------------------- computing
@dataclass
class Computed:
    """A finished job: the explanation of the methods that worked, and why others failed."""

    explanation: Explanation
    errors: dict[str, str] = field(default_factory=dict)


def error_text(exc: BaseException) -> str:
    """One readable line for a failed method (never a traceback)."""
    if isinstance(exc, XaiError):
        return exc.user_message()
    first = (str(exc).splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


_FATAL = (JobCancelled, MemoryError, torch.OutOfMemoryError, KeyboardInterrupt)


def explain_tolerant(request: ExplainRequest, progress: Progress) -> Computed:
    """:func:`xai_core.engine.run`, and when it fails with several methods, each method on
    its own (those computed before the failure come from the cache), so that one method's
    error does not take the others with it. Raises only when every method fails."""
    try:
        return Computed(engine.run(request, progress=progress))
    except _FATAL:
        raise
    except Exception as exc:
        if len(request.methods) < 2:
            raise
        first_error = exc
        log.info("explanation failed (%s); computing the methods one by one", exc)
    names = list(request.methods)
    done: list[Explanation] = []
    errors: dict[str, str] = {}
    for i, name in enumerate(names):
        single = request.replace(methods={name: request.methods[name]},
                                 split=frozenset(request.split & {name}))

        def part(event: ProgressEvent, i: int = i) -> None:
            progress(dataclasses.replace(event, overall=(i + event.fraction) / len(names)))

        try:
            done.append(engine.run(single, progress=part))
        except _FATAL:
            raise
        except Exception as exc:  # reported in the method's place
            errors[name] = error_text(exc)
            log.info("method %s failed: %s", name, exc, exc_info=True)
    if not done:
        raise first_error
    merged = dataclasses.replace(
        done[0], methods={n: r for e in done for n, r in e.methods.items()},
        timings={"total": sum(e.timings.get("total", 0.0) for e in done),
                 **{k: v for e in done for k, v in e.timings.items() if k != "total"}},
        warnings=list(dict.fromkeys(w for e in done for w in e.warnings)))
    return Computed(merged, errors)


# --------------------------------------------------------------------------- estimates
def cost_estimate(request: ExplainRequest, measure: bool) -> CostEstimate:
    """What the request will cost: passes, and with ``measure`` the seconds (a timed pass ×
    passes); once per request (the last few requests are remembered)."""
    memo: dict = st.session_state.setdefault("_estimates", {})
    entry = (request.key(), measure)
    if entry not in memo:
        while len(memo) >= 8:
            memo.pop(next(iter(memo)))
        memo[entry] = estimate(request, measure=measure)
    return memo[entry]


def split_by_cost(cost: CostEstimate, limit: int) -> tuple[list[str], list[str]]:
    """Methods shown at once (cached, or within ``limit`` passes together, in order) and
    methods that wait for Start."""
    quick, slow, passes = [], [], 0
    for m in cost.methods:
        if m.cached or (not slow and passes + m.passes <= limit):
            quick.append(m.method)
            passes += 0 if m.cached else m.passes
        else:
            slow.append(m.method)
    return quick, slow


def subset(request: ExplainRequest, names: Sequence[str]) -> ExplainRequest:
    """The same request for some of its methods only."""
    return request.replace(methods={n: request.methods[n] for n in names},
                           split=frozenset(request.split & set(names)))


def confirmed(cost: CostEstimate, key: str, button_key: str) -> bool:
    """Long computations start only when asked: the estimate and a Start button."""
    chosen = st.session_state.setdefault("_confirmed", set())
    if key in chosen:
        return True
    names = ", ".join(m.method for m in cost.methods)
    st.warning(f"**{names}** runs **{cost.passes:,} model passes**: "
               f"**{cost.total()}** on this machine, estimated from a "
               f"measured pass of this clip ({cost.pass_seconds:.2f} s per clip).")
    st.code(cost.describe(), language=None)
    st.caption("Faster: fewer iterations or areas (Method parameters), full relevance only "
               "(Decomposition options), or fewer methods. Results are cached: a second look "
               "costs nothing.")
    if st.button(f"Start ({cost.total()})", type="primary", key=button_key):
        chosen.add(key)
        st.rerun()
    return False


# --------------------------------------------------------------------------- jobs
def run_job(key: str, fn: Callable[[Progress], Any], *, label: str, cancel: str) -> Job:
    """Submit ``fn`` under ``key`` (or attach to the same job) and wait for it on the page
    with a progress bar and a Cancel button (widget key ``cancel``).

    A click on Cancel cancels the job, remembers its key as ``_cancelled`` and reruns.
    Returns the finished job (done, failed or cancelled).
    """
    runner = job_runner()
    job = runner.submit(key, fn, label=label)
    if job.finished:
        return job
    slot = st.empty()  # emptied when done, so no stale progress stays on the page
    with slot.container():
        bar = _progress(job, cancel, key)
    while not job.wait(POLL_SECONDS):
        bar.progress(job.fraction, text=job.describe())
    slot.empty()
    return job


def _progress(job: Job, cancel: str, key: str) -> Any:
    """A Cancel button and the job's progress bar (cost-weighted)."""
    if st.button("Cancel", key=cancel):
        job.cancel()
        st.session_state.setdefault("_cancelled_keys", set()).add(key)
        st.session_state["_cancelled"] = key
        st.rerun()
    waiting = job_runner().pending() - 1
    bar = st.progress(job.fraction, text=job.describe())
    if waiting > 0 and job.status == "queued":
        st.caption(f"Waiting for {waiting} other computation(s) to finish.")
    return bar


@dataclass
class Shown:
    """What the page draws for one request: its explanation (``current``) or the slot's
    previous one while it computes or waits for Start; failed methods; a job to wait for."""

    explanation: Explanation | None
    current: bool
    errors: dict[str, str] = field(default_factory=dict)
    job: Job | None = None
    bar: Any = None


@dataclass(frozen=True)
class Slot:
    """Where a request's result lives in the session, and its widget keys. ``wait``: with
    no earlier result to show, the page waits for the job where it is drawn (the first
    model: nothing else to show) or only at its end (a second model: the first's views
    come first)."""

    name: str = "_explanation"
    label: str = ""
    wait: bool = True

    def key(self, what: str) -> str:
        return what if self.name == "_explanation" else f"{what}{self.name}"


MAIN = Slot()


def obtain(request: ExplainRequest, slot: Slot = MAIN) -> Shown:
    """The explanation of ``request`` for the page, never blocking on a result when an
    earlier one can be shown meanwhile (see the module's docstring)."""
    key = request.key()
    stored = st.session_state.get(slot.name)
    if stored is not None and stored[0] == key:
        errors = st.session_state.get(slot.key("_method_errors"), (None, {}))
        return Shown(stored[1], True, dict(errors[1]) if errors[0] == key else {})
    previous = None if stored is None else stored[1]
    if key in st.session_state.get("_cancelled_keys", set()):
        st.info(f"Computation{slot.label} cancelled.")
        if st.button("Explain", type="primary", key=slot.key("restart")):
            st.session_state["_cancelled_keys"].discard(key)
            st.rerun()
        return Shown(previous, False)

    runner = job_runner()
    before = st.session_state.get(slot.key("_job_key"))
    if before and before != key:  # settings changed while computing: drop the old job
        old = runner.get(before)
        if old is not None and not old.finished:
            old.cancel()
    st.session_state[slot.key("_job_key")] = key
    if runner.get(key) is None:  # not started yet (by this or another session)
        cost = cost_estimate(request, measure=False)
        if cost.passes > CONFIRM_ABOVE_PASSES and key not in st.session_state.get(
                "_confirmed", set()):
            quick, slow = split_by_cost(cost, CONFIRM_ABOVE_PASSES)
            box = st.container()
            shown = Shown(previous, False)
            if quick:  # the methods that need no Start are shown meanwhile
                shown = obtain(subset(request, quick), slot)
                st.session_state[slot.key("_job_key")] = key
            with box, st.spinner("Estimating how long this takes…"):
                slow_cost = cost_estimate(subset(request, slow), measure=True)
            with box:
                confirmed(slow_cost, key, slot.key("confirm_start"))
            return dataclasses.replace(shown, current=False)

    label = f"Explaining with {', '.join(request.names)}{slot.label}"

    def fn(progress: Progress) -> Computed:
        return explain_tolerant(request, progress)

    job = runner.submit(key, fn, label=label)
    if not job.finished and (previous is not None or not slot.wait):
        box = st.container()
        with box:
            if previous is not None:
                st.info(f"Computing the new explanation{slot.label} "
                        f"({', '.join(request.names)}): the views below still show the "
                        "previous one.")
            bar = _progress(job, slot.key("cancel_job"), key)
        return Shown(previous, False, job=job, bar=bar)
    while not job.finished or job.status == "cancelled":
        # (a job cancelled by a newer request of another run: this run still wants it)
        job = run_job(key, fn, label=label, cancel=slot.key("cancel_job"))
    return _finished(job, key, slot, previous)


def _finished(job: Job, key: str, slot: Slot, previous: Explanation | None) -> Shown:
    runner = job_runner()
    if job.status == "failed":
        runner.forget(key)
        raise job.error
    if job.status != "done":
        return Shown(previous, False)
    computed: Computed = job.result
    st.session_state[slot.name] = (key, computed.explanation)
    st.session_state[slot.key("_method_errors")] = (key, dict(computed.errors))
    st.session_state.pop("_tube_memo", None)
    return Shown(computed.explanation, True, dict(computed.errors))


def wait_pending(shown: Sequence[Shown]) -> None:
    """At the end of the page: wait for the jobs whose previous result is on the page,
    moving their progress bars, then run the page again with the new results."""
    pending = [s for s in shown if s.job is not None]
    if not pending:
        return
    while not all(s.job.wait(POLL_SECONDS) for s in pending):
        for s in pending:
            if s.bar is not None:
                s.bar.progress(s.job.fraction, text=s.job.describe())
    st.session_state["_auto_rerun"] = True  # notes of this run are shown once more
    st.rerun()
