"""The operator's Redis Cluster reconcile as a process of its own, so a test can SIGKILL it at any
point of a reshard (between SETSLOT IMPORTING and MIGRATING, in the middle of a MIGRATE batch,
before SETSLOT NODE reaches everyone) exactly as a killed operator pod would be.

Reads one JSON object on stdin: addresses (pod -> host:port), k8s_nodes (pod -> node), auth (the
RedisAuth fields), shards, replicas, deadline_s. Runs `converge` (the code the operator runs) and
prints `started` once its imports are done (the test's kill clock starts there), then one JSON
line: converged, refused, state.
"""

from __future__ import annotations

import asyncio
import json
import sys

from gencluster.rediscluster import AdminConnector, converge
from gencluster.render.redis import RedisAuth


async def main(job: dict) -> dict:  # type: ignore[type-arg]
    connect = AdminConnector(RedisAuth(**job["auth"]))
    try:
        r = await converge(job["addresses"], connect, job["shards"], job["replicas"],
                           k8s_nodes=job["k8s_nodes"], deadline_s=job["deadline_s"])
    finally:
        await connect.aclose()
    return {"converged": r.converged, "refused": r.refused, "state": r.health.state}


if __name__ == "__main__":
    print("started", flush=True)
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))), flush=True)
