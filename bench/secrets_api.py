#!/usr/bin/env python
"""Benchmark: the Secrets Manager-compatible API's GetSecretValue under gunicorn, against an
empty authenticated JSON view of the same server.

    .venv/bin/python bench/secrets_api.py [--clients 50] [--seconds 10] [--workers 2]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/secrets_api.py --flush

Builds a folder of `--records` PAM Users (default 200, each with a password) shared to an
application with one client credential, and serves the vault with gunicorn (`--workers` sync
workers, default 2) in production mode: DEBUG=0, plain HTTP as behind a TLS-terminating proxy,
SECRETS_API_RATE_LIMIT=0 (the per-credential limit would otherwise be what is measured). On
SQLite (a temporary file) unless DATABASE_URL names another database.

A second process, the load tool (this script with --client), runs `--clients` threads (default
50), each sending requests back to back for `--seconds` seconds per phase, one TCP connection
per request (gunicorn's sync workers close it after each answer). The two loaded phases
alternate in `--rounds` rounds (default 5, each after a 1 s warm-up), so that load from other
processes on the machine weighs on both alike:

- **GetSecretValue**: `POST /aws/secretsmanager/` with `X-Amz-Target:
  secretsmanager.GetSecretValue` and `{"SecretId": <a record uid>}`, cycling through the
  records, each request signed with SigV4 by botocore's signer (what boto3 uses); a record's
  signed request is reused for up to a minute (AWS accepts a signature for 5), so that the
  load tool, which shares the server's CPUs, does as little per request in this phase as in
  the other one; every answer must be a 200 holding the record's SecretString. With
  --boto3, each thread uses its own boto3 secretsmanager client instead (slower on the client
  side: the load tool shares the machine's CPUs with the server).
- **The empty authenticated JSON view**: what "the same gunicorn serves for an empty
  authenticated JSON view" means here: `GET /bench/empty/`, a view added to this server only
  (see `application` below) that is `login_required` and returns `{}`. It is authenticated the
  web's way (a session cookie: the session row and the user are read from the database) and
  passes through the whole middleware stack every page does, but does no work: the baseline
  for "what any authenticated request costs on this server". GetSecretValue must reach at least
  half its requests per second (the target of issue 15).
- **Unloaded latency**: GetSecretValue from one client, `--single` requests (default 300).

Prints a table and, last, one line:
RESULT secrets_api db=.. clients=.. api_rps=.. api_p50_ms=.. api_p95_ms=.. api_p99_ms=..
empty_rps=.. ratio=.. single_p50_ms=.. single_p95_ms=.. errors=..
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as common  # noqa: E402

API_PATH = "/aws/secretsmanager/"
EMPTY_PATH = "/bench/empty/"
REGION = "us-east-1"
USERNAME = "bench-session-user"
WARMUP_SECONDS = 1.0  # per round and phase: the workers answer before timing starts


# --- the server: the vault's WSGI application plus the empty view ------------------------------


def _empty(request):
    from django.http import JsonResponse

    return JsonResponse({})


def _server_application():
    """The vault as vault.wsgi serves it, with one more URL, EMPTY_PATH: the baseline view.
    gunicorn loads it as `bench.secrets_api:application`; the pattern is appended before the
    first request resolves (and caches) the URLconf."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vault.settings")
    from django.contrib.auth.decorators import login_required
    from django.core.wsgi import get_wsgi_application
    from django.urls import path

    wsgi = get_wsgi_application()
    import vault.root_urls

    vault.root_urls.urlpatterns.append(
        path(EMPTY_PATH.strip("/") + "/", login_required(_empty), name="bench_empty")
    )
    return wsgi


def __getattr__(name: str):
    if name == "application":
        return _server_application()
    raise AttributeError(name)


# --- the load tool (a separate process) ----------------------------------------------------------


def _signed_api_request(spec: dict, secret_id: str) -> tuple[bytes, dict]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps({"SecretId": secret_id}).encode()
    request = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:{spec['port']}{API_PATH}",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        },
    )
    credentials = Credentials(spec["access_key_id"], spec["secret_access_key"])
    SigV4Auth(credentials, "secretsmanager", REGION).add_auth(request)
    return body, dict(request.headers.items())


# Signed requests by record uid, re-signed after RESIGN_SECONDS (AWS accepts a signature for
# 5 minutes): signing costs the load tool about as much CPU as the server spends answering,
# and the tool shares the server's CPUs, so signing every request would weigh on the API phase
# alone; this way both phases' clients do the same small work per request.
RESIGN_SECONDS = 60.0
_signed: dict[str, tuple[float, bytes, dict]] = {}
_signed_lock = threading.Lock()


def _presigned(spec: dict, uid: str) -> tuple[bytes, dict]:
    with _signed_lock:
        found = _signed.get(uid)
    if found is None or time.monotonic() - found[0] > RESIGN_SECONDS:
        body, headers = _signed_api_request(spec, uid)
        found = (time.monotonic(), body, headers)
        with _signed_lock:
            _signed[uid] = found
    return found[1], found[2]


def _raw_api_call(spec: dict, n: int) -> None:
    uid = spec["uids"][n % len(spec["uids"])]
    body, headers = _presigned(spec, uid)
    conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=30)
    try:
        conn.request("POST", API_PATH, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
    finally:
        conn.close()
    if answer.status != 200 or b"SecretString" not in data:
        raise RuntimeError(f"GetSecretValue answered {answer.status}: {data[:200]!r}")


def _boto3_caller(spec: dict):
    import boto3
    import botocore.config

    client = boto3.client(
        "secretsmanager",
        endpoint_url=f"http://127.0.0.1:{spec['port']}{API_PATH}",
        region_name=REGION,
        aws_access_key_id=spec["access_key_id"],
        aws_secret_access_key=spec["secret_access_key"],
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )

    def call(spec: dict, n: int) -> None:
        answer = client.get_secret_value(SecretId=spec["uids"][n % len(spec["uids"])])
        if "SecretString" not in answer:
            raise RuntimeError("GetSecretValue answered without a SecretString")

    return call


def _empty_call(spec: dict, n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=30)
    try:
        conn.request(
            "GET",
            EMPTY_PATH,
            headers={"Host": "127.0.0.1", "Cookie": f"sessionid={spec['session']}"},
        )
        answer = conn.getresponse()
        data = answer.read()
    finally:
        conn.close()
    if answer.status != 200 or data.strip() != b"{}":
        raise RuntimeError(f"the empty view answered {answer.status}: {data[:200]!r}")


def _phase(spec: dict, kind: str, clients: int, seconds: float, count: int) -> dict:
    """`clients` threads calling back to back: for `seconds` (after WARMUP_SECONDS), or `count`
    calls in all when count > 0. Returns the latencies (ms) measured, the wall time and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = [0]
    started = [0.0]
    measuring = threading.Event()
    stop = threading.Event()

    def worker() -> None:
        call = _boto3_caller(spec) if kind == "api" and spec["boto3"] else None
        if call is None:
            call = _raw_api_call if kind == "api" else _empty_call
        mine: list[float] = []
        while not stop.is_set():
            with lock:
                n = counter[0]
                counter[0] += 1
            if count and n >= count:
                break
            began = time.perf_counter()
            try:
                call(spec, n)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    errors.append(str(exc)[:200])
                continue
            if measuring.is_set() and not stop.is_set():
                mine.append((time.perf_counter() - began) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    if count:
        measuring.set()
        started[0] = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started[0]
    else:
        time.sleep(WARMUP_SECONDS)
        measuring.set()
        started[0] = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        wall = time.perf_counter() - started[0]
        for thread in threads:
            thread.join(60)
    return {"latencies": latencies, "wall": wall, "errors": errors}


def run_client(spec: dict) -> None:
    """The loaded phases alternate in `rounds` rounds (api, empty, api, empty, ...), so that
    load from elsewhere on the machine weighs on both alike; then the unloaded phase."""
    cpu_before = os.times()
    results: dict = {}
    for _ in range(spec["rounds"]):
        for kind in ("api", "empty"):
            got = _phase(spec, kind, spec["clients"], spec["seconds"] / spec["rounds"], 0)
            total = results.setdefault(kind, {"latencies": [], "wall": 0.0, "errors": []})
            for key in total:
                total[key] += got[key]
    results["single"] = _phase(spec, "api", 1, 0, spec["single"])
    cpu = os.times()
    results["client_cpu_s"] = (cpu.user - cpu_before.user) + (cpu.system - cpu_before.system)
    print(json.dumps(results))


# --- setup and report ----------------------------------------------------------------------------


def seed(records: int) -> dict:
    """The folder, its records, the application and its credential, and a signed-in session."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    from secretsapi.credentials import credential_create
    from vault import services
    from vault.models import Application, ApplicationFolder, SharedFolder

    folder = SharedFolder.objects.create(name="Bench secrets")
    uids = []
    for n in range(records):
        login = f"bench-app-user-{n:05d}"
        record = services.pam_user_create(
            folder=folder,
            title=f"AWS user: {login}",
            login=login,
            distinguished_name=f"arn:aws:iam::{common.ACCOUNT_ID}:user/{login}",
            password=f"Bench-Passw0rd-{n:05d}!",
        )
        uids.append(record.uid)
    application = Application.objects.create(name="Bench Secrets App")
    ApplicationFolder.objects.create(application=application, folder=folder, editable=False)
    credential, secret = credential_create(
        application=application, name="bench", actor=None, actor_kind="cli"
    )
    user = User.objects.create_user(USERNAME, password="Bench-login-passw0rd-1")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = (
        "vault.oidc.LocalPasswordBackend"  # how a password sign-in is kept
    )
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {
        "uids": uids,
        "access_key_id": credential.access_key_id,
        "secret_access_key": secret,
        "session": session.session_key,
    }


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/login/", headers={"Host": "127.0.0.1"})
        conn.getresponse().read()
        conn.close()
    except OSError:
        return False
    return True


def _check(spec: dict) -> None:
    """One request of each kind before timing: a refusal would otherwise be timed."""
    _raw_api_call(spec, 0)
    _empty_call(spec, 0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="per loaded phase")
    parser.add_argument("--rounds", type=int, default=5, help="the loaded phases alternate")
    parser.add_argument("--single", type=int, default=300, help="requests from one client")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--boto3", action="store_true", help="a boto3 client per thread")
    parser.add_argument("--flush", action="store_true", help="empty DATABASE_URL's data first")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    return parser.parse_args()


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
        SECRETS_API_RATE_LIMIT="0",
    )
    server = None
    db = env.label.split("+")[0]
    try:
        common.setup_django(env, flush=args.flush)
        started = time.perf_counter()
        spec = seed(args.records)
        print(f"machine: {common.machine()}; database: {db}")
        print(f"setup: {args.records} records in {time.perf_counter() - started:.1f} s")
        port = common.free_port()
        spec |= {
            "port": port,
            "clients": args.clients,
            "seconds": args.seconds,
            "rounds": max(1, args.rounds),
            "single": args.single,
            "boto3": args.boto3,
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        argv = [str(gunicorn), "bench.secrets_api:application", "-w", str(args.workers)]
        server = common.Process(
            "web", [*argv, "-b", f"127.0.0.1:{port}"], env.tmpdir / "gunicorn.log"
        ).start()
        common.wait_for(lambda: _answers(port), 30, 0.1, "gunicorn to answer")
        try:
            _check(spec)
        except RuntimeError as exc:
            print(f"bench: {exc} (see {env.tmpdir / 'gunicorn.log'})")
            return 1
        load = subprocess.run(
            [sys.executable, __file__, "--client", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if load.returncode != 0:
            print(load.stderr.strip().splitlines()[-1] if load.stderr.strip() else "")
            print(f"bench: the load tool failed (see {env.tmpdir / 'gunicorn.log'})")
            return 1
        return report(json.loads(load.stdout), args, db)
    finally:
        if server is not None:
            server.stop()
        env.cleanup()


def report(results: dict, args, db: str) -> int:
    rows, stats = [], {}
    for name, label in (
        ("api", f"GetSecretValue, {args.clients} clients"),
        ("empty", f"empty authenticated JSON view, {args.clients} clients"),
        ("single", "GetSecretValue, 1 client"),
    ):
        phase = results[name]
        samples = phase["latencies"] or [float("nan")]
        s = common.summary(samples) | {"p99": common.percentile(samples, 99)}
        s["rps"] = len(phase["latencies"]) / phase["wall"] if phase["wall"] else 0.0
        s["errors"] = len(phase["errors"])
        stats[name] = s
        rows.append((label, s["n"], s["rps"], s["p50"], s["p95"], s["p99"], s["errors"]))
    common.table(rows, ["phase", "requests", "req/s", "p50_ms", "p95_ms", "p99_ms", "errors"])
    errors = sum(len(results[name]["errors"]) for name in ("api", "empty", "single"))
    for name in ("api", "empty", "single"):
        for message in sorted(set(results[name]["errors"]))[:3]:
            print(f"  error ({name}): {message}")
    ratio = stats["api"]["rps"] / stats["empty"]["rps"] if stats["empty"]["rps"] else 0.0
    client = "boto3 clients" if args.boto3 else "botocore-signed raw requests"
    print(
        f"(gunicorn {args.workers} sync workers; load tool: {client}, one connection per "
        f"request, {results['client_cpu_s']:.1f} s of CPU on this machine too)"
    )
    print(f"throughput vs the empty view: {ratio:.2f} (target >= 0.5: "
          f"{'met' if ratio >= 0.5 else 'MISSED'})")  # fmt: skip
    print(
        f"p95 under {args.clients} clients: {stats['api']['p95']:.1f} ms, unloaded: "
        f"{stats['single']['p95']:.1f} ms (target <= 20 ms)"
    )
    print(
        f"RESULT secrets_api db={db} clients={args.clients} workers={args.workers} "
        f"api_rps={stats['api']['rps']:.0f} api_p50_ms={stats['api']['p50']:.1f} "
        f"api_p95_ms={stats['api']['p95']:.1f} api_p99_ms={stats['api']['p99']:.1f} "
        f"empty_rps={stats['empty']['rps']:.0f} empty_p95_ms={stats['empty']['p95']:.1f} "
        f"ratio={ratio:.2f} single_p50_ms={stats['single']['p50']:.1f} "
        f"single_p95_ms={stats['single']['p95']:.1f} errors={errors}"
    )
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
