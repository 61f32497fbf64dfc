"""The simulator: deterministic, the CLI's JSON carries the figures, traces load and validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gencluster.simulate.cli import main
from gencluster.simulate.model import ModelParams
from gencluster.simulate.policies import make
from gencluster.simulate.run import run
from gencluster.simulate.traces import SHIPPED, Trace, load

FIELDS = {"slo_violation_minutes", "p95_ms", "p99_ms", "gpu_seconds", "scale_events", "dropped",
          "reaction_seconds"}


def write_trace(path: Path, rates: list[int], leak: float | None = None) -> Path:
    rows = ["second,requests" + (",leak_percent_per_min" if leak is not None else "")]
    rows += [f"{s},{r}" + (f",{leak}" if leak is not None else "") for s, r in enumerate(rates)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_json_has_the_fields_for_every_policy(tmp_path, capsys):
    trace = write_trace(tmp_path / "t.csv", [10] * 120 + [50] * 180)
    assert main(["--trace", str(trace), "--policy", "all", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["policy"] for x in lines] == ["gencluster", "hpa", "keda", "kpa", "fixed:4",
                                            "oracle"]
    for x in lines:
        assert set(x) >= FIELDS
        assert x["gpu_seconds"] > 0 and x["requests"] == 120 * 10 + 180 * 50


def test_deterministic(tmp_path, capsys):
    trace = write_trace(tmp_path / "t.csv", [5] * 60 + [40] * 240)
    outs = []
    for _ in range(2):
        main(["--trace", str(trace), "--policy", "gencluster,hpa", "--json", "--seed", "3"])
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    main(["--trace", str(trace), "--policy", "gencluster,hpa", "--json", "--seed", "4"])
    assert capsys.readouterr().out != outs[0]


def test_human_output_and_bad_input(tmp_path, capsys):
    trace = write_trace(tmp_path / "t.csv", [3] * 60)
    assert main(["--trace", str(trace), "--policy", "fixed:2"]) == 0
    assert "fixed:2" in capsys.readouterr().out
    assert main(["--trace", str(trace), "--policy", "nope"]) == 2
    assert main(["--trace", str(tmp_path / "missing.csv")]) == 2
    (tmp_path / "bad.csv").write_text("t,n\n0,1\n")
    assert main(["--trace", str(tmp_path / "bad.csv")]) == 2


def test_spec_file_is_honoured(tmp_path, capsys):
    trace = write_trace(tmp_path / "t.csv", [60] * 200)
    spec = tmp_path / "gc.yaml"
    spec.write_text("apiVersion: orfeas.ai/v1alpha1\nkind: GenerationCluster\nspec:\n"
                    "  workload: {image: x}\n  replicas: {min: 2, max: 3}\n")
    main(["--trace", str(trace), "--spec", str(spec), "--policy", "gencluster", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["max_replicas"] <= 3


def test_leak_column_exhausts_memory_and_restarts_pods(tmp_path):
    trace = load(str(write_trace(tmp_path / "leak.csv", [5] * 900, leak=6.0)))
    assert trace.leak[0] == 6.0
    from gencluster.simulate.cli import load_spec

    spec = load_spec(None)
    res = run(trace, spec, make("fixed:1", spec, ModelParams()), ModelParams())
    assert res["crashes"] >= 1 and res["dropped"] > 0


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_traces_load(name):
    t = load(name)
    assert isinstance(t, Trace) and len(t) >= 1800 and min(t.requests) >= 0
    assert (max(t.leak) > 0) == (name == "leak")


def test_cli_baseline_batch_best_reports_the_chosen_size(tmp_path, capsys):
    trace = write_trace(tmp_path / "t.csv", [8] * 120 + [30] * 180)
    spec = tmp_path / "gc.yaml"
    spec.write_text("spec:\n  workload: {image: x}\n  replicas: {min: 1, max: 8}\n"
                    "  batching: {max: 8}\n")
    assert main(["--trace", str(trace), "--spec", str(spec), "--policy", "kpa,gencluster",
                 "--baseline-batch", "best", "--json"]) == 0
    kpa, ours = (json.loads(x) for x in capsys.readouterr().out.splitlines())
    assert kpa["policy"] == "kpa" and kpa["baseline_batch"] in (1, 2, 4, 8)
    assert set(kpa["batch_sweep"]) == {"1", "2", "4", "8"}
    assert "baseline_batch" not in ours  # ours tunes its own batch size
    with pytest.raises(SystemExit):  # argparse: a batch size >= 1, or best
        main(["--trace", str(trace), "--baseline-batch", "0"])
