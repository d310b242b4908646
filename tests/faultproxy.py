"""A fault-injecting HTTP proxy to put in front of the AWS emulator in tests.

    proxy = FaultProxy(upstream=emulator.endpoint).start()
    config = make_configuration(..., endpoint=proxy.endpoint)
    proxy.status(503, times=2, match="Action=UpdateLoginProfile")
    ...
    proxy.stop()

Faults are rules applied to the next matching requests, first queued first used: ``status``
answers without forwarding, ``throttle`` answers AWS's ``Throttling`` error, ``slow`` delays
then forwards, ``drop_before`` closes the connection without forwarding, ``drop_after``
forwards (so the emulator applies the change) and then closes the connection without answering,
``outage`` drops every request for a time window. ``set_random`` adds faults by probability
(for soak tests). ``counters`` counts every request, forward and injected fault.

Only the standard library: http.server's ThreadingHTTPServer in front, http.client behind.
"""

from __future__ import annotations

import collections
import http.client
import random
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("status", "throttle", "slow", "late", "drop_before", "drop_after", "outage")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
STATUS_CODES = {500: "ServiceFailure", 502: "ServiceUnavailable", 503: "ServiceUnavailable"}


def aws_error_xml(code: str, message: str, *, sender: bool = True) -> bytes:
    """An AWS query-protocol error document (what IAM and STS answer)."""
    kind = "Sender" if sender else "Receiver"
    return (
        '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


@dataclass
class Rule:
    kind: str
    times: int | None  # None: every matching request until cleared
    match: str | None
    status: int = 503
    body: bytes = b""
    seconds: float = 0.0

    def matches(self, text: str) -> bool:
        return self.match is None or self.match in text


class FaultProxy:
    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self._bind = (host, port)
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._random: dict[str, float] = {}
        self._random_rule: Rule | None = None
        self._rng = random.Random(0)
        self._outage_until = 0.0
        self._open: set[socket.socket] = set()
        self.counters: collections.Counter[str] = collections.Counter()
        self.actions: collections.Counter[str] = collections.Counter()
        self.history: collections.deque[tuple[str, str]] = collections.deque(maxlen=100_000)
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            pass

        Handler.proxy = proxy
        self.server = ThreadingHTTPServer(self._bind, Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def endpoint(self) -> str:
        assert self.server is not None, "start() the proxy first"
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            open_sockets = list(self._open)
        for sock in open_sockets:  # idle keep-alive connections would otherwise linger
            _close(sock)
        self.server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- programming faults ---

    def _add(self, rule: Rule) -> FaultProxy:
        with self._lock:
            self._rules.append(rule)
        return self

    def status(
        self, code: int = 503, body: bytes | str | None = None, *, times=1, match=None
    ) -> FaultProxy:
        """Answer ``code`` (with an AWS error body by default) without forwarding."""
        if body is None:
            error = STATUS_CODES.get(code, "InternalFailure" if code >= 500 else "BadRequest")
            body = aws_error_xml(error, f"Injected HTTP {code}", sender=code < 500)
        if isinstance(body, str):
            body = body.encode()
        return self._add(Rule("status", times, match, status=code, body=body))

    def throttle(self, *, times=1, match=None) -> FaultProxy:
        """Answer 400 Throttling ("Rate exceeded") without forwarding."""
        body = aws_error_xml("Throttling", "Rate exceeded")
        return self._add(Rule("throttle", times, match, status=400, body=body))

    def slow(self, seconds: float, *, times=1, match=None) -> FaultProxy:
        """Wait ``seconds``, then forward (the change happens even if the client gave up)."""
        return self._add(Rule("slow", times, match, seconds=seconds))

    def drop_before(self, *, times=1, match=None) -> FaultProxy:
        """Close the client connection without forwarding: the emulator never sees it."""
        return self._add(Rule("drop_before", times, match))

    def drop_after(self, *, times=1, match=None) -> FaultProxy:
        """Forward (the emulator applies it), then close the connection without answering."""
        return self._add(Rule("drop_after", times, match))

    def outage(self, seconds: float) -> FaultProxy:
        """Drop every request that arrives in the next ``seconds``."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds
        return self

    def set_random(
        self,
        rates: dict[str, float],
        seed: int = 0,
        *,
        match: str | None = None,
        status_code: int = 503,
        slow_seconds: float = 0.2,
        late_seconds: float = 3.0,
    ) -> FaultProxy:
        """Inject faults by probability, e.g. ``{"throttle": 0.05, "drop_after": 0.01}``.

        Applies to requests that no queued rule took. Kinds: status (``status_code``),
        throttle, slow (``slow_seconds``), late (held ``late_seconds``, longer than the
        client's read timeout, then delivered: the client has given up and retried by then),
        drop_before, drop_after.
        """
        unknown = set(rates) - set(FAULTS[:-1])
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        template = Rule("random", None, match, status=status_code, seconds=slow_seconds)
        self._late_seconds = late_seconds
        with self._lock:
            self._random = dict(rates)
            self._random_rule = template
            self._rng = random.Random(seed)
        return self

    def clear(self) -> None:
        """Remove every queued rule, random rate and outage (counters stay)."""
        with self._lock:
            self._rules.clear()
            self._random = {}
            self._random_rule = None
            self._outage_until = 0.0

    def reset_counters(self) -> None:
        with self._lock:
            self.counters.clear()
            self.actions.clear()
            self.history.clear()

    def pending(self) -> int:
        """How many queued fault applications are left (rules with a count)."""
        with self._lock:
            return sum(rule.times or 0 for rule in self._rules)

    # --- used by the handler ---

    def _decide(self, text: str) -> Rule | None:
        with self._lock:
            if time.monotonic() < self._outage_until:
                return Rule("outage", 1, None)
            for rule in self._rules:
                if rule.matches(text):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._rules.remove(rule)
                    return rule
            template = self._random_rule
            if template is not None and template.matches(text):
                for kind, rate in self._random.items():
                    if self._rng.random() < rate:
                        if kind == "late":
                            return Rule("late", 1, None, seconds=self._late_seconds)
                        return _random_fault(kind, template)
        return None

    def _count(self, action: str, outcome: str) -> None:
        with self._lock:
            self.counters[outcome] += 1
            self.history.append((action, outcome))

    def _seen(self, action: str) -> None:
        with self._lock:
            self.counters["requests"] += 1
            self.actions[action] += 1

    def _track(self, sock: socket.socket, is_open: bool) -> None:
        with self._lock:
            if is_open:
                self._open.add(sock)
            else:
                self._open.discard(sock)


def _random_fault(kind: str, template: Rule) -> Rule:
    if kind == "status":
        code = template.status
        error = STATUS_CODES.get(code, "InternalFailure")
        body = aws_error_xml(error, f"Injected HTTP {code}", sender=code < 500)
        return Rule("status", 1, None, status=code, body=body)
    if kind == "throttle":
        body = aws_error_xml("Throttling", "Rate exceeded")
        return Rule("throttle", 1, None, status=400, body=body)
    return Rule(kind, 1, None, seconds=template.seconds)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _action_of(headers, body: bytes, method: str, path: str) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if body:
        try:
            params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        except ValueError:
            params = {}
        if params.get("Action"):
            return params["Action"][0]
    return f"{method} {urllib.parse.urlsplit(path).path}"


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive, like botocore's connection pool expects

    def setup(self) -> None:
        super().setup()
        self.proxy._track(self.connection, True)
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.proxy._track(self.connection, False)
            if self._upstream is not None:
                self._upstream.close()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: the bodies would hold passwords, and tests read counters instead

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET  # noqa: N815

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _handle(self) -> None:
        body = self._read_body()
        action = _action_of(self.headers, body, self.command, self.path)
        self.proxy._seen(action)
        text = body.decode("utf-8", "replace") + "\n" + str(self.headers)
        rule = self.proxy._decide(text)
        kind = rule.kind if rule else "forwarded"
        if rule and rule.kind in ("drop_before", "outage"):
            self.proxy._count(action, kind)
            return self._drop()
        if rule and rule.kind in ("status", "throttle"):
            self.proxy._count(action, kind)
            return self._answer(rule.status, [("Content-Type", "text/xml")], rule.body)
        if rule and rule.kind in ("slow", "late"):
            time.sleep(rule.seconds)
        try:
            status, reason, headers, payload = self._forward(body)
        except OSError as exc:
            self.proxy._count(action, "upstream_error")
            message = f"Proxy could not reach the upstream: {exc}"
            return self._answer(502, [("Content-Type", "text/plain")], message.encode())
        self.proxy._count(action, "forwarded")
        if rule:
            self.proxy._count(action, kind)
        if status == 409 and b"<Code>LimitExceeded</Code>" in payload:
            # AWS refused a third access key: the access-key soak counts these (must be 0).
            self.proxy._count(action, "limit_exceeded")
        if rule and rule.kind == "drop_after":
            return self._drop()
        self._answer(status, headers, payload, reason)

    def _forward(self, body: bytes):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        for attempt in (1, 2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(
                    self.proxy.upstream_host, self.proxy.upstream_port, timeout=120
                )
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                response = self._upstream.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A stale kept-alive upstream connection; the emulator did not see the request.
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self._upstream.close()
                self._upstream = None
            return response.status, response.reason, response.getheaders(), payload
        raise OSError("unreachable")

    def _answer(self, status: int, headers, payload: bytes, reason: str | None = None) -> None:
        try:
            self.send_response_only(status, reason)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client went away (e.g. it timed out)

    def _drop(self) -> None:
        self.close_connection = True
        _close(self.connection)
