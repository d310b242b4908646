#!/usr/bin/env python
"""Benchmark: resident memory of a gateway rotating continuously, and of the web serving pages.

    .venv/bin/python bench/memory.py                    # 30 minutes, then 100,000 requests
    .venv/bin/python bench/memory.py --minutes 1 --requests 2000        # the smoke run
    .venv/bin/python bench/memory.py --part gateway --minutes 30 --csv /tmp/gateway.csv

Both run as deployed: DEBUG=0 (a SECRET_KEY, ALLOWED_HOSTS=127.0.0.1, plain HTTP; `--debug`
for DEBUG=1, the embedded defaults), on a SQLite file in a temporary directory or the database
in DATABASE_URL.

(a) The gateway: moto's server (the AWS emulator) holds `--users` IAM users (default 200), the
vault as many PAM Users with rotation settings, and one gateway runs (`manage.py qcluster`, 2
workers, as bench/rotation_throughput.py starts it). For `--minutes`, round after round: two
records are rotated on their own (`engine.rotation_request`, a task each, as the Rotate button
does), then every record through the batch request (`engine.rotation_request_many`, a few
drain tasks, as `pam action rotate --folder` does), and the round waits until no rotation is
active. At the end every vault password must equal the emulator's.

(b) The web: gunicorn with 2 sync workers (as bench/ui_latency.py starts it) over a folder of
`--records` PAM Users (default 2,000, each with one finished rotation); a signed-in editor sends
`--requests` requests (default 100,000), 2 at a time, in turn to the home page, the folder page
(walking through its pages of 50) and a record page; each answer must be a 200 with the page's
content.

Every `--interval` seconds (default 5) the resident memory (VmRSS in /proc/PID/status) of every
process of the gateway's (or gunicorn's) process group is sampled, each process with its role:
for the gateway, `qcluster` (the command's process, which starts the cluster), `sentinel` (its
child: it guards the others and runs django-q2's scheduler), and the sentinel's children in the
order it spawns them: the workers, then `monitor` (saves results), then `pusher` (reads the
broker); a worker that django-q2 recycles (after `recycle` tasks, 500 by default) or replaces is
a new `worker` process. For the web, `master` and `worker`.

Per role: start (the first sample), after warm-up (the first sample once `--warmup` of the run,
default 10 %, has passed: imports, caches and connection pools are filled by then), peak (of any
process of the role) and end (the last sample); a role's value at a sample is the mean over its
processes alive then. **Flat** means end <= 1.10 x after warm-up. Every process is listed too
(start, after warm-up, peak, end), so that a worker growing until it is recycled shows even
though the role's mean stays flat. `--csv` writes every sample.
The last line is `RESULT memory gateway_flat=.. web_flat=.. ...`.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as common  # noqa: E402

FLAT = 1.10  # end within 10 % of the value after warm-up


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["both", "gateway", "web"], default="both")
    parser.add_argument("--minutes", type=float, default=30.0, help="gateway rotating (a)")
    parser.add_argument("--users", type=int, default=200, help="records the gateway rotates")
    parser.add_argument("--requests", type=int, default=100_000, help="web requests (b)")
    parser.add_argument("--records", type=int, default=2000, help="records the pages show")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=0.10, help="share of the run")
    parser.add_argument("--csv", metavar="PATH", help="write every sample here")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="DEBUG=1 (the embedded defaults), as a comparison: Django then keeps each "
        "connection's last 9,000 queries in memory",
    )
    parser.add_argument("--flush", action="store_true", help="empty DATABASE_URL's data first")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args()


# --- processes and their memory ----------------------------------------------------------------


def _stat(pid: str) -> tuple[int, int, int] | None:
    """(parent pid, process group, start time in clock ticks) from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[2]), int(fields[19])


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def group(leader: int) -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, start time)} of every live process in `leader`'s process group."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat is not None and stat[1] == leader:
                found[int(entry.name)] = (stat[0], stat[2])
    return found


class Roles:
    """Names each process of a group by its place in the tree (see the module's docstring)."""

    def __init__(self, leader: int, kind: str, workers: int) -> None:
        self.leader, self.kind, self.workers = leader, kind, workers
        self.known: dict[int, str] = {leader: "qcluster" if kind == "gateway" else "master"}
        self.sentinel: int | None = None

    def name(self, processes: dict[int, tuple[int, int]]) -> dict[int, str]:
        if self.kind == "web":
            for pid, (parent, _) in processes.items():
                self.known.setdefault(pid, "worker" if parent == self.leader else "other")
            return {pid: self.known[pid] for pid in processes}
        for pid, (parent, _) in processes.items():
            if parent == self.leader and pid not in self.known:
                self.known[pid] = "sentinel"
                self.sentinel = pid
        children = sorted(
            (started, pid)
            for pid, (parent, started) in processes.items()
            if parent == self.sentinel and pid not in self.known
        )
        if "pusher" not in self.known.values():
            if len(children) < self.workers + 2:
                return {}  # the cluster is still starting
            # Spawned in this order at start: the workers, the monitor, the pusher.
            *workers, (_, monitor), (_, pusher) = children
            self.known.update({monitor: "monitor", pusher: "pusher"})
            self.known.update({pid: "worker" for _, pid in workers})
        else:
            self.known.update({pid: "worker" for _, pid in children})  # recycled, replaced
        return {pid: self.known.get(pid, "other") for pid in processes}


class Sampler(threading.Thread):
    """Samples the RSS of every process of a group every `interval` seconds."""

    def __init__(self, roles: Roles, interval: float, progress) -> None:
        super().__init__(daemon=True)
        self.roles, self.interval, self.progress = roles, interval, progress
        self.samples: list[tuple[float, float, dict[int, tuple[str, int]]]] = []
        self.stopping = threading.Event()
        self.started_at = time.monotonic()

    def sample(self) -> None:
        names = self.roles.name(group(self.roles.leader))
        sizes = {}
        for pid, role in names.items():
            kb = rss_kb(pid)
            if kb is not None:
                sizes[pid] = (role, kb)
        if sizes:
            self.samples.append((time.monotonic() - self.started_at, self.progress(), sizes))

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.sample()


def report(title: str, sampler: Sampler, warmup: float, csv_rows: list) -> dict[str, dict]:
    """Print the per-role and per-process tables; returns the per-role figures."""
    samples = sampler.samples
    warm_at = next((i for i, s in enumerate(samples) if s[1] >= warmup), len(samples) - 1)
    per_pid: dict[int, dict] = {}
    per_role: dict[str, list[tuple[int, float]]] = {}
    for index, (seconds, progress, sizes) in enumerate(samples):
        by_role: dict[str, list[int]] = {}
        for pid, (role, kb) in sizes.items():
            csv_rows.append((title, round(seconds, 1), round(progress, 4), pid, role, kb))
            p = per_pid.setdefault(pid, {"role": role, "born": seconds, "start": kb, "peak": kb})
            p["peak"] = max(p["peak"], kb)
            p["end"] = kb
            p["died"] = seconds
            if index >= warm_at and "warm" not in p:
                p["warm"] = kb
            by_role.setdefault(role, []).append(kb)
        for role, values in by_role.items():
            per_role.setdefault(role, []).append((index, sum(values) / len(values)))
    mb = 1024
    roles = {}
    rows = []
    for role, series in per_role.items():
        warm = next((v for i, v in series if i >= warm_at), series[-1][1])
        peak = max(p["peak"] for p in per_pid.values() if p["role"] == role)
        end = series[-1][1]
        flat = end <= FLAT * warm
        count = sum(1 for p in per_pid.values() if p["role"] == role)
        roles[role] = {"start": series[0][1], "warm": warm, "peak": peak, "end": end, "flat": flat}
        rows.append(
            (role, count, series[0][1] / mb, warm / mb, peak / mb, end / mb, end / warm, flat)
        )
    print(f"{title}: resident memory by role (MB; {len(samples)} samples)")
    common.table(
        rows,
        ["role", "processes", "start", "after warm-up", "peak", "end", "end/warm", "flat"],
    )
    rows = []
    for pid, p in sorted(per_pid.items(), key=lambda item: (item[1]["role"], item[1]["born"])):
        rows.append(
            (
                p["role"],
                pid,
                round(p["born"]),
                round(p["died"]),
                p["start"] / mb,
                p.get("warm", p["end"]) / mb,
                p["peak"] / mb,
                p["end"] / mb,
            )
        )
    print(f"{title}: every process (MB; seen from / to: seconds into the run)")
    common.table(rows, ["role", "pid", "from", "to", "start", "after warm-up", "peak", "end"])
    return roles


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --- (a) the gateway ---------------------------------------------------------------------------


def run_gateway(args, env) -> dict[str, dict]:
    from django.db.models import Count

    from rotation import engine
    from rotation.models import Rotation
    from vault.models import Gateway, PamUser

    moto = gateway = sampler = None
    try:
        moto = common.MotoServer(env.tmpdir / "moto.log").start()
        logins = [f"bench-user-{n:06d}" for n in range(args.users)]
        moto.create_users(logins)
        folder, _config = common.make_world(count=args.users, endpoint=moto.endpoint)
        records = list(PamUser.objects.filter(folder=folder).select_related("folder"))

        gateway = common.qcluster(env, workers=2).start()
        common.wait_for(
            lambda: Gateway.objects.filter(name="default", last_seen_at__isnull=False).exists(),
            60,
            0.1,
            "the gateway's first heartbeat",
        )
        seconds = args.minutes * 60
        started = time.monotonic()
        roles = Roles(gateway.proc.pid, "gateway", workers=2)
        sampler = Sampler(roles, args.interval, lambda: (time.monotonic() - started) / seconds)
        sampler.start()
        print(
            f"gateway: rotating {args.users} records for {args.minutes:g} minutes "
            f"(load average {load_average()}) ...",
            flush=True,
        )
        rounds = 0
        active = Rotation.objects.filter(status__in=Rotation.ACTIVE)
        while time.monotonic() - started < seconds:
            for record in records[rounds % len(records) :][:2]:
                engine.rotation_request(record=record, trigger="on_demand")
            _active, problems = engine.rotation_request_many(records=records, trigger="cli")
            if problems:
                raise SystemExit(f"bench: rotations not requested: {list(problems.items())[:3]}")
            deadline = time.monotonic() + 300
            while active.exists():
                if time.monotonic() > deadline:
                    raise SystemExit("bench: rotations still active after 300 s")
                time.sleep(0.1)
            rounds += 1
            if rounds % 100 == 0:
                print(
                    f"  ... {rounds} rounds, {time.monotonic() - started:.0f} s "
                    f"(load average {load_average()})",
                    flush=True,
                )
        sampler.stop()
        load = load_average()
        outcome = dict(
            Rotation.objects.values_list("status").annotate(n=Count("pk")).order_by("status")
        )
        for record in records:
            record.refresh_from_db(fields=["password_enc"])
        wrong = common.compare_with_aws(records, moto.passwords())
        print(
            f"gateway: {rounds} rounds in {time.monotonic() - started:.0f} s, rotations "
            f"{outcome}, vault differs from AWS for {len(wrong)}; load average {load}"
        )
        if wrong or outcome.get(Rotation.FAILED):
            raise SystemExit("bench: a rotation failed or the vault differs from AWS")
        result = report("gateway", sampler, args.warmup, CSV_ROWS)
        result["_rotations"] = sum(outcome.values())
        result["_rounds"] = rounds
        return result
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        if gateway is not None:
            gateway.stop()
        if moto is not None:
            moto.stop()


# --- (b) the web -------------------------------------------------------------------------------


def run_web(args, env) -> dict[str, dict]:
    from django.core.management import call_command

    from bench import ui_latency

    folder_uid, record_uid = ui_latency.build(args.records, history=1)
    call_command("collectstatic", interactive=False, verbosity=0)
    port = common.free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = common.Process(
        "web",
        [str(gunicorn), "vault.wsgi:application", "-w", "2", "-b", f"127.0.0.1:{port}"],
        env.tmpdir / "gunicorn.log",
    ).start()
    sampler = None
    try:
        common.wait_for(lambda: ui_latency._answers(port), 30, 0.1, "gunicorn to answer")
        session = ui_latency.Session(port)
        session.login()
        pages = max(1, args.records // ui_latency.PER_PAGE)
        done = [0]
        errors: list[str] = []

        def one(n: int) -> None:
            kind = n % 3
            if kind == 0:
                path, marker = "/", "AWS IAM Users"
            elif kind == 1:
                path = f"/folders/{folder_uid}/?page={(n // 3) % pages + 1}"
                marker = "AWS user: bench-user-"
            else:
                path, marker = f"/records/{record_uid}/", "AWS user: bench-user-"
            status, _, payload = session.request("GET", path)
            if status != 200 or marker.encode() not in payload:
                errors.append(f"{path}: HTTP {status}")
            done[0] += 1

        roles = Roles(server.proc.pid, "web", workers=2)
        sampler = Sampler(roles, args.interval, lambda: done[0] / args.requests)
        sampler.start()
        print(
            f"web: {args.requests} requests over {args.records} records "
            f"(load average {load_average()}) ...",
            flush=True,
        )
        started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            for start in range(0, args.requests, 10_000):
                list(pool.map(one, range(start, min(args.requests, start + 10_000))))
                if errors:
                    break
                print(
                    f"  ... {done[0]} requests, {time.monotonic() - started:.0f} s "
                    f"(load average {load_average()})",
                    flush=True,
                )
        sampler.stop()
        print(
            f"web: {done[0]} requests in {time.monotonic() - started:.0f} s, "
            f"{len(errors)} errors; load average {load_average()}"
        )
        if errors:
            raise SystemExit(f"bench: unexpected answers: {errors[:3]}")
        result = report("web", sampler, args.warmup, CSV_ROWS)
        result["_requests"] = done[0]
        return result
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        server.stop()


CSV_ROWS: list[tuple] = []


def main() -> int:
    args = parse_args()
    env = common.bootstrap(
        DEBUG="1" if args.debug else "0",
        SECRET_KEY="bench-only-secret-key-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
    )
    try:
        common.setup_django(env, flush=args.flush)
        print(
            f"machine: {common.machine()}, {os.uname().machine}; database+broker: {env.label}; "
            f"DEBUG={os.environ['DEBUG']}; load average {load_average()}"
        )
        results = {}
        if args.part in ("both", "gateway"):
            results["gateway"] = run_gateway(args, env)
        if args.part in ("both", "web"):
            results["web"] = run_web(args, env)
        if args.csv:
            with open(args.csv, "w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(["part", "seconds", "progress", "pid", "role", "rss_kb"])
                writer.writerows(CSV_ROWS)
        fields = []
        for part, roles in results.items():
            flat = all(r["flat"] for name, r in roles.items() if not name.startswith("_"))
            fields.append(f"{part}_flat={'yes' if flat else 'no'}")
            for name, r in roles.items():
                if not name.startswith("_"):
                    fields.append(f"{part}_{name}_mb={r['warm'] / 1024:.1f}->{r['end'] / 1024:.1f}")
        if "gateway" in results:
            fields.append(f"minutes={args.minutes:g} rotations={results['gateway']['_rotations']}")
        if "web" in results:
            fields.append(f"requests={results['web']['_requests']}")
        print(f"RESULT memory {' '.join(fields)} db={env.label}")
        return 0 if all(f.endswith("yes") for f in fields if "_flat=" in f) else 1
    finally:
        if args.keep:
            print(f"kept {env.tmpdir}")
        else:
            env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
