"""Dynamic batcher: one future per request, batches bounded by size and queue delay.

Why: a GPU does a batch of 8 in about the time of one; waiting a few milliseconds for company buys
throughput. The two knobs (max batch size, max queue delay) are read afresh for every batch, so
the operator's changes through /admin/batching apply to the next batch with no restart. The queue
is bounded so overload becomes fast 429s instead of unbounded latency.

A watchdog covers a hung device (a forward pass that never returns: a wedged driver, a deadlock
in a kernel): past `hang_after_s`, every request waiting on the device gets `DeviceHung` at once
(a 503 the client can retry on another replica) instead of waiting forever, new ones are refused,
and `hung` tells /readyz and /healthz to fail so the kubelet replaces the container. If the pass
returns after all, the batcher serves again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .config import BatchSettings

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class QueueFull(Exception):
    def __init__(self, depth: int, retry_after_s: int) -> None:
        super().__init__(f"queue full ({depth} waiting); retry in {retry_after_s}s")
        self.retry_after_s = retry_after_s


class ShuttingDown(Exception):
    """The server is draining after SIGTERM and takes no new work."""


class DeviceHung(Exception):
    """A forward pass has run past the watchdog's limit: nothing queued here will be served."""

    def __init__(self, stalled_s: float) -> None:
        super().__init__(f"device hung: a forward pass has run {stalled_s:.0f}s; "
                         "this pod is being replaced, retry (another replica serves)")
        self.stalled_s = stalled_s


@dataclass
class _Item(Generic[In]):
    payload: In
    future: asyncio.Future[Any]
    enqueued: float = field(default_factory=time.monotonic)


class DynamicBatcher(Generic[In, Out]):
    """Collects submitted payloads into batches and runs `run_batch` on `executor`.

    `run_batch(payloads) -> results` runs on the executor (one device thread) and returns, per
    payload, a result or an exception instance (which goes to that request alone).
    """

    def __init__(
        self,
        run_batch: Callable[[list[In]], Sequence[Out | BaseException]],
        executor: Executor,
        settings: BatchSettings,
        queue_max: int,
        on_depth: Callable[[int], None] = lambda d: None,
        hang_after_s: float = 0.0,
    ) -> None:
        self._run_batch = run_batch
        self._executor = executor
        self.settings = settings
        self.queue_max = queue_max
        self._on_depth = on_depth
        self._items: collections.deque[_Item[In]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True
        self._flushing = False
        self._task: asyncio.Task[None] | None = None
        self._batch_seconds = 0.05  # moving average, for Retry-After
        self.batches = 0
        self.hang_after_s = hang_after_s  # 0: no watchdog
        self._running: list[_Item[In]] = []  # the batch on the device now
        self._running_since: float | None = None
        self.hung: DeviceHung | None = None
        self._watchdog: asyncio.Task[None] | None = None

    # -- control -----------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._loop(), name="batcher")
        if self.hang_after_s > 0:
            self._watchdog = loop.create_task(self._watch(), name="device-watchdog")

    def update(self, settings: BatchSettings) -> None:
        """New knobs; the batch being collected now already uses the new size limit."""
        self.settings = settings
        self._wakeup.set()

    @property
    def depth(self) -> int:
        return len(self._items)

    def flush(self) -> None:
        """Draining: stop waiting for batch-mates, run what comes at once (still accepting)."""
        self._flushing = True
        self._wakeup.set()

    def close(self) -> None:
        """Stop taking new work; what is queued still runs, without waiting for company."""
        self._accepting = False
        self.flush()

    async def wait_idle(self) -> None:
        while self._items or not self._idle.is_set():
            await asyncio.sleep(0.01)

    def fail_pending(self, exc: BaseException) -> int:
        """Give every still-queued request `exc` (used when the grace period runs out)."""
        n = 0
        while self._items:
            item = self._items.popleft()
            if not item.future.done():
                item.future.set_exception(exc)
                n += 1
        self._on_depth(0)
        return n

    async def stop(self) -> None:
        for task in (self._task, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- the watchdog ------------------------------------------------------------------
    def check_hung(self, now: float) -> bool:
        """Declare the device hung once the running pass exceeds `hang_after_s`: fail the
        requests it holds and every queued one (once); True while hung."""
        if self.hang_after_s <= 0 or self._running_since is None:
            return False
        stalled = now - self._running_since
        if stalled < self.hang_after_s:
            return False
        if self.hung is None:
            self.hung = DeviceHung(stalled)
            failed = self.fail_pending(self.hung)
            for item in self._running:
                if not item.future.done():
                    item.future.set_exception(self.hung)
                    failed += 1
            log.error("device hung: a forward pass has run %.0fs (limit %.0fs); %d request(s) "
                      "answered 503, /healthz fails so the container is restarted",
                      stalled, self.hang_after_s, failed)
        return True

    async def _watch(self) -> None:
        period = min(1.0, self.hang_after_s / 4)
        while True:
            await asyncio.sleep(period)
            self.check_hung(time.monotonic())

    # -- requests ----------------------------------------------------------------------
    async def submit(self, payload: In) -> Out:
        if not self._accepting:
            raise ShuttingDown("server is shutting down")
        if self.hung is not None:
            raise DeviceHung(time.monotonic() - (self._running_since or time.monotonic()))
        if len(self._items) >= self.queue_max:
            raise QueueFull(len(self._items), self._retry_after())
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._items.append(_Item(payload, future))
        self._on_depth(len(self._items))
        self._wakeup.set()
        return await future

    def _retry_after(self) -> int:
        batches_ahead = len(self._items) / max(1, self.settings.max_batch_size) + 1
        return max(1, math.ceil(batches_ahead * self._batch_seconds))

    # -- the loop ----------------------------------------------------------------------
    async def _next_batch(self) -> list[_Item[In]]:
        while not self._items:
            self._wakeup.clear()
            await self._wakeup.wait()
        # Wait for company until the oldest request has waited max_queue_delay_ms, the batch is
        # full, or we are draining (then run what we have at once).
        while not self._flushing and len(self._items) < self.settings.max_batch_size:
            deadline = self._items[0].enqueued + self.settings.max_queue_delay_ms / 1000
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
            if not self._items:  # fail_pending emptied it
                return []
        batch: list[_Item[In]] = []
        while self._items and len(batch) < self.settings.max_batch_size:
            item = self._items.popleft()
            if not item.future.done():  # the client went away: skip the work
                batch.append(item)
        self._on_depth(len(self._items))
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            self._idle.clear()
            t0 = time.monotonic()
            self._running, self._running_since = batch, t0
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run_batch, [it.payload for it in batch]
                )
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for {len(batch)} inputs")
            except Exception as exc:  # a bug in the runner: every request learns of it
                log.exception("batch of %d failed", len(batch))
                results = [exc] * len(batch)
            finally:
                elapsed = time.monotonic() - t0
                self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * elapsed
                self.batches += 1
                self._running, self._running_since = [], None
                if self.hung is not None:
                    log.warning("device recovered: the pass returned after %.0fs; serving again", elapsed)
                    self.hung = None
                self._idle.set()
            for item, result in zip(batch, results, strict=True):
                if item.future.done():
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
