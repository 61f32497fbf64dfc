"""Kopf's index readiness at start-up, unpatched and with edge/kopf_startup.py's patch.

As Kopf does after a restart: one ToggleSet(all) holds every object's worker back; each listed
object of an indexed kind adds a toggle and drops it once indexed, the event loop running other
work between drops. Each run is its own process (the patch is process-wide). Prints JSON: the
notifications and the CPU seconds until every waiter has gone on.

    .venv/bin/python benchmarks/kopf_index_readiness.py --objects 2000 --waiters 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from typing import Any


async def _readiness(objects: int, waiters: int) -> dict[str, Any]:
    from kopf._cogs.aiokits import aiotoggles

    ready = aiotoggles.ToggleSet(all)
    notified = [0]
    plain = ready._condition.notify_all

    def counted() -> None:
        notified[0] += 1
        plain()

    ready._condition.notify_all = counted  # type: ignore[method-assign]
    blocker = await ready.make_toggle(name="orchestration blocker")
    toggles = [await ready.make_toggle(name=f"object {i}") for i in range(objects)]
    tasks = [asyncio.create_task(ready.wait_for(True)) for _ in range(waiters)]
    await asyncio.sleep(0)
    await ready.drop_toggle(blocker)
    t0 = time.process_time()
    for t in toggles:
        await ready.drop_toggle(t)
        await asyncio.sleep(0)  # the loop runs other work between two objects indexed
    await asyncio.gather(*tasks)
    return {"notifications": notified[0], "cpu_s": round(time.process_time() - t0, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=2000, help="objects of indexed kinds listed")
    p.add_argument("--waiters", type=int, default=3000, help="objects' workers waiting")
    p.add_argument("--one", choices=("unpatched", "patched"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        if args.one == "patched":
            from gencluster.edge.kopf_startup import quiet_toggle_sets

            assert quiet_toggle_sets()
        print(json.dumps(asyncio.run(_readiness(args.objects, args.waiters))))
        return 0
    out: dict[str, Any] = {"objects": args.objects, "waiters": args.waiters}
    for mode in ("unpatched", "patched"):
        run = subprocess.run([sys.executable, __file__, "--objects", str(args.objects),
                              "--waiters", str(args.waiters), "--one", mode],
                             check=True, capture_output=True, text=True)
        out[mode] = json.loads(run.stdout)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
