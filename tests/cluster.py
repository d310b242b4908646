"""Real gateway processes for tests: `manage.py qcluster` or `manage.py pam gateway run`
against the test database, and what /proc says about their processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """A DATABASE_URL that opens the database this test process is using."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or "5432"
    return f"postgres://{user}@{host}:{port}/{s['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "vault.settings_test",
            "DATABASE_URL": test_database_url(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class Gateway:
    """One django-q2 cluster serving the gateway `name`."""

    def __init__(self, name: str = "default", log_path: Path | None = None, **env: str) -> None:
        self.name = name
        self.log_path = log_path
        extra = dict(env)
        if name != "default":
            extra["Q_CLUSTER_NAME"] = name
        self._env = process_env(**extra)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Gateway:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=self._env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: a gateway host dying mid-rotation."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL: django-q2 can hang after "stopping" (issue #346)."""
        if not self.proc or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.1)
        self.kill()


class GatewayRun:
    """`manage.py pam gateway run NAME`: a runner, its keeper thread and the cluster it starts
    (rotation/gateway_process.py)."""

    def __init__(
        self, name: str, log_path: Path | None = None, interval: float = 1.0, **env: str
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.interval = interval
        self._env = process_env(**env)
        self.proc: subprocess.Popen | None = None

    def start(self) -> GatewayRun:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        argv = [sys.executable, str(ROOT / "manage.py"), "pam", "gateway", "run", self.name]
        self.proc = subprocess.Popen(
            [*argv, "--interval", str(self.interval)],
            cwd=ROOT,
            env=self._env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def cluster_pid(self) -> int | None:
        """The cluster child (the first process of its group), None while there is none."""
        children = [p for p in living_descendants(self.proc.pid) if parent_of(p) == self.proc.pid]
        return children[0] if children else None

    def processes(self) -> list[int]:
        """The runner's living descendants: the cluster, its sentinel, workers, monitor, pusher."""
        return living_descendants(self.proc.pid)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the runner (it stops its cluster); SIGKILL if it has not gone after ``grace``."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, ppid, pgrp, ...); None if gone."""
    try:
        text = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def living(pids) -> list[int]:
    """Those of `pids` that are processes still running (a zombie has ended: only its exit
    status waits to be collected)."""
    return [pid for pid in pids if (fields := _stat(pid)) and fields[0] not in ("Z", "X")]


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def living_descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields and fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")
