#!/usr/bin/env python
"""The fault-injection soak, long form: thousands of rotations, and no password lost.

    .venv/bin/python bench/soak.py --minutes 30
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/soak REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/soak.py --minutes 30 --flush

The same soak as tests/soak/test_soak_short.py (see tests/soak/engine.py), for longer and with
more records: moto's server behind a FaultProxy (random 5xx, throttling, slow answers, answers
dropped after AWS applied the change, connections dropped before it, outage windows), two
`manage.py qcluster` processes serving the gateway (SIGKILLed and restarted, paused with
SIGSTOP for longer than a lease and resumed), gunicorn serving the web app (restarted), on-demand
rotations through the Rotate button and the request service, scheduled rotations through the
scheduler pass. At the end every record is checked against the emulator. Exit status 1 when any
password was lost. The last line is
`RESULT soak requested=.. succeeded=.. failed=.. recovered=.. lost=..`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as common  # noqa: E402

USERNAME = "soak-editor"
PASSWORD = "Soak-login-passw0rd-1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--scheduled", type=float, default=0.5, help="share with a schedule")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-web", action="store_true", help="no web process")
    parser.add_argument("--flush", action="store_true", help="empty DATABASE_URL's data first")
    parser.add_argument("--keep", action="store_true", help="keep the logs (temporary directory)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from tests.soak.engine import PROCESS_ENV

    env = common.bootstrap(**PROCESS_ENV)
    moto = proxy = None
    try:
        common.setup_django(env, flush=args.flush)
        from django.contrib.auth.models import User

        from tests.faultproxy import FaultProxy
        from tests.soak.engine import Soak, SoakPlan
        from vault.models import FolderMember, PamUser

        print(f"machine: {common.machine()}; database+broker: {env.label}")
        moto = common.MotoServer(env.tmpdir / "moto.log").start()
        proxy = FaultProxy(upstream=moto.endpoint).start()
        scheduled_count = int(args.records * args.scheduled)
        logins = [f"soak-user-{n:06d}" for n in range(args.records)]
        moto.create_users(logins)

        def settings_for(n: int):
            if n < args.records - scheduled_count:
                return {"type": "ON_DEMAND"}, None
            return {"type": "DAILY", "time": "03:00", "tz": "UTC", "intervalCount": 1}, None

        folder, config = common.make_world(
            count=args.records,
            endpoint=proxy.endpoint,
            gateway_name="soak",
            prefix="soak-user",
            settings_for=settings_for,
        )
        editor = User.objects.create_user(USERNAME, password=PASSWORD)
        FolderMember.objects.create(folder=folder, user=editor, can_edit=True)
        records = list(PamUser.objects.filter(folder=folder).order_by("login"))
        on_demand = records[: args.records - scheduled_count]
        scheduled = records[args.records - scheduled_count :]

        web_port = common.free_port()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        count = {"gateway": 0, "web": 0}

        def gateway():
            count["gateway"] += 1
            return common.qcluster(env, name="soak")

        def web():
            count["web"] += 1
            argv = [
                str(gunicorn),
                "vault.wsgi:application",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{web_port}",
            ]
            return common.Process("web", argv, env.tmpdir / "web.log")

        plan = SoakPlan(
            seconds=args.minutes * 60,
            settle_seconds=180.0,
            due_per_tick=max(3, scheduled_count // 20),
            seed=args.seed,
        )
        soak = Soak(
            plan=plan,
            proxy=proxy,
            gateways={"soak": gateway},
            web=None if args.no_web else web,
            web_port=web_port,
            editor=(USERNAME, PASSWORD),
            on_demand=on_demand,
            scheduled=scheduled,
            aws_passwords=moto.passwords,
        )
        print(f"soak: {args.records} records, {args.minutes:g} minutes of faults ...", flush=True)
        started = time.monotonic()
        report = soak.run()
        for line in report.lines():
            print(line)
        if soak.errors:
            print(f"soak errors: {soak.errors}")
        if report.lost:
            print(f"LOST: {report.lost[:20]}")
        print(f"(logs in {env.tmpdir})" if args.keep else "", end="")
        print(
            f"\nRESULT soak requested={report.requested} succeeded={report.succeeded} "
            f"failed={report.failed} failed_may_be_live={report.failed_may_be_live} "
            f"recovered={report.recovered} lost={len(report.lost)} "
            f"gateway_kills={report.gateway_kills} gateway_pauses={report.gateway_pauses} "
            f"web_restarts={report.web_restarts} outages={report.outages} "
            f"minutes={(time.monotonic() - started) / 60:.1f} db={env.label}"
        )
        return 1 if report.lost or soak.errors or report.still_active else 0
    finally:
        if proxy is not None:
            proxy.stop()
        if moto is not None:
            moto.stop()
        if not args.keep:
            env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
