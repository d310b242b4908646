#!/usr/bin/env python
"""Benchmark: the folder page and a PAM User page with 10,000 records in one folder.

Run from the checkout:  .venv/bin/python bench/folder_page.py

Builds a throw-away SQLite database in a temporary directory (never the project's db.sqlite3),
creates 10,000 PAM Users in one folder, then times 200 requests of the folder page (cycling
through all 200 pages of 50, so deep offsets count too) and 200 of a record page through
django.test.Client. Prints a table and, last, one line:
RESULT folder_page p50_ms=.. p95_ms=.. record_p50_ms=.. record_p95_ms=..
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECORDS = 10_000
REQUESTS = 200
SEARCHES = 50
WARMUP = 10

TMPDIR = tempfile.mkdtemp(prefix="vault-bench-")
os.environ["DJANGO_SETTINGS_MODULE"] = "vault.settings_test"
# Must be set before django.setup(): settings read DATABASE_URL once.
os.environ["DATABASE_URL"] = f"sqlite:///{TMPDIR}/bench.sqlite3"

# whitenoise warns that `collectstatic` has not run; irrelevant to these timings.
warnings.filterwarnings("ignore", message="No directory at")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from vault import services  # noqa: E402
from vault.models import Gateway, PamConfiguration, PamUser  # noqa: E402


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def timed(client: Client, urls: list[str], must_contain: str) -> list[float]:
    samples = []
    for url in urls:
        start = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200 or must_contain not in response.content.decode():
            raise SystemExit(f"bench: unexpected answer from {url}: {response.status_code}")
        samples.append(elapsed)
    return samples


def build() -> tuple[User, str, str]:
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password="bench-password-1")
    folder = services.folder_create(name="AWS IAM Users", owner=user)
    gateway = Gateway.objects.create(name="default")
    for n in range(3):
        config = PamConfiguration(
            folder=folder, title=f"AWS account {n}", gateway=gateway, aws_id=f"Dept-{n}"
        )
        config.set_secret("access_secret_key", "USE_INSTANCE_ROLE")
        config.save()
    started = time.perf_counter()
    rows = []
    for n in range(RECORDS):
        login = f"user{n:05d}"
        row = PamUser(
            folder=folder,
            title=f"AWS user: {login}",
            login=login,
            distinguished_name=f"arn:aws:iam::123456789012:user/{login}",
        )
        row.set_secret("password", f"Bench-Passw0rd-{n:05d}!")
        rows.append(row)
    PamUser.objects.bulk_create(rows, batch_size=1000)
    print(f"created {RECORDS} PAM Users in {time.perf_counter() - started:.1f} s")
    # A record with some history, as an editor sees it.
    record = PamUser.objects.get(login="user05000")
    for n in range(5):
        services.pam_user_update(
            record=record,
            title=record.title,
            login=record.login,
            distinguished_name=record.distinguished_name,
            password=f"History-Passw0rd-{n}!",
            actor=user,
        )
    return user, folder.uid, record.uid


def main() -> None:
    # Production-like request handling: no SQL query log (DEBUG off); allow the test host.
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user, folder_uid, record_uid = build()
    client = Client()
    client.force_login(user)

    pages = RECORDS // 50
    folder_urls = [f"/folders/{folder_uid}/?page={(i % pages) + 1}" for i in range(REQUESTS)]
    search_urls = [f"/folders/{folder_uid}/?q=user0{i:03d}" for i in range(SEARCHES)]
    record_urls = [f"/records/{record_uid}/"] * REQUESTS

    timed(client, folder_urls[:WARMUP] + record_urls[:WARMUP], "")
    results = [
        ("folder page (pages 1-200)", timed(client, folder_urls, "AWS user: user")),
        ("folder search ?q=", timed(client, search_urls, "AWS user: user")),
        ("record page (editor)", timed(client, record_urls, "Password history")),
    ]

    print(f"{'page':<28}{'n':>5}{'p50_ms':>9}{'p95_ms':>9}{'mean_ms':>9}{'max_ms':>9}")
    for name, samples in results:
        print(
            f"{name:<28}{len(samples):>5}{statistics.median(samples):>9.1f}"
            f"{percentile(samples, 95):>9.1f}{statistics.fmean(samples):>9.1f}"
            f"{max(samples):>9.1f}"
        )
    folder, _, record = (samples for _, samples in results)
    print(
        f"RESULT folder_page p50_ms={statistics.median(folder):.1f} "
        f"p95_ms={percentile(folder, 95):.1f} "
        f"record_p50_ms={statistics.median(record):.1f} "
        f"record_p95_ms={percentile(record, 95):.1f}"
    )


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(TMPDIR, ignore_errors=True)
