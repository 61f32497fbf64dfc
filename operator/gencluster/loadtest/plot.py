"""plot.png: offered vs achieved rate, latency percentiles and errors over time, one figure.

Why Agg: no display on servers and CI; the backend is chosen on a private Figure, so importing
this module never changes the caller's matplotlib state.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .report import Report


def _nan(v: float | None) -> float:
    return float("nan") if v is None else v


def plot_report(report: Report, path: str | Path) -> None:
    ws = report.windows
    t = [w.t_end for w in ws]
    fig = Figure(figsize=(11, 9), dpi=100)
    FigureCanvasAgg(fig)
    ax_rate, ax_lat, ax_err = fig.subplots(3, 1, sharex=True)
    fig.suptitle(f"gencluster loadtest: {report.config['profile']} against {report.target}", fontsize=11)

    ax_rate.step(t, [w.target_rate for w in ws], where="pre", label="target rate", color="0.6", ls="--")
    ax_rate.plot(t, [w.offered_rate for w in ws], label="offered (sent)/s", color="tab:blue")
    ax_rate.plot(t, [w.throughput_rps for w in ws], label="achieved 2xx/s", color="tab:green")
    ax_rate.set_ylabel("requests / s")
    ax_rate.legend(loc="best", fontsize=8)
    ax_rate.grid(alpha=0.3)

    for key, colour in (("p50_ms", "tab:green"), ("p95_ms", "tab:orange"), ("p99_ms", "tab:red")):
        ax_lat.plot(t, [_nan(getattr(w, key)) for w in ws], label=key.replace("_ms", ""), color=colour)
    slo = report.config.get("slo_ms")
    if report.config.get("profile") == "stress" and slo:
        ax_lat.axhline(slo, color="0.4", ls=":", label=f"SLO {slo:g} ms")
    thr = report.profile.get("threshold_ms")
    if thr:
        ax_lat.axhline(thr, color="0.4", ls=":", label=f"recovered <= {thr:.0f} ms")
    positive = [v for w in ws for v in (w.p50_ms, w.p99_ms) if v]
    if positive and max(positive) / max(min(positive), 1e-3) > 50:
        ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency ms (2xx)")
    ax_lat.legend(loc="best", fontsize=8)
    ax_lat.grid(alpha=0.3)

    codes = sorted({c for w in ws for c in w.errors_by_code})
    bottom = [0.0] * len(ws)
    for code in codes:
        vals = [w.errors_by_code.get(code, 0) / w.seconds for w in ws]
        ax_err.bar(t, vals, bottom=bottom, width=-min((w.seconds for w in ws), default=1) * 0.9,
                   align="edge", label=code)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax_err.set_ylabel("errors / s")
    ax_err.set_xlabel("seconds since start")
    if codes:
        ax_err.legend(loc="upper right", fontsize=8)
    ax_err.grid(alpha=0.3)
    if any(w.memory_bytes is not None for w in ws):
        ax_mem = ax_err.twinx()
        ax_mem.plot(t, [_nan(w.memory_bytes) / 2**20 if w.memory_bytes is not None else float("nan")
                        for w in ws], color="tab:purple", label="memory MiB")
        ax_mem.set_ylabel("memory used MiB", color="tab:purple")

    for ax in (ax_rate, ax_lat, ax_err):  # phase boundaries
        for ph in report.phases[1:]:
            ax.axvline(ph["t_start"], color="0.8", lw=0.8)
    for ph in report.phases:
        ax_err.annotate(ph["name"], (ph["t_start"], 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -2), textcoords="offset points", fontsize=7, va="top", color="0.4")
    fig.tight_layout()
    fig.savefig(str(path))
