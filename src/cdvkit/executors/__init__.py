"""Where jobs run: a search's questions, an evaluation's answers.

``local`` (the default) runs them concurrently in this process; ``ray`` partitions them over a
pool of Ray actors (``pip install 'cdvkit[ray]'``). Both are registered by name in ``EXECUTORS``,
where another package adds its own (entry point group ``cdvkit.executors``). An executor only
executes: the jobs and the work that runs them come from the search and evaluation packages
(``cdvkit.jobs``), and this process is the single writer of the run store: a Ray worker streams
its writes back as events (``events``) that the driver stores as they arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cdvkit.executors.base import Executor, ExecutorUnavailableError
from cdvkit.executors.local import LocalExecutor
from cdvkit.registry import Registry, factory, parse_spec

ExecutorFactory = Callable[..., Executor]  # factory(**options) -> Executor
# Executors register by name (``--executor NAME``); another package adds one through the entry
# point group cdvkit.executors, naming an Executor subclass or a factory.
EXECUTORS: Registry[ExecutorFactory] = Registry(
    "executor",
    "cdvkit.executors",
    accept=factory(
        "an executor factory (**options) -> Executor, or an Executor subclass", methods=("map",)
    ),
)


@EXECUTORS.register("local", help="this process: jobs run concurrently in its event loop")
def _local(**options: Any) -> Executor:
    if options:
        raise ValueError(f"the local executor takes no options (got {', '.join(options)})")
    return LocalExecutor()


@EXECUTORS.register(
    "ray", help="a pool of Ray actors (pip install 'cdvkit[ray]'); address, workers, ..."
)
def _ray(**options: Any) -> Executor:
    # Ray is an optional extra: its modules are imported only when a Ray executor is built.
    from cdvkit.executors.ray_executor import RayExecutor

    return RayExecutor(**options)


def make_executor(name: str = "local", **options: Any) -> Executor:
    """The executor registered as ``name``; ``options`` go to its factory (the Ray executor's
    address, workers, ...). Raises ValueError naming the registered ones on an unknown name."""
    made = EXECUTORS.get(name)(**options)
    if not isinstance(made, Executor):
        raise TypeError(f"executor {name!r} built {type(made).__name__}, not an Executor")
    return made


def executor_from_options(
    name: str, address: str | None = None, workers: int | None = None, gpus_per_worker: float = 0.0
) -> Executor:
    """The executor the command-line options name (``NAME`` or ``NAME:key=value,...``); the
    --ray-* options belong to ``ray``, and are a mistake with any other executor."""
    name, options = parse_spec(name)
    ray_options = {"address": address, "workers": workers, "gpus_per_worker": gpus_per_worker}
    if name == "ray":
        return make_executor("ray", **{**ray_options, **options})
    if address is not None or workers is not None or gpus_per_worker:
        raise ValueError(
            "--ray-address, --ray-workers and --ray-gpus-per-worker need --executor ray"
        )
    return make_executor(name, **options)


__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorUnavailableError",
    "LocalExecutor",
    "executor_from_options",
    "make_executor",
]
