"""Pure control decisions: metric windows, replicas, batch sizes, alerts, events policy.

Nothing in this package does I/O or reads a clock: `now` is always a parameter, so every decision
can be replayed against a trace (`gencluster simulate`) and tested without a cluster.
"""
