"""Display names as an observer shows them (PROTOCOL.md §18): a second "Alpha", a Greek
"ΑLPHA" and a name with a right-to-left override and a zero-width space, founded by rogue
signers on a real bus, are stored as signed (valid events), but every way the observer
lets text out (its JSON API, the audit, the CSV and CloudEvents exports, the CLI's tables)
shows them safe, and flags the imitations."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from rich.console import Console

from coopnet.federation.audit import audit
from coopnet.federation.cli import findings_table
from coopnet.federation.exports import cloudevents_lines, table_csv
from coopnet.federation.measures import neighborhoods
from coopnet.federation.observer import Observer
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.terminal import cell
from coopnet.protocol import Envelope
from tests.conftest import running, wait_until
from tests.federation.test_audit import Rogue, holds, honest, observing, publish

TRICKY = "Trusted\u202e\u200b"


def hidden(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cf", "Cc")]


def rogue_founding(slug: str, name: str) -> tuple[Rogue, Envelope]:
    rogue = Rogue(slug)
    return rogue, rogue.next(rogue.ident.founding_body(name, "Z1"))


async def test_imitating_and_hidden_names_are_shown_safe_and_flagged(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    (alpha,) = await honest(tmp_path, url, "alpha")  # founded as "Alpha"
    async with running(alpha), observing(tmp_path / "obs", url) as obs:
        await wait_until(lambda: _founded(obs, "alpha"), what="the observer to hold alpha")
        foundings = [
            rogue_founding("alpha-coop", "Alpha"),
            rogue_founding("gamma", "\u0391LPHA"),  # a Greek capital alpha
            rogue_founding("mallory", TRICKY),
        ]
        events = [env for _, env in foundings]
        await publish(url, *events)
        await wait_until(lambda: holds(obs, *events), what="the observer to hold the rogues")

        rows = {r["slug"]: r for r in await neighborhoods(obs.store.db, obs.charter, obs.clock())}
        names = [r["display_name"] for r in rows.values()]
        assert len(set(names)) == len(names), names  # no two rows look the same
        assert not [n for n in names if hidden(n)]
        assert rows["alpha"]["display_name"] == "Alpha" and rows["alpha"]["name_warning"] == ""
        assert rows["alpha-coop"]["display_name"] == "Alpha (alpha-coop)"
        assert rows["alpha-coop"]["imitates"] == "alpha"
        assert rows["gamma"]["imitates"] == "alpha"
        assert rows["mallory"]["display_name"] == "Trusted"
        assert "U+202E RIGHT-TO-LEFT OVERRIDE" in rows["mallory"]["name_warning"]

        findings = await audit(obs.store.db, obs.charter, now_ms=obs.clock())
        found = {(f.code, f.author): f for f in findings}
        imitation = found[("display_name_imitation", "alpha-coop")]
        assert imitation.severity == "warning" and imitation.evidence == [events[0].id.hex()]
        assert ("display_name_imitation", "gamma") in found
        assert ("display_name_imitation", "alpha") not in found
        hides = found[("display_name_hidden_characters", "mallory")]
        assert "U+200B ZERO WIDTH SPACE" in hides.title and hides.evidence == [events[2].id.hex()]
        assert not [f for f in findings if hidden(f.title + f.detail)]

        csv_text = await table_csv(obs.store.db, "neighborhoods")
        assert "Trusted" in csv_text and not hidden(csv_text.replace("\r\n", ""))
        lines = b"".join([chunk async for chunk in cloudevents_lines(obs.store.db, obs.net)])
        assert lines.isascii()  # every non-ASCII character escaped…
        datas = [json.loads(line)["data"] for line in lines.splitlines()]
        assert TRICKY in [d.get("display_name") for d in datas]  # …and the text as signed

        console = Console(record=True, width=300, color_system=None)
        console.print(findings_table(findings))
        shown = console.export_text()
        assert "alpha-coop" in shown and not hidden(shown.replace("\n", ""))


def test_event_text_in_a_terminal_table_is_never_markup() -> None:
    console = Console(record=True, width=200, color_system="truecolor")
    console.print(cell("[link=https://evil.example]Beta[/link] [blink]x\x1b[2J\u202e"))
    shown = console.export_text()
    assert "[link=https://evil.example]Beta[/link] [blink]x [2J" in shown
    assert "<a " not in console.export_html()  # no link was made of it


async def _founded(obs: Observer, slug: str) -> bool:
    return bool(await obs.store.all("SELECT 1 FROM neighborhoods WHERE author = ?", (slug,)))
