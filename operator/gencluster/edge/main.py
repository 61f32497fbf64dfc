"""`gencluster operator`: parse the settings once, build the handlers' registry, run Kopf."""

from __future__ import annotations

import asyncio
import logging
import sys


def main(argv: list[str]) -> int:
    from .settings import SettingsError, load

    try:
        settings = load(argv)
    except SettingsError as err:
        print(f"gencluster operator: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if settings.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import kopf

    from .. import tracing
    from .kopf_handlers import build_registry, new_memo
    from .kopf_startup import quiet_toggle_sets

    quiet_toggle_sets()  # Kopf's index readiness without its N x N wake-ups (kopf_startup.py)

    # Spans per reconcile and per control-loop tick, when OTEL_* turn tracing on (docs/operator.md).
    choice = tracing.setup("gencluster-operator")
    logging.getLogger(__name__).info("tracing %s (%s)", "on" if choice.enabled else "off",
                                     choice.reason)
    asyncio.run(kopf.operator(
        registry=build_registry(settings),
        memo=new_memo(settings),
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=settings.liveness_url,
        standalone=True,  # one replica (Deployment strategy Recreate); no peering objects needed
    ))
    tracing.shutdown()
    return 0
