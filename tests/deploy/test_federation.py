"""Operators, end to end against real nats-servers started from the generated configs: a
federation from `federation init`, nodes under their own credentials, a neighborhood added
and admitted by consent, a key rotated and a neighborhood retired through the CLI, a leaf
neighborhood across a hub outage, and `federation up|status` as processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
import msgspec
import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from coopnet.deploy import federation as fed
from coopnet.deploy.cli import main
from coopnet.deploy.launcher import ensure_stream, start_hubs, start_leaf
from coopnet.deploy.quotas import aggregate_config
from coopnet.node.engine.bus import STREAM, member_stream
from coopnet.node.engine.config import (
    creds_user_key,
    read_config,
    read_identity,
    write_config,
)
from coopnet.node.engine.nats_server import NatsServer, nats_server_binary
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted
from coopnet.protocol.offers import OfferPosted
from tests.conftest import converged, running, wait_until
from tests.processes import free_port, stream_messages

pytestmark = pytest.mark.timeout(180)


def ports(hubs: int = 1) -> fed.Ports:
    n = range(hubs)
    return fed.Ports(
        client=[free_port() for _ in n],
        http=[free_port() for _ in n],
        leaf=[free_port() for _ in n],
        route=[free_port() for _ in n] if hubs > 1 else [],
    )


async def init(root: Path, slugs: str = "ana,ben,cai", hubs: int = 1) -> fed.FederationConfig:
    config = await fed.init_federation(
        root, name="Test", slugs=slugs.split(","), hubs=hubs, ports=ports(hubs)
    )
    config.next_leaf_port = free_port()
    fed.write_federation(root, config)
    return config


@contextmanager
def hubs_of(root: Path) -> Iterator[list[NatsServer]]:
    servers = start_hubs(root, fed.read_federation(root))
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()


def nodes_of(root: Path, *slugs: str) -> list[Node]:
    return [Node(fed.neighborhood_dir(root, s)) for s in slugs]


def test_cli_init_writes_configs_nats_server_accepts(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    args = ["federation", "init", str(root), "--name", "t", "--neighborhoods", "aa,bb,cc"]
    assert main([*args, "--port", str(free_port()), "--systemd", "--json"]) == 0
    for conf in [root / "nats" / "hub.conf"]:
        check = subprocess.run(
            [str(nats_server_binary()), "-t", "-c", str(conf)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
    charter = json.loads((root / "charter.json").read_text())
    assert [f["slug"] for f in charter["founders"]] == ["aa", "bb", "cc"]
    for slug in ("aa", "bb", "cc"):
        data = root / "neighborhoods" / slug
        for secret in ("node.key", "node.next.key", "nats.creds"):
            assert (data / secret).stat().st_mode & 0o077 == 0, secret
    assert (root / "observer" / "nats.creds").exists()
    units = sorted(p.name for p in (root / "systemd").iterdir())
    assert units[:2] == ["coopnet-hub.service", "coopnet-node@.service"]
    # A slug that is not a protocol author name is refused before anything is written.
    assert main(["federation", "init", str(tmp_path / "x"), "--name", "t",
                 "--neighborhoods", "a,b,c"]) == 2  # fmt: skip
    assert not (tmp_path / "x").exists()


def test_three_hub_configs_pass_nats_server_t(tmp_path: Path) -> None:
    anyio.run(lambda: init(tmp_path / "fed", hubs=3))
    confs = fed.read_federation(tmp_path / "fed").hub_configs(tmp_path / "fed")
    assert [c.name for c in confs] == ["hub-1.conf", "hub-2.conf", "hub-3.conf"]
    for conf in confs:
        check = subprocess.run([str(nats_server_binary()), "-t", "-c", str(conf)])
        assert check.returncode == 0


def test_systemd_units_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    root = tmp_path / "fed"
    main(["federation", "init", str(root), "--name", "t", "--neighborhoods", "aa,bb",
          "--port", str(free_port()), "--systemd"])  # fmt: skip
    hub = root / "systemd" / "coopnet-hub.service"
    text = hub.read_text()
    assert f"-c {root.resolve() / 'nats' / 'hub.conf'}" in text
    assert "ReadWritePaths=" in text and "Restart=on-failure" in text
    # Instantiate the node template for one neighborhood, as systemctl would.
    inst = tmp_path / "coopnet-node@aa.service"
    inst.write_text((root / "systemd" / "coopnet-node@.service").read_text())
    for unit in (hub, inst):
        r = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
        )
        errors = [line for line in r.stderr.splitlines() if str(unit.name) in line]
        assert r.returncode == 0 and not errors, r.stderr


async def test_node_creds_publish_own_subject_only(tmp_path: Path) -> None:
    """The issue's must-show: a client with aa's creds publishes on coop.aa.x, is refused on
    coop.bb.x (and the stream never gets it)."""
    root = tmp_path / "fed"
    config = await init(root, "aa,bb,cc")
    with hubs_of(root):
        await ensure_stream(root, config)
        errors: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        creds = str(fed.neighborhood_dir(root, "aa") / "nats.creds")
        nc = await nats.connect(config.urls, user_credentials=creds, error_cb=on_error,
                                inbox_prefix="_INBOX.aa")  # fmt: skip
        try:
            js = nc.jetstream()
            ack = await js.publish("coop.aa.x", b"hello")
            assert ack.stream == member_stream("aa")  # its own stream, which COOP sources
            with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
                await js.publish("coop.bb.x", b"forged", timeout=1)
            await wait_until(
                lambda: _has(errors, "permissions violation"), what="the violation reported"
            )

            async def coop_holds_one() -> bool:
                return (await js.stream_info(STREAM)).state.messages == 1

            await wait_until(coop_holds_one, what="aa's event sourced into COOP")
        finally:
            await nc.close()


async def _has(errors: list[Exception], text: str) -> bool:
    return any(text in str(e).lower() for e in errors)


async def test_added_neighborhood_is_admitted_by_consent_then_trades(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    config = await init(root)
    with hubs_of(root):
        await ensure_stream(root, config)
        async with running(*nodes_of(root, "ana", "ben", "cai")) as founders:
            # Added while the federation runs: no hub config changes; `neighborhood add`
            # makes dee's member stream, so that its application lands (OPERATIONS §12).
            assert await anyio.to_thread.run_sync(main, [
                "neighborhood", "add", "dee", "--federation", str(root), "--area", "N9",
                "--about", "40 households", "--reason", "we grow potatoes",
            ]) == 0  # fmt: skip
            async with running(*nodes_of(root, "dee")) as (dee,):
                everyone = (*founders, dee)

                async def dee_is(status: str) -> bool:
                    return all([await _status(n, "dee") == status for n in everyone])

                await wait_until(lambda: dee_is("applicant"), what="dee's application")
                ana, ben, cai = founders
                await cai.governance.answer("dee", "object", "meet us first")
                await ana.governance.answer("dee", "consent")
                await ben.governance.answer("dee", "consent")
                await wait_until(lambda: converged(*everyone), what="the answers everywhere")
                assert await dee_is("applicant")  # the objection blocks
                await cai.governance.answer("dee", "withdraw")
                await wait_until(lambda: dee_is("admitted"), what="dee admitted everywhere")
                await dee.post(
                    OfferPosted(
                        offer="pot-1", item="potatoes", category="produce", quantity=50,
                        unit="gram", unit_price=2, available_until=dee.clock() + 86_400_000,
                        area="N9",
                    )
                )  # fmt: skip
                await wait_until(lambda: converged(*everyone), what="dee's offer at ana")
                proposal = await ana.trading.propose("dee", "pot-1", 10)
                await wait_until(lambda: converged(*everyone), what="the proposal at dee")
                await dee.trading.accept("ana", proposal.body.trade)  # type: ignore[attr-defined]
                await wait_until(lambda: converged(*everyone), what="the acceptance at ana")
                trade = await ana.trading._trade("ana", proposal.body.trade)  # type: ignore[attr-defined]
                assert trade["state"] == "accepted"
                assert all([(await n.status()).rejected == {} for n in everyone])


async def test_rotate_key_and_retire_through_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    config = await init(root)
    with hubs_of(root):
        await ensure_stream(root, config)
        async with running(*nodes_of(root, "ana", "ben", "cai")) as nodes:
            ana, ben, _cai = nodes
            old_creds = tmp_path / "ana-old.creds"
            shutil.copy(fed.neighborhood_dir(root, "ana") / "nats.creds", old_creds)
            old_key = ana.identity.public_key
            args = ["neighborhood", "rotate-key", "ana", "--federation", str(root), "--json"]
            assert await anyio.to_thread.run_sync(main, args) == 0
            assert ana.identity.public_key != old_key
            # NATS refuses the old user now; the node reconnects with its new creds.
            assert await _refused(config.urls, old_creds)
            note = await ana.post(NotePosted(text="signed by the new key"))
            await wait_until(
                lambda: _holds(ben, note.id), within=30, what="the new key's note at ben"
            )
            # Retire cai: its log ends, its user is revoked, everyone sees it.
            args = [
                "neighborhood",
                "retire",
                "cai",
                "--federation",
                str(root),
                "--reason",
                "merged",
            ]
            assert await anyio.to_thread.run_sync(main, args) == 0

            async def cai_retired() -> bool:
                return all(
                    [
                        (await n.governance.standings())["cai"].status == "retired"
                        for n in (ana, ben)
                    ]
                )

            await wait_until(cai_retired, what="cai retired at ana and ben")
            assert await _refused(config.urls, fed.neighborhood_dir(root, "cai") / "nats.creds")


async def _refused(urls: str, creds: Path) -> bool:
    """Whether the hubs refuse a connection with these creds. (A failed nats.connect leaves
    its socket open unless the client is closed: hence the explicit Client.)"""
    nc = Client()
    try:
        await nc.connect(urls.split(","), user_credentials=str(creds), allow_reconnect=False,
                         connect_timeout=2)  # fmt: skip
    except nats.errors.Error as exc:
        return "authorization violation" in str(exc).lower()
    finally:
        await nc.close()
    return False


async def _status(node: Node, slug: str) -> str:
    s = (await node.governance.standings()).get(slug)
    return s.status if s else "unknown"


async def _holds(node: Node, event_id: bytes) -> bool:
    return event_id in await node.store.event_ids()


async def test_leaf_neighborhood_publishes_through_a_hub_outage(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    config = await init(root, "ana,ben")
    await fed.add_neighborhood(root, "dee", reason="we fix bikes", leaf=True)
    with hubs_of(root) as hubs:
        await ensure_stream(root, config)
        leaf = start_leaf(root, "dee")
        assert leaf is not None
        try:
            async with running(*nodes_of(root, "ana", "dee")) as (ana, dee):
                await wait_until(lambda: converged(ana, dee), what="dee's application at ana")
                # A local client of the leaf: it keeps hearing dee while the hub is down.
                local = await nats.connect(leaf.url)
                heard: list[str] = []

                async def on_msg(msg: Msg) -> None:
                    heard.append(msg.subject)

                await local.subscribe("coop.dee.>", cb=on_msg)
                hubs[0].stop()
                posted = [
                    await dee.post(NotePosted(text=f"during the outage {i}")) for i in range(3)
                ]

                async def heard_locally() -> bool:
                    return len(heard) >= 3

                await wait_until(heard_locally, what="the leaf's local client hearing dee")
                assert (await dee.status()).outbox_depth >= 3
                hubs[0].start()  # same port, same store
                await wait_until(
                    lambda: _all_held(ana, [e.id for e in posted]),
                    within=60,
                    what="dee's outage events at ana, through the hub",
                )
                await local.close()
        finally:
            leaf.stop()


async def _all_held(node: Node, ids: list[bytes]) -> bool:
    held = await node.store.event_ids()
    return all(i in held for i in ids)


def test_federation_up_and_status_as_processes(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    anyio.run(lambda: init(root, "ana,ben"))
    up = subprocess.Popen(
        [sys.executable, "-m", "coopnet", "federation", "up", str(root), "--seconds", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        async def all_running() -> bool:
            r = await anyio.run_process(
                [sys.executable, "-m", "coopnet", "federation", "status", str(root), "--json"]
            )
            status = json.loads(r.stdout)
            return status["hubs"][0]["up"] and all(
                n["running"] and n["bus_connected"] and n["membership"] == "founder"
                for n in status["neighborhoods"]
            )

        anyio.run(lambda: wait_until(all_running, within=60, what="federation up"))
    finally:
        up.terminate()
        _, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    # Everything stopped: the nodes removed their api.url, the hub port is free again.
    assert not (root / "neighborhoods" / "ana" / "api.url").exists()


@pytest.mark.slow
async def test_the_stream_waits_for_the_cluster_to_form(tmp_path: Path) -> None:
    """Two of three hubs up: a stream of 3 replicas cannot be placed yet ("no suitable
    peers for placement"); `ensure_stream` retries until the third hub joins."""
    root = tmp_path / "fed"
    config = await init(root, "ana,ben", hubs=3)
    confs = config.hub_configs(root)
    servers = [
        NatsServer(root / "run" / conf.stem, port=config.ports.client[i], config=conf)
        for i, conf in enumerate(confs)
    ]
    try:
        for server in servers[:2]:
            server.start()
        creds = str(root / "nats" / "admin.creds")
        nc = await nats.connect(
            config.urls.split(","), user_credentials=creds, tls=fed.client_tls(root, config)
        )
        try:
            js = nc.jetstream()
            refused = ""
            with anyio.fail_after(30):  # the two elect a JetStream leader, then refuse placement
                while "no suitable peers" not in refused:
                    try:
                        # With byte limits: the account takes no stream without them.
                        await js.add_stream(aggregate_config([], config.quotas, replicas=3))
                    except nats.errors.Error as exc:
                        refused = str(exc)
                    await anyio.sleep(0.2)
            async with anyio.create_task_group() as tg:
                tg.start_soon(ensure_stream, root, config)
                await anyio.sleep(1.0)  # it is retrying now
                await anyio.to_thread.run_sync(servers[2].start)
            info = await js.stream_info(STREAM)
        finally:
            await nc.close()
        assert info.config.num_replicas == 3
    finally:
        for server in servers:
            server.stop()


@pytest.mark.slow
async def test_generated_cluster_survives_a_server_killed_while_nodes_publish(
    tmp_path: Path,
) -> None:
    """`init --hubs 3`: three servers from hub-1..3.conf form a cluster, the stream has 3
    replicas, and one server killed (SIGKILL) mid-burst loses no acknowledged event."""
    root = tmp_path / "fed"
    config = await init(root, "ana,ben", hubs=3)
    with hubs_of(root) as servers:
        await ensure_stream(root, config)
        async with running(*nodes_of(root, "ana", "ben")) as (ana, ben):
            posted = []
            for i in range(200):
                posted.append((await ana.post(NotePosted(text=f"burst {i}"))).id)
                if i == 60:
                    servers[0].stop(kill=True)

            async def drained() -> bool:
                return await ana.store.outbox_depth() == 0

            await wait_until(drained, within=90, what="ana's outbox drains on two servers")
            await wait_until(lambda: converged(ana, ben), within=90, what="convergence")
            head = (await ana.status()).own_head
            url = config.urls.split(",")[1]
            # The acknowledgement came from ana's member stream: it holds every event once.
            held = await _stream_ids(root, url, "ana", ana.net, stream=member_stream("ana"))
            assert set(posted) <= set(held)
            assert len(held) == head == 201 and max(held.values()) == 1  # founded + 200 notes

            async def sourced() -> bool:  # COOP sources it again after the kill (§12)
                return set(posted) <= set(await _stream_ids(root, url, "ana", ana.net))

            await wait_until(sourced, within=60, what="COOP holds every acknowledged event")
        counts = await _stream_ids(root, config.urls.split(",")[1], "ana", ana.net)
    assert len(counts) == 201
    assert max(counts.values()) == 1


async def _stream_ids(
    root: Path, url: str, author: str, net: bytes, *, stream: str = STREAM
) -> dict[bytes, int]:
    """How many times each of `author`'s events is in COOP (or `stream`), read as the
    operator."""
    from coopnet.protocol import unseal

    counts: dict[bytes, int] = {}
    creds = root / "nats" / "admin.creds"
    tls = fed.client_tls(root, fed.read_federation(root))
    for msg in await stream_messages(url, f"coop.{author}.>", creds, tls, stream=stream):
        eid = unseal(msg.data or b"", net=net).id
        counts[eid] = counts.get(eid, 0) + 1
    return counts


def test_move_to_a_cluster_rewrites_hubs_and_nodes(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    anyio.run(lambda: init(root, "ana,ben"))
    anyio.run(lambda: fed.add_neighborhood(root, "dee", reason="leafy", leaf=True))
    assert main(["federation", "cluster", str(root), "--json"]) == 0
    config = fed.read_federation(root)
    assert config.hubs == 3 and len(config.urls.split(",")) == 3
    assert not (root / "nats" / "hub.conf").exists()
    for conf in config.hub_configs(root):
        assert subprocess.run([str(nats_server_binary()), "-t", "-c", str(conf)]).returncode == 0
    assert fed.read_config_of(root, "ana").nats_url == config.urls
    leaf = (fed.neighborhood_dir(root, "dee") / "leaf.conf").read_text()
    assert all(url in leaf for url in config.leaf_urls)
    assert main(["federation", "cluster", str(root)]) == 2  # already a cluster


async def test_a_node_refuses_to_connect_with_credentials_issued_to_another_key(
    tmp_path: Path,
) -> None:
    """`node-accepts-foreign-creds`: pointed at the operator's admin.creds, or at a
    neighbor's, a node says so and does not connect (its API still serves what it holds);
    with its own it connects (issue 15)."""
    root = tmp_path / "fed"
    config = await init(root)
    ana_dir = fed.neighborhood_dir(root, "ana")
    assert creds_user_key(ana_dir / "nats.creds")[1] == read_identity(ana_dir, "ana").public_key
    admin, ben = root / "nats" / "admin.creds", fed.neighborhood_dir(root, "ben") / "nats.creds"
    with hubs_of(root):
        await ensure_stream(root, config)
        own = read_config(ana_dir)
        for foreign in (admin, ben):
            shutil.copy(foreign, ana_dir / "foreign.creds")
            write_config(ana_dir, msgspec.structs.replace(own, nats_creds="foreign.creds"))
            node = Node(ana_dir)
            async with running(node, ready=False):
                await wait_until(partial(_said, node), what="the refusal")
                assert "not the node's key" in (node.bus_refused or "")
                assert not node.bus.connected
                status = await node.status()
                assert status.bus_connected is False
                assert status.bus_refused == node.bus_refused  # the operator sees why
        write_config(ana_dir, own)
        async with running(Node(ana_dir)) as (ana,):  # its own credentials: connected
            assert ana.bus_refused is None and ana.bus.connected


async def _said(node: Node) -> bool:
    return node.bus_refused is not None


async def test_federation_status_counts_the_events_on_the_bus_once(tmp_path: Path) -> None:
    """Every event is in its member stream and in COOP; `federation status` reports COOP's
    count, not the server's total (which counted each event twice)."""
    from coopnet.deploy.launcher import gather_status

    root = tmp_path / "fed"
    config = await init(root)
    with hubs_of(root):
        await ensure_stream(root, config)
        async with running(*nodes_of(root, "ana", "ben")) as (ana, ben):
            await ana.post(NotePosted(text="once"))
            await wait_until(lambda: converged(ana, ben), what="ben holds ana's note")
            admin = root / "nats" / "admin.creds"
            nc = await nats.connect(config.urls, user_credentials=str(admin))
            try:
                coop = (await nc.jetstream().stream_info(STREAM)).state.messages
            finally:
                await nc.close()
            status = await gather_status(root)
            assert coop >= 3 and status["hubs"][0]["stream_messages"] == coop
