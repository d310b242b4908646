"""The fault-injection soak: rotations under faults, kills and restarts, then a loss check.

Used by tests/soak/test_soak_short.py (a short run in every `make test`) and bench/soak.py
(the long run). The caller builds the world (IAM users in the emulator; PAM Users whose
configuration points at a FaultProxy in front of the emulator) and hands the engine factories
for the gateway and web processes. While the soak runs:

- the proxy injects random 5xx, throttling, slow answers, connections dropped before and after
  the request reached AWS, and outage windows where every request is dropped;
- a requester asks for on-demand rotations, through the web process's Rotate button (POST
  with the session and CSRF token) and through the request service (as the CLI does);
- a ticker makes scheduled records due (next run in the past) and runs the recovery and
  scheduler passes every second, as each gateway does every minute;
- the gateway cluster is SIGKILLed mid-run and restarted, and so is the web process.

Then the faults stop, the rotations drain, and every record is checked: the password AWS holds
must be the vault's current password, or the pending password of a failed rotation marked
"may be live" and not resolved yet. Any other outcome is a lost password.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import close_old_connections, connection
from django.utils import timezone

FAULT_RATES = {
    "status": 0.05,  # 503 from "AWS": retried, counts as "may have applied"
    "throttle": 0.05,  # 400 Throttling: proves nothing changed
    "slow": 0.05,  # answered late (below the read timeout)
    "late": 0.01,  # held past the read timeout, then delivered: the gateway has retried by then
    "drop_after": 0.04,  # AWS applied it, the answer is lost
    "drop_before": 0.02,  # the connection drops before AWS sees it
}
# What the gateway and the test process need so that recovery happens within the soak: short
# leases, quick retries, and AWS calls that always end well inside a lease.
PROCESS_ENV = {
    "ROTATION_LEASE_SECONDS": "5",
    "ROTATION_MAX_ATTEMPTS": "5",
    "ROTATION_RETRY_BACKOFF_SCALE": "0.1",
    "AWS_MAX_ATTEMPTS": "2",
    "AWS_CONNECT_TIMEOUT": "1",
    "AWS_READ_TIMEOUT": "2",
    # Longer than a late request is held (late_seconds), and than a frozen worker's lease
    # outlives its freeze: no request can arrive after it.
    "ROTATION_UNANSWERED_WINDOW_SECONDS": "6",
    # A new access key is accepted at once by the emulator; a refusal ends the attempt in time.
    "ROTATION_KEY_VERIFY_SECONDS": "2",
    # The emulator's clock is this host's: a lost CreateAccessKey's key is checked for soon.
    "ROTATION_KEY_CLOCK_SKEW_SECONDS": "2",
}


@dataclass
class SoakPlan:
    seconds: float = 45.0
    # Two processes serve the gateway (two hosts of one gateway). One is SIGKILLed now and
    # then; one is paused (SIGSTOP) for longer than a lease and resumed (SIGCONT), as a host
    # frozen by the hypervisor would be: the other takes its rotations over meanwhile, and
    # the paused one wakes up believing it still holds them.
    gateway_processes: int = 2
    kill_gateway_every: tuple[float, float] = (7.0, 12.0)
    gateway_down_for: tuple[float, float] = (0.5, 2.5)
    pause_gateway_every: tuple[float, float] = (9.0, 14.0)
    pause_seconds: tuple[float, float] = (6.0, 9.0)
    restart_web_every: tuple[float, float] = (10.0, 16.0)
    outage_every: tuple[float, float] = (8.0, 14.0)
    outage_seconds: tuple[float, float] = (1.0, 3.0)
    request_pause: tuple[float, float] = (0.05, 0.25)
    due_per_tick: int = 3
    tick_seconds: float = 1.0
    settle_seconds: float = 90.0
    fault_rates: dict = field(default_factory=lambda: dict(FAULT_RATES))
    slow_seconds: float = 0.3
    late_seconds: float = 3.0
    # The last round: every record rotated once more while answers are often lost after AWS
    # applied them, then an outage long enough to exhaust the retries. Many records end
    # with a failed rotation whose password may be live: the hardest case for the check.
    final_drop_after: float = 0.5
    final_outage_after: float = 0.4
    final_outage_seconds: float = 6.0
    # With a database proxy (the gateways' DATABASE_URL through tests/tcpproxy.py): the
    # gateways' database black-holed this many seconds into the run, for this long.
    database_blackhole_after: float = 12.0
    database_blackhole_seconds: float = 8.0
    seed: int = 1


@dataclass
class SoakReport:
    records: int = 0
    requested: int = 0
    requested_on_demand: int = 0
    requested_by_schedule: int = 0
    in_progress_answers: int = 0
    web_unavailable: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_may_be_live: int = 0
    recovered: int = 0
    gateway_kills: int = 0
    gateway_pauses: int = 0
    web_restarts: int = 0
    outages: int = 0
    database_blackholes: int = 0
    faults: dict = field(default_factory=dict)
    aws_holds_current: int = 0
    aws_holds_pending: int = 0
    lost: list = field(default_factory=list)
    still_active: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        faults = " ".join(f"{k}={v}" for k, v in sorted(self.faults.items()))
        return [
            f"records={self.records} seconds={self.seconds:.0f}",
            f"rotations: requested={self.requested} (on demand {self.requested_on_demand}, "
            f"scheduled {self.requested_by_schedule}) succeeded={self.succeeded} "
            f"failed={self.failed} (pending kept as may-be-live: {self.failed_may_be_live}) "
            f"recovered={self.recovered} still_active={self.still_active}",
            f"requests told 'in progress': {self.in_progress_answers}; "
            f"web unavailable: {self.web_unavailable}",
            f"chaos: gateway SIGKILLs={self.gateway_kills} SIGSTOP pauses={self.gateway_pauses} "
            f"web restarts={self.web_restarts} "
            f"outages={self.outages} database blackholes={self.database_blackholes}; "
            f"proxy: {faults}",
            f"check: AWS holds the current password for {self.aws_holds_current}, a "
            f"may-be-live pending one for {self.aws_holds_pending}; lost={len(self.lost)}",
        ]


class WebSession:
    """A logged-in editor against the web process: the Rotate button, as a browser would."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.port, self.username, self.password = port, username, password
        self.cookies: dict[str, str] = {}
        self.lock = threading.Lock()

    def _request(self, method: str, path: str, body: dict | None = None, accept: str = ""):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        headers = {"Host": "127.0.0.1"}
        if accept:
            headers["Accept"] = accept
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]
        return response.status, payload

    def _csrf(self, path: str) -> str:
        status, page = self._request("GET", path)
        found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or not found:
            raise OSError(f"no form at {path} (HTTP {status})")
        return found.group(1).decode()

    def login(self) -> None:
        token = self._csrf("/login/")
        status, _ = self._request(
            "POST",
            "/login/",
            {"csrfmiddlewaretoken": token, "username": self.username, "password": self.password},
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise OSError(f"login refused (HTTP {status})")

    def rotate(self, record_uid: str) -> str:
        """'requested' or 'in_progress'; OSError or HTTPException while the web is down."""
        with self.lock:
            if "sessionid" not in self.cookies:
                self.login()
            token = self._csrf(f"/records/{record_uid}/")
            status, _ = self._request(
                "POST",
                f"/records/{record_uid}/rotate/",
                {"csrfmiddlewaretoken": token},
                accept="application/json",
            )
        if status == 200:
            return "requested"
        if status == 409:
            return "in_progress"
        raise OSError(f"rotate answered HTTP {status}")


class Soak:
    """One soak run. ``gateways`` maps each gateway name to a function that makes a process
    serving it (an object with start(), kill(), stop() and ``proc``); ``plan.gateway_processes``
    of them run per gateway. ``web()`` makes the web process; ``web_port`` and the editor's
    credentials reach it."""

    def __init__(
        self,
        *,
        plan: SoakPlan,
        proxy,
        gateways: dict[str, Callable[[], object]],
        on_demand: list,
        scheduled: list,
        aws_passwords: Callable[[], dict],
        web: Callable[[], object] | None = None,
        web_port: int | None = None,
        editor: tuple[str, str] | None = None,
        log: Callable[[str], None] = print,
        database_proxy=None,
    ) -> None:
        self.plan, self.proxy = plan, proxy
        self.database_proxy = database_proxy
        self.factories, self.make_web = gateways, web
        # One slot per gateway process: (gateway name, its process factory).
        self.slots = [(n, f) for n, f in gateways.items() for _ in range(plan.gateway_processes)]
        self.on_demand, self.scheduled = on_demand, scheduled
        self.aws_passwords, self.log = aws_passwords, log
        self.web_port, self.editor = web_port, editor
        self.rng = random.Random(plan.seed)
        self.report = SoakReport(records=len(on_demand) + len(scheduled))
        self.stop_requests = threading.Event()
        self.stop_ticks = threading.Event()
        self.web_up = threading.Event()
        self.counts: Counter[str] = Counter()
        self.counts_lock = threading.Lock()
        self.gateways: list = [None] * len(self.slots)
        self.paused_until = [0.0] * len(self.slots)
        self.web_process = None
        self.session = WebSession(web_port, *editor) if web and editor else None
        self.errors: list[str] = []

    # --- threads ---

    def _count(self, key: str, n: int = 1) -> None:
        with self.counts_lock:
            self.counts[key] += n

    def _requester(self) -> None:
        from rotation import engine

        rng = random.Random(self.plan.seed + 1)
        try:
            while not self.stop_requests.is_set():
                record = rng.choice(self.on_demand)
                use_web = self.session is not None and rng.random() < 0.7
                try:
                    if use_web:
                        if not self.web_up.is_set():
                            self._count("web_unavailable")
                            outcome = None
                        else:
                            outcome = self.session.rotate(record.uid)
                    else:
                        engine.rotation_request(record=record, trigger="cli")
                        outcome = "requested"
                except engine.RotationInProgress:
                    outcome = "in_progress"
                except (OSError, http.client.HTTPException):  # the web process was killed
                    self._count("web_unavailable")
                    outcome = None
                if outcome:
                    self._count(outcome)
                time.sleep(rng.uniform(*self.plan.request_pause))
        except Exception as exc:  # noqa: BLE001 - reported as a soak error
            self.errors.append(f"requester: {exc!r}")
        finally:
            connection.close()

    def _ticker(self) -> None:
        from rotation import engine, retirement, scheduler
        from rotation.models import RotationSettings

        rng = random.Random(self.plan.seed + 2)
        ids = [record.pk for record in self.scheduled]
        try:
            while not self.stop_ticks.wait(self.plan.tick_seconds):
                if not self.stop_requests.is_set() and ids:
                    due = rng.sample(ids, min(self.plan.due_per_tick, len(ids)))
                    RotationSettings.objects.filter(pam_user_id__in=due).update(
                        next_run_at=timezone.now() - timedelta(seconds=1)
                    )
                # What each gateway runs every minute, here every tick.
                for name in self.factories:
                    self._count("recovered", engine.rotation_recover(gateway_name=name))
                    retirement.keys_retire_due(gateway_name=name)
                self._count("scheduled", scheduler.rotation_schedule_due())
                close_old_connections()
        except Exception as exc:  # noqa: BLE001 - reported as a soak error
            self.errors.append(f"ticker: {exc!r}")
        finally:
            connection.close()

    # --- processes ---

    def _start_gateway(self, slot: int) -> None:
        self.gateways[slot] = self.slots[slot][1]()
        self.gateways[slot].start()

    def _ensure_gateways(self) -> None:
        for slot, process in enumerate(self.gateways):
            if process is None or not _alive(process):
                self._start_gateway(slot)
            else:
                _signal(process, signal.SIGCONT)

    def _pause(self, slot: int, seconds: float) -> None:
        process = self.gateways[slot]
        _signal(process, signal.SIGSTOP)
        threading.Timer(seconds, _signal, args=(process, signal.SIGCONT)).start()

    def _start_web(self) -> None:
        self.web_process = self.make_web()
        self.web_process.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=2)
                conn.request("GET", "/login/", headers={"Host": "127.0.0.1"})
                conn.getresponse().read()
                conn.close()
                self.web_up.set()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the web process did not answer within 30 s")

    def _chaos(self) -> None:
        try:
            self._chaos_loop()
        finally:
            if self.database_proxy is not None:
                self.database_proxy.restore()

    def _chaos_loop(self) -> None:
        plan, rng, now = self.plan, self.rng, time.monotonic()
        end = now + plan.seconds
        next_kill = now + rng.uniform(*plan.kill_gateway_every)
        next_pause = now + rng.uniform(*plan.pause_gateway_every)
        paused_until = self.paused_until
        next_web = now + rng.uniform(*plan.restart_web_every)
        next_outage = now + rng.uniform(*plan.outage_every)
        blackhole = [now + plan.database_blackhole_after, None] if self.database_proxy else None
        while (now := time.monotonic()) < end and not self.errors:
            if blackhole is not None:
                self._database_blackhole(now, blackhole)
            running = [i for i, until in enumerate(paused_until) if until < now]
            if now >= next_kill and running:
                slot = rng.choice(running)
                self.gateways[slot].kill()
                self.report.gateway_kills += 1
                time.sleep(rng.uniform(*plan.gateway_down_for))
                self._start_gateway(slot)
                next_kill = time.monotonic() + rng.uniform(*plan.kill_gateway_every)
            # Pause a process only while another of its gateway runs, to take over from it;
            # or, with one process per gateway, pause it and let its own workers take over
            # once it wakes up (recovery re-queues what the frozen worker held).
            pausable = [
                i
                for i in running
                if self.plan.gateway_processes == 1
                or sum(1 for j in running if self.slots[j][0] == self.slots[i][0]) > 1
            ]
            if now >= next_pause and pausable:
                slot = rng.choice(pausable)
                seconds = rng.uniform(*plan.pause_seconds)
                self._pause(slot, seconds)
                paused_until[slot] = now + seconds + 0.5
                self.report.gateway_pauses += 1
                next_pause = time.monotonic() + rng.uniform(*plan.pause_gateway_every)
            if self.make_web is not None and now >= next_web:
                self.web_up.clear()
                self.web_process.kill()
                self.report.web_restarts += 1
                self._start_web()
                next_web = time.monotonic() + rng.uniform(*plan.restart_web_every)
            if now >= next_outage:
                self.proxy.outage(rng.uniform(*plan.outage_seconds))
                self.report.outages += 1
                next_outage = time.monotonic() + rng.uniform(*plan.outage_every)
            time.sleep(0.1)

    def _database_blackhole(self, now: float, state: list) -> None:
        """``state`` is [when it starts, when it ends or None]: black-hole the gateways'
        database once, then restore it."""
        starts, ends = state
        if ends is None and now >= starts:
            self.database_proxy.blackhole()
            self.report.database_blackholes += 1
            state[1] = now + self.plan.database_blackhole_seconds
        elif ends is not None and now >= ends:
            self.database_proxy.restore()
            state[:] = [float("inf"), None]

    def _final_round(self) -> None:
        from rotation import engine
        from rotation.models import Rotation

        time.sleep(max(0.0, max(self.paused_until) - time.monotonic()))  # all awake again
        self._ensure_gateways()
        records = self.on_demand + self.scheduled
        # Let what is running finish, so that every record can take one more rotation.
        ids = [r.pk for r in records]
        deadline = time.monotonic() + 20
        active = Rotation.objects.filter(pam_user_id__in=ids, status__in=Rotation.ACTIVE)
        while active.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.proxy.clear()
        self.proxy.set_random({"drop_after": self.plan.final_drop_after}, seed=self.plan.seed)
        for record in records:
            try:
                engine.rotation_request(record=record, trigger="cli")
            except engine.RotationRequestError:
                pass
        time.sleep(self.plan.final_outage_after)
        self.proxy.outage(self.plan.final_outage_seconds)
        self.report.outages += 1
        time.sleep(self.plan.final_outage_seconds)

    # --- the run ---

    def run(self) -> SoakReport:
        from rotation.models import Rotation

        started = time.monotonic()
        record_ids = [r.pk for r in self.on_demand + self.scheduled]
        self.proxy.reset_counters()
        self.proxy.set_random(
            self.plan.fault_rates,
            seed=self.plan.seed,
            slow_seconds=self.plan.slow_seconds,
            late_seconds=self.plan.late_seconds,
        )
        for slot in range(len(self.gateways)):
            self._start_gateway(slot)
        if self.make_web is not None:
            self._start_web()
        threads = [
            threading.Thread(target=self._requester, name="soak-requester", daemon=True),
            threading.Thread(target=self._ticker, name="soak-ticker", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            self._chaos()
            self.stop_requests.set()
            threads[0].join(30)
            self._final_round()
        finally:
            self.stop_requests.set()
            threads[0].join(30)
            self.proxy.clear()  # faults stop; what is in flight finishes
            self._ensure_gateways()
            active = Rotation.objects.filter(pam_user_id__in=record_ids, status__in=Rotation.ACTIVE)
            deadline = time.monotonic() + self.plan.settle_seconds
            while active.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            self.stop_ticks.set()
            threads[1].join(30)
            if self.web_process is not None:
                self.web_process.kill()
            for process in self.gateways:
                process.stop()
        self.report.seconds = time.monotonic() - started
        self._check(record_ids)
        return self.report

    def _check(self, record_ids: list[int]) -> None:
        from rotation.models import Rotation
        from vault.models import PamUser

        report = self.report
        rotations = Rotation.objects.filter(pam_user_id__in=record_ids)
        report.requested = rotations.count()
        report.requested_by_schedule = rotations.filter(trigger="scheduled").count()
        report.requested_on_demand = report.requested - report.requested_by_schedule
        report.succeeded = rotations.filter(status=Rotation.SUCCEEDED).count()
        report.failed = rotations.filter(status=Rotation.FAILED).count()
        report.failed_may_be_live = rotations.filter(
            status=Rotation.FAILED, pending_may_be_live=True
        ).count()
        report.still_active = rotations.filter(status__in=Rotation.ACTIVE).count()
        report.recovered = self.counts["recovered"]
        report.in_progress_answers = self.counts["in_progress"]
        report.web_unavailable = self.counts["web_unavailable"]
        report.faults = {
            k: v for k, v in self.proxy.counters.items() if k not in ("forwarded", "requests")
        } | {"requests": self.proxy.counters["requests"]}
        held = self.aws_passwords()
        # Checked through `pam get`, what an operator sees: the current password and every
        # candidate (possibly live, being set, or kept for an unanswered request).
        for record in PamUser.objects.filter(pk__in=record_ids).order_by("pk"):
            in_aws = held.get(record.login)
            shown = operator_view(record.uid)
            if in_aws == shown["password"]:
                report.aws_holds_current += 1
            elif in_aws in {c["password"] for c in shown.get("candidates", [])}:
                report.aws_holds_pending += 1
            else:
                report.lost.append(record.login)


def operator_view(record_uid: str) -> dict:
    """`pam get UID --unmask --format json`, as an operator runs it."""
    from vault.cli import call_pam

    code, out, err = call_pam("get", record_uid, "--unmask", "--format", "json")
    if code != 0:
        raise AssertionError(f"pam get {record_uid} failed: {err.strip()}")
    return json.loads(out)


def _signal(process, sig) -> None:
    proc = getattr(process, "proc", None)
    if proc is not None and proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def _alive(process) -> bool:
    proc = getattr(process, "proc", None)
    return proc is not None and proc.poll() is None
