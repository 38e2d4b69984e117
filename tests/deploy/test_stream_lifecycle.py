"""The stream exists however the hub is started (OPERATIONS.md §7): `coopnet federation
streams` run by hand, by a container step or by the systemd streams job between the hub and
the nodes, with the operator's admin user. A node started alone waits, says why, and
becomes ready once the streams are there."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import nats
import pytest
from anyio.abc import Process

from coopnet.deploy import federation as fed
from coopnet.deploy.systemd import STREAMS_UNIT, write_units
from coopnet.node.engine.bus import STREAM
from coopnet.node.engine.nats_server import nats_server_binary
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted
from tests.conftest import running, wait_until
from tests.processes import free_port

pytestmark = pytest.mark.timeout(180)


async def init(root: Path, slugs: str, hubs: int = 1) -> fed.FederationConfig:
    """A federation in `root` on free ports of 127.0.0.1."""
    n = range(hubs)
    ports = fed.Ports(
        client=[free_port() for _ in n],
        http=[free_port() for _ in n],
        leaf=[free_port() for _ in n],
        route=[free_port() for _ in n] if hubs > 1 else [],
    )
    return await fed.init_federation(
        root, name="Test", slugs=slugs.split(","), hubs=hubs, ports=ports
    )


class HubByHand:
    """`nats-server -c nats/hub.conf` run in the federation's directory, as OPERATIONS.md §7
    says to run it by hand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: Process | None = None

    async def start(self) -> None:
        command = [str(nats_server_binary()), "-c", "nats/hub.conf"]
        self.proc = await anyio.open_process(command, cwd=self.root)

    async def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            proc.kill() if kill else proc.terminate()
        await proc.wait()
        await proc.aclose()


@contextlib.asynccontextmanager
async def hub_by_hand(root: Path) -> AsyncIterator[HubByHand]:
    hub = HubByHand(root)
    await hub.start()
    try:
        yield hub
    finally:
        with anyio.CancelScope(shield=True):
            await hub.stop()


def unit_fields(path: Path) -> dict[str, list[str]]:
    """A unit file's `Section.Key` -> its values, space-separated lists flattened."""
    fields: defaultdict[str, list[str]] = defaultdict(list)
    section = ""
    for line in path.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            key, value = line.split("=", 1)
            fields[f"{section}.{key}"] += value.split()
    return dict(fields)


@pytest.mark.parametrize("hubs", [1, 3])
async def test_the_streams_job_runs_between_the_hubs_and_the_nodes(
    tmp_path: Path, hubs: int
) -> None:
    root = tmp_path / "fed"
    config = await init(root, "aa,bb", hubs=hubs)
    write_units(root, config)
    folder = root / "systemd"
    hub_units = (
        ["coopnet-hub.service"]
        if hubs == 1
        else [f"coopnet-hub@{i}.service" for i in range(1, hubs + 1)]
    )
    streams = unit_fields(folder / STREAMS_UNIT)
    for hub in hub_units:  # after every hub, needs it, and runs again when it restarts
        assert hub in streams["Unit.After"]
        assert hub in streams["Unit.Requires"]
        assert hub in streams["Unit.PartOf"]
    assert streams["Service.Type"] == ["oneshot"]
    assert streams["Service.RemainAfterExit"] == ["yes"]
    assert streams["Service.ExecStart"][1:] == [
        "-m", "coopnet", "federation", "streams", str(root.resolve()), "--within", "120",
    ]  # fmt: skip
    for dependent in ("coopnet-node@.service", "coopnet-observer.service"):
        fields = unit_fields(folder / dependent)
        assert STREAMS_UNIT in fields["Unit.After"]  # ordered after the streams job
        assert STREAMS_UNIT in fields["Unit.Wants"]  # and pulls it in
        assert set(hub_units) <= set(fields["Unit.After"])
    for hub in hub_units:  # a hub needs nothing of the streams job
        template = hub if hubs == 1 else "coopnet-hub@.service"
        assert STREAMS_UNIT not in (folder / template).read_text()

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # Every unit together, the templates instantiated as systemctl would: each dependency
    # must load (verify fails on a Requires= naming a unit it cannot find).
    instances = ["coopnet-node@aa.service", *(h for h in hub_units if "@" in h)]
    for instance in instances:
        template = instance.split("@")[0] + "@.service"
        (folder / instance).write_text((folder / template).read_text())
    names = {STREAMS_UNIT, "coopnet-observer.service", *instances, *hub_units}
    paths = [str(folder / n) for n in sorted(names)]
    r = await anyio.run_process(
        ["systemd-analyze", "verify", "--man=no", *paths], check=False, cwd=folder
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr.decode().strip() == "", r.stderr.decode()


async def test_federation_streams_makes_the_stream_on_a_hub_started_by_hand(
    tmp_path: Path,
) -> None:
    """OPERATIONS.md §7 "by hand": `nats-server -c nats/hub.conf`, then `coopnet federation
    streams`. The command waits for a hub that is not up yet; a node started alone waits
    for the stream, says why in its status, and becomes ready once the command made it."""
    root = tmp_path / "fed"
    await init(root, "aa,bb")
    node = Node(fed.neighborhood_dir(root, "aa"), serve_api=False)
    command = [sys.executable, "-m", "coopnet", "federation", "streams", str(root)]
    async with anyio.create_task_group() as tg:
        ran: list[subprocess.CompletedProcess[bytes]] = []

        async def streams() -> None:  # started before the hub: it waits for it
            ran.append(await anyio.run_process([*command, "--json"], check=False))

        tg.start_soon(streams)
        await anyio.sleep(1.0)
        async with hub_by_hand(root), running(node, ready=False):
            await wait_until(lambda: _said(ran), within=60, what="federation streams")
            result = ran[0]
            assert result.returncode == 0, result.stderr.decode()
            report = json.loads(result.stdout)
            names = {s["name"] for s in report["streams"]}
            assert {"COOP", "COOP_aa", "COOP_bb"} <= names
            assert set(report["changed"]) >= {"COOP", "COOP_aa", "COOP_bb"}

            with anyio.fail_after(30):
                await node.ready.wait()
            env = await node.post(NotePosted(text="the stream is there"))
            await wait_until(lambda: _published(node), what="aa's note reaches the bus")
            assert env.seq == 2
            assert (await node.status()).stream_missing == ""

            again = await anyio.run_process([*command, "--json"], check=False)
            assert again.returncode == 0, again.stderr.decode()
            assert json.loads(again.stdout)["changed"] == []  # idempotent


async def test_a_node_started_alone_waits_for_the_streams_then_becomes_ready(
    tmp_path: Path,
) -> None:
    """Before anyone made the streams, a node of a federation with credentials does not
    make them (its user may not) and says so in its status, connected to the hub; once
    `coopnet federation streams` ran, it becomes ready within seconds."""
    root = tmp_path / "fed"
    await init(root, "aa,bb")
    command = [sys.executable, "-m", "coopnet", "federation", "streams", str(root)]
    async with hub_by_hand(root):
        node = Node(fed.neighborhood_dir(root, "aa"), serve_api=False)
        assert node.bus.makes_stream is False  # it has credentials

        async def says_missing() -> bool:
            status = await node.status()
            return status.bus_connected and "coopnet federation streams" in status.stream_missing

        async with running(node, ready=False):
            await wait_until(says_missing, within=20, what="the node says the stream is missing")
            assert not node.ready.is_set()
            assert await _coop_missing(root)  # the node made nothing

            ran = await anyio.run_process(command, check=False)
            assert ran.returncode == 0, ran.stderr.decode()
            assert b"stream COOP: made or updated now" in ran.stdout
            with anyio.fail_after(15):  # it asks again every 5 s at the longest
                await node.ready.wait()
            assert (await node.status()).stream_missing == ""


async def test_a_hub_that_lost_its_store_is_followed_again_after_federation_streams(
    tmp_path: Path,
) -> None:
    """The hub comes back without its JetStream store (`stream-loss-stuck` in a federation
    with credentials): the nodes say the stream is missing and keep their posts; the
    operator runs `coopnet federation streams`; each node then republishes its outbox into
    its member stream and re-creates its consumer on the new COOP, read from its start."""
    root = tmp_path / "fed"
    config = await init(root, "aa,bb")
    command = [sys.executable, "-m", "coopnet", "federation", "streams", str(root)]
    a = Node(fed.neighborhood_dir(root, "aa"), serve_api=False)
    b = Node(fed.neighborhood_dir(root, "bb"), serve_api=False)
    async with hub_by_hand(root) as hub:
        assert (await anyio.run_process(command, check=False)).returncode == 0
        async with running(a, b):
            await a.post(NotePosted(text="before"))
            await wait_until(lambda: _published(a), what="aa's note on the bus")

            await hub.stop(kill=True)  # SIGKILL; then its store is gone
            shutil.rmtree(root / "nats" / "js")
            await hub.start()
            note = await a.post(NotePosted(text="while the stream is missing"))

            async def says_missing() -> bool:
                status = await b.status()
                return status.bus_connected and "federation streams" in status.stream_missing

            await wait_until(says_missing, within=20, what="bb's status says so")
            assert await a.store.outbox_depth() == 1

            assert (await anyio.run_process(command, check=False)).returncode == 0
            await wait_until(lambda: _published(a), within=15, what="aa republishes")

            async def b_follows() -> bool:
                last, consumers = await _coop(root, config)
                status = await b.status()
                return "node-bb" in consumers and status.stream_seq == last > 0

            await wait_until(b_follows, within=15, what="bb's consumer on the new COOP")
            assert note.id in await b.store.event_ids()
            assert [(await n.status()).stream_missing for n in (a, b)] == ["", ""]


async def _coop(root: Path, config: fed.FederationConfig) -> tuple[int, set[str]]:
    """COOP's last seq and consumers, as the operator's admin user sees them."""
    nc = await nats.connect(config.urls, user_credentials=str(root / "nats" / "admin.creds"))
    try:
        js = nc.jetstream()
        last = (await js.stream_info(STREAM)).state.last_seq
        return last, {c.name for c in await js.consumers_info(STREAM)}
    finally:
        await nc.close()


async def _coop_missing(root: Path) -> bool:
    config = fed.read_federation(root)
    nc = await nats.connect(config.urls, user_credentials=str(root / "nats" / "admin.creds"))
    try:
        return not await nc.jetstream().streams_info()
    finally:
        await nc.close()


async def _said(ran: list[subprocess.CompletedProcess[bytes]]) -> bool:
    return bool(ran)


async def _published(node: Node) -> bool:
    return await node.store.outbox_depth() == 0
