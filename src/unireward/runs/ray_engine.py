"""``--engine ray``: the job's chunks run on a Ray cluster, through Ray Data and an actor pool.

:class:`RayRunner` is a chunk runner for :class:`~unireward.runs.job.Job`: the chunks the job
planned become the rows of a Ray Dataset, ``map_batches`` hands them to a fixed pool of
:class:`ChunkActor` (``ActorPoolStrategy(size=num_workers)``, each actor reserving
``gpus_per_worker`` GPUs and ``cpus_per_worker`` CPUs), and every actor loads the job's work once
(one :class:`~unireward.judge.Judge`, one model per GPU) and turns each chunk into its rows exactly
as the local engine does. The rows stream back to the driver, which writes them through the job's
one row writer, so the manifest, resume, error rows, retries and exit status are the local
engine's, and so are the rows: the same chunks go through the same function.

Ray restarts an actor whose process or node died and runs its chunk again (Ray Data's actor pools
default to ``max_restarts=-1`` and ``max_task_retries=-1``); a row is written only when it reaches the driver, so a chunk done twice is
written once. If the driver itself dies, the rows written so far are kept and a rerun does the
rest, as with the local engine. Ray's own checkpointing is not used.

Needs ``pip install 'unireward[ray]'`` (Ray 2.60) on the driver and on every node, with the model
readable at the same path (or a hub id) on every node.
"""

from __future__ import annotations

import logging
import pickle
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from unireward.runs.job import Chunk, Emit, Row

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
#: seconds the pool may take to place and load every judge (a large checkpoint from network storage)
STARTUP_TIMEOUT_S = 1800


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: ``address`` ``None`` starts a Ray instance on this machine for the run,
    ``"auto"`` joins the cluster this machine belongs to, ``"HOST:PORT"`` a given one."""

    address: str | None = None
    num_workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(f"--num-workers must be >= 1, got {self.num_workers}")
        if self.gpus_per_worker < 0 or self.cpus_per_worker < 0:
            raise ValueError("--gpus-per-worker and --cpus-per-worker must be >= 0")
        if self.gpus_per_worker == 0 and self.cpus_per_worker == 0:
            raise ValueError("a worker must reserve some CPU or GPU (--cpus-per-worker or --gpus-per-worker)")


def add_engine_args(p: Any) -> None:
    """``--engine`` and the Ray flags, for every command that runs a job over input rows."""
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this process; ray: a Ray actor pool, one judge per worker (pip install 'unireward[ray]')")  # fmt: skip
    g.add_argument("--ray-address", default=None,
                   help="with --engine ray: auto (this machine's cluster) or HOST:PORT; default: start Ray here")  # fmt: skip
    g.add_argument("--num-workers", type=int, default=1, help="with --engine ray: judges in the pool")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, help="with --engine ray: GPUs each judge reserves")
    g.add_argument("--cpus-per-worker", type=float, default=1.0, help="with --engine ray: CPUs each judge reserves")


def options_from_args(args: Any) -> RayOptions | None:
    """The Ray options of a command line, or ``None`` for the local engine (Ray flags then refused)."""
    if getattr(args, "engine", "local") != "ray":
        given = [f for f, v in (("--ray-address", args.ray_address), ("--num-workers", args.num_workers != 1),
                                ("--gpus-per-worker", args.gpus_per_worker), ("--cpus-per-worker", args.cpus_per_worker != 1.0))
                 if v]  # fmt: skip
        if given:
            raise ValueError(f"{', '.join(given)} need --engine ray")
        return None
    return RayOptions(args.ray_address, args.num_workers, args.gpus_per_worker, args.cpus_per_worker)


class ChunkActor:
    """One worker of the pool: loads the job's work once, then turns each chunk into its rows."""

    def __init__(self, load: Callable[[], Callable[[Chunk], Sequence[Row]]]):
        import os

        import ray

        self.work = load()
        self.node = ray.get_runtime_context().get_node_id()
        self.worker = f"{self.node[:8]}/pid{os.getpid()}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out_rows, nodes, workers = [], [], []
        for blob in batch["chunk"]:
            chunk: Chunk = pickle.loads(blob)
            out_rows.append(pickle.dumps(list(self.work(chunk))))
            nodes.append(self.node)
            workers.append(self.worker)
        return {"rows": np.array(out_rows, dtype=object), "node": np.array(nodes), "worker": np.array(workers)}


class RayRunner:
    """A :class:`~unireward.runs.job.ChunkRunner` over a Ray actor pool (see the module docstring).

    ``load`` is what the local engine's :class:`~unireward.runs.job.LocalRunner` takes: called once
    per actor, it returns the function from a chunk to its rows. It is pickled to the actors, so it
    must not hold the model itself. After a run, :attr:`per_node` and :attr:`per_worker` count the
    items each node and each actor did.
    """

    def __init__(self, load: Callable[[], Callable[[Chunk], Sequence[Row]]], options: RayOptions):
        self.load = load
        self.options = options
        self.per_node: Counter[str] = Counter()
        self.per_worker: Counter[str] = Counter()

    def __call__(self, chunks: Iterator[Chunk], emit: Emit) -> None:
        todo = list(chunks)  # rows known without work (bad input lines) are written while this runs
        if not todo:
            return
        ray = _import_ray()
        o = self.options
        ray.init(address=o.address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True,
                 configure_logging=False)  # fmt: skip
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False  # the job has its own progress bar
            ctx.print_on_execution_start = False
            # every judge loaded before the first chunk: the work spreads over the whole pool, and a
            # cluster that cannot place the pool says so instead of waiting silently
            ctx.wait_for_min_actors_s = STARTUP_TIMEOUT_S
            ds = ray.data.from_items([{"chunk": pickle.dumps(c)} for c in todo], override_num_blocks=len(todo))
            out = ds.map_batches(
                ChunkActor, fn_constructor_args=(self.load,), batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=o.num_workers),
                num_gpus=o.gpus_per_worker or None, num_cpus=o.cpus_per_worker,
            )  # fmt: skip  (Ray Data's actor pools default to max_restarts=-1, max_task_retries=-1)
            for row in out.iter_rows():
                rows = pickle.loads(row["rows"])
                emit(rows)
                self.per_node[str(row["node"])] += len(rows)
                self.per_worker[str(row["worker"])] += len(rows)
        finally:
            ray.shutdown()

    def summary(self) -> dict[str, Any]:
        """Items per node and per worker, for the run's summary line."""
        return {"engine": "ray", "per_node": dict(self.per_node), "per_worker": dict(self.per_worker)}


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the Data API, used as ray.data
    except ImportError:
        raise ValueError("--engine ray needs Ray: pip install 'unireward[ray]'") from None
    return ray


def make_runner(load: Callable[[], Callable[[Chunk], Sequence[Row]]], options: RayOptions | None) -> RayRunner | None:
    """The runner for ``options`` (``None``: the job's local runner)."""
    return None if options is None else RayRunner(load, options)
