"""Transport security of a generated federation (docs/OPERATIONS.md §11), run for real: a
three-hub cluster on 127.0.0.2-4 and a leaf neighborhood, from the configs `federation init`
writes, with TLS on client, leaf and route links. A node trusting the federation CA
publishes and reads through JetStream; a plain-text client, a client trusting another CA
and a server without the route secret or a certificate of the federation CA are refused."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anyio
import nats
import nats.errors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from nats.aio.client import Client

from coopnet.deploy import federation as fed
from coopnet.deploy.cli import main
from coopnet.deploy.launcher import ensure_stream, start_hubs, start_leaf
from coopnet.deploy.nats_config import TlsFiles
from coopnet.deploy.tls import is_loopback, issue_server_cert, make_ca, write_private
from coopnet.federation.observer import Observer
from coopnet.node.engine import bus as bus_module
from coopnet.node.engine.bus import STREAM, Bus, connect_retrying
from coopnet.node.engine.config import ConfigError
from coopnet.node.engine.nats_server import NatsServer, nats_server_binary
from coopnet.node.engine.tls import client_context
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted
from tests.conftest import converged, running, wait_until
from tests.deploy.test_federation import ports
from tests.processes import free_port, stream_messages

pytestmark = pytest.mark.timeout(240)

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
ROGUE_HOST = "127.0.0.5"


async def _init(
    root: Path,
    hubs: int = 3,
    *,
    hosts: list[str] | None = None,
    tls: bool | None = None,
    tls_names: list[str] | None = None,
) -> fed.FederationConfig:
    config = await fed.init_federation(
        root, name="Tls", slugs=["ana", "ben"], hubs=hubs, ports=ports(hubs), hosts=hosts,
        tls=tls, tls_names=tls_names,
    )  # fmt: skip
    config.next_leaf_port = free_port()
    fed.write_federation(root, config)
    return config


class Cluster:
    def __init__(self, root: Path, config: fed.FederationConfig, hubs: list[NatsServer]):
        self.root = root
        self.config = config
        self.hubs = hubs

    def monitor(self, hub: int, path: str) -> dict[str, object]:
        url = f"http://127.0.0.1:{self.config.ports.http[hub]}/{path}"
        with urllib.request.urlopen(url, timeout=5) as r:
            data: dict[str, object] = json.load(r)
            return data

    def route_peers(self, hub: int) -> set[str]:
        routes = self.monitor(hub, "routez")["routes"]
        assert isinstance(routes, list)
        return {str(r.get("remote_name")) for r in routes}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One TLS cluster for the module's tests: hubs on 127.0.0.2-4, the stream made by the
    operator's admin user over TLS, and a leaf neighborhood `dee`."""
    root = tmp_path_factory.mktemp("tls") / "fed"
    config = anyio.run(lambda: _init(root, hosts=HOSTS))
    anyio.run(lambda: fed.add_neighborhood(root, "dee", reason="bikes", leaf=True))
    hubs = start_hubs(root, config)
    try:
        anyio.run(lambda: ensure_stream(root, config))
        yield Cluster(root, config, hubs)
    finally:
        for hub in hubs:
            hub.stop()


def test_generated_federation_has_tls_on_every_link_and_private_keys(cluster: Cluster) -> None:
    root, config = cluster.root, cluster.config
    assert config.tls and config.urls.startswith("tls://127.0.0.2:")
    ca = x509.load_pem_x509_certificate((root / config.tls_ca).read_bytes())
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    for i, host in enumerate(HOSTS):
        cert = x509.load_pem_x509_certificate((root / config.tls_cert[i]).read_bytes())
        assert cert.issuer == ca.subject
        ca_key.verify(
            cert.signature,
            cert.tbs_certificate_bytes,
            ec.ECDSA(cert.signature_hash_algorithm),  # type: ignore[arg-type]
        )
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == [host]
        assert cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC)
        text = config.hub_configs(root)[i].read_text()
        assert text.count("tls {") == 3  # client port, leafnode port, cluster routes
        assert 'http: "127.0.0.1:' in text and "http_port" not in text
    secrets = [root / config.tls_key[0], root / "nats/tls/ca.key", root / "nats/route.secret"]
    secrets += config.hub_configs(root)  # they hold the route secret
    for path in secrets:
        assert path.stat().st_mode & 0o777 == 0o600, path
    for where in ("neighborhoods/ana", "neighborhoods/dee", "observer"):
        assert (root / where / "nats-ca.pem").read_bytes() == (root / config.tls_ca).read_bytes()
    assert fed.read_config_of(root, "ana").nats_ca == "nats-ca.pem"
    leaf = (root / "neighborhoods/dee/leaf.conf").read_text()
    assert "tls: { ca_file:" in leaf and "tls://127.0.0.2:" in leaf


async def test_a_node_and_a_leaf_neighborhood_meet_through_the_tls_cluster(
    cluster: Cluster,
) -> None:
    """ana connects to the hubs over TLS (checking them against its copy of the CA); dee
    talks plain text to its leaf on 127.0.0.1, whose link to the hubs is TLS. Each reads
    the other's events from the JetStream stream."""
    root = cluster.root
    leaf = start_leaf(root, "dee")
    assert leaf is not None
    try:
        nodes = [Node(fed.neighborhood_dir(root, s)) for s in ("ana", "dee")]
        async with running(*nodes) as (ana, dee):
            await wait_until(lambda: converged(ana, dee), within=60, what="dee's application")
            note = await ana.post(NotePosted(text="over TLS"))

            async def dee_holds_it() -> bool:
                return note.id in await dee.store.event_ids()

            await wait_until(dee_holds_it, within=30, what="ana's note at dee")
            assert (await ana.status()).bus_connected
            # The observer as `federation init` wrote it (observer.toml names its CA copy).
            obs = Observer.from_dir(root / "observer")
            assert obs.bus.tls is not None
            async with anyio.create_task_group() as tg:
                await tg.start(obs.run)

                async def observed() -> bool:
                    return note.id in await obs.store.event_ids()

                await wait_until(observed, within=30, what="ana's note at the observer")
                tg.cancel_scope.cancel()
            conns = [c for i in range(3) for c in cluster.monitor(i, "connz")["connections"]]  # type: ignore[attr-defined]
            ana_conn = [c for c in conns if c.get("name") == "coopnet-ana"]
            assert ana_conn and ana_conn[0]["tls_version"].startswith("1.")
            leafs = [lf for i in range(3) for lf in cluster.monitor(i, "leafz")["leafs"]]  # type: ignore[attr-defined]
            assert [lf["name"] for lf in leafs] == ["leaf-dee"]
    finally:
        leaf.stop()
    tls = fed.client_tls(root, cluster.config)
    admin = root / "nats" / "admin.creds"
    messages = await stream_messages(cluster.config.urls, "coop.ana.>", admin, tls)
    assert len(messages) >= 2  # node.founded and the note, in the replicated stream


def test_a_plain_text_client_is_refused_on_client_and_leaf_ports(cluster: Cluster) -> None:
    """A client that does not start TLS learns that TLS is required (INFO) and is closed,
    its CONNECT (which would carry credentials) unanswered."""
    ports = [cluster.config.ports.client[0], cluster.config.ports.leaf[0]]
    for port in ports:
        with socket.create_connection((HOSTS[0], port), timeout=5) as sock:
            info = sock.recv(4096).decode()
            assert info.startswith("INFO ") and '"tls_required":true' in info
            sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
            answer = b""
            try:
                while chunk := sock.recv(4096):
                    answer += chunk
            except (ConnectionResetError, TimeoutError):
                pass
        # The server awaited a TLS handshake; plain bytes end the connection unanswered.
        assert answer == b"", answer


async def test_a_client_trusting_another_ca_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    wrong_ca, _ = make_ca("someone else")
    (tmp_path / "wrong.pem").write_bytes(wrong_ca)
    admin = str(cluster.root / "nats" / "admin.creds")
    urls = cluster.config.urls.split(",")
    # No close() after this: the failed handshake closed the socket (asyncio's start_tls),
    # and nats-py's close() would wait for the plain transport forever.
    with pytest.raises(ssl.SSLCertVerificationError):
        await Client().connect(urls, user_credentials=admin, allow_reconnect=False,
                               tls=client_context(tmp_path / "wrong.pem"),
                               connect_timeout=3)  # fmt: skip
    # The same client trusting the federation CA gets in.
    right = await nats.connect(
        urls, user_credentials=admin, tls=fed.client_tls(cluster.root, cluster.config)
    )
    try:
        assert (await right.jetstream().stream_info(STREAM)).config.num_replicas == 3
    finally:
        await right.close()


async def test_a_bus_trusting_another_ca_keeps_retrying_and_connects_once_it_trusts_the_hubs(
    cluster: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed TLS handshake does not stall a node's bus (nats-py alone would hang in its
    first connect, nats.py issue #718): it logs why and tries again, and connects once the
    context trusts the federation CA."""
    monkeypatch.setattr(bus_module, "TLS_CONNECT_WITHIN_S", 1.0)
    (tmp_path / "wrong.pem").write_bytes(make_ca("someone else")[0])
    admin = str(cluster.root / "nats" / "admin.creds")
    bus = Bus(cluster.config.urls, name="wary", creds=admin, tls_ca=str(tmp_path / "wrong.pem"))
    connected: list[bool] = []

    async def ready() -> bool:
        return True

    async def connect() -> None:
        connected.append(await connect_retrying(bus, ready, who="wary"))

    async def refused_twice() -> bool:
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("wary: ")]
        retried = sum(" not ready (" in m for m in said)
        return retried >= 2 and any("CERTIFICATE_VERIFY_FAILED" in m for m in said)

    async def done() -> bool:
        return bool(connected)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(connect)
            await wait_until(refused_twice, within=20, what="the refusals logged, retried")
            assert not bus.connected
            bus.tls = fed.client_tls(cluster.root, cluster.config)  # the right CA now
            await wait_until(done, within=20, what="the bus connected")
        assert bus.connected
    finally:
        await bus.close()


@pytest.mark.parametrize(
    ("cert", "secret", "joins"),
    [
        ("none", "none", False),  # plain text, no credentials
        ("other-ca", "right", False),  # the secret, but a certificate of another CA
        ("federation-ca", "wrong", False),  # a federation certificate, a wrong secret
        ("federation-ca", "right", True),  # the control: both (what a real hub has)
    ],
)
def test_a_server_joins_the_cluster_only_with_the_route_secret_and_a_federation_cert(
    cluster: Cluster, tmp_path: Path, cert: str, secret: str, joins: bool
) -> None:
    root = cluster.root
    route_secret = (root / "nats" / "route.secret").read_text().strip()
    ca_pem, ca_key = (
        (root / "nats/tls/ca.pem").read_bytes(),
        (root / "nats/tls/ca.key").read_bytes(),
    )
    tls = ""
    if cert != "none":
        if cert == "other-ca":
            ca_pem, ca_key = make_ca("rogue")
        pem, key = issue_server_cert(ca_pem, ca_key, common_name="rogue", names=[ROGUE_HOST])
        (tmp_path / "rogue.pem").write_bytes(pem)
        write_private(tmp_path / "rogue.key", key)
        tls = (f'tls {{ cert_file: "{tmp_path}/rogue.pem", key_file: "{tmp_path}/rogue.key", '
               f'ca_file: "{root}/nats/tls/ca.pem" }}')  # fmt: skip
    login = "" if secret == "none" else f"route:{route_secret if secret == 'right' else 'x'}@"
    http = free_port()
    conf = tmp_path / "rogue.conf"
    conf.write_text(
        f'server_name: "rogue"\nhost: "{ROGUE_HOST}"\nport: {free_port()}\n'
        f'http: "127.0.0.1:{http}"\n'
        f'cluster {{\n  name: coop\n  listen: "{ROGUE_HOST}:{free_port()}"\n  {tls}\n'
        f'  routes: ["nats-route://{login}{HOSTS[0]}:{cluster.config.ports.route[0]}"]\n}}\n'
    )
    rogue = subprocess.Popen(
        [str(nats_server_binary()), "-c", str(conf), "-l", str(tmp_path / "rogue.log")],
        stdin=subprocess.DEVNULL,
    )
    try:

        async def joined() -> bool:
            return "rogue" in cluster.route_peers(0)

        if joins:
            anyio.run(lambda: wait_until(joined, within=20, what="the control server's route"))
        else:
            # Several solicit attempts (one a second) and none gets a route.
            anyio.run(anyio.sleep, 4)
            assert not anyio.run(joined)
            assert cluster.route_peers(0) == {"hub-2", "hub-3"}
    finally:
        rogue.terminate()
        rogue.wait(timeout=15)


# --- the defaults and the operator's own files (no server needed) ---


async def test_tls_is_on_for_clusters_and_off_loopback_and_plain_only_on_loopback(
    tmp_path: Path,
) -> None:
    one = await _init(tmp_path / "one", hubs=1)
    assert not one.tls and one.urls.startswith("nats://127.0.0.1:")
    hub = (tmp_path / "one/nats/hub.conf").read_text()
    assert "tls {" not in hub and 'http: "127.0.0.1:' in hub
    assert not (tmp_path / "one/neighborhoods/ana/nats-ca.pem").exists()
    asked = await _init(tmp_path / "asked", hubs=1, tls=True)
    assert asked.tls and "tls {" in (tmp_path / "asked/nats/hub.conf").read_text()
    three = await _init(tmp_path / "three", hubs=3)
    assert three.tls and three.urls.count("tls://") == 3
    remote = await _init(tmp_path / "remote", hubs=1, hosts=["0.0.0.0"], tls_names=["hub.coop"])
    text = (tmp_path / "remote/nats/hub.conf").read_text()
    assert remote.tls and 'host: "0.0.0.0"' in text and 'http: "127.0.0.1:' in text
    cert = x509.load_pem_x509_certificate((tmp_path / "remote/nats/tls/hub.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hub.coop"]
    await _init(tmp_path / "plain3", hubs=3, tls=False)
    cluster_text = (tmp_path / "plain3/nats/hub-1.conf").read_text()
    assert "tls {" not in cluster_text and "authorization {" in cluster_text  # routes still
    with pytest.raises(ConfigError, match="--tls-name"):  # 0.0.0.0 names nothing to check
        await _init(tmp_path / "nameless", hubs=1, hosts=["0.0.0.0"])
    with pytest.raises(ConfigError, match="TLS is required off loopback"):
        await _init(tmp_path / "refused", hubs=1, hosts=["192.0.2.7"], tls=False)
    assert not (tmp_path / "refused").exists()
    assert is_loopback("127.0.0.9") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("hub.example.org")


def test_cli_init_of_a_cluster_writes_tls_and_route_authorization_by_default(
    tmp_path: Path,
) -> None:
    """The case `nats-config-plaintext`: `federation init --hubs 3` with no TLS flag."""
    root = tmp_path / "fed"
    assert main(["federation", "init", str(root), "--name", "t", "--neighborhoods", "aa,bb",
                 "--hubs", "3", "--port", str(free_port())]) == 0  # fmt: skip
    text = (root / "nats/hub-1.conf").read_text()
    cluster_block = text[text.index("\ncluster {") :]
    assert text.count("tls {") == 3 and "authorization {" in cluster_block
    assert 'http: "127.0.0.1:' in text and "no_auth_user" not in text
    assert fed.read_config_of(root, "aa").nats_url.startswith("tls://127.0.0.1:")


def test_init_uses_the_operators_own_tls_files(tmp_path: Path) -> None:
    ca_pem, ca_key = make_ca("ours")
    pem, key = issue_server_cert(ca_pem, ca_key, common_name="hub", names=["hub.coop"])
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "hub.pem").write_bytes(pem)
    (tmp_path / "hub.key").write_bytes(key)
    (tmp_path / "hub.key").chmod(0o644)
    args = ["federation", "init", str(tmp_path / "fed"), "--name", "t", "--neighborhoods",
            "aa,bb", "--port", str(free_port()), "--tls-ca", str(tmp_path / "ca.pem"),
            "--tls-cert", str(tmp_path / "hub.pem"),
            "--tls-key", str(tmp_path / "hub.key")]  # fmt: skip
    assert main(args) == 2  # a key others may read is refused, before anything is written
    assert not (tmp_path / "fed").exists()
    assert main(args[:11]) == 2  # --tls-ca without --tls-cert and --tls-key
    (tmp_path / "hub.key").chmod(0o600)
    assert main(args) == 0
    conf = tmp_path / "fed/nats/hub.conf"
    assert f'cert_file: "{tmp_path / "hub.pem"}"' in conf.read_text()
    assert not (tmp_path / "fed/nats/tls").exists()  # no CA of our own
    assert (tmp_path / "fed/neighborhoods/aa/nats-ca.pem").read_bytes() == ca_pem
    assert subprocess.run([str(nats_server_binary()), "-t", "-c", str(conf)]).returncode == 0


def test_moving_to_a_cluster_turns_tls_on_from_the_same_ca(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    anyio.run(lambda: _init(root, hubs=1, tls=True))
    anyio.run(lambda: fed.add_neighborhood(root, "dee", reason="leafy", leaf=True))
    ca = (root / "nats/tls/ca.pem").read_bytes()
    config = fed.move_to_cluster(root)
    assert config.tls and (root / "nats/tls/ca.pem").read_bytes() == ca
    assert [Path(c).name for c in config.tls_cert] == ["hub-1.pem", "hub-2.pem", "hub-3.pem"]
    assert fed.read_config_of(root, "ana").nats_url == config.urls
    assert (root / "neighborhoods/ana/nats-ca.pem").read_bytes() == ca
    assert "tls: { ca_file:" in (root / "neighborhoods/dee/leaf.conf").read_text()
    for conf in config.hub_configs(root):
        assert "authorization {" in conf.read_text()
        assert subprocess.run([str(nats_server_binary()), "-t", "-c", str(conf)]).returncode == 0


def test_moving_to_a_cluster_keeps_the_hosts_the_operator_set(tmp_path: Path) -> None:
    """OPERATIONS.md §8: set `hosts` (one per hub) in federation.toml, then `cluster`: each
    hub listens on its own address and the nodes get the three URLs (it used to drop them)."""
    root = tmp_path / "fed"
    anyio.run(lambda: _init(root, hubs=1, tls=True))
    config = fed.read_federation(root)
    config.hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    fed.write_federation(root, config)
    moved = fed.move_to_cluster(root)
    assert moved.hosts == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    for i, conf in enumerate(moved.hub_configs(root)):
        assert f"127.0.0.{i + 2}" in conf.read_text()
        assert f"127.0.0.{i + 2}" in moved.urls


def test_a_bus_whose_ca_file_is_missing_or_not_a_certificate_is_a_config_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="cannot read the federation's CA"):
        Bus("tls://127.0.0.1:1", name="x", tls_ca=str(tmp_path / "missing.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="cannot read the federation's CA"):
        Bus("tls://127.0.0.1:1", name="x", tls_ca=str(tmp_path / "junk.pem"))
    assert TlsFiles(ca="a", cert="b", key="c").ca == "a"
