#!/usr/bin/env python
"""Benchmark: rotations per second through the whole pipeline, against bare boto3 calls.

    .venv/bin/python bench/rotation_throughput.py --users 500
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/rotation_throughput.py --users 500 --flush

Starts moto's server (the AWS emulator) on a free port, creates N IAM users with a console
password there and N PAM Users with rotation settings in the vault, and starts one gateway
(`manage.py qcluster`, 2 workers). Then, for each round: requests a rotation of every record
through the batch request path that `pam action rotate --folder UID` uses (or, with
`--via cli`, through the command itself), waits until every rotation has finished (queue, the
workers' AWS calls and commits), checks that every password in the vault equals the one the
emulator holds, and times the same number of bare boto3 `update_login_profile` calls, 2 at a
time, to the same emulator. Before the first round, `--warmup` records (default 40) are rotated
once and not timed: a gateway runs for days, and its first rotations after a start pay for
what it then keeps (compiled queries, AWS clients, the account's password policy and id). Rounds interleave the two so that a busy machine affects both
alike; the figures are the medians over the rounds. The last line is
`RESULT rotation_throughput pipeline_per_s=.. raw_per_s=.. ratio=..`.
"""

from __future__ import annotations

import argparse
import io
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as common  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="gateway workers (Q_WORKERS)")
    parser.add_argument("--rounds", type=int, default=3, help="pipeline + raw rounds")
    parser.add_argument(
        "--warmup", type=int, default=40, help="records rotated once, untimed, before round 1"
    )
    parser.add_argument("--flush", action="store_true", help="empty DATABASE_URL's data first")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--via",
        choices=["service", "cli"],
        default="service",
        help="request through engine.rotation_request_many (what `pam action rotate "
        "--folder` calls), or through the `pam action rotate --folder` command in-process",
    )
    return parser.parse_args()


def request_rotations(folder, via: str) -> None:
    from django.core.management import call_command

    from rotation import engine
    from vault.models import PamUser

    if via == "cli":
        call_command("pam", "action", "rotate", "--folder", folder.uid, stdout=io.StringIO())
        return
    records = list(PamUser.objects.filter(folder=folder).select_related("folder"))
    _active, problems = engine.rotation_request_many(records=records, trigger="cli")
    if problems:
        raise SystemExit(f"bench: {len(problems)} rotations not requested: {problems}")


def wait_until_finished(timeout: float) -> float:
    """perf_counter() when no rotation is active any more (polled cheaply: an indexed count)."""
    from rotation.models import Rotation

    deadline = time.monotonic() + timeout
    active = Rotation.objects.filter(status__in=Rotation.ACTIVE)
    while time.monotonic() < deadline:
        if not active.exists():
            return time.perf_counter()
        time.sleep(0.05)
    raise SystemExit(f"bench: {active.count()} rotations still active after {timeout:g} s")


def raw_calls(moto: common.MotoServer, logins: list[str], threads: int) -> float:
    """Seconds for len(logins) bare update_login_profile calls, `threads` at a time."""
    import boto3
    import botocore.config

    client = boto3.client(
        "iam",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 4}),
    )
    client.get_user(UserName=logins[0])  # warm the connection pool and the service model
    shares = [logins[i::threads] for i in range(threads)]
    errors: list[BaseException] = []

    def work(share: list[str]) -> None:
        try:
            for login in share:
                client.update_login_profile(
                    UserName=login,
                    Password=f"Raw-{secrets.token_urlsafe(12)}-9a!",
                    PasswordResetRequired=False,
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(share,)) for share in shares]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"bench: a bare boto3 call failed: {errors[0]!r}")
    return elapsed


class Round:
    """One pipeline run over every record, then the same number of bare calls."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.request_ms = self.first_claim_ms = self.claim_to_finish_ms = 0.0
        self.pipeline_s = self.raw_s = 0.0
        self.cpu: dict[str, float] = {}
        self.succeeded = self.failed = self.mismatched = 0
        self.first_error = ""


def run_round(number, args, folder, records, gateway, moto, logins) -> Round:
    from django.db.models import Avg, F, Min
    from django.utils import timezone

    from rotation.models import Rotation

    result = Round(number)
    since = timezone.now()
    servers = common.ServerCpu().start()
    cpu0 = (common.cpu_seconds(gateway), common.cpu_seconds(moto), time.process_time())
    t0 = time.perf_counter()
    request_rotations(folder, args.via)
    result.request_ms = (time.perf_counter() - t0) * 1000
    rotations = Rotation.objects.filter(pam_user__folder=folder, created_at__gte=since)
    t_done = wait_until_finished(timeout=max(120, args.users))
    result.pipeline_s = t_done - t0
    cpu1 = (common.cpu_seconds(gateway), common.cpu_seconds(moto), time.process_time())
    n = args.users
    server_cpu = servers.stop() * 1000 / n
    gateway_cpu, moto_cpu, own_cpu = ((b - a) * 1000 / n for a, b in zip(cpu0, cpu1, strict=True))

    spans = rotations.aggregate(
        run=Avg(F("finished_at") - F("started_at")), first=Min("started_at")
    )
    result.claim_to_finish_ms = spans["run"].total_seconds() * 1000
    result.first_claim_ms = (spans["first"] - since).total_seconds() * 1000
    result.succeeded = rotations.filter(status=Rotation.SUCCEEDED).count()
    failed = rotations.filter(status=Rotation.FAILED)
    result.failed = failed.count()
    if result.failed:
        result.first_error = failed.first().error
    for record in records:
        record.refresh_from_db(fields=["password_enc"])
    result.mismatched = len(common.compare_with_aws(records, moto.passwords()))

    raw0 = (common.cpu_seconds(moto), time.process_time())
    result.raw_s = raw_calls(moto, logins, threads=2)
    raw_moto = (common.cpu_seconds(moto) - raw0[0]) * 1000 / n
    raw_client = (time.process_time() - raw0[1]) * 1000 / n
    result.cpu = {
        "gateway": gateway_cpu,
        "emulator": moto_cpu,
        "bench": own_cpu,
        "servers": server_cpu,
        "raw_emulator": raw_moto,
        "raw_client": raw_client,
    }
    # The vault no longer matches AWS after the bare calls: the next round rotates again,
    # and compares again.
    return result


def main() -> int:
    args = parse_args()
    env = common.bootstrap()
    moto = gateway = None
    try:
        common.setup_django(env, flush=args.flush)
        from rotation import engine
        from vault.models import Gateway, PamUser

        print(f"machine: {common.machine()}; database+broker: {env.label}")
        moto = common.MotoServer(env.tmpdir / "moto.log").start()
        logins = [f"bench-user-{n:06d}" for n in range(args.users)]
        started = time.perf_counter()
        moto.create_users(logins)
        folder, _config = common.make_world(count=args.users, endpoint=moto.endpoint)
        records = list(PamUser.objects.filter(folder=folder))
        print(
            f"setup: {args.users} IAM users and PAM Users in {time.perf_counter() - started:.1f} s"
        )

        gateway = common.qcluster(env, workers=args.workers).start()
        common.wait_for(
            lambda: Gateway.objects.filter(name="default", last_seen_at__isnull=False).exists(),
            60,
            0.1,
            "the gateway's first heartbeat",
        )
        time.sleep(1.0)  # every worker has spawned and run its start-up tick
        if args.warmup:
            warm = records[: args.warmup]
            _active, problems = engine.rotation_request_many(records=warm, trigger="cli")
            if problems:
                raise SystemExit(f"bench: warm-up rotations not requested: {problems}")
            wait_until_finished(timeout=120)
            print(f"warm-up: {len(warm)} rotations, untimed")

        rounds = [
            run_round(n + 1, args, folder, records, gateway, moto, logins)
            for n in range(args.rounds)
        ]
        n = args.users
        rows = []
        for r in rounds:
            rows.append(
                (
                    r.number,
                    r.request_ms,
                    r.first_claim_ms,
                    r.claim_to_finish_ms,
                    n / r.pipeline_s,
                    n / r.raw_s,
                    (n / r.pipeline_s) / (n / r.raw_s),
                    r.cpu["gateway"],
                    r.cpu["emulator"],
                    r.cpu["servers"],
                    r.cpu["raw_emulator"],
                    r.cpu["raw_client"],
                )
            )
        common.table(
            rows,
            [
                "round",
                "request_ms",
                "first_claim_ms",
                "claim_to_finish_ms",
                "pipeline/s",
                "raw/s",
                "ratio",
                "cpu_ms:gateway",
                "emulator",
                "servers",
                "raw:emulator",
                "raw:client",
            ],
        )
        print(
            "(cpu_ms: CPU milliseconds per rotation or per bare call, by process; "
            "servers: this machine's PostgreSQL and Redis processes, the bench's own "
            "connection included; claim_to_finish_ms: mean time a worker holds a rotation)"
        )
        succeeded = sum(r.succeeded for r in rounds)
        failed = sum(r.failed for r in rounds)
        mismatched = sum(r.mismatched for r in rounds)
        print(
            f"rotations: requested={n * len(rounds)} succeeded={succeeded} failed={failed} "
            f"vault_differs_from_aws={mismatched}"
        )
        if failed or mismatched or succeeded != n * len(rounds):
            errors = [r.first_error for r in rounds if r.first_error]
            print(f"bench: not every rotation succeeded with vault == AWS ({errors[:1]})")
            return 1
        pipeline = statistics.median(n / r.pipeline_s for r in rounds)
        raw = statistics.median(n / r.raw_s for r in rounds)
        print(
            f"RESULT rotation_throughput pipeline_per_s={pipeline:.1f} raw_per_s={raw:.1f} "
            f"ratio={pipeline / raw:.2f} db={env.label} users={n} rounds={len(rounds)}"
        )
        return 0
    finally:
        if gateway is not None:
            gateway.stop()
        if moto is not None:
            moto.stop()
        if args.keep:
            print(f"kept {env.tmpdir}")
        else:
            env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
