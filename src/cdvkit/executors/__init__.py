"""Where jobs run: a search's questions, an evaluation's answers.

``local`` (the default) runs them concurrently in this process; ``ray`` partitions them over a
pool of Ray actors (``pip install 'cdvkit[ray]'``). An executor only executes: the jobs and the
work that runs them come from the search and evaluation packages (``cdvkit.jobs``), and this
process is the single writer of the run store: a Ray worker streams its writes back as events
(``events``) that the driver stores as they arrive.
"""

from __future__ import annotations

from typing import Any

from cdvkit.executors.base import Executor, ExecutorUnavailableError
from cdvkit.executors.local import LocalExecutor

EXECUTORS = ("local", "ray")


def make_executor(name: str = "local", **options: Any) -> Executor:
    """``local`` or ``ray``; ``options`` go to the Ray executor (address, workers, ...)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        from cdvkit.executors.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise ValueError(f"unknown executor {name!r}: use one of {', '.join(EXECUTORS)}")


def executor_from_options(
    name: str, address: str | None = None, workers: int | None = None, gpus_per_worker: float = 0.0
) -> Executor:
    """The executor the command-line options name; Ray options without ``ray`` are a mistake."""
    if name == "ray":
        return make_executor(
            "ray", address=address, workers=workers, gpus_per_worker=gpus_per_worker
        )
    if address is not None or workers is not None or gpus_per_worker:
        raise ValueError(
            "--ray-address, --ray-workers and --ray-gpus-per-worker need --executor ray"
        )
    return make_executor(name)


__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorUnavailableError",
    "LocalExecutor",
    "executor_from_options",
    "make_executor",
]
