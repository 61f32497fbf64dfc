"""Network policy: load only ever goes to 127.0.0.0/8, or to a GenerationCluster's local-cluster
addresses obtained through the Kubernetes API; everything else is refused with a clear error."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gencluster.loadtest import LoadConfig, Target, TargetRefused, check_url, url_target
from gencluster.loadtest.cli import main
from gencluster.loadtest.cluster_target import check_api_server, resolve


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://127.3.4.5:9000/", "http://127.3.4.5:9000"),
    ("http://localhost:8080", "http://127.0.0.1:8080"),
    ("http://LOCALHOST", "http://127.0.0.1:80"),
    ("http://127.0.0.1:8080/prefix/", "http://127.0.0.1:8080/prefix"),
])
def test_loopback_urls_are_accepted_and_normalised(url: str, expected: str) -> None:
    assert check_url(url) == expected


@pytest.mark.parametrize("url", [
    "http://10.0.0.1:80",
    "http://8.8.8.8",
    "http://192.168.1.10:8080",
    "http://0.0.0.0:8080",
    "http://169.254.169.254/",
    "http://[::1]:8080",
    "http://[::ffff:127.0.0.1]:8080",
    "http://example.com",
    "http://127.0.0.1.nip.io:8080",
    "http://10.244.0.5:8080",  # cluster pod range: only through --gencluster
    "http://10.96.0.10:80",  # cluster service range: only through --gencluster
    "ftp://127.0.0.1/",
    "http://user:pw@127.0.0.1:8080",
    "127.0.0.1:8080",
])
def test_other_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused, match="refusing"):
        check_url(url)


def test_cluster_scope_cannot_be_claimed_by_hand() -> None:
    with pytest.raises(TargetRefused, match="cluster_target"):
        Target(urls=("http://10.96.0.10:80",), scope="cluster")
    with pytest.raises(TargetRefused):
        Target(urls=("http://10.96.0.10:80",))  # loopback scope


def test_cli_refuses_before_sending(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "http://10.1.2.3:8080", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "refusing target address 10.1.2.3" in err and "127.0.0.0/8" in err
    assert main(["--url", "http://203.0.113.7", "--url", "http://127.0.0.1:1"]) == 2
    assert main(["--gencluster", "x", "--url", "http://127.0.0.1:1"]) == 2
    assert "exactly one target" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["https://127.0.0.1:6443", "https://10.244.0.1:6443",
                                  "https://10.96.0.1:443", "https://localhost:6443"])
def test_local_api_servers_accepted(host: str) -> None:
    check_api_server(host)


@pytest.mark.parametrize("host", ["https://35.1.2.3:443", "https://k8s.example.com",
                                  "https://192.168.0.10:6443"])
def test_remote_api_servers_refused(host: str) -> None:
    with pytest.raises(TargetRefused):
        check_api_server(host)


# -- resolving a GenerationCluster with fake API objects ------------------------------------
def _pod(ip: str, ready: bool = True, port: int = 8080) -> Any:
    return SimpleNamespace(
        metadata=SimpleNamespace(deletion_timestamp=None),
        status=SimpleNamespace(pod_ip=ip, conditions=[SimpleNamespace(type="Ready",
                                                                      status=str(ready))]),
        spec=SimpleNamespace(containers=[SimpleNamespace(ports=[SimpleNamespace(name="http",
                                                                                container_port=port)])]),
    )


class FakeCore:
    def __init__(self, cluster_ip: str, pods: list[Any], owner_uid: str = "uid-1") -> None:
        self.cluster_ip, self.pods, self.owner_uid = cluster_ip, pods, owner_uid
        self.selectors: list[str] = []

    def read_namespaced_service(self, name: str, namespace: str) -> Any:
        assert name == "demo-workload"
        return SimpleNamespace(
            metadata=SimpleNamespace(owner_references=[SimpleNamespace(uid=self.owner_uid)]),
            spec=SimpleNamespace(cluster_ip=self.cluster_ip, ports=[SimpleNamespace(port=80)]),
        )

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> Any:
        self.selectors.append(label_selector)
        return SimpleNamespace(items=self.pods)


class FakeCustom:
    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str) -> Any:
        from kubernetes.client.exceptions import ApiException

        if name != "demo":
            raise ApiException(status=404)
        return {"metadata": {"uid": "uid-1"}}


def test_gencluster_resolves_to_service_and_pods() -> None:
    core = FakeCore("10.96.12.34", [_pod("10.244.0.7"), _pod("10.244.0.8", ready=False), _pod("10.244.0.9")])
    target = resolve("demo", "ns", False, core, FakeCustom())
    assert target.scope == "cluster"
    assert target.urls == ("http://10.96.12.34:80",)
    assert target.scrape_urls == ("http://10.244.0.7:8080", "http://10.244.0.9:8080")
    assert "app.kubernetes.io/instance=demo" in core.selectors[0]
    via_pods = resolve("demo", "ns", True, core, FakeCustom())
    assert via_pods.urls == ("http://10.244.0.7:8080", "http://10.244.0.9:8080")
    LoadConfig(target=via_pods)  # accepted by the config


def test_gencluster_outside_the_local_ranges_is_refused() -> None:
    with pytest.raises(TargetRefused, match=r"172\.20\.0\.5"):
        resolve("demo", "ns", False, FakeCore("172.20.0.5", []), FakeCustom())
    with pytest.raises(TargetRefused, match=r"192\.168"):
        resolve("demo", "ns", True, FakeCore("10.96.0.20", [_pod("192.168.3.4")]), FakeCustom())


def test_gencluster_errors_are_clear() -> None:
    with pytest.raises(TargetRefused, match="GenerationCluster ns/other not found"):
        resolve("other", "ns", False, FakeCore("10.96.0.20", []), FakeCustom())
    with pytest.raises(TargetRefused, match="not owned"):
        resolve("demo", "ns", False, FakeCore("10.96.0.20", [], owner_uid="someone-else"), FakeCustom())
    with pytest.raises(TargetRefused, match="no ready pods"):
        resolve("demo", "ns", True, FakeCore("10.96.0.20", [_pod("10.244.0.7", ready=False)]), FakeCustom())
    with pytest.raises(TargetRefused, match="no ClusterIP"):
        resolve("demo", "ns", False, FakeCore("None", []), FakeCustom())


async def test_redirects_are_not_followed(echo_factory: Any) -> None:
    from gencluster.loadtest import run_profile

    server = echo_factory()
    cfg = LoadConfig(target=url_target([server.url + "/redirect"]), rate=20, duration_s=0.5, window_s=0.5)
    report = await run_profile(cfg)
    assert report.overall["errors_by_code"] == {"307": 10}
    assert server.trap_visits == 0
