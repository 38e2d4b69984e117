"""`coopnet observe` and `coopnet audit`: the observers' commands.

`coopnet audit` alone audits the federation in the current directory (`--federation .`
when ./observer/observer.toml exists). It reads the observer's store as `observe` keeps
it; with no store yet (nobody ran `observe`) or with `--refresh`, it first reads the
stream once, up to where it was when it started (a one-shot observer pass: the hubs must
run), then audits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import time
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import msgspec
from anyio.abc import TaskStatus
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from coopnet.federation.audit import AuditReport, audit_report, critical_count
from coopnet.federation.findings import Finding
from coopnet.federation.observer import Observer, open_observer_store
from coopnet.node.engine.config import ConfigError
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.terminal import cell
from coopnet.protocol.charter import CharterError, parse_charter

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "dim"}

# How long a one-shot pass (`audit` with no store, or --refresh) waits to catch up.
CATCH_UP_WAIT_S = 60.0


def _observer_from_args(args: argparse.Namespace) -> Observer:
    if not args.federation and not args.nats and (Path("observer") / "observer.toml").exists():
        args.federation = "."  # run in a federation's directory: audit that one
    if args.federation:
        obs = Observer.from_dir(Path(args.federation) / "observer", nats_url=args.nats)
        if args.data:
            obs.data = Path(args.data)
        return obs
    if not args.nats or not (args.charter or args.net):
        raise ConfigError(
            "no federation to observe here (no ./observer/observer.toml)",
            "give --federation DIR (the directory `coopnet federation init` made), or --nats "
            "URL with --charter FILE or --net HEX",
        )
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
            await tg.start(_stop_on_signal, tg.cancel_scope)  # before the URL is out
            await tg.start(obs.run)
            url = await tg.start(
                partial(serve_dashboard, names=args.http_name),
                obs,
                args.http_host,
                args.http_port,
            )
            (obs.data / "dashboard.url").write_text(url + "\n")
            console.print(f"[bold]dashboard[/] {url}   (metrics at {url}/metrics)")
            await _show_catch_up(obs, console)
            if args.seconds is not None:
                await anyio.sleep(args.seconds)
                tg.cancel_scope.cancel()

    started = time.monotonic()
    try:
        anyio.run(main)
    finally:
        (obs.data / "dashboard.url").unlink(missing_ok=True)
    console.print(
        f"stopped the observer {obs.name} after {time.monotonic() - started:.0f} s: read the "
        f"stream to seq {obs.progress.read}; dashboard closed; its store stays in "
        f"{obs.data / 'observer.db'} (`coopnet audit` reads it)",
        highlight=False,
        soft_wrap=True,
    )
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


async def _stop_on_signal(
    scope: anyio.CancelScope, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Ctrl-C or SIGTERM stops the observer (reported started once the signals are caught)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            scope.cancel()
            return


def _cmd_audit(args: argparse.Namespace) -> int:
    obs = _observer_from_args(args)
    refresh = args.refresh or not (obs.data / "observer.db").exists()
    if refresh and (obs.data / "dashboard.url").exists():
        raise ConfigError(
            f"`coopnet observe` runs on {obs.data} already: it keeps the store current",
            "run `coopnet audit` without --refresh; it reads that store",
        )

    async def main() -> AuditReport:
        if refresh:
            await _any_hub_answers(obs.bus.url, args.federation or "DIR")
            if not args.json:
                Console(stderr=True).print(
                    f"reading the stream once ({obs.bus.url}) into {obs.data / 'observer.db'}",
                    highlight=False,
                    soft_wrap=True,
                )
            fresh = not (obs.data / "observer.db").exists()
            try:
                await _catch_up_once(obs, within=args.within)
            except ConfigError:
                if fresh:  # an empty store would later audit as "no findings"
                    for suffix in ("", "-wal", "-shm"):
                        (obs.data / f"observer.db{suffix}").unlink(missing_ok=True)
                raise
        store = await open_observer_store(obs.data / "observer.db", obs.net)
        try:
            return await audit_report(store.db, obs.charter, now_ms=now_ms())
        finally:
            await store.close()

    found = anyio.run(main)
    findings = found.findings
    critical = critical_count(findings)
    if args.json:
        # `pool_ledger_sum` (credit cents) and `hours_ledger_sum` (quarter hours): always 0.
        report = {
            "critical": critical,
            "findings": msgspec.to_builtins(findings),
            "pool_ledger_sum": found.pool_ledger_sum,
            "hours_ledger_sum": found.hours_ledger_sum,
        }
        print(json.dumps(report))
    elif not findings:
        Console().print("[green]no findings[/]: every record checks out")
    else:
        Console().print(findings_table(findings))
    return 1 if critical else 0


async def _any_hub_answers(urls: str, where: str) -> None:
    """Return once one of `urls` accepts a TCP connection (2 s each), else ConfigError: a
    one-shot pass that cannot reach the bus says so at once, not after its timeout."""
    for url in urls.split(","):
        parts = urlsplit(url.strip())
        with contextlib.suppress(OSError, TimeoutError):
            with anyio.fail_after(2):
                stream = await anyio.connect_tcp(parts.hostname or "127.0.0.1", parts.port or 4222)
            await stream.aclose()
            return
    raise ConfigError(
        f"no observer store yet, and no hub answers at {urls} to read the stream from",
        f"start the federation (`coopnet federation up {where}`), then audit again",
    )


async def _catch_up_once(obs: Observer, *, within: float) -> None:
    """Run the observer until it has read the stream up to where it was when it attached,
    then stop it (its store stays). Raises ConfigError if that takes more than `within`
    seconds (the hubs do not answer, or the stream is long: then `coopnet observe`)."""
    with anyio.move_on_after(within) as waited:
        async with anyio.create_task_group() as tg:
            await tg.start(obs.run)
            await obs.ready.wait()
            tg.cancel_scope.cancel()
    if waited.cancelled_caught:
        raise ConfigError(
            f"the observer did not catch up with the stream at {obs.bus.url} within "
            f"{within:g} s (read to seq {obs.progress.read})",
            "are the hubs running (`coopnet federation up DIR`)? for a long stream, give "
            "--within more seconds or keep `coopnet observe` running",
        )


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
    p.add_argument(
        "--federation",
        help="a federation directory (uses its observer/ credentials; default: the current "
        "directory if it is one)",
    )
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
    p = sub.add_parser(
        "audit",
        help="findings with evidence; exits 1 on any critical finding",
        description="Audit a federation's records (signatures, forks, gaps, the ledger's "
        "sum, credit limits, oversold offers) from the observer's store; in a federation's "
        "directory, `coopnet audit` alone audits it. With no store yet (`coopnet observe` "
        "keeps one), or with --refresh, it first reads the stream once (the hubs must run).",
    )
    _source_args(p)
    p.add_argument(
        "--refresh",
        action="store_true",
        help="read the stream once before auditing, even if the store exists",
    )
    p.add_argument(
        "--within",
        type=float,
        default=CATCH_UP_WAIT_S,
        metavar="SECONDS",
        help="how long that reading may take (default %(default)g)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_audit)
