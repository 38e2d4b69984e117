"""Identities bound to the operator (`slug-squatting`, PROTOCOL.md §16.6): a member founds
the slug of a neighborhood the operator is about to add, over its own valid credentials.
With the charter's admission key, every node refuses the squatter's log (`wrong_key`), the
real neighborhood, added afterwards with its ticket, starts, signs and applies, and every
node holds its key under its slug. Real nats-server from the generated config, real SQLite."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import anyio
import anyio.to_thread
import nacl.signing
import nats
import pytest

from coopnet.deploy import federation as fed
from coopnet.deploy.admission import ADMISSION_KEY_FILE, admission_ticket
from coopnet.deploy.cli import main
from coopnet.deploy.launcher import ensure_stream
from coopnet.node.engine.config import ConfigError, read_identity
from coopnet.protocol import Identity, seal, unseal
from coopnet.protocol.admission import check_ticket
from coopnet.protocol.membership import MembershipApplied
from tests.conftest import running, wait_until
from tests.deploy.test_federation import _refused, hubs_of, init, nodes_of

pytestmark = pytest.mark.timeout(180)


async def _squat(url: str, creds: Path, net: bytes, slug: str) -> bytes:
    """Found `slug` with a fresh key and apply, published with another member's creds
    (events are judged by signature, not by the NATS user); the squatter's public key."""
    key, nxt = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    squatter = Identity(author=slug, seed=bytes(key), next_seed=bytes(nxt))
    at = int(time.time() * 1000)
    w1 = seal(signing_key=key, net=net, author=slug, seq=1, prev=None, at=at,
              body=squatter.founding_body("Delta", "N4"))  # fmt: skip
    w2 = seal(signing_key=key, net=net, author=slug, seq=2, prev=unseal(w1, net=net).id,
              at=at + 1, body=MembershipApplied(display_name="Delta", area="N4", about="us",
                                                reason="let us in"))  # fmt: skip
    nc = await nats.connect(url, user_credentials=str(creds), inbox_prefix="_INBOX.ben")
    try:
        for w in (w1, w2):
            await nc.jetstream().publish("coop.ben.note.posted", w)
    finally:
        await nc.close()
    return squatter.public_key


async def test_a_squatted_slug_goes_to_the_neighborhood_the_operator_added(
    tmp_path: Path,
) -> None:
    root = tmp_path / "fed"
    config = await init(root)
    charter, net = fed.charter_of(root)
    assert charter.admission_key and os.stat(root / ADMISSION_KEY_FILE).st_mode & 0o077 == 0
    with hubs_of(root):
        await ensure_stream(root, config)
        async with running(*nodes_of(root, "ana", "ben", "cai")) as founders:
            ben_creds = fed.neighborhood_dir(root, "ben") / "nats.creds"
            squat_key = await _squat(config.urls, ben_creds, net, "dee")

            async def refused_everywhere() -> bool:
                return all([(await n.status()).rejected.get("wrong_key") for n in founders])

            await wait_until(refused_everywhere, what="the squatter's log refused everywhere")
            await fed.add_neighborhood(root, "dee", reason="we grow vegetables")
            await ensure_stream(root, fed.read_federation(root))  # dee's member stream
            real_key = read_identity(fed.neighborhood_dir(root, "dee"), "dee").public_key
            async with running(*nodes_of(root, "dee")) as (dee,):

                async def real_key_everywhere() -> bool:
                    for n in (*founders, dee):
                        st = n.chains.states.get("dee")
                        if st is None or st.keys is None or st.keys.current_key != real_key:
                            return False
                    return True

                await wait_until(real_key_everywhere, what="every node holds the real dee")
                assert squat_key != real_key
                assert (await dee.status()).not_ready == ""


def test_neighborhood_add_refuses_without_the_admission_key(tmp_path: Path) -> None:
    """The ticket is made from DIR/admission.key; a federation directory that lost it (or
    holds another key) cannot add a neighborhood whose log peers would accept."""
    root = tmp_path / "fed"
    anyio.run(init, root)
    charter, net = fed.charter_of(root)
    key = bytes(range(32))
    ticket = admission_ticket(root, charter, net, "dee", key)
    assert ticket is not None and len(ticket) == 64
    (root / ADMISSION_KEY_FILE).write_text(bytes(nacl.signing.SigningKey.generate()).hex())
    with pytest.raises(ConfigError, match="not the admission key"):
        admission_ticket(root, charter, net, "dee", key)
    (root / ADMISSION_KEY_FILE).unlink()
    with pytest.raises(ConfigError, match="cannot read the admission key"):
        admission_ticket(root, charter, net, "dee", key)
    assert json.loads((root / "charter.json").read_text())["admission_key"] == charter.admission_key


def test_neighborhood_ticket_admits_a_key_made_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`coopnet neighborhood ticket` (for a node that made its own key, an outside
    implementation say) prints the ticket the receivers check; founders and malformed keys
    are refused with a message and exit 2."""
    root = tmp_path / "fed"
    anyio.run(init, root)
    charter, net = fed.charter_of(root)
    key = Identity.generate("dee").public_key
    args = ["neighborhood", "ticket", "dee", "--key", key.hex(), "--federation", str(root)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["net"] == net.hex() and out["key"] == key.hex()
    admission_key = charter.admission_public_key()
    assert admission_key is not None
    check_ticket(admission_key, net=net, slug="dee", key=key, ticket=bytes.fromhex(out["ticket"]))
    assert (
        main(["neighborhood", "ticket", "ana", "--key", key.hex(), "--federation", str(root)]) == 2
    )
    assert "is a founder" in capsys.readouterr().err
    assert main(["neighborhood", "ticket", "dee", "--key", "abc", "--federation", str(root)]) == 2
    assert "64 hex digits" in capsys.readouterr().err


async def test_neighborhood_revoke_cuts_a_member_off_without_its_node(tmp_path: Path) -> None:
    """A rogue member's node is not the operator's to start (it signs its own retirement):
    `neighborhood revoke` takes its credentials off every hub all the same, and the honest
    members go on."""
    root = tmp_path / "fed"
    config = await init(root)
    with hubs_of(root):
        await ensure_stream(root, config)
        beta_creds = fed.neighborhood_dir(root, "ben") / "nats.creds"
        assert not await _refused(config.urls, beta_creds)
        args = ["neighborhood", "revoke", "ben", "--federation", str(root), "--json"]
        assert await anyio.to_thread.run_sync(main, args) == 0
        assert await _refused(config.urls, beta_creds)
        assert not await _refused(config.urls, fed.neighborhood_dir(root, "ana") / "nats.creds")
