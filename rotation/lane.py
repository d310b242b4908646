"""A drain's AWS lane: one thread per drain that makes the AWS calls of a batch's rotations, in
order, while the worker's own thread records the previous batch and claims the next.

Issue 10's profile: a worker spent a sixth of its time claiming and recording batches, with
no AWS call in flight meanwhile, so the AWS endpoint waited on the database. With the lane the
two overlap, and a worker still has one AWS call in flight at a time, as before (a retry after
a failed attempt runs in the worker's thread and may overlap the lane's next call).

The lane touches no database: only steps of methods that apply through AWS only run on it
(RotationMethod.applies_through_aws_only), and its thread's connections refuse every query,
so a step that needed one fails loudly instead of opening a second connection. Every outcome,
and every write, goes back to the worker's thread, which handles them in the batch's order.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")


class LaneTouchedDatabase(RuntimeError):
    """A step run on the AWS lane asked the database for something."""


class AwsLane:
    """``submit(fn, *args)`` runs ``fn(*args)`` on the lane's thread after what was submitted
    before, and returns a callable that waits for its result (or raises its exception).
    Leaving the ``with`` block cancels what has not started and waits for what has."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aws-lane")
        self._futures: list[Future] = []

    def submit(self, fn: Callable[..., T], *args: Any) -> Callable[[], T]:
        self._futures = [f for f in self._futures if not f.done()]
        future = self._executor.submit(_without_database, fn, *args)
        self._futures.append(future)
        return future.result

    def __enter__(self) -> AwsLane:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for future in self._futures:
            future.cancel()
        self._executor.shutdown(wait=True)


def _without_database(fn: Callable[..., T], *args: Any) -> T:
    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(_refuse))
        return fn(*args)


def _refuse(execute, sql, params, many, context):
    raise LaneTouchedDatabase(
        "a step run on the AWS lane used the database: only methods whose applying steps "
        "call AWS alone may run there"
    )
