"""Where a sweep's runs happen: a local process pool, or a dask.distributed cluster.

Each launcher takes the tasks still to run and a ``finished(task, row)`` callback,
and calls it once per task as results arrive (in any order: ``vpmu_core.sweep``
orders the rows). Ctrl-C cancels what has not finished and is raised to the caller.

Why processes started fresh (``spawn``): the command line runs a progress thread,
and forking a process with threads can copy a held lock; a worker imports vpmu and
discovers the plugins once, then runs many points. dask is imported only when asked
for (the optional ``.[dask]`` extra); its workers need vpmu and the same plugins
installed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from .errors import ConfigError
from .sweep import Runner, Task, run_task, serial

Finished = Callable[[Task, dict[str, Any]], None]


def default_workers() -> int:
    return os.cpu_count() or 1


def local(workers: int | None = None) -> Runner:
    """A process pool of ``workers`` (default: the CPU count); 1 runs in this process."""
    n = workers or default_workers()

    def launch(tasks: list[Task], finished: Finished) -> None:
        if n <= 1 or len(tasks) <= 1:
            serial(tasks, finished)
            return
        pool = ProcessPoolExecutor(min(n, len(tasks)), mp_context=mp.get_context("spawn"))
        try:
            futures: dict[Future[dict[str, Any]], Task] = {
                pool.submit(run_task, t): t for t in tasks
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for f in sorted(done, key=lambda f: futures[f].point):
                    finished(futures[f], f.result())
        except BaseException:
            # a running point is abandoned, not awaited: its worker is stopped first,
            # or the interpreter's exit would wait for it
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()

    return launch


def dask(address: str, workers: int | None = None) -> Runner:
    """A dask.distributed cluster at ``address``, or a LocalCluster of ``workers``
    single-threaded processes for ``"local"``."""
    try:
        import dask.distributed
    except ImportError:
        raise ConfigError(
            "--dask", address, 'needs dask.distributed: pip install -e ".[dask]"'
        ) from None

    dist: Any = dask.distributed  # untyped: one Any here, not a cast per call

    def launch(tasks: list[Task], finished: Finished) -> None:
        cluster: Any = None
        if address == "local":
            cluster = dist.LocalCluster(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = dist.Client(cluster)
        else:
            try:
                client = dist.Client(address, timeout="10s")
            except OSError as exc:
                raise ConfigError("--dask", address, f"no dask scheduler there ({exc})") from None
        try:
            futures = {client.submit(run_task, t, pure=False): t for t in tasks}
            try:
                for f in dist.as_completed(futures):
                    finished(futures[f], f.result())
            except BaseException:
                client.cancel(list(futures))
                raise
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    return launch
