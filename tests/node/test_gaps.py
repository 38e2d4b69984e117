"""The gap buffer (PROTOCOL.md §6.4): only events signed by a key of their author's known key
log wait beyond a gap, within a byte cap per author and in all; the rest are counted and
their range asked of peers. No bus: Chains over a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coopnet.node.engine.chains import UNKNOWN_AUTHORS_ASKED, Chains
from coopnet.protocol import Envelope, Identity, NotePosted, seal, unseal
from coopnet.protocol.body import Body
from tests.node.test_chains import ELM, NET, NOW, OAK, history
from tests.stores import open_node_store


@pytest.fixture
async def chains(tmp_path: Path) -> AsyncIterator[Chains]:
    store = await open_node_store(tmp_path / "node.db", NET)
    c = Chains(store, NET, clock=lambda: NOW, charter_keys={"oakley": OAK.public_key})
    await c.load()
    try:
        yield c
    finally:
        await store.close()


def forge(author: str, seq: int, *, text: str = "not mine", pad: int = 0) -> Envelope:
    """An event claiming to be `author`'s at `seq`, signed by a throwaway key."""
    wire = seal(
        signing_key=Identity.generate(author).signing_key, net=NET, author=author, seq=seq,
        prev=bytes(32), at=NOW, body=NotePosted(text=text + "x" * pad),
    )  # fmt: skip
    return unseal(wire, net=NET)


def sign(ident: Identity, seq: int, prev: bytes, body: Body) -> Envelope:
    wire = seal(
        signing_key=ident.signing_key, net=NET, author=ident.author, seq=seq, prev=prev,
        at=NOW, body=body,
    )  # fmt: skip
    return unseal(wire, net=NET)


async def test_an_event_beyond_a_gap_not_signed_by_the_authors_key_is_not_held(
    chains: Chains,
) -> None:
    events = history(OAK, 6)
    await chains.receive([e.wire for e in events[:2]], source="bus")
    forged = [forge("oakley", seq) for seq in range(10, 410)]
    report = await chains.receive([f.wire for f in forged], source="bus")
    assert report.buffered == 0
    assert report.rejected == {"unverifiable_gap": 400}
    assert not chains.buffer and chains.gaps.bytes == 0
    # No gap is open after verified events: the audit has nothing to report ...
    assert chains.missing() == []
    # ... but the range up to the highest event not held is asked of peers, once.
    assert chains.gaps_to_fetch() == [("oakley", 3, 409)]
    assert chains.gaps_to_fetch() == []
    rows = await chains.store.all("SELECT author, code, reason FROM rejected_events LIMIT 1")
    author, code, reason = rows[0]
    assert (author, code) == ("oakley", "unverifiable_gap")
    assert f"oakley's current key is {OAK.public_key.hex()[:16]}…" in reason
    assert (await chains.store.rejections())["unverifiable_gap"] == 400
    # The author's own event beyond the gap is held, and the gap closes as usual.
    report = await chains.receive([events[5].wire], source="bus")
    assert report.buffered == 1
    assert chains.missing() == [("oakley", 3, 5)]
    await chains.receive([e.wire for e in events[2:5]], source="sync")
    assert chains.head_of("oakley").seq == 6  # type: ignore[union-attr]
    assert not chains.buffer and chains.gaps.bytes == 0


async def test_an_author_whose_founding_is_not_held_is_held_only_under_the_charters_key(
    chains: Chains,
) -> None:
    oak, elm = history(OAK, 4), history(ELM, 4)  # oakley is a founder, elm is not
    report = await chains.receive(
        [oak[2].wire, oak[3].wire, elm[2].wire, forge("oakley", 3).wire, forge("ash", 7).wire],
        source="bus",
    )
    assert report.buffered == 2
    assert report.rejected == {"unverifiable_gap": 3}
    assert {a: sorted(h) for a, h in chains.buffer.items()} == {"oakley": [3, 4]}
    assert chains.missing() == [("oakley", 1, 2)]
    # Known authors first (the charter names oakley), then those nobody vouches for.
    assert chains.gaps_to_fetch() == [("oakley", 1, 3), ("ash", 1, 7), ("elm", 1, 3)]
    # Authors of whom nothing is stored are not remembered as known authors.
    assert set(chains.states) == set()
    rows = await chains.store.all("SELECT author, reason FROM rejected_events")
    reasons = {str(r[0]): str(r[1]) for r in rows}
    assert "no node.founded of elm is held and the charter names no key for it" in reasons["elm"]
    assert "the charter's key for oakley is" in reasons["oakley"]
    # Once elm's log is founded, its own events wait beyond a gap like anyone's.
    await chains.receive([elm[0].wire, elm[2].wire, oak[0].wire, oak[1].wire], source="sync")
    assert chains.head_of("oakley").seq == 4  # type: ignore[union-attr]
    assert chains.missing() == [("elm", 2, 2)]


async def test_an_event_after_a_rotation_inside_the_gap_is_held(chains: Chains) -> None:
    """The key an author's current key committed to (pre-rotation, §5.2) is known too."""
    events = history(OAK, 2)
    await chains.receive([e.wire for e in events], source="bus")
    after, rotation_body = OAK.rotated()
    note3 = sign(OAK, 3, events[1].id, NotePosted(text="three"))
    rotation = sign(after, 4, note3.id, rotation_body)
    note5 = sign(after, 5, rotation.id, NotePosted(text="five, with the new key"))
    report = await chains.receive([rotation.wire, note5.wire], source="bus")
    assert (report.buffered, report.rejected) == (2, {})
    await chains.receive([note3.wire], source="sync")
    assert chains.head_of("oakley").seq == 5  # type: ignore[union-attr]


async def test_the_byte_caps_keep_the_lowest_seqs_and_count_the_rest(tmp_path: Path) -> None:
    store = await open_node_store(tmp_path / "n.db", NET)
    oak, elm = history(OAK, 40), history(ELM, 40)
    size = len(oak[20].wire)
    chains = Chains(
        store, NET, clock=lambda: NOW,
        buffer_bytes_per_author=10 * size + size // 2, buffer_bytes=15 * size + size // 2,
    )  # fmt: skip
    await chains.receive([oak[0].wire, elm[0].wire], source="bus")
    # oakley: 20 events beyond its gap, at most 10 held: the lowest, since they go first.
    report = await chains.receive([e.wire for e in oak[20:40]], source="bus")
    assert report.buffered == 10 and chains.gaps.dropped == 10
    assert sorted(chains.buffer["oakley"]) == list(range(21, 31))
    # A lower one arriving later takes the place of the highest held.
    await chains.receive([oak[10].wire], source="bus")
    assert sorted(chains.buffer["oakley"]) == [11, *range(21, 30)]
    # elm: only what is left of the global cap (15 events in all).
    report = await chains.receive([e.wire for e in elm[20:40]], source="bus")
    assert report.buffered == 5
    assert chains.gaps.count == 15
    assert chains.gaps.bytes <= 15 * size + size // 2
    assert chains.gaps.bytes == sum(len(e.wire) for h in chains.buffer.values() for e in h.values())
    # Every event left out has its range asked again; nothing was refused.
    assert ("oakley", 2, 40) in chains.gaps_to_fetch()
    assert await store.rejections() == {}
    # Filled, everything is stored: what was dropped comes with the ranges asked.
    await chains.receive([e.wire for e in oak[1:40]] + [e.wire for e in elm[1:40]], source="sync")
    assert chains.head_of("oakley").seq == chains.head_of("elm").seq == 40  # type: ignore[union-attr]
    assert not chains.buffer and chains.gaps.bytes == 0
    await store.close()


async def test_made_up_authors_cannot_keep_the_gap_filler_busy(chains: Chains) -> None:
    """Slugs cost nothing: events of 100 made-up authors are asked of peers for at most
    `UNKNOWN_AUTHORS_ASKED` of them, and a known author's range is never crowded out."""
    events = history(OAK, 3)
    await chains.receive([events[0].wire], source="bus")
    strangers = [forge(f"nobody-{i:03}", 5) for i in range(100)]
    await chains.receive([events[2].wire] + [f.wire for f in strangers], source="bus")
    asked = chains.gaps_to_fetch()
    assert asked[0] == ("oakley", 2, 2)
    assert len(asked) == 1 + UNKNOWN_AUTHORS_ASKED
    assert chains.gaps_to_fetch() == [("oakley", 2, 2)]  # the others are forgotten
    assert set(chains.states) == {"oakley"}
