"""The open-loop engine: send at the intended times, measure from them, cut time into windows.

Why this shape:
- each arrival is fired at its intended time whether or not earlier requests have returned (open
  loop); if the event loop falls behind, late arrivals are fired at once and their latency still
  counts from the intended time, so a slow server or a slow client cannot hide queueing
  (no coordinated omission). The client's own lateness is measured separately (`client_lag`);
- at most `concurrency` requests are in flight; an arrival beyond that is *dropped* and counted as
  an error ("dropped"), because the offered load was not delivered;
- redirects are never followed and proxies from the environment are ignored: requests go only to
  the checked target addresses;
- windows never straddle phases, so a window's numbers belong to one offered rate;
- everything is bounded: arrivals stop at max_requests or max_seconds after the start, and the
  drain after the last phase ends at the same deadline (2 s after a stop request); requests still
  in flight then are cancelled and reported as unfinished, never as latencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .arrivals import arrival_offsets
from .config import LoadConfig
from .histogram import LatencyHistogram
from .images import make_pool
from .popularity import ZipfSampler
from .scrape import scrape_memory
from .stats import Stats
from .window import WindowRecord

log = logging.getLogger(__name__)

WindowCallback = Callable[[WindowRecord], Any]
MAX_SLEEP_S = 0.25  # arrivals wait in slices this long so a stop request is seen quickly
STOP_DRAIN_S = 2.0  # after a stop request, in-flight requests get this long to finish
YIELD_EVERY = 64  # when behind schedule, let responses in after this many back-to-back fires
USER_AGENT = "gencluster-loadtest/0.1"
SLOWEST_KEPT = 10  # the slowest measured requests, with their trace ids, go to the report
_ID_MASK = (1 << 64) - 1


def traceparent(trace_id: int, span_id: int, ratio: float) -> tuple[str, bool]:
    """A W3C traceparent, sampled when the trace id's low 64 bits fall under ratio x 2^64 (the
    rule of OpenTelemetry's TraceIdRatioBased, so a server at the same ratio agrees)."""
    sampled = (trace_id & _ID_MASK) < round(ratio * (_ID_MASK + 1))
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}", sampled


@dataclass
class Phase:
    name: str
    rate: float
    t_start: float  # seconds since the run started
    t_end: float | None = None
    stats: Stats = field(default_factory=Stats)
    measured: bool = True  # False for warm-up: shown in windows, kept out of `overall`


class Engine:
    """Use as `async with Engine(cfg) as e: await e.run_phase(...)`; results stay on the object."""

    def __init__(self, config: LoadConfig, on_window: WindowCallback | None = None,
                 stop: asyncio.Event | None = None) -> None:
        self.config = config
        self.target = config.target.checked()
        self.on_window = on_window
        self.stop_event = stop
        self.pool = make_pool(config.pool, config.image_size, config.seed)
        self.sampler = ZipfSampler(config.pool, config.zipf, config.seed)
        self.rng = random.Random(config.seed)
        self.overall = Stats()
        self.client_lag = LatencyHistogram()
        self.phases: list[Phase] = []
        self.windows: list[WindowRecord] = []
        self.stopped_by: str | None = None
        self.unfinished = 0
        self.bytes_received = 0
        self.issued = 0
        self.inflight = 0
        self.t_send_end = 0.0
        self.t_measure_start: float | None = None  # start of the first measured phase
        self.t_end = 0.0
        query = f"/v1/generate?resolution={config.resolution}&format={config.fmt}"
        self._urls = [u + query for u in self.target.urls]
        self._rr = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._deadline = 0.0
        self._phase: Phase | None = None
        self._window = Stats()
        self._window_start = 0.0
        self._window_index = 0
        self._ticker: asyncio.Task[None] | None = None
        self._emitter: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[WindowRecord | None] = asyncio.Queue()
        self._callback_failed = False
        self._ids = random.Random()  # trace ids: unseeded, unique across runs
        self._slowest: list[tuple[float, int, dict[str, Any]]] = []  # min-heap of the slowest
        self._slow_seq = 0

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> Engine:
        self._loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=self.config.concurrency, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector, trust_env=False, headers={"User-Agent": USER_AGENT},
        )
        self._t0 = self._loop.time()
        self._deadline = self._t0 + self.config.max_seconds
        self._window_start = self._t0
        self._ticker = asyncio.create_task(self._tick(), name="loadtest-windows")
        self._emitter = asyncio.create_task(self._emit(), name="loadtest-emit")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        await self.finish(abort=exc_type is not None)

    def now(self) -> float:
        """Seconds since the run started."""
        assert self._loop is not None
        return self._loop.time() - self._t0

    def stop(self, reason: str) -> None:
        """Ask the current and later phases to stop sending (e.g. on Ctrl-C)."""
        if self.stopped_by is None:
            self.stopped_by = reason

    @property
    def stopping(self) -> bool:
        if self.stopped_by is None and self.stop_event is not None and self.stop_event.is_set():
            self.stopped_by = "stopped"
        return self.stopped_by is not None

    # -- phases ---------------------------------------------------------------------------
    def _begin_phase(self, name: str, rate: float, measured: bool = True) -> Phase:
        assert self._loop is not None
        now = self._loop.time()
        if self._phase is not None:
            self._phase.t_end = now - self._t0
        if self._phase is not None and now - self._window_start > 1e-3:
            self._close_window(now)
        else:
            self._window_start = now
        self._phase = Phase(name, rate, now - self._t0, measured=measured)
        if not measured:
            self.t_measure_start = None
        elif self.t_measure_start is None:
            self.t_measure_start = now - self._t0
        self.phases.append(self._phase)
        return self._phase

    async def run_phase(self, name: str, rate: float, seconds: float, measured: bool = True) -> Phase:
        """Send at `rate` for `seconds` (open loop); returns the phase, whose stats hold what
        finished during it (completions of earlier phases' requests included). An unmeasured
        phase (warm-up) is kept out of the overall numbers."""
        loop = self._loop
        assert loop is not None, "use the engine as an async context manager"
        phase = self._begin_phase(name, rate, measured)
        if self.stopping:
            return phase
        start = loop.time()
        cut = start + seconds > self._deadline
        end = min(start + seconds, self._deadline)
        behind = 0
        for offset in arrival_offsets(self.config.arrival, rate, seconds, self.rng):
            intended = start + offset
            if intended >= end:
                break
            if self.issued >= self.config.max_requests:
                self.stop("max_requests")
                break
            if not await self._sleep_until(intended):
                break
            self._fire(intended)
            behind = behind + 1 if loop.time() - intended > 1e-3 else 0
            if behind >= YIELD_EVERY:
                behind = 0
                await asyncio.sleep(0)
        if not self.stopping:
            await self._sleep_until(end)
            if cut:
                self.stop("max_seconds")
        self.t_send_end = self.now()
        return phase

    async def _sleep_until(self, when: float) -> bool:
        """Sleep until loop time `when` in short slices; False if asked to stop meanwhile."""
        assert self._loop is not None
        while (delay := when - self._loop.time()) > 0:
            if self.stopping:
                return False
            await asyncio.sleep(min(delay, MAX_SLEEP_S))
        return not self.stopping

    async def finish(self, abort: bool = False) -> None:
        """Drain in-flight requests (until the hard deadline; at once on abort), close the last
        window, clean up."""
        if self._loop is None or self._session is None:
            return
        if self._tasks:
            self._begin_phase("drain", 0.0)
            remaining = self._deadline - self._loop.time()
            if self.stopped_by == "stopped":  # Ctrl-C or the caller's stop event: do not linger
                remaining = min(remaining, STOP_DRAIN_S)
            if remaining > 0 and not abort:
                await asyncio.wait(set(self._tasks), timeout=remaining)
            pending = set(self._tasks)
            for task in pending:
                task.cancel()
            if pending:
                self.unfinished += len(pending)
                await asyncio.gather(*pending, return_exceptions=True)
                if not self.stopped_by:
                    self.stop("max_seconds")
        now = self._loop.time()
        if self._phase is not None:
            self._phase.t_end = now - self._t0
        if now - self._window_start > 1e-3 or not self.windows:
            self._close_window(now)
        self.t_end = now - self._t0
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self._queue.put_nowait(None)
        if self._emitter is not None:
            await self._emitter
        await self._session.close()
        self._session = None

    # -- requests -------------------------------------------------------------------------
    def _record(self, code: str, latency_s: float | None, cache: str | None) -> None:
        if self._phase is None or self._phase.measured:
            self.overall.record(code, latency_s, cache)
        self._window.record(code, latency_s, cache)
        if self._phase is not None:
            self._phase.stats.record(code, latency_s, cache)

    def _fire(self, intended: float) -> None:
        assert self._loop is not None
        self.issued += 1
        if self._phase is None or self._phase.measured:
            self.overall.record_arrival()
        self._window.record_arrival()
        if self._phase is not None:
            self._phase.stats.record_arrival()
        self.client_lag.record(max(0.0, self._loop.time() - intended))
        if self.inflight >= self.config.concurrency:
            self._record("dropped", None, None)
            return
        url = self._urls[self._rr % len(self._urls)]
        self._rr += 1
        body = self.pool[self.sampler.sample()]
        self.inflight += 1
        task = asyncio.create_task(self._send(url, body, intended))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, url: str, body: bytes, intended: float) -> None:
        assert self._loop is not None and self._session is not None
        code, cache = "client_error", None
        headers = {"Content-Type": "image/png"}
        trace_id, sampled = None, False
        if self.config.trace_ratio is not None:
            tid = self._ids.getrandbits(128) or 1
            headers["traceparent"], sampled = traceparent(tid, self._ids.getrandbits(64) or 1,
                                                          self.config.trace_ratio)
            trace_id = f"{tid:032x}"
        try:
            timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
            async with self._session.post(url, data=body, headers=headers,
                                          timeout=timeout, allow_redirects=False) as resp:
                data = await resp.read()
                self.bytes_received += len(data)
                code, cache = str(resp.status), resp.headers.get("X-Cache")
        except TimeoutError:
            code = "timeout"
        except aiohttp.ClientConnectionError:
            code = "conn_error"
        except aiohttp.ClientError:
            code = "client_error"
        except asyncio.CancelledError:
            self.inflight -= 1
            raise
        self.inflight -= 1
        latency = self._loop.time() - intended
        self._record(code, latency, cache)
        if self._phase is None or self._phase.measured:
            self._note_slow(latency, code, cache, trace_id, sampled, intended - self._t0)

    def _note_slow(self, latency: float, code: str, cache: str | None, trace_id: str | None,
                   sampled: bool, t: float) -> None:
        if len(self._slowest) >= SLOWEST_KEPT and latency <= self._slowest[0][0]:
            return
        entry = {"latency_ms": round(latency * 1000, 3), "code": code, "cache": cache,
                 "trace_id": trace_id, "sampled": sampled, "t": round(t, 3)}
        self._slow_seq += 1
        item = (latency, self._slow_seq, entry)
        if len(self._slowest) < SLOWEST_KEPT:
            heapq.heappush(self._slowest, item)
        else:
            heapq.heapreplace(self._slowest, item)

    def slowest(self) -> list[dict[str, Any]]:
        """The slowest measured requests, slowest first, with their trace ids."""
        return [e for _, _, e in sorted(self._slowest, key=lambda x: -x[0])]

    # -- windows --------------------------------------------------------------------------
    def _close_window(self, now: float) -> None:
        phase = self._phase
        record = WindowRecord.from_stats(
            self._window_index, self._window_start - self._t0, now - self._t0,
            phase.name if phase else "", phase.rate if phase else 0.0, self._window, self.inflight,
        )
        self._window_index += 1
        self._window = Stats()
        self._window_start = now
        self._queue.put_nowait(record)

    async def _tick(self) -> None:
        assert self._loop is not None
        while True:
            due = self._window_start + self.config.window_s
            await asyncio.sleep(max(0.0, due - self._loop.time()))
            if self._loop.time() >= self._window_start + self.config.window_s - 1e-6:
                self._close_window(self._loop.time())

    async def _emit(self) -> None:
        """In order: scrape memory (when asked), store the window, call on_window."""
        while (record := await self._queue.get()) is not None:
            if self.config.scrape and self.target.scrape_urls and self._session is not None:
                per_target = await scrape_memory(self._session, self.target.scrape_urls)
                if per_target:
                    record.memory_by_target = per_target
                    record.memory_bytes = sum(per_target.values())
            self.windows.append(record)
            if self.on_window is not None:
                try:
                    result = self.on_window(record)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    if not self._callback_failed:
                        log.exception("on_window callback failed (further failures not logged)")
                    self._callback_failed = True
