"""`gencluster`: one console script, one subcommand per program.

Subcommands import their modules lazily, so `gencluster operator` never loads torch and
`gencluster serve` never loads Kopf.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def _operator(argv: list[str]) -> int:
    from .edge.main import main

    return int(main(argv))


def _serve(argv: list[str]) -> int:
    from gencluster_workload.server import main

    return int(main(argv))


def _simulate(argv: list[str]) -> int:
    from .simulate.cli import main

    return int(main(argv))


def _loadtest(argv: list[str]) -> int:
    from .loadtest.cli import main

    return int(main(argv))


def _demo(argv: list[str]) -> int:
    from .demo import main

    return int(main(argv))


def _crds(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gencluster crds",
                                     description="Print (or write) the GenerationCluster CRD.")
    parser.add_argument("--out", help="file to write; stdout when absent")
    args = parser.parse_args(argv)
    from .api.crd import render_yaml

    text = render_yaml()
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "operator": (_operator, "run the Kubernetes operator"),
    "serve": (_serve, "run the generation server (the workload)"),
    "simulate": (_simulate, "replay a load trace against autoscaling policies"),
    "loadtest": (_loadtest, "drive load at a GenerationCluster or URL and report"),
    "demo": (_demo, "run the narrated demo against the local cluster (make demo)"),
    "crds": (_crds, "print the CRD generated from the API models"),
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        width = max(len(c) for c in COMMANDS)
        print("usage: gencluster <command> [options]\n\ncommands:")
        for cmd, (_, help_) in COMMANDS.items():
            print(f"  {cmd:<{width}}  {help_}")
        return 0 if args and args[0] in ("-h", "--help") else 2
    fn, _ = COMMANDS[args[0]]
    return fn(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
