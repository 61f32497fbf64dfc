"""The live terminal line: one per window, fixed columns, so a run can be watched (and grepped)."""

from __future__ import annotations

from .window import WindowRecord

HEADER = (f"{'t(s)':>7} {'phase':<9} {'offered/s':>9} {'ok/s':>8} {'p50ms':>8} {'p95ms':>8} "
          f"{'p99ms':>8} {'errors':>7} {'hit%':>6} {'inflight':>8}")


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def window_line(w: WindowRecord) -> str:
    hit = "-" if w.cache_hit_ratio is None else f"{100 * w.cache_hit_ratio:.0f}"
    errors = str(w.errors)
    if w.errors_by_code:
        top = max(w.errors_by_code.items(), key=lambda kv: kv[1])[0]
        errors = f"{w.errors}:{top}" if len(w.errors_by_code) == 1 else f"{w.errors}*"
    return (f"{w.t_end:7.1f} {w.phase[:9]:<9} {w.offered_rate:9.1f} {w.throughput_rps:8.1f} "
            f"{fmt_ms(w.p50_ms):>8} {fmt_ms(w.p95_ms):>8} {fmt_ms(w.p99_ms):>8} {errors:>7} "
            f"{hit:>6} {w.inflight:>8}")
