#!/usr/bin/env python
"""Benchmark: page latency through a live server, measured from a second process.

    .venv/bin/python bench/ui_latency.py --records 10000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/ui_latency.py --records 10000 --flush

Builds a vault with one folder of N PAM Users (with rotation settings; one record with
password history and rotations; with --history K, every record also has K finished rotations
over the last 30 days, its latest one failed for 1 record in 20 and queued for 1 in 500),
runs `collectstatic`, and serves it with gunicorn (2 sync workers) in production mode:
DEBUG=0, a SECRET_KEY, ALLOWED_HOSTS=127.0.0.1, plain HTTP (SECURE_SSL_REDIRECT=0 and
non-secure cookies, as behind a TLS-terminating proxy); on PostgreSQL, VACUUM ANALYZE after
seeding. A second process, the load tool (this script with --client: a thread pool of
http.client connections), logs in through the login form, then times 200 requests each of the
home page (dashboard), the folder page (cycling through pages 1, 2, ... of 50 records, so deep
offsets count) and the record page, `--concurrency` at a time (default 2, one per gunicorn
worker).
The last line is `RESULT ui_latency home_p95_ms=.. folder_p50_ms=.. folder_p95_ms=.. ...`.

The records (and their settings and rotations) are inserted with executemany in batches of
5,000 rows, through the database's triggers like any other insert: 1,000,000 records in
under 2 minutes on SQLite, under 5 with --history 1, 11 on PostgreSQL with --history 1.
--reuse measures again the vault an earlier run left in DATABASE_URL (same --records and
--history), without seeding it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as common  # noqa: E402

USERNAME = "bench-editor"
PASSWORD = "Bench-login-passw0rd-1"
PER_PAGE = 50
WARMUP = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument(
        "--history", type=int, default=0, help="finished rotations per record (default 0)"
    )
    parser.add_argument("--requests", type=int, default=200, help="per page")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--flush", action="store_true", help="empty DATABASE_URL's data first")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the vault an earlier run with the same --records and --history left in "
        "DATABASE_URL (seeding 1,000,000 records on PostgreSQL takes about 11 minutes)",
    )
    parser.add_argument("--client", metavar="JSON", help=argparse.SUPPRESS)  # the load tool
    return parser.parse_args()


# --- the load tool (second process) -----------------------------------------------------------


class Session:
    """Cookies and CSRF for one logged-in user; one HTTP connection per request (gunicorn's
    sync workers close the connection after each answer)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Host": "127.0.0.1"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        conn.close()
        return response.status, response.getheader("Location"), payload

    def login(self) -> None:
        status, _, page = self.request("GET", "/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise SystemExit(f"bench client: no login form (HTTP {status})")
        status, location, _ = self.request(
            "POST",
            "/login/",
            {
                "csrfmiddlewaretoken": token.group(1).decode(),
                "username": USERNAME,
                "password": PASSWORD,
            },
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"bench client: login failed (HTTP {status}, to {location})")


def run_client(spec: dict) -> None:
    session = Session(spec["port"])
    session.login()

    def timed(path_and_marker: tuple[str, str]) -> float:
        path, marker = path_and_marker
        started = time.perf_counter()
        status, _, payload = session.request("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200 or marker.encode() not in payload:
            raise SystemExit(f"bench client: unexpected answer from {path}: HTTP {status}")
        return elapsed

    results = {}
    with ThreadPoolExecutor(spec["concurrency"]) as pool:
        for name, paths, marker in spec["pages"]:
            list(pool.map(timed, [(p, marker) for p in paths[:WARMUP]]))
            results[name] = list(pool.map(timed, [(p, marker) for p in paths]))
    json.dump(results, sys.stdout)


# --- the benchmark (first process) --------------------------------------------------------------


SEED_BATCH = 5_000


_inserter = common.row_inserter  # (moved to bench/_common.py)


def seed(folder, config, count: int, *, history: int, next_run_at, now) -> None:
    """`count` PAM Users with rotation settings (and `history` finished rotations each) in
    `folder`, SEED_BATCH rows per executemany."""
    import random
    from datetime import timedelta

    from django.db import connection, transaction

    from rotation.models import Rotation, RotationSettings
    from vault.models import PamUser, new_uid

    schedule = {"type": "DAILY", "time": "02:00", "tz": "UTC", "intervalCount": 1}
    user_sql, user_row = _inserter(
        PamUser,
        PamUser(folder=folder, title="-", login="-", distinguished_name="-"),
        ["uid", "title", "login", "password_enc", "distinguished_name"],
    )
    settings_sql, settings_row = _inserter(
        RotationSettings,
        RotationSettings(
            configuration=config,
            schedule=schedule,
            length=24,
            min_upper=2,
            min_lower=2,
            min_digits=2,
            min_symbols=2,
            next_run_at=next_run_at,
        ),
        ["pam_user"],
    )
    rotation_sql, rotation_row = _inserter(
        Rotation,
        Rotation(configuration=config, gateway_name=config.gateway.name, trigger="scheduled"),
        [
            "uid",
            "pam_user",
            "status",
            "attempts",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ],
    )
    rng = random.Random(1)
    started = time.perf_counter()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # this connection only: indexes stay in memory
            cursor.execute("PRAGMA cache_size = -262144")
    for start in range(0, count, SEED_BATCH):
        numbers = range(start, min(count, start + SEED_BATCH))
        users = []
        for n in numbers:
            users.append(common.bench_user_row(user_row, n))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(user_sql, users)
            ids = list(
                PamUser.objects.filter(folder=folder, login__gte=f"bench-user-{start:07d}")
                .order_by("login")
                .values_list("pk", flat=True)[: len(numbers)]
            )
            cursor.executemany(settings_sql, [settings_row(pam_user=pk) for pk in ids])
            rotations = []
            for pk in ids:
                last = rng.random()
                for k in range(history):
                    latest = k == history - 1
                    when = now - timedelta(days=rng.uniform(0, 29), seconds=history - k)
                    status = Rotation.SUCCEEDED
                    if latest and last < 0.002:
                        status = Rotation.QUEUED
                    elif latest and last < 0.05:
                        status = Rotation.FAILED
                    finished = status != Rotation.QUEUED
                    rotations.append(
                        rotation_row(
                            uid=new_uid(),
                            pam_user=pk,
                            status=status,
                            attempts=1 if finished else 0,
                            error="AccessDenied: iam:UpdateLoginProfile"
                            if status == "failed"
                            else "",
                            created_at=when,
                            started_at=when if finished else None,
                            finished_at=when + timedelta(seconds=1) if finished else None,
                        )
                    )
            if rotations:
                cursor.executemany(rotation_sql, rotations)
        done = start + len(numbers)
        if count > 20_000 and (done % 100_000 == 0 or done == count):
            print(f"  ... {done} records ({time.perf_counter() - started:.0f} s)", flush=True)


def build(records: int, history: int = 0) -> tuple[str, str]:
    """The vault the pages show. Returns (folder uid, record uid)."""
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.utils import timezone

    from rotation.models import Rotation
    from vault import services
    from vault.models import FolderMember, PamUser

    folder, config = common.make_world(
        count=0,
        endpoint="http://127.0.0.1:9",
        folder_name="AWS IAM Users",
    )
    seed(
        folder,
        config,
        records,
        history=history,
        next_run_at=timezone.now() + timedelta(days=1),
        now=timezone.now(),
    )
    user = User.objects.create_user(USERNAME, password=PASSWORD)
    FolderMember.objects.create(
        folder=folder, user=user, can_edit=True, manage_records=True, can_share=True
    )
    record = PamUser.objects.filter(folder=folder).order_by("title")[records // 2]
    for n in range(5):
        services.pam_user_update(
            record=record,
            title=record.title,
            login=record.login,
            distinguished_name=record.distinguished_name,
            password=f"History-Passw0rd-{n}!",
            actor=user,
        )
    now = timezone.now()
    Rotation.objects.bulk_create(
        [
            Rotation(
                pam_user=record,
                configuration=config,
                gateway_name=config.gateway.name,
                trigger="scheduled",
                status=Rotation.SUCCEEDED,
                attempts=1,
                created_at=now - timedelta(days=n + 1),
                started_at=now - timedelta(days=n + 1),
                finished_at=now - timedelta(days=n + 1) + timedelta(seconds=1),
            )
            for n in range(15)
        ]
    )
    return folder.uid, record.uid


def reused(records: int) -> tuple[str, str]:
    """The folder and record an earlier build(records, ...) made."""
    from vault.models import PamUser, SharedFolder

    folder = SharedFolder.objects.get(name="AWS IAM Users")
    if PamUser.objects.filter(folder=folder).count() != records:
        raise SystemExit(f"bench: the vault in DATABASE_URL does not hold {records} records")
    record = PamUser.objects.filter(folder=folder).order_by("title")[records // 2]
    return folder.uid, record.uid


def main() -> int:
    args = parse_args()
    if args.client:
        run_client(json.loads(args.client))
        return 0
    env = common.bootstrap(
        DEBUG="0",
        SECRET_KEY="bench-only-secret-key-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
    )
    server = None
    try:
        if args.reuse:
            import django

            django.setup()
        else:
            common.setup_django(env, flush=args.flush)
        from django.core.management import call_command

        print(f"machine: {common.machine()}; database: {env.label.split('+')[0]}")
        started = time.perf_counter()
        if args.reuse:
            folder_uid, record_uid = reused(args.records)
        else:
            folder_uid, record_uid = build(args.records, args.history)
        from django.db import connection

        if connection.vendor == "postgresql" and not args.reuse:
            # What autovacuum does after a bulk load (statistics for the planner, the
            # visibility map); this project's test server runs with autovacuum off.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        call_command("collectstatic", interactive=False, verbosity=0)
        print(
            f"setup: {args.records} records, {args.history} finished rotations each, in "
            f"{time.perf_counter() - started:.1f} s"
        )

        port = common.free_port()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        server = common.Process(
            "web",
            [str(gunicorn), "vault.wsgi:application", "-w", "2", "-b", f"127.0.0.1:{port}"],
            env.tmpdir / "gunicorn.log",
        ).start()
        common.wait_for(lambda: _answers(port), 30, 0.1, "gunicorn to answer")

        pages = max(1, args.records // PER_PAGE)
        n = args.requests
        spec = {
            "port": port,
            "concurrency": args.concurrency,
            "pages": [
                ("home", ["/"] * n, "AWS IAM Users"),
                (
                    "folder",
                    [f"/folders/{folder_uid}/?page={(i % pages) + 1}" for i in range(n)],
                    "AWS user: bench-user-",
                ),
                ("record", [f"/records/{record_uid}/"] * n, "AWS user: bench-user-"),
            ],
        }
        client = subprocess.run(
            [sys.executable, __file__, "--client", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if client.returncode != 0:
            print(client.stderr.strip().splitlines()[-1] if client.stderr.strip() else "")
            print(f"bench: the load tool failed (see {env.tmpdir / 'gunicorn.log'})")
            return 1
        results = json.loads(client.stdout)
        rows = []
        for name, samples in results.items():
            stats = common.summary(samples)
            rows.append((name, stats["n"], stats["p50"], stats["p95"], stats["mean"], stats["max"]))
        common.table(rows, ["page", "requests", "p50_ms", "p95_ms", "mean_ms", "max_ms"])
        print(
            f"(gunicorn 2 sync workers, {args.concurrency} requests at a time from the load tool)"
        )
        s = {name: common.summary(samples) for name, samples in results.items()}
        target = "met" if s["folder"]["p95"] <= 200 else "MISSED"
        print(f"folder page p95 target (<= 200 ms): {target}")
        print(
            "RESULT ui_latency "
            f"home_p50_ms={s['home']['p50']:.1f} home_p95_ms={s['home']['p95']:.1f} "
            f"folder_p50_ms={s['folder']['p50']:.1f} folder_p95_ms={s['folder']['p95']:.1f} "
            f"record_p50_ms={s['record']['p50']:.1f} record_p95_ms={s['record']['p95']:.1f} "
            f"records={args.records} history={args.history} db={env.label.split('+')[0]}"
        )
        return 0
    finally:
        if server is not None:
            server.stop()
        env.cleanup()


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/login/", headers={"Host": "127.0.0.1"})
        conn.getresponse().read()
        conn.close()
    except OSError:
        return False
    return True


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
