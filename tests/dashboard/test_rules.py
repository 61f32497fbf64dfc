"""The chart's PrometheusRule and Grafana dashboard as rendered: `promtool check rules` and
`promtool test rules` unit tests of every alert (firing, and not firing on healthy series)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .chart import dashboard, one, promtool, render, rule_groups

POD = 'namespace="ns", pod="gc-workload-5d8f7c9b4-x2x7q"'  # a Deployment's pod of GenerationCluster gc
HEALTHY = 'namespace="ok", pod="fine-workload-7f6d5c4b3-abcde"'
ALERTS = {"GenClusterLatencySLOBurnFast", "GenClusterLatencySLOBurnSlow", "GenClusterGPUMemoryHigh",
          "GenClusterOperatorDown", "GenClusterScrapeFailing", "GenClusterLoopStalled"}


def alerts(groups: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups["groups"] for r in g["rules"] if "alert" in r}


def expect(rule: dict[str, Any], labels: dict[str, str], summary: str) -> dict[str, Any]:
    return {"exp_labels": {**labels, **rule["labels"]},
            "exp_annotations": {"summary": summary, "description": rule["annotations"]["description"]}}


def test_chart_renders_rule_and_dashboard_configmap() -> None:
    docs = render()
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(alerts(rule_groups(docs))) == ALERTS
    cm = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("grafana-dashboard")]
    assert cm and cm[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert len(dashboard(docs)["panels"]) >= 12
    sm = render("metrics.serviceMonitor.enabled=true")
    assert one(sm, "ServiceMonitor")["spec"]["endpoints"][0]["honorLabels"] is True
    default = render("prometheusRule.enabled=false", "grafanaDashboard.enabled=false")
    assert not [d for d in default if d["kind"] == "PrometheusRule"]
    secret = [d for d in default if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-dashboard")]
    assert secret and len(secret[0]["data"]["token"]) >= 40
    env = one(default, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    tok = [e for e in env if e["name"] == "GENCLUSTER_DASHBOARD_TOKEN"]
    assert tok[0]["valueFrom"]["secretKeyRef"]["name"] == secret[0]["metadata"]["name"]
    own = render("dashboard.token.existingSecret=mine")
    assert not [d for d in own if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-dashboard")]


def test_promtool_checks_and_unit_tests_every_alert(tmp_path: Path) -> None:
    groups = rule_groups(render())
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(groups))
    check = promtool("check", "rules", str(tmp_path / "rules.yml"))
    assert check.returncode == 0, check.stdout + check.stderr
    a = alerts(groups)
    slow = lambda le: f'gencluster_request_duration_seconds_bucket{{{POD}, outcome="ok", le="{le}"}}'  # noqa: E731
    tests = [
        {  # 90 % of requests over the 2.5 s SLO for 7 h: both burn rates; 1 % elsewhere: none
            # (promtool compares the whole set: an alert for ns "ok" would fail the test)
            "interval": "1m",
            "input_series": [
                {"series": slow("2.5"), "values": "0+10x420"},
                {"series": f'gencluster_request_duration_seconds_count{{{POD}, outcome="ok"}}', "values": "0+100x420"},
                {"series": f'gencluster_request_duration_seconds_bucket{{{HEALTHY}, outcome="ok", le="2.5"}}', "values": "0+99x420"},
                {"series": f'gencluster_request_duration_seconds_count{{{HEALTHY}, outcome="ok"}}', "values": "0+100x420"},
            ],
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "GenClusterLatencySLOBurnFast", "exp_alerts": [
                    expect(a["GenClusterLatencySLOBurnFast"], {"namespace": "ns", "name": "gc"},
                           "ns/gc burns its latency error budget 14x too fast")]},
                {"eval_time": "7h", "alertname": "GenClusterLatencySLOBurnSlow", "exp_alerts": [
                    expect(a["GenClusterLatencySLOBurnSlow"], {"namespace": "ns", "name": "gc"},
                           "ns/gc burns its latency error budget 6x too fast")]},
            ],
        },
        {  # GPU memory at 95 % for 15 min on one pod, 50 % on another
            "interval": "1m",
            "input_series": [
                {"series": f'gencluster_gpu_memory_used_bytes{{{POD}, device="cuda:0"}}', "values": "95x20"},
                {"series": f'gencluster_gpu_memory_total_bytes{{{POD}, device="cuda:0"}}', "values": "100x20"},
                {"series": f'gencluster_gpu_memory_used_bytes{{{HEALTHY}, device="cuda:0"}}', "values": "50x20"},
                {"series": f'gencluster_gpu_memory_total_bytes{{{HEALTHY}, device="cuda:0"}}', "values": "100x20"},
            ],
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "GenClusterGPUMemoryHigh", "exp_alerts": []},
                {"eval_time": "15m", "alertname": "GenClusterGPUMemoryHigh", "exp_alerts": [
                    expect(a["GenClusterGPUMemoryHigh"], {"namespace": "ns", "name": "gc",
                                                          "pod": "gc-workload-5d8f7c9b4-x2x7q"},
                           "GPU memory of gc-workload-5d8f7c9b4-x2x7q at 95%")]},
            ],
        },
        {  # the operator's target down after 5 min (up 1 -> 0)
            "interval": "1m",
            "input_series": [{"series": 'up{job="gencluster-operator-metrics", instance="10.0.0.9:8080"}',
                              "values": "1x5 0x15"}],
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "GenClusterOperatorDown", "exp_alerts": []},
                {"eval_time": "15m", "alertname": "GenClusterOperatorDown", "exp_alerts": [
                    expect(a["GenClusterOperatorDown"], {},  # absent(... == 1) carries no labels
                           "The gencluster operator is not scraped as up")]},
            ],
        },
        {  # scrapes failing for 20 min on one cluster; a cluster whose counter stays flat
            "interval": "1m",
            "input_series": [
                {"series": 'gencluster_operator_scrape_errors_total{namespace="ns", name="gc"}', "values": "0+3x30"},
                {"series": 'gencluster_operator_scrape_errors_total{namespace="ok", name="fine"}', "values": "7x30"},
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "GenClusterScrapeFailing", "exp_alerts": [
                    expect(a["GenClusterScrapeFailing"], {"namespace": "ns", "name": "gc"},
                           "The control loop of ns/gc cannot read some pods' metrics")]},
            ],
        },
        {  # a loop whose last tick stays at t=0 (5 s interval); one that ticks with the clock
            "interval": "1m",
            "input_series": [
                {"series": 'gencluster_operator_loop_last_tick_timestamp_seconds{namespace="ns", name="gc"}', "values": "0x10"},
                {"series": 'gencluster_operator_loop_interval_seconds{namespace="ns", name="gc"}', "values": "5x10"},
                {"series": 'gencluster_operator_loop_last_tick_timestamp_seconds{namespace="ok", name="fine"}', "values": "0+60x10"},
                {"series": 'gencluster_operator_loop_interval_seconds{namespace="ok", name="fine"}', "values": "5x10"},
            ],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": "GenClusterLoopStalled", "exp_alerts": []},
                {"eval_time": "5m", "alertname": "GenClusterLoopStalled", "exp_alerts": [
                    expect(a["GenClusterLoopStalled"], {"namespace": "ns", "name": "gc"},
                           "The control loop of ns/gc stopped ticking")]},
            ],
        },
    ]
    tested = {t["alertname"] for case in tests for t in case["alert_rule_test"]}
    assert tested == ALERTS
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}))
    result = promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check can fail: a rule whose expression does not parse is refused."""
    groups = rule_groups(render())
    groups["groups"][1]["rules"][0]["expr"] = "sum by (namespace (rate(x[5m]))"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(groups))
    assert promtool("check", "rules", str(tmp_path / "rules.yml")).returncode != 0
