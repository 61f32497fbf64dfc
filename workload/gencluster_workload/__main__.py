"""`python -m gencluster_workload [flags]`: the same as `gencluster serve [flags]`."""

from .server import main

raise SystemExit(main())
