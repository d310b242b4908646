"""A TCP proxy for fault tests: put it in front of PostgreSQL, Redis or any TCP service and
switch what the network does to the connections that go through it.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgres://postgres@127.0.0.1:{proxy.port}/test"
        ...
        proxy.blackhole()   # connections stay open, nothing gets through
        proxy.restore()

Modes:

- ``pass``: every byte is forwarded both ways (a new connection opens one upstream).
- ``cut``: every connection is closed now, and a new one is closed as soon as it is accepted.
- ``blackhole``: connections stay open and bytes are read and thrown away, both ways; a new
  connection is accepted and held without opening one upstream. This is a middlebox (a proxy,
  a load balancer, a NAT) that lost its state while both ends' TCP stays healthy: the kernel
  still acknowledges every segment and answers keepalive probes, so TCP keepalives and
  ``tcp_user_timeout`` never fire; only an application's own deadline notices. A query sent
  during the blackhole is lost: after ``restore()`` the client still waits for its answer.
  Connections accepted during the blackhole stay without an upstream until they are closed.

Only the standard library: one accepting thread, one thread per connection.
"""

from __future__ import annotations

import collections
import selectors
import socket
import threading

MODES = ("pass", "cut", "blackhole")
CHUNK = 65536


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._bind = (host, 0)
        self._lock = threading.Lock()
        self._mode = "pass"
        self._pairs: set[_Pair] = set()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self.counters: collections.Counter[str] = collections.Counter()

    # --- lifecycle ---

    def start(self) -> TcpProxy:
        listener = socket.create_server(self._bind, backlog=128)
        listener.settimeout(0.1)  # so stop() is noticed
        self._listener = listener
        threading.Thread(target=self._accept_loop, name="tcpproxy-accept", daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self._listener is not None, "start() the proxy first"
        return self._listener.getsockname()[1]

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            self._listener.close()
        self._close_all()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- modes ---

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        with self._lock:
            self._mode = mode
        self.counters[f"mode:{mode}"] += 1
        if mode == "cut":
            self._close_all()

    def restore(self) -> None:
        self.set_mode("pass")

    def cut(self) -> None:
        self.set_mode("cut")

    def blackhole(self) -> None:
        self.set_mode("blackhole")

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    # --- inside ---

    def _close_all(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            self.counters["accepted"] += 1
            mode = self._mode
            if mode == "cut":
                _close(client)
                self.counters["refused"] += 1
                continue
            upstream = None
            if mode == "pass":
                try:
                    upstream = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    _close(client)
                    self.counters["upstream_failed"] += 1
                    continue
            pair = _Pair(self, client, upstream)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=pair.run, name="tcpproxy-conn", daemon=True).start()

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)


class _Pair:
    """One client connection and its upstream (None: accepted during a blackhole)."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, upstream: socket.socket | None):
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()
        _close(self.client)
        if self.upstream is not None:
            _close(self.upstream)

    def run(self) -> None:
        ends = [self.client] + ([self.upstream] if self.upstream is not None else [])
        other = {self.client: self.upstream, self.upstream: self.client}
        try:
            with selectors.DefaultSelector() as selector:
                for sock in ends:
                    sock.setblocking(True)
                    selector.register(sock, selectors.EVENT_READ)
                while not self.closed.is_set():
                    for key, _ in selector.select(timeout=0.1):
                        data = key.fileobj.recv(CHUNK)
                        if not data:  # one end closed: close the other, as TCP would
                            return
                        target = other[key.fileobj]
                        if self.proxy.mode != "pass" or target is None:
                            self.proxy.counters["dropped_bytes"] += len(data)
                            continue
                        target.sendall(data)
                        self.proxy.counters["forwarded_bytes"] += len(data)
        except (OSError, ValueError):  # closed under us by cut() or stop()
            return
        finally:
            self.close()
            self.proxy._forget(self)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
