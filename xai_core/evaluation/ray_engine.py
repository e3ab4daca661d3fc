"""The Ray engine: the same run on a pool of Ray actors, one model per actor.

Ray Core actors rather than Ray Data: each actor loads the model once
(:class:`~xai_core.evaluation.modelref.ModelRef`) and evaluates one clip per call with
:func:`~xai_core.evaluation.run.evaluate_item` — the in-process engine's function, so the
numbers are the same — writes the clip's record through
:class:`~xai_core.evaluation.records.RecordFolder` and, every ``shard_clips`` clips, a
Parquet shard of their rows. The driver keeps two clips queued per actor, shows the
progress, and turns a worker that dies into an error record for the clip it was running
(a fresh actor takes its place). Resumption, tables and report are the in-process
engine's (:mod:`.plan`). The output folder must be one every worker can write: local, or
a shared file system on a cluster; so must the clips be readable (synthetic clips are
re-rendered on the worker from their seed).
"""

from __future__ import annotations

import collections
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..decompose import DEFAULT_OPTIONS, DecompositionOptions
from ..errors import ParameterError, XaiError
from ..metrics import Metric
from ..models.registry import LoadedModel
from .inputs import EvalItem
from .modelref import ModelRef
from .plan import EvaluationResult, RunPlan, RunSettings, finish_run, plan_run
from .records import RecordFolder, make_error_record
from .run import evaluate_item
from .shards import write_shard

__all__ = ["run_evaluation_ray"]

#: Object store of a local Ray: clips travel as paths or seeds, records are small.
LOCAL_OBJECT_STORE = 128 * 1024**2
#: Clips queued per actor (one running, one waiting: no idle gap between clips).
IN_FLIGHT = 2
#: Seconds to wait for the first worker to load its model.
START_TIMEOUT = 600.0


class RayWorkerError(XaiError):
    """The Ray workers could not start, or kept dying."""

    kind = "ray"


class EvalWorker:
    """One Ray actor: a model loaded once, clips evaluated one per call.

    Parameters
    ----------
    model_ref
        What to load.
    device
        ``cpu`` or ``cuda`` (the GPU Ray gave this actor).
    settings
        Methods, options, metrics and target of the run.
    out
        The run's output folder.
    model_name
        The table's ``model`` column (for the shards).
    tag
        The worker's name in shard files (``w0``, ``w1`` ...).
    threads
        Torch threads (the CPUs Ray gave this actor).
    shard_clips
        Finished clips per Parquet shard.
    """

    def __init__(self, model_ref: ModelRef, device: str, settings: RunSettings, out: str,
                 model_name: str, tag: str, threads: int, shard_clips: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.settings, self.out, self.tag = settings, Path(out), tag
        self.model_name, self.shard_clips = model_name, shard_clips
        self.folder = RecordFolder.existing(self.out)
        self.buffer: list[dict[str, Any]] = []
        self.seq = 0
        self.error: str | None = None
        tic = time.perf_counter()
        try:
            self.model: LoadedModel | None = model_ref.load(device=device)
        except Exception as exc:  # reported by ready(): the driver stops with a clear line
            self.model = None
            self.error = exc.user_message() if isinstance(exc, XaiError) else \
                f"{type(exc).__name__}: {exc}"
        self.load_seconds = time.perf_counter() - tic

    def ready(self) -> dict[str, Any]:
        """Where this worker runs and how its model load went (``error`` when it failed)."""
        import torch

        return {"host": socket.gethostname(), "pid": os.getpid(), "tag": self.tag,
                "threads": torch.get_num_threads(), "load_seconds": self.load_seconds,
                "device": None if self.model is None else str(self.model.device),
                "error": self.error}

    def evaluate(self, item: EvalItem) -> dict[str, Any]:
        """Evaluate one clip, write its record (and a shard when enough are done)."""
        assert self.model is not None, self.error
        record = evaluate_item(self.model, item, self.settings)
        self.folder.write(item.clip_id, record)
        self.buffer.append(record)
        if len(self.buffer) >= self.shard_clips:
            self.flush()
        return {"clip_id": item.clip_id, "error": record.get("error"),
                "seconds": record["seconds"]}

    def flush(self) -> None:
        """Write the finished clips not yet in a shard as one shard."""
        if self.buffer:
            write_shard(self.out, self.buffer, self.model_name, self.tag, self.seq)
            self.seq += 1
            self.buffer = []


def run_evaluation_ray(model_ref: ModelRef, items: Sequence[EvalItem], methods: Sequence[str],
                       out_dir: str | Path, *, metrics: Iterable[str | Metric] | None = None,
                       options: DecompositionOptions = DEFAULT_OPTIONS,
                       method_params: dict[str, dict[str, Any]] | None = None,
                       target: str = "predicted", limit: int | None = None,
                       restart: bool = False, show_progress: bool = True, source: str = "",
                       report: bool = True, address: str | None = None,
                       workers: int | None = None, gpus_per_worker: float = 0.0,
                       cpus_per_worker: int = 1, shard_clips: int = 64,
                       model: LoadedModel | None = None,
                       on_record: Callable[[str], None] | None = None) -> EvaluationResult:
    """:func:`~xai_core.evaluation.run_evaluation` on Ray actors: same records, same tables.

    Parameters
    ----------
    model_ref
        The model, as workers load it (once each).
    items, methods, out_dir, metrics, options, method_params, target, limit, restart
        As for :func:`~xai_core.evaluation.run_evaluation`.
    show_progress, source, report, on_record
        As for :func:`~xai_core.evaluation.run_evaluation` (``on_record`` is called in
        this process when a worker reports a clip done).
    address
        A running Ray cluster (``ray://host:10001``, ``host:6379`` or ``auto``); ``None``
        starts a local Ray for the run and stops it afterwards. When this process is
        already connected to Ray (``ray.init`` called before), that connection is used.
    workers
        Actors; default as many as the cluster's CPUs (or GPUs) allow.
    gpus_per_worker
        GPUs per actor (fractions pack several actors on one GPU); above 0 the model
        runs on ``cuda``.
    cpus_per_worker
        CPUs per actor (its torch threads).
    shard_clips
        Finished clips per Parquet shard a worker writes.
    model
        The model loaded here already (for the run's configuration); default: loaded
        from ``model_ref`` on the CPU.

    Returns
    -------
    EvaluationResult
        As :func:`~xai_core.evaluation.run_evaluation`.
    """
    if workers is not None and workers < 1:
        raise ParameterError("--workers must be at least 1")
    if gpus_per_worker < 0 or cpus_per_worker < 1 or shard_clips < 1:
        raise ParameterError("--gpus-per-worker must be ≥ 0, --cpus-per-worker and the "
                             "clips per shard ≥ 1")
    if gpus_per_worker > 0 and address is None and not _ray_connected():
        import torch

        if not torch.cuda.is_available():  # before starting a local Ray for nothing
            raise RayWorkerError(f"--gpus-per-worker {gpus_per_worker:g} but this machine has "
                                 "no GPU", hint="Drop --gpus-per-worker to run on CPUs, or "
                                                "give --address of a cluster with GPUs.")
    model = model if model is not None else model_ref.load(device="cpu")
    plan = plan_run(model, items, methods, out_dir, metrics=metrics, options=options,
                    method_params=method_params, target=target, limit=limit, restart=restart,
                    source=source, model_ref=model_ref, engine="ray")
    computed = 0
    if plan.todo:
        ray, started = _connect(address, workers, cpus_per_worker, gpus_per_worker)
        try:
            computed = _dispatch(ray, plan, model_ref, model, workers, gpus_per_worker,
                                 cpus_per_worker, shard_clips, show_progress, on_record)
        finally:
            if started:
                ray.shutdown()
    return finish_run(plan, model.name, computed, report=report)


def _ray_connected() -> bool:
    """Whether this process is connected to Ray already (without importing it)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _connect(address: str | None, workers: int | None, cpus: int, gpus: float
             ) -> tuple[Any, bool]:
    """Ray, connected: an existing connection, a cluster at ``address``, or a local Ray."""
    try:  # imported here: Ray takes about a second to import, the in-process engine none
        import ray
    except ImportError as exc:
        raise ParameterError("Ray is not installed",
                             hint="pip install ray==2.60.0 (as requirements.txt pins it).") \
            from exc
    if ray.is_initialized():
        return ray, False
    if address:
        _check_reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from here
    kw: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            n = workers or max(1, (os.cpu_count() or 1) // cpus)
            ray.init(address="local", num_cpus=n * cpus, include_dashboard=False,
                     object_store_memory=LOCAL_OBJECT_STORE, **kw)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RayWorkerError(f"cannot start or reach {where} ({str(exc).splitlines()[0]})",
                             hint="Check the address (`ray status` on the head node), or "
                                  "drop --address to run a local Ray.") from exc
    return ray, True


def _check_reachable(address: str) -> None:
    """Fail fast when nothing answers at ``host:port`` (Ray itself retries for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        why = exc.strerror or exc
        raise RayWorkerError(f"nothing answers at the Ray address {address} ({why})",
                             hint="Start the cluster (`ray start --head`) and give the address "
                                  "it prints, or drop --address to run a local Ray.") from exc


def _pool_size(ray: Any, workers: int | None, cpus: int, gpus: float, todo: int) -> int:
    """Actors to start: asked for, or what the cluster's resources allow; checked."""
    have = ray.cluster_resources()
    cpu, gpu = float(have.get("CPU", 0)), float(have.get("GPU", 0))
    if gpus > 0 and gpu < gpus:
        raise RayWorkerError(f"--gpus-per-worker {gpus:g} but the Ray cluster has {gpu:g} GPUs",
                             hint="Drop --gpus-per-worker to run on CPUs, or add GPU nodes.")
    fits = math.floor(cpu / cpus + 1e-9)
    if gpus > 0:
        fits = min(fits, math.floor(gpu / gpus + 1e-9))
    if workers is not None and workers > fits:
        raise RayWorkerError(f"{workers} workers need {workers * cpus} CPUs"
                             + (f" and {workers * gpus:g} GPUs" if gpus else "")
                             + f"; the Ray cluster has {cpu:g} CPUs and {gpu:g} GPUs",
                             hint="Ask for fewer --workers (or fewer CPUs/GPUs per worker).")
    return max(1, min(workers or fits, todo))


def _dispatch(ray: Any, plan: RunPlan, model_ref: ModelRef, model: LoadedModel,
              workers: int | None, gpus: float, cpus: int, shard_clips: int,
              show_progress: bool, on_record: Callable[[str], None] | None) -> int:
    """Evaluate ``plan.todo`` on a pool of actors; returns the clips computed."""
    model_name, class_names = model.name, model.class_names
    n = _pool_size(ray, workers, cpus, gpus, len(plan.todo))
    actor_cls = ray.remote(EvalWorker).options(num_cpus=cpus, num_gpus=gpus or None)
    device = "cuda" if gpus > 0 else "cpu"
    out = str(plan.out.resolve())
    created = 0

    def start() -> Any:
        nonlocal created
        created += 1
        return actor_cls.remote(model_ref, device, plan.settings, out, model_name,
                                f"w{created - 1}", cpus, shard_clips)

    actors = [start() for _ in range(n)]
    _check_ready(ray, actors)
    originals = {it.clip_id: it for it in plan.todo}
    queue = collections.deque(it.light() for it in plan.todo)
    in_flight: dict[Any, tuple[int, int, EvalItem]] = {}  # ref → (actor slot, seq, item)
    seq = computed = failed = deaths = 0
    bar = tqdm(total=len(plan.items), initial=len(plan.items) - len(plan.todo),
               desc=f"evaluate (ray, {n} workers)", unit="clip", disable=not show_progress,
               dynamic_ncols=True)

    def submit(slot: int) -> None:
        nonlocal seq
        while queue and sum(1 for s, _, _ in in_flight.values() if s == slot) < IN_FLIGHT:
            item = queue.popleft()
            in_flight[actors[slot].evaluate.remote(item)] = (slot, seq, item)
            seq += 1

    try:
        for slot in range(n):
            submit(slot)
        while in_flight:
            done, _ = ray.wait(list(in_flight), num_returns=1)
            ref = done[0]
            slot, first, item = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # not the clip: writing its record
                raise RayWorkerError(f"a Ray worker failed ({str(exc.cause)[:300]})",
                                     hint="Is --out writable from every node?") from exc
            except ray.exceptions.RayActorError as exc:
                # the clip it was running (its oldest) is recorded as failed; the clips
                # queued behind it go back to the queue, and a fresh actor takes its place
                deaths += 1
                if deaths > 2 * n + 2:
                    raise RayWorkerError(f"Ray workers died {deaths} times "
                                         f"({str(exc).splitlines()[0][:200]})",
                                         hint="Out of memory? Try fewer --workers.") from exc
                mine = sorted([(q, r) for r, (s, q, _) in in_flight.items() if s == slot])
                if mine and mine[0][0] < first:  # an older clip was running: requeue this one
                    queue.appendleft(item)
                    item = in_flight.pop(mine.pop(0)[1])[2]
                for _, r in reversed(mine):
                    queue.appendleft(in_flight.pop(r)[2])
                original = originals[item.clip_id]
                plan.folder.write(item.clip_id, make_error_record(
                    original, RuntimeError(f"the Ray worker died while evaluating this clip "
                                           f"({str(exc).splitlines()[0][:200]})"), 0.0,
                    class_names))
                result = {"clip_id": item.clip_id, "error": "worker died"}
                actors[slot] = start()
                _check_ready(ray, [actors[slot]])
            computed += 1
            failed += result.get("error") is not None
            bar.set_postfix_str(f"{failed} failed" if failed else item.clip_id[-28:])
            bar.update(1)
            if on_record is not None:
                on_record(item.clip_id)
            submit(slot)
        ray.get([a.flush.remote() for a in actors])
    finally:
        bar.close()
        for a in actors:
            ray.kill(a)
    return computed


def _check_ready(ray: Any, actors: list[Any]) -> None:
    """Wait until the actors have loaded their model; stop with the first one's error."""
    try:
        infos = ray.get([a.ready.remote() for a in actors], timeout=START_TIMEOUT)
    except ray.exceptions.GetTimeoutError as exc:
        raise RayWorkerError(f"no Ray worker started within {START_TIMEOUT:.0f} s",
                             hint="The cluster may lack the CPUs/GPUs asked for "
                                  "(`ray status`).") from exc
    except ray.exceptions.RayActorError as exc:
        raise RayWorkerError(f"a Ray worker could not start ({str(exc).splitlines()[0][:300]})",
                             hint="Is xai_core installed on every node (pip install -e .)?") \
            from exc
    for info in infos:
        if info["error"]:
            raise RayWorkerError(f"a Ray worker on {info['host']} could not load the model: "
                                 f"{info['error']}",
                                 hint="Model files must be readable at the same path on every "
                                      "node.")
