"""The reconcile's decisions, pure: what the children's state means (assess), what to apply and
delete (plan), and which Events the changes deserve (transitions). The edge
(gencluster.edge.reconciler) fetches, calls these, applies and reports."""
