"""`make run`'s webhook receiver: a small HTTP server on loopback that accepts the demo folder's
signed deliveries and writes one line each to a log (run/webhooks.log): when, the webhook-id,
the event type, whether the signature verified with the webhook's secret, and the body.

    python -m webhooks.demo_receiver PORT LOG SECRET_FILE

It stands in for the receiver a team would run; it verifies signatures the way theirs would,
with the Standard Webhooks library. It is not part of the vault's web app or gateways.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 1_000_000


def _verified(secret_file: Path, body: bytes, headers: dict[str, str]) -> str:
    try:
        secret = secret_file.read_text().strip()
    except OSError:
        return "not checked (no secret file)"
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError as exc:
        return f"REFUSED ({exc})"
    return "verified"


def handler_for(log: Path, secret_file: Path) -> type[BaseHTTPRequestHandler]:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = json.loads(body).get("type", "?")
            except (ValueError, AttributeError):
                event = "?"
            line = (
                f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC {headers.get('webhook-id', '?')} "
                f"{event} signature {_verified(secret_file, body, headers)}: "
                f"{body.decode(errors='replace')}\n"
            )
            with log.open("a") as out:
                out.write(line)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base's name
            pass  # the log above is the record

    return Receiver


def main(argv: list[str]) -> int:
    port, log, secret_file = int(argv[0]), Path(argv[1]), Path(argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(log, secret_file))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
