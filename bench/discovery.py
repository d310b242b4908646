#!/usr/bin/env python
"""Benchmark: Discover IAM users over 10,000 IAM users in the AWS emulator, then import 1,000.

Run from the checkout:  .venv/bin/python bench/discovery.py [--users 10000] [--import 1000]

- Seeds the emulator (moto's server, in this process, on a free port) through moto's own
  backend: 10,000 IAM users, a third with console access, a quarter with an access key.
  moto 5.2.5's ListUsers ignores MaxItems and Marker, so tests/iam_paging.py makes it page as
  AWS does (1,000 users per call at most); the vault's client sees real HTTP pages.
- Runs one discovery the way a gateway does (rotation.tasks.run_discovery, in this process):
  ListUsers page by page, each page saved with its marker, then the IAM credential report.
  Reports the time, pages and AWS calls.
- Imports 1,000 discovered users into a folder and checks it was one transaction: every
  INSERT/UPDATE ran inside one atomic block, and the database committed once.
- Times the discovery page at 10,000 users (first page, a deep page, a filtered page) through
  django.test.Client.

Last line: RESULT discovery users=.. seconds=.. aws_calls=.. import_1000_seconds=.. page_ms=..
(page_ms: the p50 over every page request).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common  # noqa: E402

PAGE_REQUESTS = 20


def seed(endpoint_account: str, users: int) -> None:
    """IAM users straight into moto's backend (the server answers from it)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[endpoint_account]["global"]
    for n in range(users):
        name = f"svc-{n:05d}"
        backend.create_user("us-east-1", name, path="/apps/" if n % 2 else "/")
        if n % 3 == 0:
            backend.create_login_profile(name, _common.INITIAL_PASSWORD)
        if n % 4 == 0:
            backend.create_access_key(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--import", dest="imported", type=int, default=1_000)
    parser.add_argument("--flush", action="store_true", help="empty DATABASE_URL's data first")
    options = parser.parse_args()

    env = _common.bootstrap("vault.settings_test")
    _common.setup_django(env, flush=options.flush)

    from unittest import mock

    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from moto.server import ThreadedMotoServer

    from rotation import discovery, tasks
    from tests.iam_paging import iam_paging
    from vault.models import FolderMember, PamUser

    setup_test_environment()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        started = time.perf_counter()
        seed(_common.ACCOUNT_ID, options.users)
        print(f"seeded {options.users} IAM users in {time.perf_counter() - started:.1f} s")

        folder, config = _common.make_world(count=0, endpoint=endpoint, folder_name="Discovered")
        person = User.objects.create_user("bench-editor", password="bench-Passw0rd!")
        FolderMember.objects.create(folder=folder, user=person, can_edit=True, manage_records=True)

        with iam_paging(), mock.patch("rotation.dispatch.enqueue_discovery", return_value=True):
            job = discovery.discovery_start(configuration=config, actor=person)
            started = time.perf_counter()
            status = tasks.run_discovery(job.pk)
            seconds = time.perf_counter() - started
        job.refresh_from_db()
        if status != "succeeded":
            raise SystemExit(f"bench: the discovery ended {status}: {job.error}")
        print(
            f"discovery: {job.users_found} users, {job.pages_done} pages, {job.aws_calls} AWS "
            f"calls, {seconds:.2f} s"
        )

        names = list(
            discovery.discovered_users(job).values_list("user_name", flat=True)[: options.imported]
        )
        commits = []
        real_commit = connection.commit

        def counted_commit():
            commits.append(1)
            return real_commit()

        outside: list[str] = []

        def watch(execute, sql, params, many, context):
            if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                if not connection.in_atomic_block:
                    outside.append(sql[:60])
            return execute(sql, params, many, context)

        started = time.perf_counter()
        with (
            mock.patch.object(connection, "commit", counted_commit),
            connection.execute_wrapper(watch),
            CaptureQueriesContext(connection) as queries,
        ):
            outcome = discovery.discovery_import(
                job=job, folder=folder, user_names=names, actor=person
            )
        import_seconds = time.perf_counter() - started
        one_transaction = not outside and len(commits) == 1
        print(
            f"import: {len(outcome.created)} records in {import_seconds:.2f} s, "
            f"{len(queries.captured_queries)} queries, {len(commits)} commit(s), "
            f"one transaction: {'yes' if one_transaction else 'NO'}"
        )
        assert PamUser.objects.filter(folder=folder).count() == len(outcome.created)

        client = Client()
        client.force_login(person)
        base = f"/configurations/{config.uid}/discovery/{job.uid}/"
        deep = options.users // discovery_page_size() // 2 or 1
        samples: dict[str, list[float]] = {"first page": [], "deep page": [], "filtered": []}
        for label, params in (
            ("first page", {}),
            ("deep page", {"page": deep}),
            ("filtered", {"console": "yes", "not_in_vault": "on", "path_prefix": "/apps/"}),
        ):
            for n in range(PAGE_REQUESTS + 2):
                started = time.perf_counter()
                response = client.get(base, params)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"bench: {label} answered {response.status_code}")
                if n >= 2:  # the first two warm the caches
                    samples[label].append(elapsed)
        rows = [
            (label, *(_common.summary(s)[k] for k in ("p50", "p95", "max")))
            for label, s in samples.items()
        ]
        heading = f"discovery page at {options.users} users"
        _common.table(rows, [heading, "p50 ms", "p95 ms", "max ms"])
        page_ms = statistics.median([v for s in samples.values() for v in s])
        print(
            f"RESULT discovery users={job.users_found} seconds={seconds:.2f} "
            f"aws_calls={job.aws_calls} import_{options.imported}_seconds={import_seconds:.2f} "
            f"page_ms={page_ms:.1f} one_transaction={'yes' if one_transaction else 'no'}"
        )
        return 0 if one_transaction else 1
    finally:
        server.stop()
        env.cleanup()


def discovery_page_size() -> int:
    from rotation.discovery_views import USERS_PER_PAGE

    return USERS_PER_PAGE


if __name__ == "__main__":
    sys.exit(main())
