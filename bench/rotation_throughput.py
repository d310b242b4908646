#!/usr/bin/env python
"""Benchmark: rotations per second through the whole pipeline, against bare boto3 calls.

    .venv/bin/python bench/rotation_throughput.py --users 500
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/rotation_throughput.py --users 500 --flush

Starts moto's server (the AWS emulator) on a free port, creates N IAM users with a console
password there and N PAM Users with rotation settings in the vault, starts one gateway
(`manage.py qcluster`, 2 workers), then times the pipeline: `pam action rotate --folder UID`
(the CLI request path), the django-q2 queue, the workers' AWS calls and commits, until every
rotation has finished. It checks that every password in the vault equals the one the emulator
holds, then times the same number of bare boto3 `update_login_profile` calls, 2 at a time, to
the same emulator. The last line is
`RESULT rotation_throughput pipeline_per_s=.. raw_per_s=.. ratio=..`.
"""

from __future__ import annotations

import argparse
import io
import secrets
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
    parser.add_argument("--flush", action="store_true", help="empty DATABASE_URL's data first")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--via",
        choices=["service", "cli"],
        default="service",
        help="request through services.rotation_request_many (the batch request path), or "
        "through `pam action rotate --folder` as the CLI stands",
    )
    return parser.parse_args()


def request_rotations(folder, via: str) -> None:
    from django.core.management import call_command

    from rotation import services
    from vault.models import PamUser

    if via == "cli":
        call_command("pam", "action", "rotate", "--folder", folder.uid, stdout=io.StringIO())
        return
    records = list(PamUser.objects.filter(folder=folder).select_related("folder"))
    _active, problems = services.rotation_request_many(records=records, trigger="cli")
    if problems:
        raise SystemExit(f"bench: {len(problems)} rotations not requested: {problems}")


def wait_until_finished(folder, count: int, timeout: float) -> float:
    from rotation.models import Rotation

    rotations = Rotation.objects.filter(pam_user__folder=folder)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished = rotations.exclude(status__in=Rotation.ACTIVE).count()
        if finished >= count:
            return time.perf_counter()
        time.sleep(0.02)
    raise SystemExit(f"bench: {count - finished} rotations still active after {timeout:g} s")


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


def main() -> int:
    args = parse_args()
    env = common.bootstrap()
    moto = gateway = None
    try:
        common.setup_django(env, flush=args.flush)
        from django.db.models import Avg, F, Max, Min
        from django.utils import timezone

        from rotation.models import Rotation
        from vault.models import Gateway, PamUser

        print(f"machine: {common.machine()}; database+broker: {env.label}")
        moto = common.MotoServer(env.tmpdir / "moto.log").start()
        logins = [f"bench-user-{n:06d}" for n in range(args.users)]
        started = time.perf_counter()
        moto.create_users(logins)
        folder, _config = common.make_world(count=args.users, endpoint=moto.endpoint)
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

        cpu0 = (common.cpu_seconds(gateway), common.cpu_seconds(moto), time.process_time())
        t0 = time.perf_counter()
        wall0 = timezone.now()
        request_rotations(folder, args.via)
        t_requested = time.perf_counter()
        t_done = wait_until_finished(folder, args.users, timeout=max(120, args.users))
        pipeline_s = t_done - t0
        cpu1 = (common.cpu_seconds(gateway), common.cpu_seconds(moto), time.process_time())
        gateway_cpu, moto_cpu, bench_cpu = (b - a for a, b in zip(cpu0, cpu1, strict=True))

        rotations = Rotation.objects.filter(pam_user__folder=folder)
        succeeded = rotations.filter(status=Rotation.SUCCEEDED).count()
        failed = rotations.filter(status=Rotation.FAILED)
        if failed.exists():
            print(f"bench: {failed.count()} rotations failed, e.g.: {failed.first().error}")
        spans = rotations.aggregate(
            run=Avg(F("finished_at") - F("started_at")),
            first=Min("started_at"),
            last=Max("finished_at"),
        )
        run_ms = spans["run"]
        first_claim_ms = (spans["first"] - wall0).total_seconds() * 1000
        working_s = (spans["last"] - spans["first"]).total_seconds()
        held = moto.passwords()
        records = list(PamUser.objects.filter(folder=folder))
        wrong = common.compare_with_aws(records, held)
        gateway.stop()

        raw_cpu0 = (common.cpu_seconds(moto), time.process_time())
        raw_s = raw_calls(moto, logins, threads=2)
        raw_moto_cpu = common.cpu_seconds(moto) - raw_cpu0[0]
        raw_client_cpu = time.process_time() - raw_cpu0[1]
        pipeline_per_s = args.users / pipeline_s
        raw_per_s = args.users / raw_s
        ratio = pipeline_per_s / raw_per_s
        per_rotation_ms = (run_ms.total_seconds() * 1000) if run_ms else float("nan")

        common.table(
            [
                (f"request ({args.via})", (t_requested - t0) * 1000, ""),
                ("pipeline: request to last finished", pipeline_s * 1000, f"{pipeline_per_s:.1f}"),
                ("  first claim, after the request began", first_claim_ms, ""),
                ("  first claim to last finish", working_s * 1000, f"{args.users / working_s:.1f}"),
                ("  mean claim-to-finish per rotation", per_rotation_ms, ""),
                (
                    f"raw boto3 update_login_profile x{args.users}, 2 threads",
                    raw_s * 1000,
                    f"{raw_per_s:.1f}",
                ),
            ],
            ["step", "ms", "per_s"],
        )
        n = args.users
        common.table(
            [
                ("pipeline", gateway_cpu * 1000 / n, moto_cpu * 1000 / n, bench_cpu * 1000 / n),
                ("raw boto3", "", raw_moto_cpu * 1000 / n, raw_client_cpu * 1000 / n),
            ],
            ["CPU ms per rotation", "gateway", "emulator", "this process"],
        )
        print(
            f"rotations: requested={args.users} succeeded={succeeded} failed={failed.count()} "
            f"vault_equals_aws={args.users - len(wrong)}/{args.users}"
        )
        if wrong or succeeded != args.users:
            print(f"bench: vault and AWS disagree for {len(wrong)} users, e.g. {wrong[:3]}")
            return 1
        print(
            f"RESULT rotation_throughput pipeline_per_s={pipeline_per_s:.1f} "
            f"raw_per_s={raw_per_s:.1f} ratio={ratio:.2f} db={env.label}"
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
