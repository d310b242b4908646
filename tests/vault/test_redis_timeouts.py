"""Redis calls cannot hang: the broker's URL carries connect and read timeouts (issue 11)."""

from __future__ import annotations

import socket
import threading
import time

import redis

from vault.settings import url_with_defaults


def test_timeouts_are_added_to_a_url_without_them():
    url = url_with_defaults("redis://h:6379/0", socket_timeout=10, socket_connect_timeout=5)
    kwargs = redis.ConnectionPool.from_url(url).connection_kwargs
    assert kwargs["socket_timeout"] == 10 and kwargs["socket_connect_timeout"] == 5


def test_a_url_that_sets_its_own_keeps_them():
    url = url_with_defaults("redis://h:6379/0?socket_timeout=2", socket_timeout=10)
    assert redis.ConnectionPool.from_url(url).connection_kwargs["socket_timeout"] == 2


def test_a_black_holed_redis_fails_within_the_timeout_instead_of_hanging():
    """A listener that accepts and never answers, as a black-holed Redis does."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    port = listener.getsockname()[1]
    client = redis.from_url(url_with_defaults(f"redis://127.0.0.1:{port}/0", socket_timeout=0.5))
    started = time.monotonic()
    try:
        client.ping()
    except redis.exceptions.TimeoutError:
        pass
    else:
        raise AssertionError("a Redis that never answers answered")
    finally:
        listener.close()
    assert time.monotonic() - started < 5
