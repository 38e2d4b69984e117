"""A node upgraded to the personal-data rule on normalized text (PROTOCOL.md §13.1) applies
it to what it had stored before: the aid projection is folded again at open (its migration
step 3), so a description the old rule let through is refused there too, as on a new node."""

from __future__ import annotations

from pathlib import Path

import msgspec

from coopnet.node.engine.store import Batch
from coopnet.protocol import Envelope, Identity, seal, unseal
from coopnet.protocol.body import Body
from tests.node.test_store import NET, open_store
from tests.protocol.test_aid import REQUEST


def chain(slug: str, bodies: list[Body]) -> list[Envelope]:
    ident = Identity.from_passphrase(slug, "upgrade")
    out: list[Envelope] = []
    for seq, body in enumerate([ident.founding_body(slug.title(), "S1"), *bodies], start=1):
        wire = seal(signing_key=ident.signing_key, net=NET, author=slug, seq=seq,
                    prev=out[-1].id if out else None, at=1000 + seq, body=body)  # fmt: skip
        out.append(unseal(wire, net=NET))
    return out


async def test_an_upgraded_node_refuses_what_the_new_rule_refuses(tmp_path: Path) -> None:
    leaky = msgspec.structs.replace(REQUEST, description="write to zoë@example.org")
    events = chain("oakley", [leaky])
    store = await open_store(tmp_path / "node.db")
    await store.commit(Batch(events=events), received=True)
    # As a node of the old rule left it: aid at version 2, nothing refused.
    await store.db.execute("DELETE FROM domain_rejections")
    await store.db.execute("UPDATE schema_versions SET version = 2 WHERE component = 'aid'")
    await store.close()
    store = await open_store(tmp_path / "node.db")
    try:
        refused = await store.all("SELECT id, code FROM domain_rejections")
        assert [(bytes(r[0]), r[1]) for r in refused] == [(events[1].id, "personal_data")]
        assert await store.all("SELECT * FROM aid_requests") == []
    finally:
        await store.close()
