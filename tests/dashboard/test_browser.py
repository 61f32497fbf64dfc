"""The dashboard in a real headless Chromium (Debian's, driven by Selenium) against real
ClusterLoops on loopback pods: the pages load, uPlot draws every chart, updates arrive live."""

from __future__ import annotations

from .browser import chromium, colour_pixels, wait_for
from .fleet import running

BLUE = (0x1F, 0x77, 0xB4)  # COLORS[0] in dashboard.js: req/s, p95, the first pod
RED = (0xD6, 0x27, 0x28)  # COLORS[1]: the second pod (drawn over the first where they agree)
CHARTS = {"rps", "latency", "queue", "replicas", "batch", "memory", "cache", "errors"}


def test_cluster_list_shows_every_cluster_live() -> None:
    with running(clusters=3, pods=2) as fleet, chromium() as driver:
        fleet.wait_ticks(2)
        driver.get(fleet.url + "/")
        rows = wait_for(driver, "document.querySelectorAll('#clusters tbody tr[data-cluster]').length === 3 && "
                                "[...document.querySelectorAll('#clusters tbody tr[data-cluster]')].map(r => r.innerText)",
                        what="three cluster rows")
        assert [r.split("\t")[0] for r in rows] == ["ns000", "ns001", "ns002"]
        assert all("True" in r and "2/" in r for r in rows), rows
        assert driver.find_element("id", "conn").text == "live"
        # Updates patch the rows in place: the row (and its link) a user points at survives them.
        driver.execute_script("window.__row = document.querySelector(\"tr[data-cluster='ns001/gc']\");"
                              "window.__seen = window.__dash.messages;")
        wait_for(driver, "window.__dash.messages >= window.__seen + 2", what="two more updates")
        assert driver.execute_script("return window.__row.isConnected && window.__row === "
                                     "document.querySelector(\"tr[data-cluster='ns001/gc']\")")
        link = driver.find_element("css selector", "tr[data-cluster='ns001/gc'] a")
        link.click()
        wait_for(driver, "document.getElementById('title').textContent === 'ns001/gc'", what="cluster page")


def test_cluster_page_draws_every_chart_and_keeps_updating() -> None:
    with running(clusters=1, pods=2) as fleet, chromium() as driver:
        fleet.wait_ticks(3)
        driver.get(fleet.url + "/clusters/ns000/gc")
        wait_for(driver, "Object.keys(window.__dash.charts).length === 8 && window.__dash.updates >= 2",
                 what="eight charts and two updates")
        charts = driver.execute_script(
            "return Object.fromEntries(Object.entries(window.__dash.charts).map(([k, u]) => "
            "[k, {series: u.series.length - 1, points: u.data[0].length, "
            " values: u.data.slice(1).map(s => s.filter(v => v != null).length)}]))")
        assert set(charts) == CHARTS
        assert all(c["points"] >= 3 for c in charts.values()), charts
        assert charts["batch"]["series"] == 2 and charts["memory"]["series"] == 6  # 2 pods
        for name in ("rps", "latency", "queue", "replicas", "batch", "memory"):
            assert all(n > 0 for n in charts[name]["values"][:1]), (name, charts[name])
        for name in ("rps", "latency"):
            assert colour_pixels(driver, name, BLUE) > 30, name  # the line is on the canvas
        for name in ("batch", "memory"):
            assert colour_pixels(driver, name, BLUE) + colour_pixels(driver, name, RED) > 30, name
        first_t = driver.execute_script("return window.__dash.lastT")
        wait_for(driver, f"window.__dash.lastT > {first_t} + 1.5", what="newer points")
        proposals = driver.find_elements("css selector", "#proposals tbody tr")
        assert len(proposals) >= 3 and driver.find_elements("css selector", "#proposals tr.winner")
        assert "→" in driver.find_element("id", "reason").text
        events = driver.find_element("id", "events").text
        assert "ScaledUp" in events or "BatchSizeChanged" in events or "AlertFiring" in events, events
        lat = driver.execute_script("return window.__dash.latencies")
        assert len(lat) >= 3 and all(x > 0 for x in lat)  # stamped by the server, painted here
