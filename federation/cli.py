"""`coopnet observe` and `coopnet audit`: the observers' commands."""

from __future__ import annotations

import argparse
import json
import signal
from functools import partial
from pathlib import Path

import anyio
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from coopnet.federation.audit import Finding, audit, critical_count
from coopnet.federation.observer import Observer, open_observer_store
from coopnet.node.engine.config import ConfigError
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.terminal import cell
from coopnet.protocol.charter import CharterError, parse_charter

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "dim"}


def _observer_from_args(args: argparse.Namespace) -> Observer:
    if args.federation:
        obs = Observer.from_dir(Path(args.federation) / "observer", nats_url=args.nats)
        if args.data:
            obs.data = Path(args.data)
        return obs
    if not args.nats or not (args.charter or args.net):
        raise ConfigError("give --federation DIR, or --nats URL with --charter FILE or --net HEX")
    charter, net = None, bytes.fromhex(args.net) if args.net else b""
    if args.charter:
        try:
            charter, net = parse_charter(Path(args.charter).read_bytes())
        except (OSError, CharterError) as exc:
            raise ConfigError(f"{args.charter}: {exc}") from None
    return Observer(
        Path(args.data or "observer-data"),
        net=net,
        nats_url=args.nats,
        creds=Path(args.creds) if args.creds else None,
        tls_ca=Path(args.ca) if args.ca else None,
        charter=charter,
    )


def _cmd_observe(args: argparse.Namespace) -> int:
    from coopnet.federation.dashboard import serve_dashboard
    from coopnet.node.cli import setup_logging

    setup_logging(quiet=not args.verbose)
    obs = _observer_from_args(args)
    console = Console(stderr=True)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(obs.run)
            url = await tg.start(
                partial(serve_dashboard, names=args.http_name),
                obs,
                args.http_host,
                args.http_port,
            )
            (obs.data / "dashboard.url").write_text(url + "\n")
            console.print(f"[bold]dashboard[/] {url}   (metrics at {url}/metrics)")
            tg.start_soon(_stop_on_signal, tg.cancel_scope)
            await _show_catch_up(obs, console)
            if args.seconds is not None:
                await anyio.sleep(args.seconds)
                tg.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        (obs.data / "dashboard.url").unlink(missing_ok=True)
    return 0


async def _show_catch_up(obs: Observer, console: Console) -> None:
    """A progress bar while the observer reads the stream's history."""
    columns = (TextColumn("catching up"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("stream", total=None)
        while not obs.ready.is_set():
            bar.update(task, total=obs.progress.target or None, completed=obs.progress.read)
            with anyio.move_on_after(0.2):
                await obs.ready.wait()
    console.print(f"caught up with the stream at seq {obs.progress.read}; following it live")


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _cmd_audit(args: argparse.Namespace) -> int:
    obs = _observer_from_args(args)
    if not (obs.data / "observer.db").exists():
        raise ConfigError(f"no observer store in {obs.data}: run `coopnet observe` first")

    async def main() -> list[Finding]:
        store = await open_observer_store(obs.data / "observer.db", obs.net)
        try:
            return await audit(store.db, obs.charter, now_ms=now_ms())
        finally:
            await store.close()

    findings = anyio.run(main)
    critical = critical_count(findings)
    if args.json:
        print(json.dumps({"critical": critical, "findings": msgspec.to_builtins(findings)}))
    elif not findings:
        Console().print("[green]no findings[/]: every record checks out")
    else:
        Console().print(findings_table(findings))
    return 1 if critical else 0


def findings_table(findings: list[Finding]) -> Table:
    critical = critical_count(findings)
    title = f"audit: {len(findings)} finding(s), {critical} critical"
    table = Table("severity", "finding", "author", "evidence", title=title, title_justify="left")
    for f in findings:
        style = SEVERITY_STYLE[f.severity]
        evidence = ", ".join(e[:12] + "…" for e in f.evidence[:3])
        finding = Text.assemble(cell(f.title), "\n", cell(f.detail, "dim"))  # never markup
        table.add_row(cell(f.severity, style), finding, cell(f.author), evidence)
    return table


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--federation", help="a federation directory (uses its observer/ credentials)")
    p.add_argument("--nats", help="NATS URL(s), comma-separated (default: from observer.toml)")
    p.add_argument("--creds", help="a NATS credentials file (with --nats)")
    p.add_argument("--ca", help="the federation's CA certificate, for TLS hubs (with --nats)")
    p.add_argument("--charter", help="the federation's charter.json (with --nats)")
    p.add_argument("--net", help="the federation id, hex (with --nats, without a charter)")
    p.add_argument("--data", help="the observer's data directory (default: DIR/observer)")


def add_observer_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "observe",
        help="follow and verify the whole federation; serve its dashboard",
        description="Follow the whole stream with read-only credentials, verify every event "
        "with the nodes' own rules, repair gaps over sync, keep a store, and serve a live "
        "dashboard, a JSON API, Prometheus /metrics and exports.",
    )
    _source_args(p)
    p.add_argument("--http-host", default="127.0.0.1", help="dashboard address")
    p.add_argument("--http-port", type=int, default=0, help="dashboard port (0: any free)")
    p.add_argument(
        "--http-name",
        action="append",
        default=[],
        help="a host name (or name:port) the dashboard answers to, beyond 127.0.0.1, "
        "localhost and --http-host; repeat for more (OPERATIONS.md §13)",
    )
    p.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    p.set_defaults(func=_cmd_observe)
    p = sub.add_parser("audit", help="findings with evidence; exits 1 on any critical finding")
    _source_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_audit)
