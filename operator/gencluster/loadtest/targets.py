"""Where load may go: loopback, or the local cluster's own addresses, and nowhere else.

Why so strict: a load tester is a traffic cannon. `--url` accepts only IP literals in 127.0.0.0/8
(and `localhost`, pinned to 127.0.0.1 without asking a resolver, so neither DNS nor /etc/hosts can
point it elsewhere). The local cluster's pod bridge (10.244.0.0/16) and service range
(10.96.0.0/12) are allowed only for a Target built by `cluster_target`, which reads them from a
GenerationCluster's Service through the local cluster's Kubernetes API. Redirects are never
followed (see engine), so a target cannot bounce the load elsewhere either.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
CLUSTER_NETWORKS = (ipaddress.IPv4Network("10.244.0.0/16"), ipaddress.IPv4Network("10.96.0.0/12"))

Scope = Literal["loopback", "cluster"]

# Only cluster_target holds this; a Target with scope "cluster" must present it.
_CLUSTER_ISSUER = object()


class TargetRefused(ValueError):
    """The target address is outside what this tool may load; the message says why."""


def allowed_networks(scope: Scope) -> tuple[ipaddress.IPv4Network, ...]:
    return (LOOPBACK, *CLUSTER_NETWORKS) if scope == "cluster" else (LOOPBACK,)


def check_address(host: str, scope: Scope = "loopback") -> str:
    """The IPv4 literal to connect to, or TargetRefused. Host names are never resolved."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        raise TargetRefused(
            f"refusing target host {host!r}: give an IP address (127.0.0.0/8, or localhost); "
            "host names are not resolved, so load cannot leave this machine") from None
    nets = allowed_networks(scope)
    if ip.version != 4 or not any(ip in net for net in nets):
        allowed = ", ".join(str(n) for n in nets)
        hint = ("" if scope == "cluster" else
                "; cluster addresses are allowed only via --gencluster NAME (resolved through the "
                "local cluster's Kubernetes API)")
        raise TargetRefused(f"refusing target address {ip}: load may only go to {allowed}{hint}")
    return str(ip)


def check_url(url: str, scope: Scope = "loopback") -> str:
    """Normalised base URL (scheme://ip:port, no path/query), or TargetRefused."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"refusing target {url!r}: the URL must start with http:// or https://")
    if parts.username or parts.password:
        raise TargetRefused(f"refusing target {url!r}: credentials in the URL are not supported")
    if not parts.hostname:
        raise TargetRefused(f"refusing target {url!r}: no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"refusing target {url!r}: {exc}") from None
    ip = check_address(parts.hostname, scope)
    port = port or (443 if parts.scheme == "https" else 80)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{ip}:{port}{path}"


@dataclass(frozen=True)
class Target:
    """Checked base URLs to load (round-robin) and to scrape /metrics from.

    `scrape_urls` may differ from `urls`: through a Service the load is spread by kube-proxy, but
    memory is read from each pod directly.
    """

    urls: tuple[str, ...]
    scrape_urls: tuple[str, ...] = ()
    scope: Scope = "loopback"
    description: str = ""
    issuer: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.urls:
            raise TargetRefused("no target URL")
        if self.scope == "cluster" and self.issuer is not _CLUSTER_ISSUER:
            raise TargetRefused("cluster addresses may only come from cluster_target "
                                "(a GenerationCluster's Service read through the Kubernetes API)")
        for url in (*self.urls, *self.scrape_urls):
            if check_url(url, self.scope) != url:
                raise TargetRefused(f"target URL {url!r} is not normalised; build it with url_target")

    def checked(self) -> Target:
        """Re-check every URL (cheap; called again right before any request is sent)."""
        Target.__post_init__(self)
        return self


def url_target(urls: list[str] | tuple[str, ...]) -> Target:
    """A Target from --url values: loopback only."""
    checked = tuple(check_url(u, "loopback") for u in urls)
    return Target(urls=checked, scrape_urls=checked, scope="loopback",
                  description=", ".join(checked))


def _cluster(urls: tuple[str, ...], scrape: tuple[str, ...], description: str) -> Target:
    """For cluster_target only: a Target allowed onto the local cluster's ranges."""
    return Target(urls=tuple(check_url(u, "cluster") for u in urls),
                  scrape_urls=tuple(check_url(u, "cluster") for u in scrape),
                  scope="cluster", description=description, issuer=_CLUSTER_ISSUER)
