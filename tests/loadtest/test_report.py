"""Outputs: report.json (parseable, complete), summary.txt, plot.png; the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from PIL import Image

from gencluster.loadtest import run_profile
from gencluster.loadtest.cli import main

from .conftest import config_for


async def test_report_files_are_written_and_parseable(echo_factory: Any, tmp_path: Path) -> None:
    server = echo_factory(workers=2, service_s=0.05, queue_max=3, cache=False)
    report = await run_profile(config_for(server, profile="spike", rate=20, baseline_s=0.5, spike_factor=4,
                                          spike_s=0.5, recovery_s=0.5, pool=30))
    paths = report.write(tmp_path)
    data = json.loads(paths["report"].read_text())
    assert data["schema"] == "gencluster.loadtest/v1"
    assert data["config"]["profile"] == "spike" and data["config"]["target"]["urls"] == [server.url]
    overall = data["overall"]
    assert set(overall["latency_ms"]) == {"p50", "p90", "p95", "p99", "max", "mean"}
    lat = overall["latency_ms"]
    assert lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert overall["arrivals"] == overall["ok"] + overall["errors"]
    assert overall["errors_by_code"].get("429", 0) > 0  # the small queue overflowed in the spike
    assert {"hit_ratio", "cached_latency_ms", "uncached_latency_ms"} <= set(overall["cache"])
    assert data["profile"]["baseline_p95_ms"] is not None
    assert [p["name"] for p in data["phases"]][:3] == ["baseline", "spike", "recovery"]
    assert len(data["windows"]) >= 3 and {"t_end", "p95_ms", "errors_by_code"} <= set(data["windows"][0])
    hist = HdrHistogram.decode(data["overall_hdr_us"].encode())
    assert hist.get_total_count() == overall["ok"]

    summary = paths["summary"].read_text()
    assert "latency ms" in summary and "recovery time" in summary and "429" in summary
    with Image.open(paths["plot"]) as img:
        assert img.format == "PNG" and img.size == (1100, 900)


async def test_cli_runs_and_writes(echo_factory: Any, tmp_path: Path, capsys: Any) -> None:
    server = echo_factory(workers=5, service_s=0.01)
    out = tmp_path / "run"
    # asyncio.run cannot nest inside this test's loop: run the CLI in a thread.
    import asyncio

    rc = await asyncio.to_thread(main, [
        "load", "--url", server.url, "--rate", "20", "--duration", "1", "--window", "0.5",
        "--pool", "5", "--out", str(out),
    ])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "offered/s" in printed and "p95ms" in printed and "wrote" in printed
    assert len([ln for ln in printed.splitlines() if ln.strip().startswith(("0.5", "1.0"))]) >= 2
    assert {p.name for p in out.iterdir()} == {"report.json", "summary.txt", "plot.png"}
    assert json.loads((out / "report.json").read_text())["overall"]["arrivals"] == 20

    rc = await asyncio.to_thread(main, ["soak", "--url", server.url, "--rate", "10", "--duration", "0.6",
                                        "--window", "0.3", "-q", "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"]["memory_bytes"]["samples"] >= 2
