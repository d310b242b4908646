"""`pam gateway run NAME`: the processes of one gateway on a host.

Owns the runner and everything about the gateway's process tree:

- the runner (the process `pam gateway run` starts in) checks the gateway exists and the system
  checks pass, then starts the gateway's django-q2 cluster (`qcluster` with Q_CLUSTER_NAME=NAME)
  as a child in a process group of its own;
- in the runner's own process, a thread (the keeper) writes the gateway's heartbeat and
  re-queues its rotations whose lease ran out, every ``--interval`` seconds, with its own
  database connection. Workers blocked on a dead database or a slow AWS do not stop it, and
  it is bounded by the same database timeouts (vault/settings.py), so it cannot hang either;
- SIGTERM or SIGINT stops the gateway within seconds: SIGTERM to the cluster's group, up to
  STOP_GRACE_SECONDS for it to go, then SIGKILL to the group; the runner returns when no process
  of the group is left (django-q2 alone can hang after "stopping", its issue #346);
- no orphan workers, even when the runner is SIGKILLed: every process of the cluster dies with
  its parent, by the kernel (Linux's PR_SET_PDEATHSIG, set in the cluster's first process and
  after every fork in it). The kernel's signal needs nothing of the dying process nor of the
  child (a child stuck in a system call, or frozen, is killed all the same) and it chains:
  runner -> cluster -> sentinel -> workers, so a sentinel killed on its own takes its workers
  with it too. A child polling for its parent would depend on that child running, and would
  miss the case where its parent and it die together, leaving their children;
- a cluster that exits on its own (a crash, its sentinel killed) is restarted after a back-off
  (1 s, doubling to 30 s; reset once it has run a minute), its leftover processes killed first.
  The heartbeat stops while no cluster runs, so pages show the gateway offline if it cannot
  be restarted; the runner itself exits only when told to (status 0).

The cluster child is this same command with a hidden ``--cluster-of RUNNER_PID``: it arms the
parent-death signal, checks the runner is still its parent, and runs `qcluster` in-process.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core import checks
from django.core.management import call_command
from django.db import Error as DatabaseError
from django.db import close_old_connections, connection

from rotation import engine
from rotation.gateways import gateway_heartbeat
from vault.cli import CliError, OutputHelper
from vault.models import Gateway

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 5.0  # SIGTERM to SIGKILL; django-q2's sentinel and workers die at once
KILL_WAIT_SECONDS = 5.0  # after SIGKILL, for the kernel to tear the group down
RESTART_BACKOFF = (1.0, 30.0)  # first and longest wait before restarting a cluster that exited
STABLE_SECONDS = 60.0  # a cluster that ran this long starts the back-off from the beginning
POLL_SECONDS = 0.2
DEFAULT_INTERVAL = 15.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


# --- the cluster child ---------------------------------------------------------------------


def _prctl_die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies. False where there is no
    prctl (not Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    return True


_forking_pid = 0


def _before_fork() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


def _after_fork_in_child() -> None:
    # The flag is cleared by fork: every process of the cluster sets its own. A parent that
    # died between the fork and here was missed by it, so check.
    _prctl_die_with_parent()
    if os.getppid() != _forking_pid:
        os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    """Without prctl (not Linux): kill the cluster's whole group once the runner is gone."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os.killpg(0, signal.SIGKILL)


def serve_cluster(*, parent_pid: int) -> int:
    """In the cluster child: die with the runner, then run django-q2's cluster (Q_CLUSTER_NAME
    is in this process's environment, set by the runner)."""
    if _prctl_die_with_parent():
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the runner died before the signal was armed
        return 1
    call_command("qcluster")
    # The runner stops the cluster with SIGTERM to its whole group, which ends the sentinel
    # and the workers at once (django-q2 leaves SIGTERM at its default there). Here django-q2's
    # handler would then ask the dead sentinel to stop and can wait forever on a lock it held
    # (issue #346): end at once as well.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # qcluster returns once its sentinel runs; the interpreter's exit waits for the sentinel
    # (multiprocessing joins its children), so this process lives as long as the cluster.
    return 0


# --- the runner ----------------------------------------------------------------------------


def _group_members(pgid: int) -> list[int]:
    """Processes of the group that are still alive (zombies are not: they only wait to be
    reaped by whoever adopted them)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


class GatewayRunner:
    """The runner of one gateway: the cluster child, the keeper thread, the signals."""

    def __init__(self, gateway_name: str, *, interval: float = DEFAULT_INTERVAL) -> None:
        self.gateway_name = gateway_name
        self.interval = interval
        self.cluster: subprocess.Popen | None = None
        # Set and cleared by the main thread only, which alone polls the child (a poll from the
        # keeper could reap it unseen); the keeper reads it.
        self.cluster_up = False
        self.stop_signal: int | None = None
        self._keeper_stop = threading.Event()

    # --- signals ---

    def _on_signal(self, signum: int, frame) -> None:
        # Only a flag: the main loop acts on it within POLL_SECONDS (nothing here may block).
        self.stop_signal = signum

    # --- the cluster ---

    def _start_cluster(self) -> None:
        argv = [
            sys.executable,
            str(Path(settings.BASE_DIR) / "manage.py"),
            "pam",
            "gateway",
            "run",
            self.gateway_name,
            "--cluster-of",
            str(os.getpid()),
        ]
        env = {**os.environ, "Q_CLUSTER_NAME": self.gateway_name}
        # Its own group (and session): signals for the runner (a terminal's Ctrl-C) do not
        # reach the cluster, and the runner can signal the whole cluster at once.
        self.cluster = subprocess.Popen(
            argv, cwd=settings.BASE_DIR, env=env, start_new_session=True
        )
        self.cluster_up = True
        logger.info(
            "gateway %s: cluster started (process group %d)", self.gateway_name, self.cluster.pid
        )

    def _end_group(self, *, grace: float) -> list[int]:
        """SIGTERM the cluster's group, SIGKILL it after ``grace`` seconds, and wait until no
        process of it is left. Returns the processes still there at the end (none, normally)."""
        assert self.cluster is not None
        pgid = self.cluster.pid
        if grace > 0:
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                self.cluster.poll()
                if self.cluster.returncode is not None and not _group_members(pgid):
                    return []
                time.sleep(0.1)
        _signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while time.monotonic() < deadline:
            self.cluster.poll()
            left = _group_members(pgid)
            if self.cluster.returncode is not None and not left:
                return []
            time.sleep(0.1)
        return _group_members(pgid)

    # --- the keeper ---

    def keep_once(self) -> None:
        """One heartbeat (while the cluster runs) and one recovery pass, on this thread's own
        database connection; a failed database call drops the connection and is logged."""
        try:
            close_old_connections()  # drops a connection an earlier failure left unusable
            if self.cluster_up:
                gateway_heartbeat(gateway_name=self.gateway_name)
            recovered = engine.rotation_recover(gateway_name=self.gateway_name)
            if recovered:
                logger.info(
                    "gateway %s: re-queued %d rotations whose lease ran out",
                    self.gateway_name,
                    recovered,
                )
        except DatabaseError as exc:
            connection.close()  # the next pass connects again
            logger.warning(
                "gateway %s: heartbeat or recovery failed (database): %s", self.gateway_name, exc
            )
        except Exception:  # the keeper must outlive any one failure (a broker refusing, ...)
            logger.exception("gateway %s: heartbeat or recovery failed", self.gateway_name)

    def _keep(self) -> None:
        try:
            while not self._keeper_stop.is_set():
                self.keep_once()
                self._keeper_stop.wait(self.interval)
        finally:
            connection.close()

    # --- the whole ---

    def run(self) -> int:
        connection.close()  # the keeper has its own; the main thread needs none from here on
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        keeper = threading.Thread(target=self._keep, name="gateway-keeper", daemon=True)
        backoff = RESTART_BACKOFF[0]
        restart_at = 0.0  # now
        started_at = 0.0
        try:
            while self.stop_signal is None:
                if not self.cluster_up and time.monotonic() >= restart_at:
                    self._start_cluster()  # from the main thread: see the module's docstring
                    started_at = time.monotonic()
                    if not keeper.is_alive():
                        keeper.start()
                elif self.cluster_up and self.cluster.poll() is not None:
                    self.cluster_up = False
                    left = self._end_group(grace=0)  # what the cluster left behind
                    if time.monotonic() - started_at >= STABLE_SECONDS:
                        backoff = RESTART_BACKOFF[0]
                    logger.error(
                        "gateway %s: the cluster exited (status %s)%s; restarting in %g s",
                        self.gateway_name,
                        self.cluster.returncode,
                        f", {len(left)} processes of it would not die" if left else "",
                        backoff,
                    )
                    restart_at = time.monotonic() + backoff
                    backoff = min(backoff * 2, RESTART_BACKOFF[1])
                time.sleep(POLL_SECONDS)
            logger.info(
                "gateway %s: stopping (%s)",
                self.gateway_name,
                signal.Signals(self.stop_signal).name,
            )
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave workers running.
            for signum in previous:
                signal.signal(signum, signal.SIG_IGN)
            self._keeper_stop.set()
            self.cluster_up = False
            left = self._end_group(grace=STOP_GRACE_SECONDS) if self.cluster else []
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if left:
            logger.error(
                "gateway %s: processes %s of the cluster did not stop", self.gateway_name, left
            )
            return 1
        logger.info("gateway %s: stopped", self.gateway_name)
        return 0


# --- the command ---------------------------------------------------------------------------


def cmd_gateway_run(options: argparse.Namespace, out: OutputHelper) -> int:
    if options.cluster_of is not None:
        return serve_cluster(parent_pid=options.cluster_of)
    name = options.name
    if not Gateway.objects.filter(name=name).exists():
        raise CliError(
            f'no gateway named "{name}" (see `pam gateway list`; a gateway is created in the '
            "admin console or with a PAM Configuration)"
        )
    problems = checks.run_checks()
    errors = [str(p) for p in problems if p.is_serious()]
    if errors:
        raise CliError(*errors)
    for warning in problems:
        if not warning.is_silenced():
            out.note(str(warning))
    return GatewayRunner(name, interval=options.interval).run()


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.1 <= value <= 60:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the interval must be between 0.1 and 60 seconds (pages call a gateway "
            "offline after GATEWAY_OFFLINE_SECONDS without a heartbeat)"
        )
    return value


def _pid(text: str) -> int:
    if not text.isdigit() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not a process id")
    return int(text)


def add_run_parser(gateways: argparse._SubParsersAction) -> None:
    """`pam gateway run NAME [--interval SECONDS]` (rotation/cli.py registers it)."""
    run = gateways.add_parser(
        "run",
        help="run one gateway: its workers, heartbeat and lease recovery (stop with SIGTERM)",
    )
    run.add_argument("name", metavar="NAME", help="the gateway's name (see `pam gateway list`)")
    run.add_argument(
        "--interval",
        type=_interval,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"heartbeat and lease recovery every SECONDS (default {DEFAULT_INTERVAL:g})",
    )
    # The runner starts the cluster as this command with the runner's pid (module docstring).
    run.add_argument("--cluster-of", type=_pid, default=None, help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_gateway_run)
