"""The `coopnet` command: one entry point, a subcommand per job, `--help` on each."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.console import Console

import coopnet
from coopnet.node.cli import add_node_commands
from coopnet.node.config import ConfigError


def _cmd_version(args: argparse.Namespace) -> int:
    from coopnet.protocol import VERSION

    info = {"coopnet": coopnet.__version__, "protocol": VERSION}
    print(json.dumps(info) if args.json else f"coopnet {info['coopnet']} (protocol v{VERSION})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from coopnet.deploy.protocol_tour import run_tour

    result = run_tour(Console(), as_json=args.json)
    if args.json:
        print(json.dumps(result))
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

    p = sub.add_parser("demo", help="show the signed envelope at work")
    p.add_argument(
        "--protocol",
        action="store_true",
        help="the envelope alone: seal, verify, and refuse forgeries (no bus, no store)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_demo)

    add_node_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"coopnet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
