"""The `coopnet` command: one entry point, a subcommand per job, `--help` on each.

A command that fails prints one line, `error: <what> (hint: <what to do>)`, on stderr and
exits non-zero, never a traceback: `main` catches what is expected to go wrong (a bad
config or argument, a refused API call, a missing file, a taken port, a bus or node that
does not answer, Ctrl-C). Anything else is a bug: one line too, naming the file that holds
the traceback; `coopnet --debug ...` or COOPNET_DEBUG=1 shows it instead.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

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


class OneLineParser(argparse.ArgumentParser):
    r"""An argument parser whose errors are one line and a hint, as every other failure:
    `error: <what> (hint: see \`coopnet offer post --help\`)` on stderr, exit 2 (not
    argparse's usage block). Its subparsers are of this class too (argparse makes them
    with the parent's class)."""

    def error(self, message: str) -> NoReturn:
        hint = f"see `{self.prog} --help`"
        if message.startswith("the following arguments are required") and "--data" in message:
            hint = f"--data is the node's directory, e.g. --data ./oakley; {hint}"
        _error(message, hint)
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = OneLineParser(
        prog="coopnet",
        description="A federation fabric for neighborhood community co-operatives.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an unexpected error (also: COOPNET_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("version", help="print the coopnet and protocol versions")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser(
        "demo",
        help="run a small federation on an embedded nats-server, live",
        description="Start an embedded nats-server and a few neighborhood nodes that post "
        "notes, trade, pool purchases, call for help and sign hours over to each other until "
        "Ctrl-C (or --seconds), with a live view; then report convergence, the market, the "
        "pools, the hours and the audit. The co-ops' economy leans every balance back toward "
        "zero, so every neighborhood keeps buying and selling.",
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
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: besides convergence and the audit, "
        "trades_settled_by_window (trades settled in each of the last four 30 s windows, "
        "oldest first), trades_by_neighborhood (per slug: bought, sold, paid, earned, balance, "
        "bought_by_window, sold_by_window), aid_by_neighborhood (raised, escalated, fulfilled, "
        "open), pools_opened, pools_closed, pools_delivered, pool_ledger_sum (0, part of "
        "ledger_sum), pools_by_neighborhood, hours_moved (hours) and hours_moved_quarters, "
        "hours_ledger_sum (0), hours_by_neighborhood (quarter hours) and currency; amounts in "
        "cents",
    )
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
    """Run one `coopnet` command; return its exit code (2: a bad config or argument, 1: a
    refusal or a failure, 130: interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("COOPNET_DEBUG", "") not in ("", "0")
    try:
        code: int = args.func(args)
    except ApiError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"code": exc.code, "message": exc.message}))
        else:
            _error(f"refused ({exc.code}): {exc.message}", getattr(exc, "hint", ""))
        return 1
    except KeyboardInterrupt:
        _error("interrupted", "run the command again to finish what it started")
        return 130
    except BaseException as exc:  # one line for everything, see _expected and _unexpected
        if isinstance(exc, SystemExit | GeneratorExit):
            raise
        found = _expected(exc)
        if found is None:
            if debug:
                raise
            _unexpected(exc)
            return 1
        what, hint, status = found
        command = " ".join(_command_words(parser, sys.argv[1:] if argv is None else argv))
        _error(what, hint or f"see `coopnet {command} --help`")
        return status
    return code


def _command_words(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """The (sub)command words at the start of `argv`: ["federation", "init"]."""
    words: list[str] = []
    tokens = [t for t in argv if t != "--debug"]
    while tokens:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or tokens[0] not in subs[0].choices:
            break
        words.append(tokens[0])
        parser = subs[0].choices[tokens.pop(0)]
    return words


def _error(what: str, hint: str) -> None:
    print(f"error: {what}" + (f" (hint: {hint})" if hint else ""), file=sys.stderr)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside an exception group (anyio's task groups raise them), flat."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _expected(exc: BaseException) -> tuple[str, str, int] | None:
    """(what, hint, exit code) for a failure an operator or a resident can act on, or
    None for a bug. The first expected exception of a group decides."""
    import httpx
    import nats.errors

    from coopnet.node.engine.nats_server import NatsServerError

    for leaf in _leaves(exc):
        hint = str(getattr(leaf, "hint", "") or "")
        if isinstance(leaf, KeyboardInterrupt):
            return "interrupted", "run the command again to finish what it started", 130
        if isinstance(leaf, ConfigError):  # what, and (its `hint`) what to do about it
            return str(leaf), leaf.hint, 2
        if isinstance(leaf, NatsServerError):
            return str(leaf), hint or "the nats-server log named above says why", 1
        if isinstance(leaf, nats.errors.NoServersError | nats.errors.ConnectionClosedError):
            return (
                f"no NATS server answers ({leaf})",
                hint or "start the hubs (`coopnet federation up DIR`) or check the NATS URL",
                1,
            )
        if isinstance(leaf, nats.errors.Error):
            return f"NATS: {leaf}", hint or "check the hubs: `coopnet federation status DIR`", 1
        if isinstance(leaf, httpx.TransportError):
            return (
                f"the node does not answer ({leaf})",
                hint or "is it running? `coopnet node run --data DIR` starts it",
                1,
            )
        if isinstance(leaf, ConnectionRefusedError):
            return f"nothing answers: {leaf}", hint or "start the server or node first", 1
        if isinstance(leaf, TimeoutError):
            return f"timed out{f': {leaf}' if str(leaf) else ''}", hint or "try again", 1
        if isinstance(leaf, OSError):
            return _os_error(leaf, hint)
    return None


def _os_error(exc: OSError, hint: str) -> tuple[str, str, int]:
    """A missing file, a taken port, a refused permission: what and where."""
    where = exc.filename or ""
    what = f"{exc.strerror or exc}" + (f": {where}" if where else "")
    if hint:
        return what, hint, 1
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return what, "check the path (a federation is made by `coopnet federation init DIR`)", 1
    if exc.errno == errno.EADDRINUSE:
        return what, "another program holds the port: stop it, or choose another port", 1
    if exc.errno in (errno.EACCES, errno.EPERM):
        return what, "run as the user who owns the files", 1
    if exc.errno == errno.ENOSPC:
        return what, "free some disk space", 1
    return what, "", 1


def _unexpected(exc: BaseException) -> None:
    """A bug: one line, and the full traceback in a file to attach to a report."""
    fd, path = tempfile.mkstemp(prefix="coopnet-error-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("".join(traceback.format_exception(exc)))
    _error(
        f"unexpected {type(exc).__name__}: {exc}",
        f"a bug; the full traceback is in {path} (or run with --debug / COOPNET_DEBUG=1)",
    )


if __name__ == "__main__":
    sys.exit(main())
