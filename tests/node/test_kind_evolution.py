"""Kinds that evolve (PROTOCOL.md §8.1): a node that does not know a kind yet keeps the
author's chain whole, and applies the kind once it is upgraded. Real nats-server, real
SQLite, the older node a separate process."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from coopnet.federation.exports import cloudevent
from coopnet.node.engine.api import event_out
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import KNOWN_KINDS_META, Batch, Store
from coopnet.node.runtime import Node
from coopnet.protocol import (
    KINDS,
    Body,
    Envelope,
    Identity,
    NotePosted,
    Opaque,
    seal,
    unseal,
    unseal_stored,
)
from coopnet.protocol.aid import AlertRaised, AlertResolved
from tests.conftest import NET, converged, make_node, running, wait_until
from tests.processes import api_json, free_port, stop_node, wait_ready

pytestmark = pytest.mark.timeout(120)

FORGOTTEN = "note.posted"
# `coopnet node run` as a coopnet that does not know FORGOTTEN yet: the kind is taken out of
# the registry (protocol.kinds.KINDS, the one table unseal and the store consult) before
# anything runs. Everything else is today's code, as an older release's would be.
PREVIOUS_VERSION = (
    "import sys\n"
    "from coopnet.protocol.kinds import KINDS\n"
    f"del KINDS[{FORGOTTEN!r}]\n"
    "from coopnet.deploy.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def start_previous_version(data: Path, url: str, port: int, log: Path) -> subprocess.Popen[str]:
    args = ["node", "run", "--data", str(data), "--nats", url, "--api-port", str(port)]
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, "-c", PREVIOUS_VERSION, *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,
        )


async def test_an_older_node_keeps_a_newer_kind_and_applies_it_once_upgraded(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Oakley runs this version; elm runs it as a version that does not know `note.posted`
    (simulated: the kind is deleted from the registry in elm's process, see
    PREVIOUS_VERSION). Oakley signs notes between events both know. Elm stores every one of
    oakley's events (opaque notes included: no refusal, no gap, the alert after them
    applied) and shows the notes as opaque. Restarted on the same store as this version
    (the registry whole again), elm folds the notes it held: its projections equal oakley's,
    a node that knew the kind all along."""
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    log, port = tmp_path / "elm.log", free_port()
    oak = Node(oak_data, serve_api=False)
    async with running(oak):
        elm_proc = start_previous_version(elm_data, nats_server.url, port, log)
        try:
            await anyio.to_thread.run_sync(wait_ready, port, elm_proc)
            await oak.post(NotePosted(text="Plums are in."))
            await oak.post(AlertRaised(alert="a-1", alert_kind="storm", severity="danger",
                                       area="T1", advice="Stay in."))  # fmt: skip
            await oak.post(NotePosted(text="Jam on Saturday."))
            await oak.post(AlertResolved(alert="a-1"))
            await oak.post(AlertRaised(alert="a-2", alert_kind="heat", severity="warning",
                                       area="T1"))  # fmt: skip

            async def elm_holds_all_of_oakley() -> bool:
                status = await api_json(port, "/status")
                assert isinstance(status, dict)
                return bool(status["authors"].get("oakley") == 6)

            await wait_until(elm_holds_all_of_oakley, what="elm holds oakley's whole chain")
            status = await api_json(port, "/status")
            assert isinstance(status, dict)
            assert status["rejected"] == {}  # nothing refused, on the way in or by a domain
            page = await api_json(port, "/log?author=oakley")
            assert isinstance(page, dict)
            logged = [(e["seq"], e["kind"], e["opaque"]) for e in page["events"]]
            assert logged == [
                (1, "node.founded", False),
                (2, FORGOTTEN, True),
                (3, "alert.raised", False),
                (4, FORGOTTEN, True),
                (5, "alert.resolved", False),
                (6, "alert.raised", False),
            ]
            assert page["events"][1]["body"] == {"text": "Plums are in."}  # as received
            assert await api_json(port, "/notes") == []  # the kind is applied to nothing
            alerts = await api_json(port, "/alerts?all=true")  # the known kinds after it are
            assert isinstance(alerts, list)
            assert sorted(a["alert"] for a in alerts) == ["a-1", "a-2"]
        finally:
            stop_node(elm_proc, log)

        # The upgrade: the same store, opened by this version.
        elm = Node(elm_data, serve_api=False)
        async with running(elm):
            await wait_until(lambda: converged(oak, elm), what="elm and oakley converge")
            notes = await elm.store.all("SELECT author, seq, text FROM notes ORDER BY seq")
            assert [tuple(r) for r in notes] == [
                ("oakley", 2, "Plums are in."),
                ("oakley", 4, "Jam on Saturday."),
            ]
            assert await elm.store.projection_rows() == await oak.store.projection_rows()
            assert (await elm.status()).rejected == {}
            known = await elm.store.meta(KNOWN_KINDS_META)
            assert known is not None and FORGOTTEN in known  # folded once, not at every start


class WidgetMade(Body, frozen=True, kw_only=True):
    """`x.widget.made` as a newer node signs it; this coopnet does not register it."""

    kind = "x.widget.made"
    widget: str
    colour: str


class WidgetMadeBare(Body, frozen=True, kw_only=True):
    """The same kind without `colour`: what no conforming signer writes (§8.1)."""

    kind = "x.widget.made"
    widget: str


class WidgetMadeRegistered(Body, frozen=True, kw_only=True):
    """The same kind as a later coopnet registers it: `colour` required (a body without it,
    which the newer node's signer never writes, is not of the kind's shape)."""

    kind = "x.widget.made"
    widget: str
    colour: str


class Widgets:
    """A projection of the kind, as the upgraded node's domain would have it."""

    name = "widgets"
    tables = ("widgets",)
    kinds = frozenset({"x.widget.made"})
    migrations = (("CREATE TABLE widgets (seq INTEGER PRIMARY KEY, widget TEXT NOT NULL)",),)

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        rows = [(e.seq, e.body.widget) for e in events if isinstance(e.body, WidgetMadeRegistered)]
        assert len(rows) == len(events), "a projection is never handed an opaque body"
        conn.executemany("INSERT INTO widgets VALUES (?, ?)", rows)

    def reset(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM widgets")


def widget_history() -> list[Envelope]:
    ident = Identity.from_passphrase("newer", "kinds")
    bodies: list[Body] = [
        ident.founding_body("Newer", "T1"),
        WidgetMade(widget="chair", colour="red"),
        WidgetMadeBare(widget="stool"),  # no colour: the registered kind refuses it
        NotePosted(text="after the widgets"),
    ]
    out: list[Envelope] = []
    for seq, body in enumerate(bodies, start=1):
        wire = seal(signing_key=ident.signing_key, net=NET, author="newer", seq=seq,
                    prev=out[-1].id if out else None, at=seq, body=body)  # fmt: skip
        out.append(unseal(wire, net=NET))
    return out


async def test_the_store_folds_opaque_events_once_the_kind_is_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored opaque while unknown (its projection sees nothing of them); at the first open
    that knows the kind, the projections are rebuilt once: the good body is applied, the one
    the kind refuses stays in the log, recorded as refused `bad_body` (PROTOCOL.md §8.1)."""
    path = tmp_path / "node.db"
    events = widget_history()
    assert [type(e.body) for e in events[1:3]] == [Opaque, Opaque]
    store = await Store.open(path, net=NET, projections=[Widgets()])
    await store.commit(Batch(events=events))
    assert await store.all("SELECT * FROM widgets") == []
    await store.close()

    monkeypatch.setitem(KINDS, "x.widget.made", WidgetMadeRegistered)  # the upgrade
    caplog.set_level(logging.INFO, logger="coopnet.store")
    for _ in range(2):  # the second open finds nothing new to fold
        store = await Store.open(path, net=NET, projections=[Widgets()])
        assert [tuple(r) for r in await store.all("SELECT * FROM widgets")] == [(2, "chair")]
        refused = await store.all("SELECT seq, kind, code FROM domain_rejections")
        assert [tuple(r) for r in refused] == [(3, "x.widget.made", "bad_body")]
        assert await store.event_count() == 4  # the chain is whole: seq 4 chains on seq 3
        await store.close()
    assert sum("rebuilding" in r.getMessage() for r in caplog.records) == 1


def test_what_reads_stored_wires_shows_an_opaque_event_as_received(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API's `/log` and the CloudEvents export decode stored wires: an opaque event is
    shown with its map as received (bytes as hex) and marked, before and after an upgrade
    whose kind refuses its body; nothing raises."""

    def shown(env: Envelope) -> tuple[bool, dict[str, object]]:
        out, exported = event_out(env), cloudevent(env.wire, NET)
        assert exported["type"] == "coop.x.widget.made"
        assert exported["data"] == out.body  # the same JSON-ready body, binaries as hex
        assert exported.get("coopopaque", False) is out.opaque
        return out.opaque, out.body

    good, bad = widget_history()[1:3]
    assert shown(good) == (True, {"widget": "chair", "colour": "red"})
    assert shown(bad) == (True, {"widget": "stool"})
    monkeypatch.setitem(KINDS, "x.widget.made", WidgetMadeRegistered)  # the upgrade
    assert shown(unseal_stored(good.wire, net=NET)) == (
        False,
        {"widget": "chair", "colour": "red"},
    )
    assert shown(unseal_stored(bad.wire, net=NET)) == (True, {"widget": "stool"})


async def test_a_forgery_at_the_seq_of_a_refused_opaque_event_is_not_a_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether another event at a held seq is a fork depends on the key that signed the held
    one (PROTOCOL.md §6.5). After the upgrade, the held event at seq 3 is one the kind
    refuses; its key is still read, so an event at seq 3 signed by anyone else is
    `wrong_key`, not evidence against its author."""
    events = widget_history()
    store = await Store.open(tmp_path / "node.db", net=NET, projections=[Widgets()])
    try:
        assert (
            await Chains(store, NET).receive([e.wire for e in events], source="t")
        ).accepted == 4
    finally:
        await store.close()
    monkeypatch.setitem(KINDS, "x.widget.made", WidgetMadeRegistered)
    store = await Store.open(tmp_path / "node.db", net=NET, projections=[Widgets()])
    try:
        chains = Chains(store, NET)
        await chains.load()
        stranger = Identity.from_passphrase("newer", "someone else")
        forged = seal(signing_key=stranger.signing_key, net=NET, author="newer", seq=3,
                      prev=events[1].id, at=3, body=NotePosted(text="mine now"))  # fmt: skip
        report = await chains.receive([forged], source="t")
        assert report.rejected == {"wrong_key": 1}
        assert report.forks == [] and await store.forks() == []
    finally:
        await store.close()
