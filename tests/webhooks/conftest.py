"""A real HTTP receiver for webhook deliveries, and the rotation tests' AWS world."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rotation import aws
from tests.rotation.conftest import AwsWorld


class Receiver:
    """An HTTP server on a free port of 127.0.0.1 that records each POST and answers with the
    next code of `codes` (then 200)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.codes: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append({"headers": headers, "body": body})
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def payloads(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]
    found = Receiver()
    yield found
    found.stop()


@pytest.fixture
def world(personas, emulator) -> AwsWorld:
    aws.clear_caches()
    yield AwsWorld(personas, emulator)
    aws.clear_caches()
