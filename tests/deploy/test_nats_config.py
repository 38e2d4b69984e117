"""The nats-server configs of a federation, run for real: every generated config passes
`nats-server -t`; a three-hub cluster keeps every acknowledged event through a SIGKILL; a
neighborhood's leaf carries its node to the hub with the node's permissions and no more."""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from coopnet.deploy.nats_auth import (
    JS_DOMAIN,
    Authority,
    admin_permissions,
    inbox_prefix,
    node_permissions,
)
from coopnet.deploy.nats_config import cluster_configs, hub_config, leaf_config, quote
from coopnet.node.engine.bus import STREAM, SUBJECTS, consumer_config
from coopnet.node.engine.nats_server import NatsServer, nats_server_binary
from tests.conftest import wait_until
from tests.deploy.nats_fixtures import (
    Hub,
    Session,
    admin_creds,
    create_stream,
    running_hub,
    session,
    stream_counts,
)
from tests.processes import create_replicated_stream, free_ports


def _nats_server_accepts(config: Path) -> None:
    result = subprocess.run(
        [str(nats_server_binary()), "-t", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "is valid" in result.stderr + result.stdout


def _cluster_texts(authority: Authority, root: Path, ports: list[int]) -> list[str]:
    return cluster_configs(
        authority,
        ports=ports[0:3],
        route_ports=ports[3:6],
        http_ports=ports[6:9],
        leaf_ports=ports[9:12],
        store_dirs=[root / f"hub-{i}" / "jetstream" for i in range(1, 4)],
        jwt_dirs=[root / f"hub-{i}" / "jwt" for i in range(1, 4)],
    )


def test_every_generated_config_passes_nats_server_t(tmp_path: Path) -> None:
    authority = Authority.generate()
    odd = tmp_path / 'a dir with "quotes" and \\ backslash'
    texts = {
        "hub": hub_config(
            authority,
            server_name="hub",
            port=4222,
            http_port=8222,
            leaf_port=7422,
            store_dir=odd / "jetstream",
            jwt_dir=odd / "jwt",
        ),
        "hub-default-sync": hub_config(
            authority,
            server_name="hub",
            port=4222,
            http_port=8222,
            leaf_port=7422,
            store_dir="relative/jetstream",
            jwt_dir="relative/jwt",
            sync_always=False,
        ),
        "leaf": leaf_config(
            slug="oakley",
            port=4223,
            hub_leaf_urls=["nats-leaf://127.0.0.1:7422", "nats-leaf://127.0.0.1:7423"],
            creds_path=odd / "nats.creds",
            http_port=8223,
        ),
    }
    for i, text in enumerate(_cluster_texts(authority, tmp_path, list(range(5000, 5012)))):
        texts[f"hub-{i + 1}"] = text
    for name, text in texts.items():
        path = tmp_path / f"{name}.conf"
        path.write_text(text)
        _nats_server_accepts(path)


def test_hub_config_says_what_it_trusts_and_what_sync_always_trades() -> None:
    authority = Authority.generate()
    text = hub_config(
        authority,
        server_name="hub",
        port=4222,
        http_port=8222,
        leaf_port=7422,
        store_dir="/var/lib/coop/js",
        jwt_dir="/var/lib/coop/jwt",
    )
    assert f"system_account: {quote(authority.system_public_key)}" in text
    assert f"  {authority.account_public_key}: " in text  # preloaded
    assert f"  {authority.system_public_key}: " in text
    assert "type: full" in text and "allow_delete: false" in text
    assert "sync_interval: always" in text and "Jepsen" in text
    assert 'listen: "127.0.0.1:7422"' in text and 'http: "127.0.0.1:8222"' in text
    relaxed = hub_config(
        authority,
        server_name="hub",
        port=4222,
        http_port=8222,
        leaf_port=7422,
        store_dir="js",
        jwt_dir="jwt",
        sync_always=False,
    )
    assert "sync_interval: always" not in relaxed and "Jepsen" in relaxed


def test_cluster_configs_route_each_hub_to_the_other_two(tmp_path: Path) -> None:
    texts = _cluster_texts(Authority.generate(), tmp_path, list(range(5000, 5012)))
    assert [t.count("nats-route://") for t in texts] == [2, 2, 2]
    # Every route carries the one secret the three configs share (authorization below).
    secret = texts[0].split('password: "')[1].split('"')[0]
    assert len(secret) >= 43 and all(f'password: "{secret}"' in t for t in texts)
    assert (
        f'routes: ["nats-route://route:{secret}@127.0.0.1:5004", '
        f'"nats-route://route:{secret}@127.0.0.1:5005"]'
    ) in texts[0]
    assert 'server_name: "hub-2"' in texts[1] and 'listen: "127.0.0.1:5004"' in texts[1]
    assert all('http: "127.0.0.1:' in t for t in texts)  # monitoring stays on loopback
    with pytest.raises(ValueError, match="a cluster is 3 servers"):
        cluster_configs(
            Authority.generate(),
            ports=[1, 2],
            route_ports=[1, 2],
            http_ports=[1, 2],
            leaf_ports=[1, 2],
            store_dirs=["one", "two"],
            jwt_dirs=["one", "two"],
        )


def test_quote_escapes_what_the_config_lexer_knows_and_refuses_the_rest() -> None:
    assert quote('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert quote(Path("/x y/z")) == '"/x y/z"'
    with pytest.raises(ValueError, match="control character"):
        quote("bell\x07")


# --- a three-hub cluster ---


@contextmanager
def _running_cluster(root: Path, authority: Authority) -> Iterator[list[NatsServer]]:
    ports = free_ports(12)
    servers = []
    for i, text in enumerate(_cluster_texts(authority, root, ports)):
        config = root / f"hub-{i + 1}.conf"
        config.write_text(text)
        servers.append(NatsServer(root / f"hub-{i + 1}", port=ports[i], config=config))
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


async def _publish_until_acked(js: JetStreamContext, subject: str, payload: bytes) -> None:
    """What the outbox does: the same message id on every try, until an ack comes."""
    headers = {"Nats-Msg-Id": payload.decode()}
    with anyio.fail_after(60):
        while True:
            try:
                await js.publish(subject, payload, timeout=2, headers=headers)
                return
            except (nats.errors.Error, TimeoutError):  # leader lost, reconnecting: again
                await anyio.sleep(0.2)


async def test_a_cluster_keeps_every_acked_event_when_a_hub_is_killed(tmp_path: Path) -> None:
    authority = Authority.generate()
    authority.save(tmp_path)
    admin = authority.user_creds("admin", admin_permissions()).write(tmp_path / "admin.creds")
    node_oak = authority.user_creds("oak", node_permissions("oak")).write(tmp_path / "oak.creds")
    with _running_cluster(tmp_path, authority) as servers:
        urls = [server.url for server in servers]
        await create_replicated_stream(urls, admin)
        nc = await nats.connect(
            urls,
            user_credentials=str(node_oak),
            inbox_prefix=inbox_prefix("oak"),
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            error_cb=_ignore,
        )
        try:
            js = nc.jetstream()
            payloads = [b"event-%03d" % i for i in range(150)]
            for i, payload in enumerate(payloads):
                if i == 50:  # kill -9 the hub this node is connected to, mid-burst
                    assert nc.connected_url is not None
                    port = nc.connected_url.port
                    next(s for s in servers if s.port == port).stop(kill=True)
                await _publish_until_acked(js, "coop.oak.burst", payload)
            assert nc.stats["reconnects"] >= 1  # the node did lose its hub
        finally:
            await nc.close()
        survivor = next(s for s in servers if s.proc is not None)
        counts = await stream_counts(survivor.url, admin)
    assert counts == {("coop.oak.burst", payload): 1 for payload in payloads}


async def _ignore(exc: Exception) -> None:
    """Disconnections are expected here; the publish loop retries."""


# --- a neighborhood's leaf ---


@contextmanager
def _running_leaf(root: Path, hub: Hub, creds: Path) -> Iterator[NatsServer]:
    port, http_port = free_ports(2)
    config = root / "leaf.conf"
    config.write_text(
        leaf_config(
            slug="oak",
            port=port,
            hub_leaf_urls=[hub.leaf_url],
            creds_path=creds,
            http_port=http_port,
        )
    )
    leaf = NatsServer(root / "leaf", port=port, config=config)
    leaf.start()
    try:
        yield leaf
    finally:
        leaf.stop()


def _hub_reachable(js: JetStreamContext) -> Callable[[], Awaitable[bool]]:
    """Whether the hub's JetStream answers through the leaf (the stream's info, which a
    node may ask: no side effect)."""

    async def answers() -> bool:
        try:
            await js.stream_info(STREAM)
        except (nats.errors.Error, TimeoutError):
            return False
        return True

    return answers


async def test_a_leaf_carries_its_node_to_the_hub_with_the_nodes_permissions(
    tmp_path: Path,
) -> None:
    with running_hub(tmp_path) as hub:
        admin = admin_creds(hub)
        await create_stream(hub.url, admin)
        with _running_leaf(tmp_path, hub, hub.creds("oak", node_permissions("oak"))) as leaf:
            async with session(leaf.url, user="oak") as local:  # no creds at the leaf
                js = local.jetstream(timeout=2)
                await wait_until(_hub_reachable(js), what="the leaf links to the hub")
                ack = await js.publish("coop.oak.x", b"via the leaf")
                assert (ack.stream, ack.seq, ack.domain) == (STREAM, 1, JS_DOMAIN)
                # The leaf knows a's permissions (the hub sent them) and drops coop.elm.x
                # itself ("Not permitted to deliver"): the client hears "no responders".
                with pytest.raises(nats.js.errors.NoStreamResponseError):
                    await js.publish("coop.elm.x", b"not a's")
                # The node's consume path, through the leaf, on the consumer the operator made.
                async with session(hub.url, admin) as operator:
                    await operator.jetstream().add_consumer(STREAM, consumer_config("node-oak"))
                psub = await js.pull_subscribe(SUBJECTS, durable="node-oak", stream=STREAM)
                msgs = await psub.fetch(5, timeout=2)
                assert [m.data for m in msgs] == [b"via the leaf"]
                await msgs[-1].ack_sync()
                assert local.errors == []
        assert await stream_counts(hub.url, admin) == {("coop.oak.x", b"via the leaf"): 1}


async def test_a_leaf_keeps_its_neighborhood_talking_while_the_hub_is_down(
    tmp_path: Path,
) -> None:
    with running_hub(tmp_path) as hub:
        admin = admin_creds(hub)
        await create_stream(hub.url, admin)
        with _running_leaf(tmp_path, hub, hub.creds("oak", node_permissions("oak"))) as leaf:
            async with session(leaf.url, user="oak") as local, session(leaf.url) as neighbor:
                js = local.jetstream(timeout=2)
                await wait_until(_hub_reachable(js), what="the leaf links to the hub")
                await js.publish("coop.oak.x", b"before")
                heard: list[bytes] = []

                async def on_event(msg: Msg) -> None:
                    heard.append(msg.data)

                await neighbor.nc.subscribe("coop.oak.>", cb=on_event)
                await neighbor.nc.flush()

                hub.server.stop()
                await local.nc.publish("coop.oak.y", b"while the hub is down")

                async def neighbor_heard() -> bool:
                    return heard == [b"while the hub is down"]

                await wait_until(neighbor_heard, what="core NATS at the leaf")

                hub.server.start()  # same port, same store dir
                await wait_until(_hub_reachable(js), what="the leaf links again")
                ack = await js.publish("coop.oak.x", b"after")
                assert (ack.stream, ack.seq) == (STREAM, 2)
        assert await stream_counts(hub.url, admin) == {
            ("coop.oak.x", b"before"): 1,
            ("coop.oak.x", b"after"): 1,
        }


async def test_through_a_leaf_sync_is_answered_both_ways(tmp_path: Path) -> None:
    """`resp` (allow_responses) does not cross a leaf link (nats-server issue #2949), so sync
    answers are plain publishes on `coopreply.<requester>.<token>.<responder>`, which the hub
    carries to and from a leaf like any subject the node may use."""
    with running_hub(tmp_path) as hub:
        await create_stream(hub.url, admin_creds(hub))  # what the link check asks about
        node_oak = hub.creds("oak", node_permissions("oak"))
        elm_creds = hub.creds("elm", node_permissions("elm"))
        with _running_leaf(tmp_path, hub, node_oak) as leaf:
            async with (
                session(leaf.url, user="oak") as oak_at_leaf,
                session(hub.url, elm_creds, user="elm") as elm,
            ):
                await wait_until(_hub_reachable(oak_at_leaf.jetstream(timeout=2)), what="link")
                await _serve_sync(oak_at_leaf, "oak")
                await _serve_sync(elm, "elm")
                await wait_until(_answered(oak_at_leaf, "elm", "oak"), what="elm answers oak's ask")
                await wait_until(_answered(elm, "oak", "elm"), what="oak, behind its leaf, answers")
        async with (
            session(hub.url, node_oak, user="oak") as oak_at_hub,  # directly: answered
            session(hub.url, elm_creds, user="elm") as elm,
        ):
            await _serve_sync(oak_at_hub, "oak")
            await wait_until(_answered(elm, "oak", "elm"), what="oak answers elm's ask")


async def _serve_sync(s: Session, slug: str) -> None:
    """Answer `coopsync.<slug>.<requester>` with two chunks on the request's reply subject
    plus `.<slug>`, as node/engine/sync.py does with its replies."""

    async def answer(msg: Msg) -> None:
        if msg.subject.startswith(f"coopsync.{slug}.") and msg.reply:
            for i in range(2):
                await s.nc.publish(f"{msg.reply}.{slug}", f"{slug}:{i}".encode())

    await s.nc.subscribe("coopsync.*.*", cb=answer)
    await s.nc.flush()


async def _ask_sync(s: Session, author: str, me: str) -> list[bytes]:
    """What comes back to one sync request within 0.4 s (node/engine/sync.py's gathering time)."""
    replies: list[bytes] = []

    async def on_reply(msg: Msg) -> None:
        replies.append(msg.data)

    inbox = f"coopreply.{me}.{s.nc.new_inbox().rsplit('.', 1)[1]}"
    sub = await s.nc.subscribe(f"{inbox}.*", cb=on_reply)
    await s.nc.flush()
    await s.nc.publish(f"coopsync.{author}.{me}", b"", reply=inbox)
    await anyio.sleep(0.4)
    await sub.unsubscribe()
    return sorted(replies)


def _answered(s: Session, author: str, me: str) -> Callable[[], Awaitable[bool]]:
    """Whether a sync request, asked again each time (interest takes a moment to reach
    every server), gets the author's two chunks back."""

    async def both_chunks() -> bool:
        return await _ask_sync(s, author, me) == [f"{author}:0".encode(), f"{author}:1".encode()]

    return both_chunks
