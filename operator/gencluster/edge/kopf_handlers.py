"""Every Kopf handler of the operator, registered in one place (`build_registry`).

Nothing registers on import: `gencluster operator` parses its settings (edge/settings.py), builds
this registry and runs Kopf with it. The handlers only hand over to the edge's parts, which live in
Kopf's memo (one per operator, shallow-copied per object): the kube client, the Reconciler, the
cache tier, the event recorder, the scrape session and the dashboard server.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .. import GROUP, PLURAL, VERSION
from ..dashboard.model import Board
from ..dashboard.server import DashboardServer
from ..kube.client import Kube, load_config
from ..metrics_source.scrape import new_session
from ..render import names
from . import control_loop
from .cache_tier import CacheTier
from .events import EventRecorder
from .metrics import MANAGED, REGISTRY
from .reconciler import Reconciler
from .settings import OperatorSettings

# Client threads per lane (reconciles, control loops): about what asyncio.to_thread's shared pool
# had on 2 cores, each.
KUBE_WORKERS = 6
# The control loop's indexes: workload pods and Deployments the operator manages.
WORKLOAD_LABELS: dict[str, Any] = {names.COMPONENT_LABEL: names.WORKLOAD_COMPONENT,
                                   names.INSTANCE_LABEL: kopf.PRESENT,
                                   names.MANAGED_BY_LABEL: names.MANAGED_BY}
# Children whose state the conditions read (workload and Redis): their changes end the pacing.
CHILD_LABELS: dict[str, Any] = {names.INSTANCE_LABEL: kopf.PRESENT,
                                names.MANAGED_BY_LABEL: names.MANAGED_BY}


def new_memo(settings: OperatorSettings) -> kopf.Memo:
    """The operator-wide memo Kopf starts from; startup() fills in what needs the event loop."""
    return kopf.Memo(settings=settings)


async def startup(settings: kopf.OperatorSettings, memo: Any, logger: kopf.Logger,
                  **_: Any) -> None:
    """Kopf's settings, and the edge's parts, in one place (see docs/operator.md).

    - Kopf's bookkeeping lives in annotations under orfeas.ai, never in status (the CRD's
      structural schema would prune it): progress and the last-handled configuration.
    - Finalizer orfeas.ai/kopf-finalizer: only added if a deletion handler needs it; children
      are removed by Kubernetes' garbage collector through owner references.
    - Watches time out server-side after 10 min and are re-established, so a silently dropped
      connection costs at most that long.
    - Events are posted for INFO and above (Normal and Warning), from "gencluster-operator", as
      `kubectl describe` shows them.
    """
    options: OperatorSettings = memo.settings
    settings.persistence.finalizer = names.KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.ANNOTATION_PREFIX, key=names.KOPF_DIFFBASE_KEY)
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.watching.connect_timeout = 30
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = names.MANAGED_BY
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    # The reconciles and the control loops each have their own client threads (kube/client.py).
    memo.kube = Kube(load_config(connections=2 * KUBE_WORKERS), workers=KUBE_WORKERS,
                     name="reconcile")
    memo.loop_kube = memo.kube.lane(KUBE_WORKERS, "loops")
    memo.events = EventRecorder()
    memo.cache = CacheTier()
    memo.session = new_session()
    memo.reconciler = Reconciler(memo.kube, memo.events, memo.cache, options.defaults,
                                 logging.getLogger("gencluster.reconcile"),
                                 resync_seconds=options.resync_seconds,
                                 resync_budget=options.resync_budget)
    # /metrics and the dashboard, on Kopf's own event loop (gencluster.dashboard.server).
    memo.board = Board()  # the control loops record into it, the dashboard server reads it
    memo.dashboard = DashboardServer(memo.board, REGISTRY, token=options.dashboard_token)
    await memo.dashboard.start("0.0.0.0", options.metrics_port)
    logger.info("gencluster operator started; metrics and dashboard on :%d", options.metrics_port)


async def cleanup(memo: Any, **_: Any) -> None:
    """Close the dashboard, the scrape session and the Redis admin pools when the operator stops."""
    if getattr(memo, "dashboard", None) is not None:
        await memo.dashboard.stop()
    if getattr(memo, "session", None) is not None and not memo.session.closed:
        await memo.session.close()
    if getattr(memo, "cache", None) is not None:
        await memo.cache.aclose()


async def reconcile_on_change(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta,
                              status: kopf.Status, name: str, namespace: str | None, memo: Any,
                              reason: str, **_: Any) -> None:
    reconciler: Reconciler = memo.reconciler
    await reconciler.reconcile(body, dict(spec), dict(meta), dict(status), name, namespace or "",
                               trigger=str(reason))
    MANAGED.set(reconciler.managed)


async def resync(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status,
                 name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    """Level-triggered safety net: repairs drift (deleted or edited children) and refreshes status.
    Paced by the operator-wide resync budget (reconcile/pacing.py)."""
    if not memo.reconciler.resync_due(namespace or "", name):
        return
    try:
        await memo.reconciler.reconcile(body, dict(spec), dict(meta), dict(status), name,
                                        namespace or "", trigger="resync")
    except kopf.PermanentError:
        return  # already reported in status; wait for the user to fix the spec


async def child_changed(namespace: str | None, labels: kopf.Labels, memo: Any, **_: Any) -> None:
    """A pod, Deployment or StatefulSet of a GenerationCluster changed: resync it at the next
    timer firing, paced or not (the watch is the one the control loop's indexes already hold)."""
    reconciler: Reconciler | None = getattr(memo, "reconciler", None)
    if reconciler is not None:
        reconciler.child_changed(namespace or "", str(labels[names.INSTANCE_LABEL]))


async def forget(body: kopf.Body, name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    """Children go with their owner (garbage collection); only in-memory state is dropped."""
    reconciler: Reconciler = memo.reconciler
    await reconciler.forget(body, namespace or "", name)
    MANAGED.set(reconciler.managed)


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    """All handlers, with the intervals the settings give."""
    registry = kopf.OperatorRegistry()
    # Credentials as the official client finds them: the pod's service account, or KUBECONFIG
    # (Kopf's default registry adds this itself; a registry of our own must say so).
    kopf.on.login(registry=registry, id="login_via_client")(kopf.login_via_client)
    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
        on(GROUP, VERSION, PLURAL, registry=registry, id="reconcile_on_change")(reconcile_on_change)
    kopf.timer(GROUP, VERSION, PLURAL, registry=registry, id="resync",
               interval=settings.resync_seconds, initial_delay=settings.resync_seconds)(resync)
    kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, id="forget", optional=True)(forget)
    if settings.resync_budget > 0:  # only a paced resync needs to know which clusters changed
        for kind in ("pods", "deployments", "statefulsets"):
            kopf.on.event(kind, labels=CHILD_LABELS, registry=registry,
                          id=f"{kind}_changed")(child_changed)
    kopf.index("pods", labels=WORKLOAD_LABELS, registry=registry,
               id="gencluster_workload_pods")(control_loop.gencluster_workload_pods)
    kopf.index("deployments", labels=WORKLOAD_LABELS, registry=registry,
               id="gencluster_workload_replicas")(control_loop.gencluster_workload_replicas)
    kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, id="autoscaler",
                cancellation_timeout=10.0)(control_loop.run_cluster_loop)
    return registry
