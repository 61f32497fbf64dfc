"""`gencluster operator`: run Kopf with the operator's handlers."""

from __future__ import annotations

import argparse
import asyncio
import logging


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gencluster operator",
                                     description="Run the GenerationCluster operator.")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--all-namespaces", action="store_true", default=True,
                       help="watch GenerationClusters in every namespace (default)")
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch only this namespace (repeatable)")
    parser.add_argument("--liveness", default="http://0.0.0.0:8081/healthz",
                        help="liveness endpoint URL Kopf serves (for the pod's livenessProbe)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import kopf

    # Importing registers the handlers: the reconcile, and the control-loop daemon.
    from . import autoscaler, handlers  # noqa: F401

    namespaces = args.namespace
    asyncio.run(kopf.operator(
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
        standalone=True,  # one replica (Deployment strategy Recreate); no peering objects needed
    ))
    return 0
