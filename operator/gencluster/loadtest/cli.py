"""`gencluster loadtest [load|stress|spike|soak] (--url URL | --gencluster NAME) [options]`.

Exit codes: 0 the run completed (whatever it measured); 1 the run failed; 2 bad options or a
refused target. Ctrl-C stops sending, drains briefly and still writes the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from .config import PROFILES, ConfigError, LoadConfig
from .progress import HEADER, window_line
from .targets import Target, TargetRefused, url_target
from .window import WindowRecord

DEFAULTS = LoadConfig.__dataclass_fields__


def _default(name: str) -> Any:
    return DEFAULTS[name].default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gencluster loadtest",
        description="Open-loop load against the image-to-3D endpoint (POST /v1/generate), "
                    "latency from the intended send time into HDR histograms. Targets: 127.0.0.0/8, "
                    "or a GenerationCluster of the local cluster.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("profile", nargs="?", default="load", choices=PROFILES,
                   help="load: fixed rate; stress: ramp to the breaking point; spike: baseline, "
                        "spike, recovery time; soak: long run, latency and memory drift")
    t = p.add_argument_group("target (one of)")
    t.add_argument("--url", action="append", default=[], metavar="URL",
                   help="base URL on 127.0.0.0/8, e.g. http://127.0.0.1:8080 (repeat to round-robin)")
    t.add_argument("--gencluster", metavar="NAME",
                   help="a GenerationCluster: its Service NAME-workload:80, via the current KUBECONFIG")
    t.add_argument("-n", "--namespace", default="default", help="namespace of --gencluster")
    t.add_argument("--via-pods", action="store_true",
                   help="with --gencluster: spread over the ready pods' IPs instead of the Service")

    a = p.add_argument_group("arrivals")
    a.add_argument("--rate", type=float, default=_default("rate"),
                   help="requests/s (load, soak; spike: the baseline)")
    a.add_argument("--duration", type=float, default=_default("duration_s"), help="seconds (load, soak)")
    a.add_argument("--arrival", choices=("constant", "poisson"), default=_default("arrival"))
    a.add_argument("--seed", type=int, default=_default("seed"), help="arrivals, pool and popularity")
    a.add_argument("--warmup-seconds", type=float, default=_default("warmup_s"),
                   help="first send at the starting rate this long, unmeasured (warms caches)")
    a.add_argument("--window", type=float, default=_default("window_s"), help="seconds per window")
    a.add_argument("--concurrency", type=int, default=_default("concurrency"),
                   help="most requests in flight; arrivals beyond it are dropped and counted as errors")
    a.add_argument("--timeout", type=float, default=_default("timeout_s"), help="per request, seconds")

    r = p.add_argument_group("requests")
    r.add_argument("--pool", type=int, default=_default("pool"), help="distinct input images")
    r.add_argument("--zipf", type=float, default=_default("zipf"),
                   help="Zipf exponent s of image popularity (0 = uniform)")
    r.add_argument("--image-size", type=int, default=_default("image_size"), help="pixels per side")
    r.add_argument("--resolution", type=int, default=_default("resolution"), help="mesh resolution (16..128)")
    r.add_argument("--format", dest="fmt", default=_default("fmt"), choices=("glb", "obj", "ply"))

    v = p.add_argument_group("verdicts")
    v.add_argument("--slo-ms", type=float, default=_default("slo_ms"), help="p95 SLO (stress; load's meets_slo)")
    v.add_argument("--max-error-rate", type=float, default=_default("max_error_rate"),
                   help="error fraction that breaks a stress step")

    s = p.add_argument_group("stress")
    s.add_argument("--start-rate", type=float, default=_default("start_rate"))
    s.add_argument("--step-rate", type=float, default=_default("step_rate"), help="added each step")
    s.add_argument("--step-seconds", type=float, default=_default("step_s"))
    s.add_argument("--max-rate", type=float, default=_default("max_rate"))

    k = p.add_argument_group("spike")
    k.add_argument("--baseline-seconds", type=float, default=_default("baseline_s"))
    k.add_argument("--spike-factor", type=float, default=_default("spike_factor"), help="spike rate = rate x this")
    k.add_argument("--spike-seconds", type=float, default=_default("spike_s"))
    k.add_argument("--recovery-seconds", type=float, default=_default("recovery_s"),
                   help="how long to watch for recovery after the spike")
    k.add_argument("--recovery-tolerance", type=float, default=_default("recovery_tolerance"),
                   help="recovered when a window's p95 <= this x the baseline p95")

    tr = p.add_argument_group("tracing")
    tr.add_argument("--trace-ratio", type=float, default=_default("trace_ratio"), metavar="R",
                    help="each request carries a W3C traceparent, marked sampled for this share "
                         "(0..1, default 1): the slowest requests in the report have trace ids")
    tr.add_argument("--no-trace", action="store_true",
                    help="send no traceparent (the server's own sampler decides)")
    o = p.add_argument_group("bounds and output")
    o.add_argument("--scrape", action=argparse.BooleanOptionalAction, default=None,
                   help="scrape gencluster_gpu_memory_used_bytes from /metrics each window (default: soak only)")
    o.add_argument("--max-requests", type=int, default=_default("max_requests"), help="hard bound")
    o.add_argument("--max-seconds", type=float, default=_default("max_seconds"),
                   help="hard bound on the whole run, drain included")
    o.add_argument("--out", metavar="DIR", help="write report.json, summary.txt and plot.png here")
    o.add_argument("--no-plot", action="store_true", help="with --out: skip plot.png")
    o.add_argument("--quiet", "-q", action="store_true", help="no live progress, no summary")
    o.add_argument("--json", action="store_true", help="print report.json to stdout at the end")
    return p


def _target(args: argparse.Namespace) -> Target:
    if bool(args.url) == bool(args.gencluster):
        raise ConfigError("give exactly one target: --url URL or --gencluster NAME")
    if args.via_pods and not args.gencluster:
        raise ConfigError("--via-pods needs --gencluster")
    if args.url:
        return url_target(args.url)
    from .cluster_target import cluster_target

    return cluster_target(args.gencluster, args.namespace, args.via_pods)


def config_from_args(args: argparse.Namespace, target: Target) -> LoadConfig:
    return LoadConfig(
        target=target, profile=args.profile, rate=args.rate, duration_s=args.duration,
        arrival=args.arrival, seed=args.seed, window_s=args.window, warmup_s=args.warmup_seconds, concurrency=args.concurrency,
        timeout_s=args.timeout, pool=args.pool, zipf=args.zipf, image_size=args.image_size,
        resolution=args.resolution, fmt=args.fmt, slo_ms=args.slo_ms, max_error_rate=args.max_error_rate,
        start_rate=args.start_rate, step_rate=args.step_rate, step_s=args.step_seconds,
        max_rate=args.max_rate, baseline_s=args.baseline_seconds, spike_factor=args.spike_factor,
        spike_s=args.spike_seconds, recovery_s=args.recovery_seconds,
        recovery_tolerance=args.recovery_tolerance, scrape_metrics=args.scrape,
        max_requests=args.max_requests, max_seconds=args.max_seconds,
        trace_ratio=None if args.no_trace else args.trace_ratio,
    )


async def _run(config: LoadConfig, quiet: bool) -> Any:
    from .profiles import run_profile

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    def show(w: WindowRecord) -> None:
        print(window_line(w), flush=True)

    if not quiet:
        print(f"{config.profile} against {config.target.description}: about "
              f"{config.planned_seconds():.0f} s planned (bounds: {config.max_requests} requests, "
              f"{config.max_seconds:g} s); Ctrl-C stops early", flush=True)
        print(HEADER, flush=True)
    return await run_profile(config, None if quiet else show, stop)


def main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        config = config_from_args(args, _target(args))
    except (ConfigError, TargetRefused) as exc:
        print(f"gencluster loadtest: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the Kubernetes client's own errors (no config, API unreachable, ...)
        print(f"gencluster loadtest: cannot resolve --gencluster {args.gencluster}: {exc}", file=sys.stderr)
        return 1
    try:
        report = asyncio.run(_run(config, args.quiet))
    except OSError as exc:
        print(f"gencluster loadtest: {exc}", file=sys.stderr)
        return 1
    if args.out:
        paths = report.write(args.out, plot=not args.no_plot)
        if not args.quiet:
            print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    if not args.quiet:
        from .summary import summary_text

        print()
        print(summary_text(report), end="")
    if args.json:
        print(report.to_json())
    return 0
