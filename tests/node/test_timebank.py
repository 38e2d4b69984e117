"""The time bank: residents' hours in their node (record, confirm, decline, the debt cap,
a coordinator's credit), and hours between neighborhoods on a real nats-server (the hour
ledger on every node, the hours limit, the domain's refusals), with nothing of residents
on the bus."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import msgspec
import pytest

from coopnet.node.cli import init_node
from coopnet.node.engine.config import ConfigError, TimeBankConfig, read_config, write_config
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store_io import fetch_all
from coopnet.node.runtime import Node
from coopnet.node.timebank.bank import TimeBank
from coopnet.node.timebank.projection import hour_balances, hour_ledger
from coopnet.protocol import Identity
from coopnet.protocol.charter import Charter, Founder, Policies, dump_charter, parse_charter
from coopnet.protocol.hours import DEFAULT_HOURS_LIMIT, HoursTransferred
from coopnet.protocol.membership import MembershipRetired
from tests.accounts import session
from tests.conftest import converged, make_node, running, wait_until
from tests.node.test_governance import everywhere as standing_everywhere
from tests.processes import stream_messages

pytestmark = pytest.mark.timeout(120)


def bank_of(node: Node) -> TimeBank:
    (bank,) = [d.services["timebank"] for d in node.domains if d.name == "timebank"]
    assert isinstance(bank, TimeBank)
    return bank


def with_debt_cap(data: Path, hours: float) -> None:
    config = read_config(data)
    write_config(
        data, msgspec.structs.replace(config, time_bank=TimeBankConfig(debt_cap_hours=hours))
    )


async def balances(client: httpx.AsyncClient) -> dict[str, int]:
    r = await client.get("/hours/residents")
    assert r.status_code == 200, r.text
    return {x["name"]: x["balance"] for x in r.json()["residents"]}


async def test_residents_record_and_only_the_receiver_confirms_within_the_debt_cap(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    data = await make_node(tmp_path, "oakley", nats_server.url)
    with_debt_cap(data, 2)  # 8 quarter hours
    node = Node(data)
    async with (
        running(node),
        session(node, "resident", "ana") as ana,
        session(node, "resident", "bob") as bob,
        session(node, "coordinator", "cora") as cora,
    ):
        # Ana gave Bob an hour and a half: pending, nothing moves yet.
        r = await ana.post("/hours/entries", json={"receiver": "bob", "quarters": 6,
                                                   "what": "fixed the bike"})  # fmt: skip
        assert r.status_code == 201, r.text
        entry = r.json()
        assert (entry["giver"], entry["receiver"], entry["state"]) == ("ana", "bob", "pending")
        assert (await balances(cora))["ana"] == 0
        # Only the receiver decides: not the giver, not a coordinator.
        for other in (ana, cora):
            r = await other.post(f"/hours/entries/{entry['id']}/confirm")
            assert (r.status_code, r.json()["code"]) == (403, "not_yours")
        r = await bob.post(f"/hours/entries/{entry['id']}/confirm")
        assert r.status_code == 201 and r.json()["state"] == "confirmed"
        ledger = await balances(cora)
        assert (ledger["ana"], ledger["bob"]) == (6, -6)
        assert sum(ledger.values()) == 0
        me = (await bob.get("/hours/me")).json()
        assert (me["balance"], me["debt_cap"], me["available"]) == (-6, 8, 2)
        assert [e["id"] for e in me["entries"]] == [entry["id"]]
        # Confirmed once: confirming again or declining is the wrong state.
        r = await bob.post(f"/hours/entries/{entry['id']}/decline")
        assert (r.status_code, r.json()["code"]) == (409, "wrong_state")
        # Bob declines hours recorded to him: nothing moves.
        r = await ana.post("/hours/entries", json={"receiver": "bob", "quarters": 1,
                                                   "what": "a chat"})  # fmt: skip
        declined = (await bob.post(f"/hours/entries/{r.json()['id']}/decline")).json()
        assert declined["state"] == "declined"
        assert (await balances(cora))["bob"] == -6
        # The debt cap: Bob, at -1.5 h, cannot receive 0.75 h more with a cap of 2 h.
        r = await ana.post("/hours/entries", json={"receiver": "bob", "quarters": 3,
                                                   "what": "painting"})  # fmt: skip
        capped = r.json()["id"]
        r = await bob.post(f"/hours/entries/{capped}/confirm")
        assert (r.status_code, r.json()["code"]) == (409, "over_debt_cap")
        assert (await balances(cora))["bob"] == -6
        assert (await bob.get("/hours/me")).json()["entries"][0]["state"] == "pending"
        # A coordinator credits Bob from the co-op: confirmed at once, the co-op pays.
        r = await cora.post("/hours/credit", json={"resident": "bob", "quarters": 8,
                                                   "what": "helped elm's garden"})  # fmt: skip
        assert r.status_code == 201, r.text
        assert (r.json()["giver"], r.json()["receiver"], r.json()["state"]) == (
            "bob", "@coop", "confirmed"
        )  # fmt: skip
        ledger = await balances(cora)
        assert (ledger["bob"], ledger["@coop"], sum(ledger.values())) == (2, -8, 0)
        # Now within the cap, the painting can be confirmed.
        r = await bob.post(f"/hours/entries/{capped}/confirm")
        assert r.status_code == 201 and r.json()["state"] == "confirmed"
        # A resident neither credits nor records for someone else.
        r = await ana.post("/hours/credit", json={"resident": "ana", "quarters": 4, "what": "x"})
        assert (r.status_code, r.json()["code"]) == (403, "role_required")
        r = await ana.post("/hours/entries", json={"receiver": "cora", "giver": "bob",
                                                   "quarters": 4, "what": "x"})  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (403, "not_yours")
        # Quarter hours are integers of at least 1; a stranger is no receiver.
        for quarters in (1.5, 0, -4):
            r = await ana.post("/hours/entries", json={"receiver": "bob", "quarters": quarters,
                                                       "what": "x"})  # fmt: skip
            assert r.status_code == 400, quarters
        r = await ana.post("/hours/entries", json={"receiver": "zed", "quarters": 4, "what": "x"})
        assert (r.status_code, r.json()["code"]) == (404, "no_such_account")
        r = await ana.post("/hours/entries", json={"receiver": "ana", "quarters": 4, "what": "x"})
        assert r.status_code == 400 and r.json()["code"] == "not_authorized"


async def test_hours_between_neighborhoods_reach_every_node_and_sum_to_zero(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    datas = [await make_node(tmp_path, s, nats_server.url) for s in ("oakley", "elm", "ash")]
    nodes = [Node(d, serve_api=False) for d in datas]
    _, elm, ash = nodes
    async with running(*nodes):
        await wait_until(lambda: converged(*nodes), what="every log founded everywhere")
        # Oakley's residents helped elm: elm signs 6 quarter hours over to oakley.
        env = await bank_of(elm).transfer("oakley", 6, transfer="x-garden")
        assert isinstance(env.body, HoursTransferred) and env.body.to == "oakley"
        await bank_of(ash).transfer("elm", 4)
        await wait_until(lambda: converged(*nodes), what="the transfers spread")
        for n in nodes:
            ledger = await hour_ledger(n.store.db)
            assert ledger == {"oakley": (6, 0), "elm": (4, 6), "ash": (0, 4)}, n.slug
            assert hour_balances(ledger) == {"oakley": 6, "elm": -2, "ash": -4}
            assert sum(hour_balances(ledger).values()) == 0
        # The signer's rule: elm, at -0.5 h, may go down to -40 h (the default limit).
        assert bank_of(elm).hours_limit == DEFAULT_HOURS_LIMIT == 160
        with pytest.raises(Refused) as refused:
            await bank_of(elm).transfer("oakley", 159)
        assert refused.value.code == "over_hours_limit"
        await bank_of(elm).transfer("oakley", 158)
        # Not to itself, not to a neighborhood nobody knows, not the same id twice, not
        # for a call for help elm never made.
        for to, code in (("elm", "not_authorized"), ("nowhere", "not_a_member")):
            with pytest.raises(Refused) as refused:
                await bank_of(elm).transfer(to, 1)
            assert refused.value.code == code, to
        await bank_of(ash).transfer("oakley", 1, transfer="x-garden")  # another author's id
        with pytest.raises(Refused) as refused:
            await bank_of(ash).transfer("oakley", 1, transfer="x-garden")
        assert refused.value.code == "duplicate"
        with pytest.raises(Refused) as refused:
            await bank_of(ash).transfer("oakley", 1, request="r-never")
        assert refused.value.code == "not_found"
        await wait_until(lambda: converged(*nodes), what="the last transfers spread")
        for n in nodes:
            assert hour_balances(await hour_ledger(n.store.db)) == {
                "oakley": 6 + 158 + 1, "elm": -2 - 158, "ash": -5
            }  # fmt: skip
        rows = [await n.store.projection_rows() for n in nodes]
        assert rows[0]["hour_transfers"] == rows[1]["hour_transfers"] == rows[2]["hour_transfers"]


async def test_transfers_every_node_refuses_stay_in_the_log_and_move_nothing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Signed past the node's own checks: to itself, and a transfer id used twice (the
    later one). Every node keeps them in the log, refuses them alike, and moves nothing."""
    nodes = [Node(await make_node(tmp_path, s, nats_server.url), serve_api=False)
             for s in ("oakley", "elm")]  # fmt: skip
    oakley, elm = nodes
    async with running(*nodes):
        to_self = await elm.post(HoursTransferred(transfer="x-1", to="elm", quarters=4))
        first = await elm.post(HoursTransferred(transfer="x-2", to="oakley", quarters=4))
        again = await elm.post(HoursTransferred(transfer="x-2", to="oakley", quarters=8))
        reused = await elm.post(HoursTransferred(transfer="x-1", to="oakley", quarters=2))
        await wait_until(lambda: converged(*nodes), what="the transfers spread")
        for n in nodes:
            refused = await fetch_all(n.store.db, "SELECT id, code FROM domain_rejections")
            assert sorted((bytes(i), c) for i, c in refused) == sorted(
                (e.id, "not_authorized") for e in (to_self, again, reused)
            ), n.slug
            assert hour_balances(await hour_ledger(n.store.db)) == {"oakley": 4, "elm": -4}
        assert first.id not in {bytes(r[0]) for r in refused}
        before = await oakley.store.projection_rows()
        await oakley.store.rebuild_projections()
        assert await oakley.store.projection_rows() == before


async def test_nothing_of_residents_reaches_the_bus(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    oakley, elm = Node(oak_data), Node(elm_data)
    async with (
        running(oakley, elm),
        session(oakley, "resident", "ana-maria") as ana,
        session(oakley, "resident", "bobbie") as bob,
        session(elm, "coordinator", "cora-lee") as cora,
    ):
        r = await ana.post("/hours/entries", json={"receiver": "bobbie", "quarters": 9,
                                                   "what": "mended the zebra fence"})  # fmt: skip
        assert (await bob.post(f"/hours/entries/{r.json()['id']}/confirm")).status_code == 201
        # Oakley's residents helped elm: elm's coordinator signs the hours over.
        r = await cora.post("/hours/transfers", json={"to": "oakley", "quarters": 9,
                                                      "transfer": "x-fence"})  # fmt: skip
        assert r.status_code == 201, r.text
        made = r.json()
        assert (made["id"], made["event"]["kind"], made["event"]["author"]) == (
            "x-fence", "hours.transferred", "elm"
        )  # fmt: skip
        r = await cora.post("/hours/transfers", json={"to": "oakley", "quarters": 9,
                                                      "transfer": "x-fence"})  # fmt: skip
        assert r.json() == made  # the same request again: answered once
        await wait_until(lambda: converged(oakley, elm), what="the transfer spreads")
        seen = (await ana.get("/hours/neighborhoods")).json()
        assert seen["balance"] == 9 and seen["ledger_sum"] == 0
        assert {x["neighborhood"]: (x["given"], x["received"]) for x in seen["neighborhoods"]} == {
            "oakley": (9, 0), "elm": (0, 9)
        }  # fmt: skip
        raw = b"".join(m.data or b"" for m in await stream_messages(nats_server.url))
        assert b"hours.transferred" in raw
        for private in (b"ana-maria", b"bobbie", b"zebra", b"cora-lee"):
            assert private not in raw, private
        assert await fetch_all(elm.store.db, "SELECT * FROM time_entries") == []


async def test_under_a_charter_hours_go_only_to_members_within_its_hours_limit(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The charter's `policies.hours_limit` (here 5 h) is the signer's limit; an applicant
    that is not admitted, and a neighborhood that retired, receive no hours."""
    idents = {s: Identity.generate(s) for s in ("ana", "ben", "dee")}
    charter = Charter(
        name="Hours",
        founders=[Founder(slug=s, display_name=s.title(), area="T1",
                          key=idents[s].public_key.hex()) for s in ("ana", "ben")],
        policies=Policies(hours_limit=20),
    )  # fmt: skip
    text = dump_charter(charter)
    _, net = parse_charter(text)
    dirs = []
    for slug, ident in idents.items():
        data = tmp_path / slug
        data.mkdir()
        (data / "charter.json").write_bytes(text)
        settings: dict[str, object] = {"charter": "charter.json"}
        if slug == "dee":
            settings |= {"apply_about": "a street", "apply_reason": "we cook"}
        await init_node(
            data, slug=slug, display_name=slug.title(), area="T1", net=net,
            nats_url=nats_server.url, identity=ident, settings=settings,
        )  # fmt: skip
        dirs.append(data)
    ana, ben, _ = nodes = [Node(d, serve_api=False) for d in dirs]
    async with running(*nodes):
        await wait_until(lambda: converged(*nodes), what="every log founded everywhere")
        assert bank_of(ana).hours_limit == 20
        with pytest.raises(Refused) as refused:
            await bank_of(ana).transfer("dee", 4)
        assert refused.value.code == "not_a_member"
        assert "dee is not a member of the federation (applicant)" in refused.value.message
        await bank_of(ana).transfer("ben", 20)
        with pytest.raises(Refused) as refused:
            await bank_of(ana).transfer("ben", 1)
        assert refused.value.code == "over_hours_limit"
        await bank_of(ben).transfer("ana", 4)
        await wait_until(lambda: converged(ana, ben), what="the transfers spread")
        await ben.post(MembershipRetired(reason="moving away"))
        with anyio.fail_after(30):
            await ben.stopped.wait()
        await standing_everywhere((ana,), "ben", "retired")
        with pytest.raises(Refused) as refused:
            await bank_of(ana).transfer("ben", 1)
        assert refused.value.code == "not_a_member"
        assert "ben is not a member of the federation (retired)" in refused.value.message
        assert hour_balances(await hour_ledger(ana.store.db)) == {"ana": -16, "ben": 16}


async def test_node_toml_time_bank_section(tmp_path: Path) -> None:
    """`[time_bank] debt_cap_hours`: written only when not the default, read back in
    quarter hours, and refused unless in quarter-hour steps."""
    data = await make_node(tmp_path, "oakley", "nats://127.0.0.1:9")
    assert "[time_bank]" not in (data / "node.toml").read_text()
    assert read_config(data).time_bank.debt_cap_quarters == 40  # 10 hours by default
    with_debt_cap(data, 7.5)
    assert "[time_bank]\ndebt_cap_hours = 7.5" in (data / "node.toml").read_text()
    assert read_config(data).time_bank.debt_cap_quarters == 30
    with_debt_cap(data, 7.3)
    with pytest.raises(ConfigError, match="not in quarter-hour steps"):
        read_config(data)
