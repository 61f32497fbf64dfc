"""The kube client retries transient answers (409, 429 with Retry-After, 5xx) a few times, fast,
and gives up at once on final ones (400, 403, 404, 422)."""
from __future__ import annotations

import asyncio
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
    kube = kc.Kube.__new__(kc.Kube)
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
