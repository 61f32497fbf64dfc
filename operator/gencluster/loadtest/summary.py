"""summary.txt: the report for a person, in a terminal's width."""

from __future__ import annotations

from typing import Any

from .progress import fmt_ms
from .report import Report


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _lat(d: dict[str, Any]) -> str:
    return "  ".join(f"{k} {fmt_ms(d.get(k))}" for k in ("p50", "p90", "p95", "p99", "max"))


def _profile_lines(r: Report) -> list[str]:
    p, c = r.profile, r.config
    name = c["profile"]
    if name == "load":
        return [f"load: {c['rate']:g}/s for {c['duration_s']:g} s; meets SLO ({c['slo_ms']:g} ms p95, "
                f"<= {c['max_error_rate']:.0%} errors): {'yes' if p.get('meets_slo') else 'no'}"]
    if name == "stress":
        lines = [f"stress: {c['start_rate']:g}/s +{c['step_rate']:g}/s every {c['step_s']:g} s "
                 f"up to {c['max_rate']:g}/s (break: p95 > {c['slo_ms']:g} ms or errors > "
                 f"{c['max_error_rate']:.0%})"]
        br = p.get("breaking_rate")
        lines.append(f"  breaking point: {br:g}/s ({p['breaking_reason']})" if br is not None
                     else f"  breaking point: {p['breaking_reason']}")
        ms = p.get("max_sustained_rate")
        lines.append(f"  max sustained rate: {'-' if ms is None else f'{ms:g}/s'}; peak throughput "
                     f"{p.get('peak_throughput_rps', 0):.1f} rps")
        lines.append(f"  {'rate':>7} {'ok/s':>8} {'p50ms':>8} {'p95ms':>8} {'p99ms':>8} {'errors':>8}  verdict")
        for s in p.get("steps", []):
            lines.append(f"  {s['rate']:7.1f} {s['throughput_rps']:8.1f} {fmt_ms(s['p50_ms']):>8} "
                         f"{fmt_ms(s['p95_ms']):>8} {fmt_ms(s['p99_ms']):>8} {_pct(s['error_rate']):>8}  "
                         f"{'BROKE: ' + s['reason'] if s['broke'] else 'ok'}")
        return lines
    if name == "spike":
        rec = p.get("recovery_s")
        return [
            f"spike: {c['rate']:g}/s for {c['baseline_s']:g} s -> {c['rate'] * c['spike_factor']:g}/s "
            f"for {c['spike_s']:g} s -> {c['rate']:g}/s for up to {c['recovery_s']:g} s",
            f"  baseline p95 {fmt_ms(p.get('baseline_p95_ms'))} ms; recovered when a window's p95 <= "
            f"{fmt_ms(p.get('threshold_ms'))} ms",
            f"  spike p95 {fmt_ms(p.get('spike_p95_ms'))} ms, worst window p95 "
            f"{fmt_ms(p.get('peak_window_p95_ms'))} ms, spike error rate {_pct(p.get('spike_error_rate'))}",
            f"  recovery time: {'not recovered' if rec is None else f'{rec:g} s'} ({p.get('recovery_note', '')})",
        ]
    if name == "soak":
        lines = [f"soak: {c['rate']:g}/s for {c['duration_s']:g} s, {p.get('windows', 0)} windows"]
        for key in ("p50_ms", "p95_ms"):
            if key in p:
                d = p[key]
                lines.append(f"  {key[:3]} drift: {fmt_ms(d['first'])} -> {fmt_ms(d['last'])} ms "
                             f"(x{d['ratio'] if d['ratio'] is not None else '-'}; first/last "
                             f"{p['compared_windows']} windows)")
        if "memory_bytes" in p:
            m = p["memory_bytes"]
            lines.append(f"  memory drift: {m['first'] / 2**20:.1f} -> {m['last'] / 2**20:.1f} MiB "
                         f"({m['percent']} %); slope {(m['slope_bytes_per_hour'] or 0) / 2**20:.1f} MiB/h")
        else:
            lines.append(f"  memory: {p.get('memory_note', '-')}")
        return lines
    return []


def summary_text(r: Report) -> str:
    o, c = r.overall, r.config
    cache = o["cache"]
    errs = ", ".join(f"{k}: {v}" for k, v in o["errors_by_code"].items()) or "none"
    cl = r.client
    lines = [
        f"gencluster loadtest: {c['profile']} profile against {r.target}",
        f"started {r.started_at}, measured {r.duration_s:.1f} s (sending {r.send_seconds:.1f} s)"
        + (f" after a {c['warmup_s']:g} s warm-up" if c.get("warmup_s") else "")
        + f", stopped by: {r.stopped_by}",
        f"arrivals {c['arrival']}, seed {c['seed']}, pool {c['pool']} images ({c['image_size']} px, "
        f"zipf s={c['zipf']:g}), resolution {c['resolution']}, format {c['fmt']}",
        "",
        f"requests     offered {o['arrivals']} ({o['offered_rate']:.1f}/s)  ok {o['ok']}  "
        f"errors {o['errors']} ({_pct(o['error_rate'])})",
        f"errors       {errs}",
        f"throughput   {o['throughput_rps']:.2f} rps (2xx responses / run time)",
        f"latency ms   {_lat(o['latency_ms'])}   (2xx, from the intended send time)",
        f"cache        hit ratio {_pct(cache['hit_ratio'])}  {cache['responses']}",
        f"  cached ms    {_lat(cache['cached_latency_ms'])}",
        f"  uncached ms  {_lat(cache['uncached_latency_ms'])}",
        f"client       send lag p99 {fmt_ms(cl['lag_ms']['p99'])} ms, max {fmt_ms(cl['lag_ms']['max'])} ms; "
        f"unfinished {cl['unfinished']}; received {cl['bytes_received'] / 2**20:.1f} MiB",
        "",
        *_profile_lines(r),
        "",
        f"{'phase':<10} {'rate':>7} {'seconds':>8} {'offered/s':>9} {'ok/s':>8} {'p50ms':>8} {'p95ms':>8} "
        f"{'p99ms':>8} {'errors':>8}",
    ]
    for ph in r.phases:
        s = ph["stats"]
        name = ph["name"] if ph.get("measured", True) else f"({ph['name']})"
        lines.append(f"{name[:10]:<10} {ph['rate']:7.1f} {s['seconds']:8.1f} {s['offered_rate']:9.1f} "
                     f"{s['throughput_rps']:8.1f} {fmt_ms(s['latency_ms']['p50']):>8} "
                     f"{fmt_ms(s['latency_ms']['p95']):>8} {fmt_ms(s['latency_ms']['p99']):>8} "
                     f"{_pct(s['error_rate']):>8}")
    if r.slowest:
        lines += ["", "slowest requests (trace ids: look them up in the trace backend):"]
        lines += [f"  {fmt_ms(s['latency_ms']):>9} ms  {s['code']:>5}  {s.get('cache') or '-':>9}  "
                  f"{s.get('trace_id') or '-'}{'' if s.get('sampled') else ' (not sampled)'}"
                  for s in r.slowest[:5]]
    if r.notes:
        lines += ["", "notes:", *(f"  - {n}" for n in r.notes)]
    return "\n".join(lines) + "\n"
