"""Only the vault's own task functions ever run on a gateway.

django-q2 runs whatever function a task or a Schedule names (`subprocess.getoutput` as well as
ours) and stores what it returns. The vault enqueues from rotation/dispatch.py only, and only
the functions of rotation/tasks.py named in ALLOWED_TASKS. This module makes that the rule:

- Saving a Schedule that names another function, a result hook or queue options (which could
  add a hook or a chain) raises TaskNotAllowed.
- A gateway's workers take their tasks through `AllowedTasks`, a filter in front of the worker's
  task queue: a task whose function is not in ALLOWED_TASKS, or that carries a result hook or a
  chain (a hook runs in the monitor process, a chain enqueues more), is never handed to the
  worker. It is logged, acknowledged (so the broker does not deliver it again) and stored as a
  failure saying why, without its arguments.
- `pre_execute` checks again, as a last resort: should the filter ever be missing (a django-q2
  upgrade that moved its worker function), a foreign task raises in the worker before it runs,
  which stops that worker process instead of running the task.

Why a filter rather than django-q2's signals alone: an exception in a `pre_execute` receiver
is raised outside the worker's try block, so it kills the worker process and the broker hands
the task out again after `retry` seconds; one in `pre_enqueue` aborts django-q2's scheduler
transaction, which stops every schedule of the cluster, the gateway ticks included.

Functions are named by their dotted path, as dispatch.py does; a task naming a callable object
instead of a string is refused.
"""

from __future__ import annotations

import ast
import logging

from django.core.exceptions import ValidationError
from django.utils import timezone

logger = logging.getLogger(__name__)

ALLOWED_TASKS = frozenset(
    {
        "rotation.tasks.run_rotation",
        "rotation.tasks.drain_gateway",
        "rotation.tasks.gateway_tick",
        "rotation.tasks.test_configuration",
        "rotation.tasks.run_discovery",
    }
)


class TaskNotAllowed(ValidationError):
    """A Schedule or task names something other than one of the vault's task functions."""


def _describe(func) -> str:
    if isinstance(func, str):
        return func
    name = getattr(func, "__qualname__", None) or type(func).__name__
    return f"{getattr(func, '__module__', '?')}.{name}"


def func_refusal(func) -> str | None:
    """Why `func` may not run on a gateway, or None when it is one of the vault's tasks."""
    if isinstance(func, str) and func in ALLOWED_TASKS:
        return None
    return (
        f"the function {_describe(func)[:200]!r} is not one of the vault's task functions "
        f"({', '.join(sorted(ALLOWED_TASKS))})"
    )


def task_refusal(task: dict) -> str | None:
    """Why this django-q2 task package may not run, or None."""
    reason = func_refusal(task.get("func"))
    if reason is None and task.get("hook"):
        reason = "a result hook is not allowed"
    if reason is None and task.get("chain"):
        reason = "a task chain is not allowed"
    return reason


def _schedule_kwargs(text: str | None) -> dict:
    """A Schedule's kwargs, read the way django-q2's scheduler reads them."""
    if not text:
        return {}
    try:
        value = ast.literal_eval(text)
        return value if isinstance(value, dict) else {}
    except (SyntaxError, ValueError):
        pass
    try:
        call = ast.parse(f"f({text})").body[0].value
        return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError, AttributeError, IndexError):
        return {}


def schedule_refusal(schedule) -> str | None:
    """Why this Schedule may not be saved, or None."""
    reason = func_refusal(schedule.func)
    if reason is None and schedule.hook:
        reason = "a result hook is not allowed"
    if reason is None and "q_options" in _schedule_kwargs(schedule.kwargs):
        reason = "queue options (q_options) are not allowed"
    return reason


# --- Schedules ---------------------------------------------------------------------------------


def refuse_foreign_schedule(sender, instance, **kwargs) -> None:
    """pre_save of django-q2's Schedule."""
    reason = schedule_refusal(instance)
    if reason is None:
        return
    if instance.pk is not None:
        unchanged = sender.objects.filter(
            pk=instance.pk, func=instance.func, hook=instance.hook, kwargs=instance.kwargs
        ).exists()
        if unchanged:
            # A row stored before this guard existed (or written around it). django-q2's
            # scheduler saves every due schedule in one transaction: refusing its save would
            # stop all the cluster's schedules. Its tasks are refused by the workers; a
            # superuser can delete it in the admin console.
            logger.error(
                "Schedule %s (%r) names a task the gateways refuse: %s; delete it.",
                instance.pk,
                instance.name,
                reason,
            )
            return
    raise TaskNotAllowed(f"This schedule cannot be saved: {reason}.", code="task_not_allowed")


# --- workers -----------------------------------------------------------------------------------


def refused_result(task: dict, reason: str) -> dict:
    """The result package the monitor stores for a task that was not run: names and times,
    no arguments, no hook, no chain; acknowledged so that it is not delivered again."""
    from django_q.humanhash import uuid

    logger.error(
        "Refused django-q2 task %r (id %s, cluster %s): %s. It was not run.",
        task.get("name"),
        task.get("id"),
        task.get("cluster"),
        reason,
    )
    task_id = task.get("id") or uuid()[1]
    result = {
        "id": task_id,
        "name": str(task.get("name") or task_id)[:100],
        "func": _describe(task.get("func"))[:256],
        "args": (),
        "kwargs": {},
        "started": task.get("started") or timezone.now(),
        "stopped": timezone.now(),
        "result": f"Refused, not run: {reason}.",
        "success": False,
        "ack_failure": True,
    }
    for key in ("group", "cluster", "ack_id", "sync"):
        if key in task:
            result[key] = task[key]
    return result


class AllowedTasks:
    """A worker's task queue that hands out only the tasks the vault allows; the others go
    straight to the result queue as refused."""

    def __init__(self, tasks, results) -> None:
        self._tasks = tasks
        self._results = results

    def get(self, *args, **kwargs):
        while True:
            task = self._tasks.get(*args, **kwargs)
            if not isinstance(task, dict):  # django-q2's "STOP"
                return task
            reason = task_refusal(task)
            if reason is None:
                return task
            self._results.put(refused_result(task, reason))

    def __getattr__(self, name):
        return getattr(self._tasks, name)


_original_worker = None


def guarded_worker(task_queue, result_queue, *args, **kwargs):
    """django-q2's worker, reading its tasks through AllowedTasks."""
    import django_q.worker  # noqa: F401  (sets Django up in a process that has not)

    if _original_worker is None:
        raise RuntimeError("rotation.taskguard.install() has not run: refusing to start a worker")
    return _original_worker(AllowedTasks(task_queue, result_queue), result_queue, *args, **kwargs)


def refuse_at_execute(sender, func=None, task=None, **kwargs) -> None:
    """pre_execute: the last check, reached only if a worker runs without the filter."""
    reason = task_refusal(task or {})
    if reason is not None:
        logger.critical("A worker without the task filter was handed a foreign task: %s", reason)
        raise TaskNotAllowed(f"Refused, not run: {reason}.", code="task_not_allowed")


def install() -> None:
    """Put the filter in front of every django-q2 worker (gateway processes spawn workers
    from django_q.cluster; sync mode calls django_q.worker) and connect the signals."""
    global _original_worker

    from django.db.models.signals import pre_save
    from django_q import cluster, worker
    from django_q.models import Schedule
    from django_q.signals import pre_execute

    if _original_worker is None:
        _original_worker = worker.worker
    worker.worker = guarded_worker
    cluster.worker = guarded_worker
    pre_save.connect(refuse_foreign_schedule, sender=Schedule, dispatch_uid="rotation.taskguard")
    pre_execute.connect(refuse_at_execute, dispatch_uid="rotation.taskguard")
