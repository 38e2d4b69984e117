"""Bus quotas with real parts: a generated federation's hub (nats-server with the minted
account and user limits), its member streams and aggregate made by `ensure_stream`, nodes
and an observer, and a rogue member publishing with its own credentials from another
process (docs/OPERATIONS.md §12)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import msgspec
import nats
import nats.js.errors
import pytest

from coopnet.deploy import federation as fed
from coopnet.deploy.cli import main
from coopnet.deploy.launcher import ensure_stream
from coopnet.deploy.nats_auth import Authority, BusLimits, decode_jwt
from coopnet.deploy.quotas import MIB, Quotas, account_disk_bytes
from coopnet.federation.observer import Observer
from coopnet.node.engine.bus import MAX_MSG_SIZE, STREAM, member_stream, stream_config
from coopnet.node.engine.outbox import REFUSED_META
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted
from tests.conftest import converged, running, wait_until
from tests.deploy.test_federation import hubs_of, nodes_of, ports
from tests.processes import free_port

pytestmark = pytest.mark.timeout(240)

FLOOD_S = 30.0
CALM_S = 5.0  # the honest members alone first, for their rate without a flood
# A member with its own credentials, publishing 65,000-byte junk as fast as it can for
# FLOOD_S seconds, from 32 publishers at once (plain `publish`: nats-py's publish_async never
# completes a publish the server refuses); prints what the bus took and refused, as JSON.
ROGUE = """
import asyncio, json, sys, time, nats, nats.errors, nats.js.errors
async def main(url, creds, seconds):
    nc = await nats.connect(url, user_credentials=creds, inbox_prefix="_INBOX.rog")
    js, blob = nc.jetstream(), b"\\x00" * 65_000
    out = {"accepted_msgs": 0, "accepted_bytes": 0, "refused": 0, "first_refusal_s": None,
           "codes": {}, "seconds": seconds}
    start = time.monotonic()
    async def publisher():
        while time.monotonic() - start < seconds:
            try:
                await js.publish("coop.rog.junk", blob, timeout=5)
                out["accepted_msgs"] += 1
                out["accepted_bytes"] += len(blob)
            except nats.js.errors.APIError as exc:
                out["refused"] += 1
                key = f"{exc.err_code} {exc.description}"
                out["codes"][key] = out["codes"].get(key, 0) + 1
                if out["first_refusal_s"] is None:
                    out["first_refusal_s"] = time.monotonic() - start
    await asyncio.gather(*(publisher() for _ in range(32)))
    await nc.close()
    print(json.dumps(out))
asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


async def _init(root: Path, slugs: str, quotas: Quotas | None = None) -> fed.FederationConfig:
    return await fed.init_federation(
        root, name="Quota", slugs=slugs.split(","), ports=ports(), quotas=quotas
    )


@pytest.mark.slow
async def test_a_rogue_flooding_for_30s_is_refused_at_its_quota_while_honest_members_converge(
    tmp_path: Path,
) -> None:
    """The issue's must-show, with the quotas at their documented defaults: rog publishes
    junk as fast as it can for 30 s; the bus takes at most its quota and then refuses it
    (503, err_code 10077), while ana and ben keep publishing, nothing of theirs is refused,
    and each holds the other's events; the observer reports rog at its quota. Prints the
    figures recorded in docs/OPERATIONS.md §12."""
    root = tmp_path / "fed"
    config = await _init(root, "ana,ben,rog")
    quota = Quotas()
    assert config.quotas == quota  # the defaults
    with hubs_of(root):
        await ensure_stream(root, config)
        observer = Observer.from_dir(root / "observer")
        async with anyio.create_task_group() as tg:
            await tg.start(observer.run)
            async with running(*nodes_of(root, "ana", "ben")) as (ana, ben):
                flood: dict[str, object] = {}

                async def rogue() -> None:
                    creds = fed.neighborhood_dir(root, "rog") / "nats.creds"
                    args = [sys.executable, "-c", ROGUE, config.urls, str(creds), str(FLOOD_S)]
                    done = await anyio.run_process(args)
                    flood.update(json.loads(done.stdout))
                    flood_tg.cancel_scope.cancel()  # the honest posting stops with the flood

                async def honest(node: Node) -> None:
                    while True:
                        await node.post(NotePosted(text=f"{node.slug} says hello"))
                        await anyio.lowlevel.checkpoint()

                async def heads() -> dict[str, int]:
                    return {n.slug: (await n.status()).own_head for n in (ana, ben)}

                before = await heads()
                async with anyio.create_task_group() as calm_tg:  # the rate without a flood
                    calm_tg.start_soon(honest, ana)
                    calm_tg.start_soon(honest, ben)
                    await anyio.sleep(CALM_S)
                    calm_tg.cancel_scope.cancel()
                calm = await heads()
                started = time.monotonic()
                async with anyio.create_task_group() as flood_tg:
                    flood_tg.start_soon(rogue)
                    flood_tg.start_soon(honest, ana)
                    flood_tg.start_soon(honest, ben)
                elapsed = time.monotonic() - started
                after = await heads()
                # What each had of the other's flood-time events when the flood ended.
                seen = {
                    "ana at ben": (await ben.status()).authors["ana"] - calm["ana"],
                    "ben at ana": (await ana.status()).authors["ben"] - calm["ben"],
                }
                await wait_until(lambda: converged(ana, ben), within=60, what="convergence")
                for node in (ana, ben):
                    status = await node.status()
                    assert status.publish_refused is None
                    assert status.outbox_depth == 0
                    assert {a: status.authors[a] for a in after} == after  # each other's all
                await wait_until(_full(observer), within=20, what="the observer's report")
                report = {u.member: u.state for u in observer.quotas.uses}
            tg.cancel_scope.cancel()
    accepted = int(flood["accepted_bytes"])  # type: ignore[call-overload]
    assert flood["first_refusal_s"] is not None, flood
    assert accepted <= quota.member_bytes
    assert accepted > quota.member_bytes - 2 * 65_536  # it got its quota, no less
    assert list(flood["codes"]) == ["10077 maximum bytes exceeded"]  # type: ignore[call-overload]
    assert report == {"ana": "ok", "ben": "ok", "rog": "full"}
    print(
        f"\nquota figures: rogue accepted {accepted / 2**20:.1f} MiB in "
        f"{flood['accepted_msgs']} msgs, first refusal after {flood['first_refusal_s']:.2f} s, "
        f"{flood['refused']} refused in {FLOOD_S:.0f} s; honest events/s during the flood: "
        + ", ".join(f"{n} {(after[n] - calm[n]) / elapsed:.0f}" for n in after)
        + " (before it: "
        + ", ".join(f"{n} {(calm[n] - before[n]) / CALM_S:.0f}" for n in after)
        + f"); of the flood-time events, held by the other when it ended: {seen} of "
        + str({n: after[n] - calm[n] for n in after})
    )


def _full(observer: Observer) -> Callable[[], Awaitable[bool]]:
    async def only_rog() -> bool:
        return [u.member for u in observer.quotas.uses if u.state == "full"] == ["rog"]

    return only_rog


async def test_a_node_at_its_quota_says_why_and_publishes_once_the_quota_is_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ana's quota is 12 events a period: what it signs beyond stays in its outbox, its
    status and log say why (once, however often it asks again), ben goes on; once the
    operator raises the quota, ana's events go out and the refusal ends."""
    root = tmp_path / "fed"
    config = await _init(root, "ana,ben", Quotas(member_msgs=12))
    with hubs_of(root):
        await ensure_stream(root, config)
        async with running(*nodes_of(root, "ana", "ben")) as (ana, ben):
            for i in range(15):
                await ana.post(NotePosted(text=f"ana {i}"))

            async def ana_refused() -> bool:
                return (await ana.status()).publish_refused is not None

            await wait_until(ana_refused, what="ana's refusal in its status")
            refusal = (await ana.status()).publish_refused
            assert refusal is not None and refusal.code == "quota_exceeded"
            assert "maximum messages exceeded" in refusal.reason
            assert member_stream("ana") in refusal.reason
            assert (await ana.status()).outbox_depth == 4  # 16 signed, 12 taken
            assert await ana.store.meta(REFUSED_META)  # what `coopnet node status` reads
            await ben.post(NotePosted(text="ben goes on"))

            async def ana_has_bens() -> bool:
                return (await ana.status()).authors.get("ben") == 2

            await wait_until(ana_has_bens, what="ben's note at ana")
            assert ana._publisher is not None
            failures = ana._publisher.failures
            await wait_until(
                _more(ana, failures), within=15, what="ana asking again after its back-off"
            )
            said = [r for r in caplog.records if "refuses this node's events" in r.message]
            assert len(said) == 1 and said[0].levelno == logging.ERROR
            # The operator raises the quota: the member stream is updated in place.
            config = msgspec.structs.replace(config, quotas=Quotas(member_msgs=100))
            fed.write_federation(root, config)
            raised = await ensure_stream(root, fed.read_federation(root))
            assert raised == [member_stream("ana"), member_stream("ben")]  # every member's

            async def ana_free() -> bool:
                status = await ana.status()
                return status.publish_refused is None and status.outbox_depth == 0

            await wait_until(ana_free, within=90, what="ana's outbox sent")
            await wait_until(lambda: converged(ana, ben), what="convergence")
            assert (await ben.status()).authors["ana"] == 16
            assert await ana.store.meta(REFUSED_META) == ""


def _more(node: Node, failures: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        assert node._publisher is not None
        return node._publisher.failures > failures

    return check


async def test_an_older_stream_on_coop_is_converted_in_place(tmp_path: Path) -> None:
    """A federation made before quotas: one COOP on `coop.>` (and an account without
    limits). `ensure_stream` frees its subjects, makes the member streams and sources them
    into COOP; what COOP held stays at its sequence numbers, and a second run changes
    nothing."""
    root = tmp_path / "fed"
    config = await _init(root, "ana,ben")
    authority = Authority.load(root)
    authority.limits = BusLimits()  # as before quotas: an unlimited account
    authority.save(root)
    fed.write_hub_configs(root, config, authority)
    admin = str(root / "nats" / "admin.creds")
    with hubs_of(root):
        nc = await nats.connect(config.urls, user_credentials=admin)
        try:
            js = nc.jetstream()
            await js.add_stream(stream_config())
            await js.publish("coop.ana.old", b"before", headers={"Nats-Msg-Id": "old-1"})
            changed = await ensure_stream(root, config)
            assert changed == sorted([STREAM, member_stream("ana"), member_stream("ben")])
            info = await js.stream_info(STREAM)
            assert not info.config.subjects
            assert sorted(s.name for s in info.config.sources or ()) == changed[1:]
            ack = await js.publish("coop.ben.new", b"after", headers={"Nats-Msg-Id": "new-1"})
            assert ack.stream == member_stream("ben")

            async def sourced() -> bool:
                return (await js.stream_info(STREAM)).state.last_seq == 2

            await wait_until(sourced, what="ben's message in COOP")
            assert (await js.get_msg(STREAM, 1)).data == b"before"
            assert (await js.get_msg(STREAM, 2)).data == b"after"
            assert await ensure_stream(root, config) == []
        finally:
            await nc.close()


def test_moving_to_a_cluster_sizes_the_account_for_three_copies(tmp_path: Path) -> None:
    """A three-server cluster keeps every stream three times, and nats-server reserves
    max_bytes x replicas against the account: `federation cluster` mints it anew."""
    root = tmp_path / "fed"
    config = anyio.run(lambda: _init(root, "ana,ben"))
    one = Authority.load(root).limits.account.disk_storage
    assert one == account_disk_bytes(config.quotas, 1)
    fed.move_to_cluster(root, tls=False)
    authority = Authority.load(root)
    assert authority.limits.account.disk_storage == 3 * one
    hub_conf = fed.read_federation(root).hub_configs(root)[0].read_text()
    preloaded = next(
        line.split('"')[1]
        for line in hub_conf.splitlines()
        if line.strip().startswith(f"{authority.account_public_key}:")
    )
    assert decode_jwt(preloaded)["nats"]["limits"]["disk_storage"] == 3 * one


def test_init_flags_set_the_quotas_in_the_config_and_the_jwt_limits(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    args = ["federation", "init", str(root), "--name", "q", "--neighborhoods", "aa,bb"]
    flags = "--member-quota-mib 8 --member-quota-msgs 5000 --quota-period-hours 12"
    flags += " --bus-max-mib 256 --bus-max-age-days 30 --max-members 4"
    assert main([*args, "--port", str(free_port()), *flags.split(), "--json"]) == 0
    quotas = fed.read_federation(root).quotas
    assert quotas == Quotas(
        member_bytes=8 * MIB, member_msgs=5000, period_s=12 * 3600, bus_bytes=256 * MIB,
        bus_age_s=30 * 86_400, members_max=4,
    )  # fmt: skip
    assert Authority.load(root).limits.account.disk_storage == (256 + 4 * 8) * MIB
    assert main([*args[:2], str(tmp_path / "bad"), *args[3:], "--quota-period-hours", "0.5"]) == 2


async def test_a_message_of_the_largest_size_is_sourced_into_coop(tmp_path: Path) -> None:
    """COOP adds a `Nats-Stream-Source` header to what it sources: with a size limit of its
    own, a member's largest message would stall that member's source for good."""
    root = tmp_path / "fed"
    config = await _init(root, "ana,ben")
    with hubs_of(root):
        await ensure_stream(root, config)
        nc = await nats.connect(config.urls, user_credentials=str(root / "nats/admin.creds"))
        try:
            js = nc.jetstream()
            size = MAX_MSG_SIZE
            while True:  # the largest the member stream takes
                try:
                    await js.publish("coop.ana.big", b"\0" * size, headers={"Nats-Msg-Id": "b"})
                    break
                except nats.js.errors.APIError:
                    size -= 16
            await js.publish("coop.ana.small", b"after", headers={"Nats-Msg-Id": "s"})

            async def both_sourced() -> bool:
                return (await js.stream_info(STREAM)).state.messages == 2

            await wait_until(both_sourced, what="both in COOP")
        finally:
            await nc.close()


async def test_an_applicant_without_its_stream_waits_then_publishes_once_it_is_made(
    tmp_path: Path,
) -> None:
    """dee is added while the hubs are down (`neighborhood add` cannot make its stream):
    its application finds no stream, waits in its outbox with `no_stream` in its status,
    and goes out once `ensure_stream` (`federation up` / `streams`) has made the stream."""
    root = tmp_path / "fed"
    config = await _init(root, "ana,ben")
    await fed.add_neighborhood(root, "dee", reason="we fix bikes")
    with hubs_of(root):
        await ensure_stream(root, config, slugs=["ana", "ben"])  # as before dee was added
        async with running(*nodes_of(root, "ana", "dee")) as (ana, dee):

            async def dee_refused() -> bool:
                refused = (await dee.status()).publish_refused
                return refused is not None and refused.code == "no_stream"

            await wait_until(dee_refused, what="dee's no_stream")
            assert (await dee.status()).outbox_depth >= 1
            assert await ensure_stream(root, config) == [STREAM, member_stream("dee")]

            async def ana_has_dee() -> bool:
                return (await ana.status()).authors.get("dee", 0) >= 1

            await wait_until(ana_has_dee, within=30, what="dee's application at ana")
            await wait_until(_free(dee), what="dee's refusal over")


def _free(node: Node) -> Callable[[], Awaitable[bool]]:
    async def free() -> bool:
        status = await node.status()
        return status.publish_refused is None and status.outbox_depth == 0

    return free
