"""Where metrics come from: each pod's /metrics (scrape.py) or a Prometheus server (prometheus.py).

Both produce `gencluster.control.samples.PodSample`s, so the window and the decisions never know
which one ran.
"""
