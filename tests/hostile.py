"""Endpoints that are not AWS, for tests of what a configuration's endpoint URL can do.

    with HtmlServer() as server:        # answers every request 200 with an HTML page
    with HtmlServer(body=b"<x/>", content_type="text/xml")  # ... or with any other body
    with SilentServer() as server:      # accepts connections and never answers
    with ResetServer() as server:       # reads the request, then resets the connection

Each listens on 127.0.0.1 on a free port, counts the requests (or connections) it got in
``hits`` and has an ``endpoint`` URL. Only the standard library.
"""

from __future__ import annotations

import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTML_PAGE = b"<!doctype html><html><head><title>Intranet</title></head><body>Hi</body></html>"


class _Server:
    hits = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HtmlServer(_Server):
    """An internal web page: answers any request 200 text/html, which botocore cannot parse."""

    def __init__(
        self, status: int = 200, body: bytes = HTML_PAGE, content_type: str = "text/html"
    ) -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.hits = 0

    def start(self) -> HtmlServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                owner.hits += 1
                self.send_response(owner.status)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _SocketServer(_Server):
    def __init__(self) -> None:
        self.hits = 0
        self._open: list[socket.socket] = []
        self._stopped = threading.Event()

    def start(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.hits += 1
            self._open.append(conn)
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stopped.set()
        for conn in self._open:
            conn.close()
        self.sock.close()


class SilentServer(_SocketServer):
    """Accepts every connection and never sends a byte (until stopped)."""

    def handle(self, conn: socket.socket) -> None:
        pass


class ResetServer(_SocketServer):
    """Reads what arrives, then resets the connection (RST) without answering."""

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        try:
            conn.recv(65536)
        except OSError:
            pass
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
