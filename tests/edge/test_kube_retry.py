"""The kube client retries transient answers (409, 429 with Retry-After, 5xx) a few times, fast,
and gives up at once on final ones (400, 403, 404, 422)."""
from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from gencluster.kube import client as kc


class Flaky:
    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses, self.headers, self.calls = list(statuses), headers or {}, 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.statuses:
            err = ApiException(status=self.statuses.pop(0), reason="x")
            err.headers = self.headers
            raise err
        return "ok"


def _run(fn: Flaky, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[float]]:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    monkeypatch.setattr(kc.asyncio, "sleep", sleep)
    kube = kc.Kube(kc.client.ApiClient(kc.client.Configuration()), workers=1)
    return asyncio.run(kube._run(fn)), slept


def test_transient_answers_are_retried_then_succeed(monkeypatch: pytest.MonkeyPatch) -> None:
    fn = Flaky([429, 500, 409], headers={"Retry-After": "1"})
    out, slept = _run(fn, monkeypatch)
    assert out == "ok" and fn.calls == 4
    assert slept == [1.0, 0.5, 1.0]  # Retry-After honoured (capped), then the fixed steps


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_final_answers_are_not_retried(status: int, monkeypatch: pytest.MonkeyPatch) -> None:
    fn = Flaky([status])
    with pytest.raises(ApiException):
        _run(fn, monkeypatch)
    assert fn.calls == 1


def test_retries_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    fn = Flaky([503] * 10)
    with pytest.raises(ApiException):
        _run(fn, monkeypatch)
    assert fn.calls == len(kc.RETRY_DELAYS_S) + 1
    assert kc.retry_delay(429, {"Retry-After": "3600"}, 0) == kc.MAX_RETRY_AFTER_S


def test_a_lane_busy_on_slow_requests_does_not_hold_back_another_lanes() -> None:
    """The control loops' requests and the reconciles' each have their own threads."""
    loops = kc.Kube(kc.client.ApiClient(kc.client.Configuration()), workers=1, name="loops")
    reconciles = loops.lane(1, "reconcile")
    release = threading.Event()
    where = contextvars.ContextVar("where", default="nowhere")

    async def main() -> tuple[str, bool]:
        stuck = [asyncio.ensure_future(loops._run(release.wait, 5.0)) for _ in range(3)]
        where.set("the reconcile's span")
        answer = await asyncio.wait_for(reconciles._run(where.get), 2.0)
        blocked = not any(t.done() for t in stuck)
        release.set()
        await asyncio.gather(*stuck)
        return answer, blocked

    answer, blocked = asyncio.run(main())
    assert blocked and answer == "the reconcile's span"  # and the caller's context went along
    assert reconciles._discovery is loops._discovery  # one discovery, one connection pool
