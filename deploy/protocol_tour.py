"""`coopnet demo --protocol`: the envelope at work, with no bus and no store.

Creates a few neighborhood identities, seals a short history for each (founding, notes, a
key rotation), unseals and verifies every event against the pure history rules, then shows
a tampered copy, a copy for another federation, a forked history and a retired key being
refused with their stable codes.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from coopnet.protocol import (
    Envelope,
    Head,
    Identity,
    InvalidEvent,
    NotePosted,
    Verdict,
    check_key,
    classify,
    found_key_state,
    seal,
    unseal,
)
from coopnet.protocol.envelope import encode_wire

NEIGHBORHOODS = (("oakley", "Oakley Commons", "N1"), ("riverside", "Riverside", "N2"))
NOTES = ("Tomatoes are in at the depot.", "Repair café on Saturday.", "Bread surplus: 40 loaves.")


def run_tour(console: Console, *, as_json: bool) -> dict[str, Any]:
    net = hashlib.sha256(b"coopnet demo federation").digest()[:16]
    now = int(time.time() * 1000)
    accepted: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    histories: dict[str, list[bytes]] = {}

    for slug, name, area in NEIGHBORHOODS:
        ident = Identity.from_passphrase(slug, "demo")
        wires: list[bytes] = []
        prev: bytes | None = None
        bodies: list[Any] = [ident.founding_body(name, area), *(NotePosted(text=t) for t in NOTES)]
        signer = ident
        for i, body in enumerate(bodies, start=1):
            wire = seal(
                signing_key=signer.signing_key,
                net=net,
                author=slug,
                seq=i,
                prev=prev,
                at=now + i,
                body=body,
            )
            prev = unseal(wire, net=net).id
            wires.append(wire)
        signer, rotation = signer.rotated()
        wires.append(
            seal(
                signing_key=signer.signing_key,
                net=net,
                author=slug,
                seq=len(wires) + 1,
                prev=prev,
                at=now + 10,
                body=rotation,
            )
        )
        histories[slug] = wires
        # Verify the whole history the way a node does: unseal, key log, chain.
        envs = [unseal(w, net=net) for w in wires]
        state = found_key_state(envs[0])
        head: Head | None = None
        held: dict[int, bytes] = {}
        for env in envs:
            if env.seq > 1:
                state = check_key(state, env)
            verdict = classify(head, env.seq, env.id, env.prev, held.get).verdict
            assert verdict is Verdict.NEXT
            head = Head(env.seq, env.id)
            held[env.seq] = env.id
            accepted.append(_row(env))

    oak = histories["oakley"]
    header, sig, body = msgspec.msgpack.decode(oak[1], type=tuple[bytes, bytes, bytes])
    tampered_body = msgspec.msgpack.encode({"text": "Tomatoes are FREE at the depot."})
    cases: list[tuple[str, bytes, bytes]] = [
        ("tampered body", encode_wire(header, sig, tampered_body), net),
        ("flipped signature bit", encode_wire(header, bytes([sig[0] ^ 1]) + sig[1:], body), net),
        ("replayed into another federation", oak[1], hashlib.sha256(b"other").digest()[:16]),
        ("truncated in transit", oak[1][:-7], net),
    ]
    for label, wire, for_net in cases:
        try:
            unseal(wire, net=for_net)
            refused.append({"case": label, "code": "accepted!", "message": ""})
        except InvalidEvent as exc:
            refused.append({"case": label, "code": exc.code, "message": exc.message})

    # A fork: oakley signs a second, different event at seq 2.
    ident = Identity.from_passphrase("oakley", "demo")
    first = unseal(oak[0], net=net)
    forked = unseal(
        seal(
            signing_key=ident.signing_key,
            net=net,
            author="oakley",
            seq=2,
            prev=first.id,
            at=now + 99,
            body=NotePosted(text="A different second event."),
        ),
        net=net,
    )
    held = {e.seq: e.id for e in (unseal(w, net=net) for w in oak)}
    last = max(held)
    c = classify(Head(last, held[last]), forked.seq, forked.id, forked.prev, held.get)
    evidence = f"holds {c.held_id.hex()[:12]}… at seq {c.fork_seq}"
    refused.append(
        {
            "case": "forked history (second event at seq 2)",
            "code": c.verdict.value,
            "message": f"{evidence}, got {forked.id.hex()[:12]}…",
        }
    )
    # The retired key signs a note after the rotation.
    envs = [unseal(w, net=net) for w in oak]
    state = found_key_state(envs[0])
    for env in envs[1:]:
        state = check_key(state, env)
    late = unseal(
        seal(
            signing_key=ident.signing_key,
            net=net,
            author="oakley",
            seq=len(oak) + 1,
            prev=envs[-1].id,
            at=now + 100,
            body=NotePosted(text="Signed with the retired key."),
        ),
        net=net,
    )
    try:
        check_key(state, late)
    except InvalidEvent as exc:
        refused.append(
            {"case": "retired key after rotation", "code": exc.code, "message": exc.message}
        )

    result = {"net": net.hex(), "accepted": accepted, "refused": refused}
    if not as_json:
        _show(console, result)
    return result


def _row(env: Envelope) -> dict[str, Any]:
    return {
        "author": env.author,
        "seq": env.seq,
        "kind": env.kind,
        "id": env.id.hex(),
        "bytes": len(env.wire),
    }


def _show(console: Console, result: dict[str, Any]) -> None:
    console.rule(f"[bold]coopnet protocol v1[/] · federation {result['net']}")
    table = Table(title="Sealed, unsealed and verified", title_justify="left")
    for col in ("author", "seq", "kind", "id", "bytes"):
        table.add_column(col, justify="right" if col in ("seq", "bytes") else "left")
    for row in result["accepted"]:
        table.add_row(
            row["author"], str(row["seq"]), row["kind"], row["id"][:16] + "…", str(row["bytes"])
        )
    console.print(table)
    bad = Table(title="Refused, with their stable codes", title_justify="left")
    bad.add_column("case")
    bad.add_column("code", style="bold red")
    bad.add_column("why")
    for row in result["refused"]:
        bad.add_row(row["case"], row["code"], row["message"])
    console.print(bad)
