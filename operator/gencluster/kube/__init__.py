"""Thin I/O helpers over the official Kubernetes client (the only place that talks to the API)."""
