"""The `coopnet` command: one entry point, a subcommand per job, `--help` on each."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

import coopnet
from coopnet.deploy.cli_federation import add_federation_commands
from coopnet.federation.cli import add_observer_commands
from coopnet.node.aid.cli import add_aid_commands
from coopnet.node.cli import add_node_commands
from coopnet.node.engine.client import ApiError
from coopnet.node.engine.config import ConfigError
from coopnet.node.market.cli import add_market_commands
from coopnet.node.membership.cli import add_membership_commands


def _cmd_version(args: argparse.Namespace) -> int:
    from coopnet.protocol import VERSION

    info = {"coopnet": coopnet.__version__, "protocol": VERSION}
    print(json.dumps(info) if args.json else f"coopnet {info['coopnet']} (protocol v{VERSION})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    console = Console()
    if args.protocol:
        from coopnet.deploy.protocol_tour import run_tour

        result = run_tour(console, as_json=args.json)
    else:
        import anyio

        from coopnet.deploy.demo import run_demo
        from coopnet.node.cli import setup_logging

        if not args.json:
            setup_logging(quiet=True)
        result = anyio.run(
            lambda: run_demo(
                neighborhoods=args.neighborhoods,
                seconds=args.seconds,
                workdir=Path(args.data) if args.data else None,
                console=console,
                live=not args.json,
                observer_port=args.observer_port,
            )
        )
    if args.json:
        print(json.dumps(result))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import anyio

    from coopnet.deploy import bench

    info = bench.machine()
    if args.which == "ingest":
        result = anyio.run(bench.bench_ingest, args.events, args.authors, args.batch)
    elif args.which == "publish":
        result = anyio.run(bench.bench_publish, args.events, args.concurrency)
    elif args.which == "api":
        result = anyio.run(bench.bench_api, args.events, args.concurrency)
    elif args.which == "catchup":
        result = anyio.run(bench.bench_catchup, args.events, args.authors)
    elif args.which == "scale":
        sizes = [int(n) for n in args.neighborhoods.split(",")]
        result = anyio.run(bench.bench_scale, sizes, args.burst)
    else:
        result = anyio.run(bench.bench_trade, args.trades)
    result = {**result, "machine": info}
    if args.json:
        print(json.dumps(result))
        return 0
    console = Console()
    console.print(f"[bold]coopnet bench {args.which}[/] on {info['cores']} cores, {info['cpu']}")
    console.print(", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    for key, value in result.items():
        if key not in ("machine", "bench"):
            console.print(f"  {key}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coopnet",
        description="A federation fabric for neighborhood community co-operatives.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("version", help="print the coopnet and protocol versions")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser(
        "demo",
        help="run a small federation on an embedded nats-server, live",
        description="Start an embedded nats-server and a few neighborhood nodes that post "
        "notes until Ctrl-C (or --seconds), with a live view; then report convergence.",
    )
    p.add_argument("--neighborhoods", type=int, default=3, help="how many nodes (default 3)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    p.add_argument("--data", help="keep the federation in this directory (default: temporary)")
    p.add_argument(
        "--observer-port", type=int, default=0, help="the observer's dashboard port (0: any free)"
    )
    p.add_argument(
        "--protocol",
        action="store_true",
        help="the envelope alone: seal, verify, and refuse forgeries (no bus, no store)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "bench",
        help="measure coopnet next to this machine's limits "
        "(ingest|publish|api|trade|catchup|scale)",
        description="Each figure comes with the limit measured in the same run and the ratio.",
    )
    which = p.add_subparsers(dest="which", metavar="BENCH", required=True)
    b = which.add_parser("ingest", help="receive path vs single-core Ed25519 verify")
    b.add_argument("--events", type=int, default=20_000, help="pre-sealed events to receive")
    b.add_argument("--authors", type=int, default=8, help="authors the events come from")
    b.add_argument(
        "--batch", type=int, default=512, help="events a batch, as the stream follower reads"
    )
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b = which.add_parser("publish", help="own events to the stream vs raw publish_async")
    b.add_argument("--events", type=int, default=5_000, help="own events to post")
    b.add_argument("--concurrency", type=int, default=32, help="residents posting at once")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b = which.add_parser(
        "api",
        help="signed posts through the authenticated HTTP API vs publish",
        description="Clients in another process post notes (POST /notes) to a node whose "
        "every request authenticates: with API tokens, then with session cookies and the "
        "CSRF header; then `bench publish` of as many events at the same concurrency.",
    )
    b.add_argument("--events", type=int, default=2_000, help="notes to post through the API")
    b.add_argument("--concurrency", type=int, default=32, help="clients posting at once")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b = which.add_parser("catchup", help="a fresh node backfilling from the stream")
    b.add_argument("--events", type=int, default=100_000, help="events in the stream")
    b.add_argument("--authors", type=int, default=10, help="authors the events come from")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b = which.add_parser("scale", help="many neighborhoods on one nats-server")
    b.add_argument("--neighborhoods", default="50,100", help="comma-separated sizes")
    b.add_argument("--burst", type=int, default=5, help="notes each node posts at once")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b = which.add_parser("trade", help="trade round trips between two nodes, per step")
    b.add_argument("--trades", type=int, default=200, help="trades to run, one after another")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_bench)

    add_node_commands(sub)
    add_market_commands(sub)
    add_aid_commands(sub)
    add_membership_commands(sub)
    add_federation_commands(sub)
    add_observer_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"coopnet: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"code": exc.code, "message": exc.message}))
        else:
            print(f"coopnet: refused ({exc.code}): {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
