"""The operator's settings: parsed once, flag > environment > default, errors name the setting."""

from __future__ import annotations

import pytest

from gencluster.edge.settings import OPTIONS, SettingsError, load


def test_defaults_without_flags_or_environment() -> None:
    s = load([], {})
    assert (s.metrics_port, s.resync_seconds, s.dashboard_token, s.namespaces) == (8080, 15, None, ())
    assert s.defaults.operator_namespace == "gencluster-system"


def test_flag_beats_environment_beats_default() -> None:
    env = {"GENCLUSTER_RESYNC_SECONDS": "30", "GENCLUSTER_METRICS_PORT": "9000",
           "POD_NAMESPACE": "ops", "GENCLUSTER_REDIS_IMAGE": "r:1"}
    s = load(["--resync-seconds", "5", "-n", "a", "-n", "b"], env)
    assert s.resync_seconds == 5 and s.metrics_port == 9000 and s.namespaces == ("a", "b")
    assert s.defaults.operator_namespace == "ops" and s.defaults.redis_image == "r:1"


@pytest.mark.parametrize(("argv", "env", "named"), [
    ([], {"GENCLUSTER_RESYNC_SECONDS": "0"}, "GENCLUSTER_RESYNC_SECONDS"),
    ([], {"GENCLUSTER_RESYNC_SECONDS": "fast"}, "GENCLUSTER_RESYNC_SECONDS"),
    ([], {"GENCLUSTER_METRICS_PORT": "70000"}, "GENCLUSTER_METRICS_PORT"),
    (["--metrics-port", "-1"], {}, "--metrics-port"),
])
def test_a_bad_value_is_an_error_naming_the_setting(argv: list[str], env: dict[str, str],
                                                    named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load(argv, env)


def test_secrets_never_appear_in_errors_or_repr() -> None:
    s = load([], {"GENCLUSTER_DASHBOARD_TOKEN": "s3cret-value"})
    assert s.dashboard_token == "s3cret-value" and "s3cret" not in repr(s)


def test_every_setting_the_chart_sets_is_in_the_table() -> None:
    from pathlib import Path
    chart = (Path(__file__).resolve().parents[2] / "charts/gencluster-operator/templates/deployment.yaml").read_text()
    known = {o.env for o in OPTIONS if o.env}
    import re
    set_by_chart = set(re.findall(r"name: (GENCLUSTER_[A-Z_]+|POD_NAMESPACE)", chart))
    assert set_by_chart and set_by_chart <= known
