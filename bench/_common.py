"""Shared plumbing for the benchmarks in bench/: environment, database, emulator, gateways.

Every benchmark is a standalone script run from the checkout (`.venv/bin/python bench/x.py`).
It calls ``bootstrap()`` before importing anything from Django, so the settings are read from
the environment this module prepares:

- ``DATABASE_URL``: a throw-away SQLite file in a temporary directory unless the caller set
  one (e.g. ``postgres://postgres@127.0.0.1:5432/bench``). A given database must hold no PAM
  Users, or ``--flush`` must be passed (its data is then deleted).
- ``REDIS_URL``: passed through; when set, django-q2 uses Redis as its broker.
- ``DEBUG=1`` and a freshly generated ``VAULT_ENCRYPTION_KEYS`` (the embedded defaults), unless
  already set; ``LOG_LEVEL=WARNING``.

Child processes (``manage.py qcluster``, gunicorn) inherit the same environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ACCOUNT_ID = "123456789012"  # moto's fixed account
INITIAL_PASSWORD = "Bench-Initial-Passw0rd!"
PYTHON = sys.executable


class Env:
    """What bootstrap() decided: where the data lives and what to clean up."""

    def __init__(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="vault-bench-"))
        self.database_url = ""
        self.redis_url = ""
        self.own_database = False

    @property
    def label(self) -> str:
        db = "postgresql" if self.database_url.startswith("postgres") else "sqlite"
        broker = "redis" if self.redis_url else "orm"
        return f"{db}+{broker}"

    def cleanup(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def bootstrap(settings_module: str = "vault.settings", **extra_env: str) -> Env:
    """Prepare the environment for Django and for the child processes. Call before django.setup."""
    from vault.crypto import generate_key  # only `cryptography`; safe before Django

    env = Env()
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("VAULT_ENCRYPTION_KEYS", generate_key())
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("Q_LOG_LEVEL", "WARNING")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # The benchmarks' AWS is the local emulator (and fault proxies) on loopback.
    os.environ.setdefault("AWS_ENDPOINT_ALLOWLIST", "http://127.0.0.1:*")
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{env.tmpdir / 'bench.sqlite3'}"
        env.own_database = True
    for key, value in extra_env.items():
        os.environ[key] = value
    env.database_url = os.environ["DATABASE_URL"]
    env.redis_url = os.environ.get("REDIS_URL", "")
    warnings.filterwarnings("ignore", message="No directory at")
    return env


def setup_django(env: Env, *, flush: bool = False) -> None:
    """django.setup(), migrate, and make sure the benchmark starts from an empty vault."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from vault.models import PamUser

    if PamUser.objects.exists():
        if not flush:
            raise SystemExit(
                "bench: the database in DATABASE_URL already holds PAM Users; point it at an "
                "empty database or pass --flush to delete its data first"
            )
        call_command("flush", interactive=False, verbosity=0)
    purge_broker()


def purge_broker(cluster: str | None = None) -> None:
    """Forget queued tasks left over from an earlier run (a Redis list outlives the process)."""
    from django_q.brokers import get_broker
    from django_q.models import OrmQ, Schedule, Task

    OrmQ.objects.all().delete()
    Task.objects.all().delete()
    Schedule.objects.all().delete()
    if os.environ.get("REDIS_URL"):
        for name in {cluster or "default", "default"}:
            get_broker(name).purge_queue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise SystemExit(f"bench: timed out after {timeout:g} s waiting for {what or predicate}")


# --- processes --------------------------------------------------------------------------------


class Process:
    """A child in its own process group, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, env: dict | None = None):
        self.name, self.argv, self.log, self.env = name, list(argv), log, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        out = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env or dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL: django-q2 can hang after "stopping" (its issue #346)."""
        if not self.alive:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self.alive:
            time.sleep(0.05)
        self.kill()


class MotoServer(Process):
    """moto's server on a free port: the AWS emulator."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        moto = Path(PYTHON).with_name("moto_server")
        super().__init__("moto", [str(moto), "-H", "127.0.0.1", "-p", str(self.port)], log)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        super().start()
        wait_for(self._ready, 30, 0.1, "the AWS emulator to answer")
        return self

    def _ready(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=1).read()
        except OSError:
            return False
        return True

    def iam(self):
        import boto3
        import botocore.config

        return boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=botocore.config.Config(max_pool_connections=16),
        )

    def create_users(self, logins: Iterable[str], threads: int = 8) -> None:
        iam = self.iam()

        def one(login: str) -> None:
            iam.create_user(UserName=login)
            iam.create_login_profile(UserName=login, Password=INITIAL_PASSWORD)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, logins))

    def passwords(self) -> dict[str, str | None]:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=60) as resp:
            data = json.load(resp)
        return {user["name"]: user.get("password") for user in data["iam"].get("User", [])}


def qcluster(env: Env, name: str = "default", workers: int = 2, **extra: str) -> Process:
    """A gateway: `manage.py qcluster` serving the django-q2 cluster `name`."""
    child = dict(os.environ)
    child["Q_WORKERS"] = str(workers)
    if name != "default":
        child["Q_CLUSTER_NAME"] = name
    child.update(extra)
    argv = [PYTHON, str(ROOT / "manage.py"), "qcluster"]
    return Process(f"gateway {name}", argv, env.tmpdir / f"qcluster-{name}.log", child)


# --- data ---------------------------------------------------------------------------------------


def make_world(
    *,
    count: int,
    endpoint: str = "",
    gateway_name: str = "default",
    prefix: str = "bench-user",
    schedule: dict | None = None,
    next_run_at=None,
    settings_for: Callable[[int], tuple[dict, object]] | None = None,
    folder_name: str = "Bench",
    batch_size: int = 2000,
    progress: bool = False,
):
    """A folder shared to an application whose gateway runs a configuration, and `count` PAM
    Users with rotation settings, all made in bulk. Returns (folder, configuration).

    Every record gets ``schedule`` and ``next_run_at``, or ``settings_for(n)`` decides both."""
    from rotation.models import RotationSettings
    from vault.models import (
        Application,
        ApplicationFolder,
        Gateway,
        PamConfiguration,
        PamUser,
        SharedFolder,
    )

    folder = SharedFolder.objects.create(name=folder_name)
    app, _ = Application.objects.get_or_create(name="Bench App")
    ApplicationFolder.objects.create(application=app, folder=folder, editable=True)
    gateway, _ = Gateway.objects.get_or_create(name=gateway_name, defaults={"application": app})
    config = PamConfiguration(
        folder=folder,
        title=f"AWS via {gateway_name}",
        gateway=gateway,
        aws_id="Bench",
        access_key_id="testing",
        region_names=["us-east-1"],
        endpoint_url=endpoint,
        default_rotation_schedule={"type": "ON_DEMAND"},
    )
    config.save()
    config.set_secret("access_secret_key", "testing")
    config.save()
    for start in range(0, count, batch_size):
        users = []
        for n in range(start, min(count, start + batch_size)):
            login = f"{prefix}-{n:06d}"
            row = PamUser(
                folder=folder,
                title=f"AWS user: {login}",
                login=login,
                distinguished_name=f"arn:aws:iam::{ACCOUNT_ID}:user/{login}",
            )
            row.set_secret("password", INITIAL_PASSWORD)
            users.append(row)
        PamUser.objects.bulk_create(users, batch_size=batch_size)
        created = PamUser.objects.filter(folder=folder, login__in=[u.login for u in users])
        rows = []
        for pk, login in created.values_list("pk", "login"):
            if settings_for is not None:
                row_schedule, row_next = settings_for(int(login.rsplit("-", 1)[1]))
            else:
                row_schedule, row_next = schedule or {"type": "ON_DEMAND"}, next_run_at
            rows.append(
                RotationSettings(
                    pam_user_id=pk,
                    configuration=config,
                    schedule=row_schedule,
                    length=24,
                    min_upper=2,
                    min_lower=2,
                    min_digits=2,
                    min_symbols=2,
                    next_run_at=row_next,
                )
            )
        RotationSettings.objects.bulk_create(rows, batch_size=batch_size)
        if progress and (start // batch_size) % 10 == 9:
            print(f"  ... {start + len(users)} records", flush=True)
    return folder, config


def bench_user_row(user_row, n: int) -> tuple:
    """The row of PAM User number ``n`` for a ``row_inserter``'s ``user_row``: the login the
    emulator seeds, its initial password encrypted as the vault stores it."""
    from vault import crypto
    from vault.models import new_uid

    login = f"bench-user-{n:07d}"
    uid = new_uid()
    aad = crypto.associated_data("vault.pamuser", uid, "password")
    return user_row(
        uid=uid,
        title=f"AWS user: {login}",
        login=login,
        password_enc=crypto.encrypt(INITIAL_PASSWORD, aad=aad),
        distinguished_name=f"arn:aws:iam::{ACCOUNT_ID}:user/{login}",
    )


def row_inserter(model, template, varying: list[str]):
    """An executemany INSERT of `model` rows that differ from `template` (an unsaved instance)
    only in the `varying` fields, and the function that turns their values into a row:
    ``sql, row = row_inserter(...); cursor.executemany(sql, [row(field=value, ...), ...])``.
    Seeds a million rows in minutes, through the database's triggers like any insert."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not f.primary_key or f.name in varying]
    fixed = {
        f.attname: f.get_db_prep_save(f.pre_save(template, add=True), connection)
        for f in fields
        if f.name not in varying
    }
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    by_name = {f.name: f for f in fields}

    def row(**values) -> list:
        out = dict(fixed)
        for name, value in values.items():
            field = by_name[name]
            out[field.attname] = field.get_db_prep_save(value, connection)
        return [out[f.attname] for f in fields]

    return sql, row


def insert_rows(cursor, sql: str, rows: list[list]) -> None:
    """Run the one-row INSERT `sql` (from row_inserter) for every row: on PostgreSQL as
    INSERTs of up to 1,000 rows each, so that a statement-level trigger runs once per thousand
    rows (executemany sends a statement per row); elsewhere with executemany."""
    from django.db import connection

    if connection.vendor != "postgresql" or not rows:
        cursor.executemany(sql, rows)
        return
    head, _, one = sql.rpartition(" VALUES ")
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        values = ", ".join([one] * len(chunk))
        cursor.execute(f"{head} VALUES {values}", [value for row in chunk for value in row])


def compare_with_aws(records, held: dict[str, str | None]) -> list[str]:
    """Logins whose vault password (current, or a possibly-live pending one) differs from AWS."""
    from rotation.engine import possibly_live_rotations

    wrong = []
    for record in records:
        aws_password = held.get(record.login)
        candidates = {record.get_secret("password")}
        if aws_password not in candidates:
            candidates |= {
                r.get_secret("pending_password") for r in possibly_live_rotations(record)
            }
        if aws_password not in candidates:
            wrong.append(record.login)
    return wrong


# --- output -------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": statistics.median(samples),
        "p95": percentile(samples, 95),
        "mean": statistics.fmean(samples),
        "max": max(samples),
    }


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def cpu_seconds(process: Process) -> float:
    """CPU time (user + system) used so far by every live process in the child's group."""
    if process.proc is None:
        return 0.0
    return sum(_cpu_seconds_by_pid(lambda name, group: group == process.proc.pid).values())


class ServerCpu:
    """CPU time used between start() and stop() by the processes of the servers named (this
    machine's PostgreSQL and Redis: the database and broker a bench's gateway uses, when they
    are local). A connection's backend may end meanwhile and take its CPU time with it, so a
    thread reads every such process's time five times a second and keeps the last it saw: what
    a backend used in its last 0.2 s before ending is missed."""

    def __init__(self, names: Iterable[str] = ("postgres", "redis-server")) -> None:
        self._names = set(names)
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> ServerCpu:
        self._first = self._read()
        self._last = dict(self._first)
        self._thread.start()
        return self

    def stop(self) -> float:
        """Seconds of CPU the servers used since start()."""
        self._stop.set()
        self._thread.join()
        self._last.update(self._read())
        return sum(cpu - self._first.get(pid, 0.0) for pid, cpu in self._last.items())

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            self._last.update(self._read())

    def _read(self) -> dict[int, float]:
        return _cpu_seconds_by_pid(lambda name, group: name in self._names)


def _cpu_seconds_by_pid(keep: Callable[[str, int], bool]) -> dict[int, float]:
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        name, fields = head.split("(", 1)[1], tail.split()
        # fields[2] is the process group; [11], [12] utime, stime (after the name field).
        if keep(name, int(fields[2])):
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def machine() -> str:
    """One line describing where the figures were measured."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU ({cpu}), Python {platform.python_version()}"
