"""Fixtures of the load tester's tests: the SlowEchoServer test double on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gencluster.loadtest import LoadConfig, url_target

from .slow_echo import SlowEchoServer


@pytest.fixture
def echo_factory() -> Iterator[Callable[..., SlowEchoServer]]:
    servers: list[SlowEchoServer] = []

    def make(**kwargs: object) -> SlowEchoServer:
        server = SlowEchoServer(**kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def config_for(server: SlowEchoServer, **kwargs: object) -> LoadConfig:
    """A LoadConfig against the double, small pool, short windows; overrides in kwargs."""
    defaults: dict[str, object] = {"pool": 20, "window_s": 0.5, "timeout_s": 10.0}
    defaults.update(kwargs)
    return LoadConfig(target=url_target([server.url]), **defaults)  # type: ignore[arg-type]
