"""Thin executor: performs the planner's actions against the Redis pods with redis-py.

No decisions are made here. Each action is idempotent in effect (re-running a MEET, an
assignment that already happened, or a half-done migration converges), so a failure simply
stops this pass; the next reconcile observes and plans again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from ..render.redis import RedisAuth
from .model import from_ranges
from .planner import (
    Action,
    AssignSlots,
    Failover,
    Forget,
    Meet,
    MigrateSlots,
    Replicate,
    StableSlots,
    is_work,
)

log = logging.getLogger(__name__)

MIGRATE_BATCH_KEYS = 100  # keys per MIGRATE call
SLOT_CHUNK = 512  # slots per pipelined SETSLOT round
MIGRATE_TIMEOUT_MS = 5000
FAILOVER_WAIT_S = 15.0


def split_address(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host.strip("[]"), int(port)


class Connector(Protocol):
    """Address ("host:port") -> an authenticated admin client; also MIGRATE's credentials."""

    username: str
    password: str

    def __call__(self, address: str) -> Redis: ...


class AdminConnector:
    """Caches one redis.asyncio client per address, authenticated as the admin ACL user.

    With `tls_ca_pem` (spec.cache.tls: the Secret's ca.crt) every connection is TLS and the
    node's certificate chain must verify against that CA; the host name is not checked, since
    the operator addresses pods by IP, which no certificate names.
    """

    def __init__(
        self, auth: RedisAuth, *, timeout_s: float = 5.0, tls_ca_pem: str | None = None
    ) -> None:
        self.username = auth.admin_username
        self.password = auth.admin_password
        self.timeout_s = timeout_s
        self.tls_ca_pem = tls_ca_pem
        self._clients: dict[str, Redis] = {}

    def _tls_kwargs(self) -> dict[str, Any]:
        if self.tls_ca_pem is None:
            return {}
        return {
            "ssl": True,
            "ssl_ca_data": self.tls_ca_pem,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": False,
        }

    def __call__(self, address: str) -> Redis:
        client = self._clients.get(address)
        if client is None:
            host, port = split_address(address)
            client = Redis(
                host=host,
                port=port,
                username=self.username,
                password=self.password,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                decode_responses=True,
                protocol=2,
                driver_info=None,
                retry=Retry(NoBackoff(), 0),
                **self._tls_kwargs(),
            )  # the next reconcile is the retry
            self._clients[address] = client
        return client

    async def retain(self, addresses: Iterable[str]) -> None:
        """Close the clients of addresses no longer in use (pods gone or moved)."""
        keep = set(addresses)
        for address in [a for a in self._clients if a not in keep]:
            await self._clients.pop(address).aclose()

    async def aclose(self) -> None:
        await self.retain(())


@dataclass(frozen=True)
class ActionResult:
    action: Action
    ok: bool
    error: str | None = None
    seconds: float = 0.0


async def _cmd(client: Redis, *args: Any) -> Any:
    """One command, raw reply (redis-py's execute_command is untyped)."""
    run = cast(Callable[..., Awaitable[Any]], client.execute_command)
    return await run(*args)


def _flat(ranges: Sequence[tuple[int, int]]) -> list[int]:
    return [x for r in ranges for x in r]


async def _pipeline(client: Redis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Run commands in one round trip (no MULTI); raise the first error."""
    async with client.pipeline(transaction=False) as p:
        for cmd in commands:
            p.execute_command(*cmd)
        results: list[Any] = await p.execute(raise_on_error=True)
    return results


async def _migrate_chunk(a: MigrateSlots, slots: list[int], connect: Connector) -> int:
    """Move one chunk of slots, keys included; returns the number of keys moved."""
    src, dst = connect(a.source), connect(a.target)
    host, port = split_address(a.target)
    await _pipeline(dst, [("CLUSTER", "SETSLOT", s, "IMPORTING", a.source_id) for s in slots])
    await _pipeline(src, [("CLUSTER", "SETSLOT", s, "MIGRATING", a.target_id) for s in slots])
    counts = await _pipeline(src, [("CLUSTER", "COUNTKEYSINSLOT", s) for s in slots])
    moved = 0
    for s, n in zip(slots, counts, strict=True):
        # Keys written meanwhile to a migrating slot go to the target (ASK), so a slot that
        # is empty here stays empty on the source.
        while int(n) > 0:
            keys = await _cmd(src, "CLUSTER", "GETKEYSINSLOT", s, MIGRATE_BATCH_KEYS)
            if not keys:
                break
            await _cmd(
                src,
                "MIGRATE",
                host,
                port,
                "",
                0,
                MIGRATE_TIMEOUT_MS,
                "REPLACE",
                "AUTH2",
                connect.username,
                connect.password,
                "KEYS",
                *keys,
            )
            moved += len(keys)
    # Target first, then source, then everyone else (as redis-cli does): no window in which
    # both refuse the slot.
    await _pipeline(dst, [("CLUSTER", "SETSLOT", s, "NODE", a.target_id) for s in slots])
    try:
        await _pipeline(src, [("CLUSTER", "SETSLOT", s, "NODE", a.target_id) for s in slots])
    except ResponseError as e:
        # The target's claim reached the source by gossip first and these were its last
        # slots: Redis (cluster-allow-replica-migration) made it a replica of the target,
        # which refuses SETSLOT. The slots are the target's already; that is the goal.
        if "only with masters" not in str(e):
            raise
        log.info("source %s became a replica of %s on losing its last slots", a.source, a.target)
    for other in a.notify:
        try:
            await _pipeline(
                connect(other), [("CLUSTER", "SETSLOT", s, "NODE", a.target_id) for s in slots]
            )
        except RedisError as e:  # gossip spreads it anyway; the target has the higher epoch
            log.info("SETSLOT NODE on %s: %s", other, e)
    return moved


async def _wait_master(client: Redis, deadline: float) -> None:
    while time.monotonic() < deadline:
        role = await _cmd(client, "ROLE")
        if role and str(role[0]) == "master":
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("replica not promoted in time")


async def apply_action(action: Action, connect: Connector) -> None:
    """Perform one action (Wait and Refuse do nothing)."""
    if isinstance(action, Meet):
        host, port = split_address(action.address)
        await _cmd(connect(action.via), "CLUSTER", "MEET", host, port)
    elif isinstance(action, AssignSlots):
        c = connect(action.node)
        await _cmd(c, "CLUSTER", "ADDSLOTSRANGE", *_flat(action.slots))
        if action.bump_epoch:
            await _cmd(c, "CLUSTER", "BUMPEPOCH")
    elif isinstance(action, Replicate):
        await _cmd(connect(action.node), "CLUSTER", "REPLICATE", action.master_id)
    elif isinstance(action, Forget):
        for via in action.via:
            try:
                await _cmd(connect(via), "CLUSTER", "FORGET", action.node_id)
            except ResponseError as e:  # already forgotten, or it is that node's master
                log.info("CLUSTER FORGET %s on %s: %s", action.node_id, via, e)
    elif isinstance(action, StableSlots):
        await _pipeline(
            connect(action.node),
            [("CLUSTER", "SETSLOT", s, "STABLE") for s in from_ranges(action.slots)],
        )
    elif isinstance(action, MigrateSlots):
        slots = from_ranges(action.slots)
        for i in range(0, len(slots), SLOT_CHUNK):
            await _migrate_chunk(action, slots[i : i + SLOT_CHUNK], connect)
    elif isinstance(action, Failover):
        c = connect(action.node)
        await _cmd(c, "CLUSTER", "FAILOVER")
        await _wait_master(c, time.monotonic() + FAILOVER_WAIT_S)


async def apply_actions(actions: Sequence[Action], connect: Connector) -> list[ActionResult]:
    """Apply actions in order; stop at the first failure (the next plan starts from there)."""
    results: list[ActionResult] = []
    for action in actions:
        if not is_work(action):
            continue
        t0 = time.monotonic()
        try:
            await apply_action(action, connect)
        except (RedisError, OSError, TimeoutError) as e:
            log.warning("redis cluster action %s failed: %s", action, e)
            results.append(
                ActionResult(action, False, f"{type(e).__name__}: {e}", time.monotonic() - t0)
            )
            break
        results.append(ActionResult(action, True, None, time.monotonic() - t0))
    return results
