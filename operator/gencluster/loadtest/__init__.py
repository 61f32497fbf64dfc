"""`gencluster loadtest`: open-loop load, stress, spike and soak tests with HDR latency reports.

Python API (used by `make demo` and the e2e test):

    from gencluster.loadtest import LoadConfig, run_profile, url_target, cluster_target
    report = await run_profile(LoadConfig(target=url_target(["http://127.0.0.1:8080"]),
                                          profile="spike", rate=5, spike_factor=4))
    report.write("out/")  # report.json, summary.txt, plot.png

Load only goes to 127.0.0.0/8, or to a GenerationCluster's addresses in the local cluster.
"""

# The submodule and its function share the name `cluster_target`: importing the function here
# loads the submodule first, so the package attribute stays the function for good.
from .cluster_target import cluster_target
from .config import PROFILES, ConfigError, LoadConfig
from .profiles import run_profile
from .report import Report
from .targets import Target, TargetRefused, check_url, url_target
from .window import WindowRecord

__all__ = [
    "PROFILES",
    "ConfigError",
    "LoadConfig",
    "Report",
    "Target",
    "TargetRefused",
    "WindowRecord",
    "check_url",
    "cluster_target",
    "run_profile",
    "url_target",
]
