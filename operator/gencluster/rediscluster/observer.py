"""Observer: asks every Redis pod, concurrently and with a timeout, what it knows.

One pipelined round trip per pod: CLUSTER NODES, CLUSTER INFO, INFO memory and replication,
DBSIZE. A pod that
does not answer is recorded as unreachable (with the error), never dropped: the planner must
know it exists to avoid giving its slots away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisError

from ..render.redis import RedisAuth
from .executor import AdminConnector, Connector
from .model import ClusterObservation, Member, parse_cluster_nodes


def _info_value(text: str, key: str) -> str | None:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return None


async def _observe_member(
    pod: str, address: str, k8s_node: str | None, connect: Connector, timeout_s: float
) -> Member:
    if not address:
        return Member(pod, address, k8s_node, reachable=False, error="no address yet")
    try:
        client = connect(address)
        async with client.pipeline(transaction=False) as p:
            p.execute_command("CLUSTER", "NODES")
            p.execute_command("CLUSTER", "INFO")
            p.execute_command("INFO", "memory")
            p.execute_command("INFO", "replication")
            p.execute_command("DBSIZE")
            res: list[Any] = await asyncio.wait_for(p.execute(), timeout_s)
    except (RedisError, OSError, TimeoutError) as e:
        return Member(pod, address, k8s_node, reachable=False, error=f"{type(e).__name__}: {e}")
    nodes_txt, info_txt, mem, repl, keys = res
    views = parse_cluster_nodes(str(nodes_txt))
    me = next((v for v in views if "myself" in v.flags), None)
    mem = mem if isinstance(mem, dict) else {}
    repl = repl if isinstance(repl, dict) else {}
    return Member(
        pod=pod,
        address=address,
        k8s_node=k8s_node,
        reachable=me is not None,
        error=None if me else "no myself line in CLUSTER NODES",
        node_id=me.node_id if me else None,
        nodes=views,
        cluster_state=_info_value(str(info_txt), "cluster_state"),
        used_memory=int(mem["used_memory"]) if "used_memory" in mem else None,
        maxmemory=int(mem["maxmemory"]) if "maxmemory" in mem else None,
        keys=int(keys),
        replicating_from=f"{repl['master_host']}:{repl['master_port']}"
        if repl.get("role") == "slave" and "master_host" in repl
        else None,
        master_link_up=(repl.get("master_link_status") == "up")
        if repl.get("role") == "slave"
        else None,
    )


async def observe_cluster(
    addresses: Mapping[str, str],
    auth: RedisAuth | Connector,
    *,
    k8s_nodes: Mapping[str, str] | None = None,
    timeout_s: float = 3.0,
) -> ClusterObservation:
    """Observe the pods `addresses` (pod name -> "ip:port"); `k8s_nodes`: pod -> node name."""
    own = isinstance(auth, RedisAuth)
    connect: Connector = (
        AdminConnector(auth, timeout_s=timeout_s) if isinstance(auth, RedisAuth) else auth
    )
    try:
        members = await asyncio.gather(
            *(
                _observe_member(pod, addr, (k8s_nodes or {}).get(pod), connect, timeout_s)
                for pod, addr in sorted(addresses.items())
            )
        )
    finally:
        if own and isinstance(connect, AdminConnector):
            await connect.aclose()
    return ClusterObservation(tuple(members))
