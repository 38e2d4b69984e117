"""The observer over a real nats-server: catching up with the whole stream and following it,
repairing what the stream lost over sync, read-only credentials in a generated federation,
and what it hands on: measures, the dashboard's API and live updates, Prometheus /metrics,
CSV and CloudEvents exports, each read back by another tool's own parser."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
from cloudevents.core.formats.json import JSONFormat
from prometheus_client.parser import text_string_to_metric_families

from coopnet.deploy import federation as fed
from coopnet.deploy.launcher import ensure_stream, start_hubs
from coopnet.federation import measures
from coopnet.federation.audit import audit
from coopnet.federation.dashboard import serve_dashboard
from coopnet.federation.exports import metric
from coopnet.federation.observer import Observer
from coopnet.node.engine.bus import STREAM
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import now_ms
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted, unseal
from coopnet.protocol.offers import OfferPosted
from tests.conftest import NET, converged, make_node, running, wait_until
from tests.processes import delete_from_stream, free_port, stream_seqs

pytestmark = pytest.mark.timeout(60)
DAY_MS = 86_400_000


@contextlib.asynccontextmanager
async def observing(
    data: Path, url: str, *, ready: bool = True
) -> AsyncIterator[tuple[Observer, anyio.abc.TaskGroup]]:
    """An observer (by default caught up with the stream) for the duration of the block."""
    obs = Observer(data, net=NET, nats_url=url)
    async with anyio.create_task_group() as tg:
        await tg.start(obs.run)
        try:
            if ready:
                with anyio.fail_after(30):
                    await obs.ready.wait()
            yield obs, tg
            # An unexpected failure in one of its activities fails the test.
            assert obs.internal_errors == 0
        finally:
            tg.cancel_scope.cancel()


async def honest(root: Path, url: str, *slugs: str) -> list[Node]:
    return [Node(await make_node(root, s, url), serve_api=False) for s in slugs]


async def holds_all(obs: Observer, nodes: Sequence[Node]) -> bool:
    """The observer holds exactly what the nodes hold (and they agree)."""
    ids = await obs.store.event_ids()
    return all([await n.store.event_ids() == ids for n in nodes])


async def stream_state(url: str, creds: str | None = None) -> tuple[int, int]:
    """(messages, last seq) of the COOP stream."""
    nc = await nats.connect(url, user_credentials=creds)
    try:
        info = await nc.jetstream().stream_info(STREAM)
        return info.state.messages, info.state.last_seq
    finally:
        await nc.close()


async def post_notes(node: Node, n: int, prefix: str = "note") -> None:
    for i in range(n):
        await node.post(NotePosted(text=f"{prefix} {i} from {node.slug}"))


# -- following the stream ---------------------------------------------------------------------


async def test_catches_up_with_history_then_follows_live(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    nodes = await honest(tmp_path, url, "oakley", "elm", "ash")
    async with running(*nodes):
        async with anyio.create_task_group() as tg:
            for n in nodes:
                tg.start_soon(post_notes, n, 100)
        await wait_until(lambda: converged(*nodes), what="the nodes converge")

        async def all_published() -> bool:
            return (await stream_state(url))[0] == 303

        await wait_until(all_published, what="303 events in the stream")
        _, last_seq = await stream_state(url)
        async with observing(tmp_path / "observer", url, ready=False) as (obs, _):
            with anyio.fail_after(30):
                await obs.ready.wait()
            assert obs.progress.caught_up
            assert obs.progress.read == obs.progress.target == last_seq
            assert await holds_all(obs, nodes)
            assert (await obs.store.counts_by_author()) == {"ash": 101, "elm": 101, "oakley": 101}
            assert await obs.store.rejections() == {}
            # It keeps following.
            for n in nodes:
                await post_notes(n, 5, "live")
            await wait_until(lambda: holds_all(obs, nodes), what="the live events observed")
            assert await obs.store.event_count() == 318
            messages, last_seq = await stream_state(url)
            assert messages == 318  # the observer published nothing

            async def read_to_the_end() -> bool:
                return obs.progress.read == last_seq

            await wait_until(read_to_the_end, what="the observer's cursor at the stream's end")
        # Stopped and started again, it reads on from its cursor.
        for n in nodes:
            await post_notes(n, 10, "while the observer was away")
        await wait_until(lambda: converged(*nodes), what="the nodes converge")
        async with observing(tmp_path / "observer", url) as (obs, _):
            await wait_until(lambda: holds_all(obs, nodes), what="the events posted meanwhile")
            assert await obs.store.event_count() == 348
            assert await obs.store.rejections() == {}


async def test_events_the_stream_lost_are_repaired_from_the_nodes(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    nodes = await honest(tmp_path, url, "oakley", "elm")
    oakley, elm = nodes
    async with running(*nodes):
        await post_notes(oakley, 10)
        await post_notes(elm, 4)
        await wait_until(lambda: converged(*nodes), what="the nodes converge")
        seqs = await stream_seqs(url, "coop.oakley.>")
        assert len(seqs) == 11
        await delete_from_stream(url, seqs[3:7])  # oakley's events 4..7
        assert (await stream_state(url))[0] == 16 - 4
        async with observing(tmp_path / "observer", url) as (obs, _):
            await wait_until(lambda: holds_all(obs, nodes), what="the gap repaired over sync")
            assert (await obs.store.counts_by_author()) == {"elm": 5, "oakley": 11}
            assert obs.chains.missing() == []
            assert await obs.store.rejections() == {}
            assert await audit(obs.store.db, None, now_ms=obs.clock()) == []


async def test_ready_when_the_streams_last_message_was_deleted(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The stream's last sequence is a deleted message: the consumer never delivers it, and
    the observer has still read everything the stream holds."""
    url = nats_server.url
    nodes = await honest(tmp_path, url, "oakley", "elm")
    oakley, _ = nodes
    async with running(*nodes):
        await post_notes(oakley, 3)
        await wait_until(lambda: converged(*nodes), what="the nodes converge")
        seqs = await stream_seqs(url, "coop.oakley.>")
        _, last_seq = await stream_state(url)
        assert seqs[-1] == last_seq
        await delete_from_stream(url, [last_seq])
        async with observing(tmp_path / "observer", url, ready=False) as (obs, _):
            await wait_until(lambda: holds_all(obs, nodes), what="oakley's last event over sync")
            with anyio.fail_after(10):
                await obs.ready.wait()
            assert obs.progress.caught_up


# -- a generated federation: read-only credentials ----------------------------------------------


async def test_observer_of_a_generated_federation_reads_everything_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "fed"
    ports = fed.Ports(client=[free_port()], http=[free_port()], leaf=[free_port()], route=[])
    config = await fed.init_federation(root, name="Observed", slugs=["ana", "ben", "cai"],
                                       ports=ports)  # fmt: skip
    admin = str(root / "nats" / "admin.creds")
    servers = start_hubs(root, config)
    try:
        await ensure_stream(root, config)
        nodes = [
            Node(fed.neighborhood_dir(root, s), serve_api=False) for s in ("ana", "ben", "cai")
        ]
        async with running(*nodes):
            for n in nodes:
                await post_notes(n, 3)
            await wait_until(lambda: converged(*nodes), what="the nodes converge")
            obs = Observer.from_dir(root / "observer")
            assert obs.charter is not None and obs.bus.creds is not None
            async with anyio.create_task_group() as tg:
                await tg.start(obs.run)
                with anyio.fail_after(30):
                    await obs.ready.wait()
                await wait_until(lambda: holds_all(obs, nodes), what="every node's events")
                assert (await obs.store.counts_by_author()) == {"ana": 4, "ben": 4, "cai": 4}
                assert await audit(obs.store.db, obs.charter, now_ms=obs.clock()) == []
                members = await measures.consent(obs.store.db, obs.charter)
                assert members["by_status"] == {"founder": 3}
                assert obs.internal_errors == 0
                tg.cancel_scope.cancel()
            # A client with the observer's credentials cannot write to the stream.
            before = await stream_state(config.urls, admin)
            errors: list[Exception] = []

            async def on_error(exc: Exception) -> None:
                errors.append(exc)

            nc = await nats.connect(
                config.urls.split(","), user_credentials=str(root / "observer" / "nats.creds"),
                inbox_prefix="_INBOX.observer-observer", error_cb=on_error,
            )  # fmt: skip
            try:
                js = nc.jetstream()
                with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
                    await js.publish("coop.ana.x", b"forged", timeout=1)
                await nc.publish("coop.ana.note.posted", b"forged")
                await nc.flush()

                async def violation_reported() -> bool:
                    return any("permissions violation" in str(e).lower() for e in errors)

                await wait_until(violation_reported, what="the permissions violation")
            finally:
                await nc.close()
            assert await stream_state(config.urls, admin) == before
    finally:
        for s in servers:
            s.stop()


# -- a day of trade: measures, dashboard, exports -----------------------------------------------


@dataclass
class Market:
    nodes: list[Node]
    obs: Observer
    url: str  # the dashboard's


def offer(name: str, item: str, quantity: int, unit_price: int) -> OfferPosted:
    return OfferPosted(
        offer=name, item=item, category="produce", quantity=quantity, unit="piece",
        unit_price=unit_price, available_until=now_ms() + DAY_MS, area="T1",
    )  # fmt: skip


async def trade_state(node: Node | Observer, buyer: str, trade: str) -> str | None:
    t = await market.load_trade(node.store.db, buyer, trade)
    return None if t is None else str(t["state"])


async def reached(node: Node, buyer: str, trade: str, state: str) -> None:
    async def there() -> bool:
        return await trade_state(node, buyer, trade) == state

    await wait_until(there, what=f"{buyer}/{trade} {state} at {node.slug}")


async def settle(seller: Node, buyer: Node, offer_name: str, quantity: int, trade: str) -> None:
    await buyer.trading.propose(seller.slug, offer_name, quantity, trade=trade)
    await reached(seller, buyer.slug, trade, "proposed")
    await seller.trading.accept(buyer.slug, trade)
    await seller.trading.ship(buyer.slug, trade)
    await reached(buyer, buyer.slug, trade, "shipped")
    await buyer.trading.receive(buyer.slug, trade)


@contextlib.asynccontextmanager
async def market_day(root: Path, url: str) -> AsyncIterator[Market]:
    """oakley sells eggs to elm (twice) and ash, elm sells kale to ash: four settled trades;
    ash's fifth proposal stays open; ash calls for help at once (critical); and someone
    publishes bytes that are not an event. An observer and its dashboard watch it all."""
    nodes = await honest(root, url, "oakley", "elm", "ash")
    oakley, elm, ash = nodes
    async with running(*nodes), observing(root / "observer", url) as (obs, tg):
        dashboard = await tg.start(serve_dashboard, obs, "127.0.0.1", 0)
        await oakley.post(offer("eggs-1", "eggs", 100, 35))
        await elm.post(offer("kale-1", "kale", 50, 100))
        await wait_until(lambda: converged(*nodes), what="the offers everywhere")
        await settle(oakley, elm, "eggs-1", 5, "t-1")
        await settle(oakley, elm, "eggs-1", 3, "t-2")
        await settle(oakley, ash, "eggs-1", 4, "t-3")
        await settle(elm, ash, "kale-1", 2, "t-4")
        await ash.trading.propose("oakley", "eggs-1", 1, trade="t-5")
        await ash.aid.request(
            category="food", urgency="critical", needed_in_min=60, quantity=3,
            description="Meals for three after the flood", escalate_now=True,
        )  # fmt: skip
        nc = await nats.connect(url)
        try:
            await nc.jetstream().publish("coop.zed.note.posted", b"\x93not an event")
        finally:
            await nc.close()

        async def observed() -> bool:
            settled = [await trade_state(obs, b, t) for b, t in (("elm", "t-1"), ("ash", "t-4"))]
            return (
                settled == ["settled", "settled"]
                and await holds_all(obs, nodes)
                and (await obs.store.rejections()).get("malformed") == 1
            )

        await wait_until(observed, what="the observer holding the whole day")
        yield Market(nodes=nodes, obs=obs, url=dashboard)


async def test_measures_of_settled_trades(tmp_path: Path, nats_server: NatsServer) -> None:
    async with market_day(tmp_path, nats_server.url) as day:
        db = day.obs.store.db
        flows = await measures.flows(db)
        assert flows == [
            {"from": "oakley", "to": "elm", "trades": 2, "volume": 280},
            {"from": "elm", "to": "ash", "trades": 1, "volume": 200},
            {"from": "oakley", "to": "ash", "trades": 1, "volume": 140},
        ]
        assert await measures.trade_totals(db) == {
            "count": 5, "settled": 4, "open": 1, "disputed": 0, "volume": 620,
        }  # fmt: skip
        hoods = {h["slug"]: h for h in await measures.neighborhoods(db, None, day.obs.clock())}
        balances = {slug: h["balance"] for slug, h in hoods.items()}
        assert balances == {"oakley": 420, "elm": -80, "ash": -340}
        assert sum(balances.values()) == 0
        assert balances == await market.balances(db)
        assert (hoods["oakley"]["trades_sold"], hoods["oakley"]["volume_sold"]) == (3, 420)
        assert (hoods["ash"]["trades_bought"], hoods["ash"]["volume_bought"]) == (2, 340)
        assert all(h["membership"] == "founder" for h in hoods.values())
        aid = await measures.aid_summary(db)
        assert aid["requests"] == 1
        assert aid["open_by_urgency"] == {"critical": 1, "high": 0, "normal": 0, "low": 0}
        assert [r["requester"] for r in await measures.open_aid(db)] == ["ash"]


async def test_metrics_read_back_by_prometheus_client(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with market_day(tmp_path, nats_server.url) as day, httpx.AsyncClient() as http:
        r = await http.get(f"{day.url}/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(r.text)}
        samples = {
            name: {tuple(sorted(s.labels.items())): s.value for s in f.samples}
            for name, f in families.items()
        }
        assert families["coopnet_events"].type == "counter"
        rows = await day.obs.store.all("SELECT author, kind, COUNT(*) FROM events GROUP BY 1, 2")
        assert samples["coopnet_events"] == {
            (("author", a), ("kind", k)): float(n) for a, k, n in rows
        }
        assert samples["coopnet_events"][(("author", "ash"), ("kind", "aid.requested"))] == 1.0
        assert samples["coopnet_rejections"] == {(("code", "malformed"),): 1.0}
        assert families["coopnet_ledger_sum"].type == "gauge"
        assert samples["coopnet_ledger_sum"] == {(): 0.0}
        assert samples["coopnet_aid_open"] == {
            (("urgency", "critical"),): 1.0,
            (("urgency", "high"),): 0.0,
            (("urgency", "normal"),): 0.0,
            (("urgency", "low"),): 0.0,
        }
        assert samples["coopnet_trades_settled"] == {(): 4.0}
        assert samples["coopnet_trade_volume_cents"] == {(): 620.0}
        assert samples["coopnet_audit_findings"] == {
            (("severity", "critical"),): 0.0,
            (("severity", "warning"),): 1.0,  # the bytes that were not an event
        }
        assert samples["coopnet_neighborhoods"] == {
            (("membership", "known"),): 3.0,
            (("membership", "member"),): 3.0,
        }
        # The gap buffer (PROTOCOL.md §6.4): nothing waits beyond a gap once all is stored.
        assert families["coopnet_gap_buffer_bytes"].type == "gauge"
        assert samples["coopnet_gap_buffer_events"] == {(): 0.0}
        assert samples["coopnet_gap_buffer_bytes"] == {(): 0.0}
        assert samples["coopnet_gap_buffer_dropped"] == {(): 0.0}


def test_metric_values_keep_every_digit() -> None:
    """Counters of cents grow past a million: the text must carry the exact value."""
    text = metric("coopnet_trade_volume_cents_total", "counter", "Credit moved.",
                  {(): 1_234_567.0, (("x", "y"),): 98_765_432_101.0})  # fmt: skip
    (family,) = text_string_to_metric_families(text + "\n")
    assert [s.value for s in family.samples] == [1_234_567.0, 98_765_432_101.0]


async def test_exports_read_back_by_the_cloudevents_sdk_and_csv(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with market_day(tmp_path, nats_server.url) as day, httpx.AsyncClient() as http:
        r = await http.get(f"{day.url}/export/events.jsonl")
        assert r.status_code == 200
        lines = r.text.splitlines()
        rows = await day.obs.store.all("SELECT id, kind, author, seq, at FROM events ORDER BY pos")
        assert len(lines) == len(rows) == 23  # 3 founded, 2 offers, 4 × 4 trade events, 2 more
        fmt = JSONFormat()
        for line, (eid, kind, author, seq, at) in zip(lines, rows, strict=True):
            event = fmt.read(None, line)
            assert event.get_specversion() == "1.0"
            assert event.get_id() == bytes(eid).hex()
            assert event.get_type() == f"coop.{kind}"
            assert event.get_source() == f"coopnet:{NET.hex()}/{author}"
            assert event.get_subject() == f"{author}/{seq}"
            time = event.get_time()
            assert time is not None and round(time.timestamp() * 1000) == at
            env = unseal(base64.b64decode(event.get_extension("coopwire")), net=NET)
            assert env.id == bytes(eid)
            assert event.get_extension("coopseq") == seq
            assert event.get_extension("coopkey") == env.key.hex()
            data = event.get_data()
            assert isinstance(data, dict)
            if kind == "note.posted":
                assert data == {"text": getattr(env.body, "text", None)}
            if kind == "node.founded":
                assert data["key"] == env.key.hex()

        r = await http.get(f"{day.url}/export/trades.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(r.text)))
        columns = list(market.TRADE_COLUMNS)
        at = columns.index("offer") + 1
        assert table[0] == [*columns[:at], "item", "unit", *columns[at:]]
        trades = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
        assert sorted((t["buyer"], t["trade"], t["state"]) for t in trades) == [
            ("ash", "t-3", "settled"), ("ash", "t-4", "settled"), ("ash", "t-5", "proposed"),
            ("elm", "t-1", "settled"), ("elm", "t-2", "settled"),
        ]  # fmt: skip
        assert {t["total"] for t in trades if t["trade"] == "t-4"} == {"200"}

        r = await http.get(f"{day.url}/export/events.csv")
        assert r.status_code == 200
        assert len(list(csv.reader(io.StringIO(r.text)))) == len(rows) + 1
        for bad in ("nope.csv", "trades", "trades.json", "outbox.csv", "trades;drop.csv"):
            assert (await http.get(f"{day.url}/export/{bad}")).status_code == 404, bad


async def test_api_answers_json_and_live_updates(tmp_path: Path, nats_server: NatsServer) -> None:
    async with market_day(tmp_path, nats_server.url) as day, httpx.AsyncClient() as http:
        summary = (await http.get(f"{day.url}/api/summary")).json()
        assert summary["net"] == NET.hex()
        assert summary["caught_up"] is True
        assert summary["events"] == await day.obs.store.event_count()
        assert summary["ledger_sum"] == 0
        assert summary["trades"]["settled"] == 4
        assert summary["audit"] == {"critical": 0, "warning": 1}
        assert summary["rejected"] == {"malformed": 1}

        flows = (await http.get(f"{day.url}/api/flows")).json()
        assert flows == await measures.flows(day.obs.store.db)

        findings = (await http.get(f"{day.url}/api/audit")).json()
        assert [(f["code"], f["severity"]) for f in findings] == [("refused_malformed", "warning")]

        elm = (await http.get(f"{day.url}/api/neighborhoods/elm")).json()
        assert (elm["slug"], elm["balance"], elm["membership"]) == ("elm", -80, "founder")
        assert {(f["from"], f["to"]) for f in elm["flows"]} == {("oakley", "elm"), ("elm", "ash")}
        assert elm["findings"] == []
        assert (await http.get(f"{day.url}/api/neighborhoods/nobody")).status_code == 404

        # Live: an update at once, and another when an event arrives.
        with anyio.fail_after(15):
            async with http.stream("GET", f"{day.url}/api/live") as live:
                assert live.headers["content-type"].startswith("text/event-stream")
                updates = sse_updates(live)
                with anyio.fail_after(5):  # at once: not after the 15 s heartbeat
                    first = await anext(updates)
                assert first["events"] == summary["events"]
                await day.nodes[0].post(NotePosted(text="still here"))
                while (await anext(updates))["events"] != first["events"] + 1:
                    pass
                await updates.aclose()


async def sse_updates(response: httpx.Response) -> AsyncGenerator[dict[str, Any], None]:
    """The data of each `update` event of a server-sent event stream."""
    event, data = "", []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].removeprefix(" "))
        elif not line:
            if event == "update" and data:
                yield json.loads("\n".join(data))
            event, data = "", []
